# Template: per-step partial derivatives for Jacobian assembly and path products.
#
# This file is not imported.  gradflow.codegen copies it into every cell's generated
# module, after the cell's unit functions, which it calls:
#   partials_units(ax, ah1, ah2, sp, prm, jax, jah, jsp)
#   rho_partials_units(ax, ah1, sp, prm, rax, rah, rsp)    (two-stage cells)
#   logdirect_units(ax, ah1, ah2, sp, prm, out)
# The Jacobians themselves are assembled from these partials and the weights by
# gradflow.flow._kernels, which is generic over cells.  Shapes (n steps from t0, S state
# components, G gates, B batch rows, H units):
#   jax, jah (n, S, G, B, H)   d s_t[a] / d ax[g], d s_t[a] / d ah[g]
#   jsp (n, S, S, B, H)        d s_t[a] / d s_{t-1}[c] through the unit map only
#   rax, rah (n, G, B, H), rsp (n, S, B, H)   the same for the recurrent input u
#                                             (two-stage cells; size 0 otherwise)


@njit(**JIT)
def partials_kernel(ax, ah1, ah2, states, prm, t0, jax, jah, jsp, rax, rah, rsp):
    """Unit-map partials of steps t0 .. t0 + n - 1 (n = jsp.shape[0])."""
    for k in range(jsp.shape[0]):
        t = t0 + k
        partials_units(ax[t], ah1[t], ah2[t], states[:, t], prm, jax[k], jah[k], jsp[k])
        if STAGE2:
            rho_partials_units(ax[t], ah1[t], states[:, t], prm, rax[k], rah[k], rsp[k])


@njit(**JIT)
def logdirect_kernel(ax, ah1, ah2, states, prm, out):
    """log |d s_t / d s_{t-1}| of every component's direct edge: out (T, S, B, H)."""
    for t in range(ax.shape[0]):
        logdirect_units(ax[t], ah1[t], ah2[t], states[:, t], prm, out[t])
