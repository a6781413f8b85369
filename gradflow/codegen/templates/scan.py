# Template: the forward scan and backpropagation through time, generic over cells.
#
# This file is not imported.  gradflow.codegen copies it into every cell's generated
# module, after the cell's unit functions, which it calls:
#   fwd_units(ax, ah1, ah2, sp, prm, sn)          new state from one step's pre-activations
#   rho_units(ax, ah1, sp, prm, u)                recurrent input of two-stage cells
#   bwd_units(ax, ah1, ah2, sp, prm, dsn, dax, dah1, dah2, dsp, dprm)
#   bwd_trunc_units(...)                          the same for the 1997 truncated gradient
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


#: matrices of at most this many entries are multiplied by a vector in a plain loop: for
#: the few units of the 1997 nets a BLAS call costs several times the arithmetic
SMALL_MATVEC = 128


@njit(**JIT)
def _matmul(a, b, out):
    """out (B, N) = a (B, K) @ b (K, N) through BLAS; a matrix-vector product when B = 1
    (a 1-row GEMM would pack the whole of b at every step), in a loop when b is tiny."""
    if a.shape[0] == 1:
        if b.shape[0] * b.shape[1] <= SMALL_MATVEC:
            v = a[0]
            o = out[0]
            for n in range(b.shape[1]):
                o[n] = 0.0
            for k in range(b.shape[0]):
                vk = v[k]
                for n in range(b.shape[1]):
                    o[n] += vk * b[k, n]
        else:
            np.dot(a[0], b, out[0])
    else:
        np.dot(a, b, out)


@intrinsic
def _gemm_compute(typingctx, fn, a, pk, out):
    """out (m, n) = a (m, k) @ B, where pk holds B packed by oneMKL's cblas_?gemm_pack and
    fn is the address of cblas_?gemm_compute (see gradflow._blas).  The rows of a and out
    must be contiguous (row-major with leading dimensions from their strides)."""
    if not (isinstance(fn, types.Integer) and isinstance(a, types.Array) and a.ndim == 2
            and isinstance(pk, types.Array) and isinstance(out, types.Array)
            and out.ndim == 2 and a.dtype == pk.dtype == out.dtype
            and a.dtype in (types.float64, types.float32)):
        return None

    def codegen(context, builder, signature, args):
        fn_v, a_v, pk_v, out_v = args
        arr_a = context.make_array(signature.args[1])(context, builder, a_v)
        arr_p = context.make_array(signature.args[2])(context, builder, pk_v)
        arr_c = context.make_array(signature.args[3])(context, builder, out_v)
        i32 = ir.IntType(32)
        real = context.get_value_type(signature.args[1].dtype)
        size = ir.Constant(ir.IntType(64), context.get_abi_sizeof(real))

        def dim(arr, name, i):
            return builder.trunc(builder.extract_value(getattr(arr, name), i), i32)

        def lead(arr):
            return builder.trunc(builder.sdiv(builder.extract_value(arr.strides, 0), size), i32)

        m, k, n = dim(arr_a, "shape", 0), dim(arr_a, "shape", 1), dim(arr_c, "shape", 1)
        fnty = ir.FunctionType(ir.VoidType(), [i32] * 6 + [real.as_pointer(), i32,
                                                           real.as_pointer(), i32, real,
                                                           real.as_pointer(), i32])
        f = builder.inttoptr(fn_v, fnty.as_pointer())
        # row-major, a not transposed, b packed (CBLAS 101, 111, 151); beta 0
        builder.call(f, [ir.Constant(i32, 101), ir.Constant(i32, 111), ir.Constant(i32, 151),
                         m, n, k, arr_a.data, lead(arr_a), arr_p.data, k,
                         ir.Constant(real, 0.0), arr_c.data, lead(arr_c)])
        return context.get_dummy_value()

    return types.void(fn, a, pk, out), codegen


@njit(**JIT)
def _step_product(a, b, fn, pk, out):
    """out = a @ b: on b packed once for the pass (fn, pk from gradflow._blas.pack_weights)
    when fn is not 0, else through _matmul."""
    if fn != 0:
        _gemm_compute(fn, a, pk, out)
    else:
        _matmul(a, b, out)


@njit(**JIT)
def _add_column_sums(acc, a):
    """acc (N,) += the sum of the rows of a (R, N)."""
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            acc[k] += a[i, k]


@njit(**JIT)
def forward_kernel(ax, bx, w1, b1, w2, b2, prm, states, ah1, ah2, u, sv, fn1, pk1, fn2, pk2,
                   lo, hi):
    """Run the cell over T steps for the batch rows lo:hi.

    Writes those rows of states[:, 1:], ah1, ah2 and u, and adds bx (G*H,) to those rows of
    ax, which holds x W_ih^T on entry (the bias is added here, where the rows are in cache,
    instead of in a separate pass over the whole array).  sv (T, B, NUM_SAVED*H): where it
    has T rows, also the function values that backward_kernel reads instead of recomputing
    them (see fwd_save_units).  fn1, pk1 (fn2, pk2): w1^T (w2^T) packed for these rows, or
    fn 0 (see _step_product).  Rows are independent, so blocks of rows may run in parallel.
    """
    T = ax.shape[0]
    # the unit functions vectorise over contiguous rows: step through two (S, rows, H)
    # buffers and copy each new state into `states`, whose slices states[:, t] are strided
    sp = np.empty((states.shape[0], hi - lo, states.shape[3]), dtype=states.dtype)
    sp[:] = states[:, 0, lo:hi]
    sn = np.empty_like(sp)
    save = NUM_SAVED > 0 and sv.shape[0] == T
    for t in range(T):
        axt = ax[t, lo:hi]
        _add_bias(axt, bx)
        a1 = ah1[t, lo:hi]
        a2 = ah2[t, lo:hi]
        _step_product(sp[0], w1.T, fn1, pk1, a1)
        _add_bias(a1, b1)
        if STAGE2:
            ut = u[t, lo:hi]
            rho_units(axt, a1, sp, prm, ut)
            _step_product(ut, w2.T, fn2, pk2, a2)
            _add_bias(a2, b2)
        if save:
            fwd_save_units(axt, a1, a2, sp, prm, sn, sv[t, lo:hi])
        else:
            fwd_units(axt, a1, a2, sp, prm, sn)
        states[:, t + 1, lo:hi] = sn
        sp, sn = sn, sp


@njit(**JIT)
def backward_kernel(ax, ah1, ah2, u, states, sv, prm, w1, w2, dh, dsT, dax, dah1, dah2, ds0,
                    dprm, dbx, dbh, truncate, fn1, pk1, fn2, pk2, lo, hi):
    """Backpropagation through time for the batch rows lo:hi.

    dh (T, B, H): dL/dh_t from outside the recurrence; dsT (S, B, H): dL/d(final state).
    Writes those rows of dax, dah1, dah2 (gradients of the pre-activations, for the weight
    GEMMs done by the caller) and of ds0 (S, B, H) = dL/d(initial state); accumulates dprm
    (P, H) and the bias gradients: dbx (G*H,) += column sums of dax, dbh (G*H,) += those of
    dah1 (unless DAH1_IS_DAX) and dah2.  When DAH1_IS_DAX, bwd_units leaves dah1 alone (it
    equals dax) and dax may be passed as dah1.  sv: the values saved by forward_kernel, or
    an array with 0 rows (recompute them).  truncate (one-stage cells, TRUNCATABLE): the
    1997 truncated gradient -- the previous state's gradient through bwd_trunc_units alone,
    none through the recurrent weights (the pre-activations' gradients are the same).
    fn1, pk1 (fn2, pk2): w1 (w2) packed for these rows, or fn 0 (see _step_product).
    """
    T = ax.shape[0]
    G1H = ah1.shape[2]
    ds = np.empty((dsT.shape[0], hi - lo, dsT.shape[2]), dtype=dsT.dtype)
    ds[:] = dsT[:, lo:hi]
    dsp = np.empty_like(ds)
    sp = np.empty_like(ds)
    tmp = np.empty_like(ds[0])
    save = NUM_SAVED > 0 and sv.shape[0] == T
    for t in range(T - 1, -1, -1):
        ds[0] += dh[t, lo:hi]
        sp[:] = states[:, t, lo:hi]
        axt = ax[t, lo:hi]
        a1 = ah1[t, lo:hi]
        a2 = ah2[t, lo:hi]
        dxt = dax[t, lo:hi]
        d1 = dah1[t, lo:hi]
        d2 = dah2[t, lo:hi]
        if truncate:
            if save:
                bwd_trunc_saved_units(axt, a1, a2, sp, prm, sv[t, lo:hi], ds, dxt, d1, d2, dsp,
                                      dprm)
            else:
                bwd_trunc_units(axt, a1, a2, sp, prm, ds, dxt, d1, d2, dsp, dprm)
        elif save:
            bwd_saved_units(axt, a1, a2, sp, prm, sv[t, lo:hi], ds, dxt, d1, d2, dsp, dprm)
        else:
            bwd_units(axt, a1, a2, sp, prm, ds, dxt, d1, d2, dsp, dprm)
        if STAGE2:
            _step_product(d2, w2, fn2, pk2, tmp)
            rho_bwd_units(axt, a1, sp, prm, tmp, dxt, d1, dsp, dprm)
            _add_column_sums(dbh[G1H:], d2)
        if not DAH1_IS_DAX:
            _add_column_sums(dbh[:G1H], d1)
        if not truncate:
            # the path back through the recurrent weights: h_{t-1} W_hh^T
            _step_product(dxt if DAH1_IS_DAX else d1, w1, fn1, pk1, tmp)
            dsp[0] += tmp
        _add_column_sums(dbx, dxt)
        ds, dsp = dsp, ds
    ds0[:, lo:hi] = ds


@njit(**JIT)
def intermediates_kernel(ax, ah1, ah2, states, prm, out):
    """Every named intermediate (gate values ...) at every step: out (K, T, B, H)."""
    for t in range(ax.shape[0]):
        intermediates_units(ax[t], ah1[t], ah2[t], states[:, t], prm, out[:, t])
