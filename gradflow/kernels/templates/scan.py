# Template: the forward scan and backpropagation through time, generic over cells.
#
# This file is not imported.  gradflow.codegen copies it into every cell's generated
# module, after the cell's unit functions, which it calls:
#   fwd_units(ax, ah1, ah2, sp, prm, sn)          new state from one step's pre-activations
#   rho_units(ax, ah1, sp, prm, u)                recurrent input of two-stage cells
#   bwd_units(ax, ah1, ah2, sp, prm, dsn, dax, dah1, dah2, dsp, dprm)
#   rho_bwd_units(ax, ah1, sp, prm, du, dax, dah1, dsp, dprm)
# and the module constant STAGE2.  Shapes, with S state components, G gates (G1 of them
# reading h_prev, G2 reading u), P per-unit parameters:
#   ax (T, B, G*H)   input pre-activations x W_ih^T + b_ih (one GEMM, done by the caller)
#   ah1 (T, B, G1*H), ah2 (T, B, G2*H)   recurrent pre-activations (written here)
#   u (T, B, H) or (T, B, 0)             recurrent input (two-stage cells only)
#   states (S, T+1, B, H)                states[:, 0] is the initial state
#   prm (P, H)


@njit(**JIT)
def _add_bias(a, b):
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            a[i, k] += b[k]


@njit(**JIT)
def _matmul(a, b, out):
    """out (B, N) = a (B, K) @ b (K, N) through BLAS; a matrix-vector product when B = 1
    (a 1-row GEMM would pack the whole of b at every step)."""
    if a.shape[0] == 1:
        np.dot(a[0], b, out[0])
    else:
        np.dot(a, b, out)


@njit(**JIT)
def forward_kernel(ax, w1, b1, w2, b2, prm, states, ah1, ah2, u, sv):
    """Run the cell over T steps, writing states[:, 1:], ah1, ah2 and u.

    sv (T, NUM_SAVED, B, H): where it has T rows, also the function values that
    backward_kernel reads instead of recomputing them (see fwd_save_units).
    """
    T = ax.shape[0]
    # the unit functions vectorise over contiguous rows: step through two (S, B, H) buffers
    # and copy each new state into `states`, whose slices states[:, t] are strided
    sp = np.empty(states.shape[:1] + states.shape[2:], dtype=states.dtype)
    sp[:] = states[:, 0]
    sn = np.empty_like(sp)
    for t in range(T):
        _matmul(sp[0], w1.T, ah1[t])
        _add_bias(ah1[t], b1)
        if STAGE2:
            rho_units(ax[t], ah1[t], sp, prm, u[t])
            _matmul(u[t], w2.T, ah2[t])
            _add_bias(ah2[t], b2)
        if NUM_SAVED > 0 and sv.shape[0] == T:
            fwd_save_units(ax[t], ah1[t], ah2[t], sp, prm, sn, sv[t])
        else:
            fwd_units(ax[t], ah1[t], ah2[t], sp, prm, sn)
        states[:, t + 1] = sn
        sp, sn = sn, sp


@njit(**JIT)
def backward_kernel(ax, ah1, ah2, u, states, sv, prm, w1, w2, dh, dsT, dax, dah1, dah2, ds0, dprm):
    """Backpropagation through time.

    dh (T, B, H): dL/dh_t from outside the recurrence; dsT (S, B, H): dL/d(final state).
    Writes dax, dah1, dah2 (gradients of the pre-activations, for the weight GEMMs done by
    the caller), ds0 (S, B, H) = dL/d(initial state), and accumulates dprm (P, H).  When
    DAH1_IS_DAX, bwd_units leaves dah1 alone (it equals dax) and dax may be passed as dah1.
    sv: the values saved by forward_kernel, or an array with 0 rows (recompute them).
    """
    T = ax.shape[0]
    ds = dsT.copy()
    dsp = np.empty_like(ds)
    sp = np.empty_like(ds)
    tmp = np.empty_like(ds[0])
    for t in range(T - 1, -1, -1):
        ds[0] += dh[t]
        sp[:] = states[:, t]
        if NUM_SAVED > 0 and sv.shape[0] == T:
            bwd_saved_units(ax[t], ah1[t], ah2[t], sp, prm, sv[t], ds, dax[t], dah1[t], dah2[t],
                            dsp, dprm)
        else:
            bwd_units(ax[t], ah1[t], ah2[t], sp, prm, ds, dax[t], dah1[t], dah2[t], dsp, dprm)
        if STAGE2:
            _matmul(dah2[t], w2, tmp)
            rho_bwd_units(ax[t], ah1[t], sp, prm, tmp, dax[t], dah1[t], dsp, dprm)
        if DAH1_IS_DAX:
            _matmul(dax[t], w1, tmp)
        else:
            _matmul(dah1[t], w1, tmp)
        dsp[0] += tmp
        ds, dsp = dsp, ds
    ds0[:] = ds


@njit(**JIT)
def intermediates_kernel(ax, ah1, ah2, states, prm, out):
    """Every named intermediate (gate values ...) at every step: out (K, T, B, H)."""
    for t in range(ax.shape[0]):
        intermediates_units(ax[t], ah1[t], ah2[t], states[:, t], prm, out[:, t])
