"""Numba kernels for Jacobian products, generic over cells (private).

A cell's generated module supplies the unit-map partials of each step
(``partials_kernel``); everything here works on those partials and the weights, so it is
compiled once for every cell.

The one-step Jacobian ``J_t = d s_t / d s_{t-1}`` of the stacked state (S components of H
units, in ``spec.state`` order) is held in two parts, per step and batch row:

``dense`` (n, B, S*H, Sd*H)
    The first Sd column blocks in full (``Sd = 1``: the columns of ``h_{t-1}``, which the
    recurrent matmul mixes; ``Sd = S`` for two-stage cells).
``diag`` (n, B, S, S, H)
    For column blocks ``c >= Sd``: block ``(a, c)`` is ``diag(diag[.., a, c, :])``.

Products are renormalised after every step, row by row, by exact powers of two: a row's
largest magnitude is kept in [0.5, 1) and the exponent is accumulated in an int64, so no
rounding error is added and nothing underflows or overflows however long the product.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from numba import njit

from ..codegen.cache import guard_dispatchers
from ..config import JIT_OPTIONS

#: exponent of a row that is exactly zero
ZERO_EXP = -(2 ** 62)
#: log10(2)
LOG10_2 = math.log10(2.0)
#: relative residual ||A A^T u - lam u|| / lam at which power iteration stops
POWER_TOL = 1e-12
#: power iterations before falling back to a full SVD
POWER_MAXIT = 400


# ---------------------------------------------------------------------- assembly
@njit(**JIT_OPTIONS)
def _add_gated(out, row0, col0, coef, M):
    """out[row0 + i, col0 + j] += coef[i] * M[i, j] for the rows i where coef[i] != 0:
    diag(coef) M added into a block of `out`.  coef (m,), M (m, n)."""
    for i in range(coef.shape[0]):
        c = coef[i]
        if c != 0.0:
            for j in range(M.shape[1]):
                out[row0 + i, col0 + j] += c * M[i, j]


@njit(**JIT_OPTIONS)
def assemble_kernel(jah, jsp, rah, rsp, w1, w2, dense, diag):
    """Assemble one-step Jacobians from unit-map partials and weights.

    jah (n, S, G, B, H), jsp (n, S, S, B, H), rah (n, G, B, H), rsp (n, S, B, H) (size 0
    for one-stage cells), w1 (G1*H, H), w2 (G2*H, H).  Writes dense (n, B, S*H, Sd*H) and
    diag (n, B, S, S, H) as described in the module docstring.
    """
    n, S, G, B, H = jah.shape
    G1 = w1.shape[0] // H
    G2 = w2.shape[0] // H
    Sd = dense.shape[3] // H
    du = np.empty((H, H), dtype=dense.dtype)
    for k in range(n):
        for b in range(B):
            D = dense[k, b]
            if Sd > 1:
                D[:, :] = 0.0
            for a in range(S):
                for c in range(Sd, S):
                    for i in range(H):
                        diag[k, b, a, c, i] = jsp[k, a, c, b, i]
                # stage-one gates read h_{t-1} through w1: the first gate assigns the
                # row's h columns, the others add
                for i in range(H):
                    row = D[a * H + i]
                    coef = jah[k, a, 0, b, i]
                    wrow = w1[i]
                    for j in range(H):
                        row[j] = coef * wrow[j]
                    for g in range(1, G1):
                        coef = jah[k, a, g, b, i]
                        if coef != 0.0:
                            wrow = w1[g * H + i]
                            for j in range(H):
                                row[j] += coef * wrow[j]
                    for c in range(Sd):
                        row[c * H + i] += jsp[k, a, c, b, i]
            if G2 > 0:
                # second-stage gates read u; du/ds_{t-1}[c] = diag(rsp) (+ rah W1 for c = h)
                for c in range(Sd):
                    du[:, :] = 0.0
                    for m in range(H):
                        du[m, m] = rsp[k, c, b, m]
                    if c == 0:
                        for g in range(G1):
                            _add_gated(du, 0, 0, rah[k, g, b], w1[g * H:(g + 1) * H])
                    for g2 in range(G2):
                        wdu = np.dot(np.ascontiguousarray(w2[g2 * H:(g2 + 1) * H]), du)
                        for a in range(S):
                            _add_gated(D, a * H, c * H, jah[k, a, G1 + g2, b], wdu)


@njit(**JIT_OPTIONS)
def input_kernel(jax, jah, rax, w_ih, w2, out):
    """d s_t / d x_t: out (n, B, S*H, D) from jax, jah (n, S, G, B, H), rax (n, G, B, H),
    w_ih (G*H, D) and w2 (G2*H, H)."""
    n, S, G, B, H = jax.shape
    D = w_ih.shape[1]
    G2 = w2.shape[0] // H
    G1 = G - G2
    ux = np.empty((H, D), dtype=out.dtype)
    for k in range(n):
        for b in range(B):
            O = out[k, b]
            O[:, :] = 0.0
            for a in range(S):
                for g in range(G):
                    _add_gated(O, a * H, 0, jax[k, a, g, b], w_ih[g * H:(g + 1) * H])
            if G2 > 0:
                ux[:, :] = 0.0
                for g in range(G):
                    _add_gated(ux, 0, 0, rax[k, g, b], w_ih[g * H:(g + 1) * H])
                for g2 in range(G2):
                    wux = np.dot(np.ascontiguousarray(w2[g2 * H:(g2 + 1) * H]), ux)
                    for a in range(S):
                        _add_gated(O, a * H, 0, jah[k, a, G1 + g2, b], wux)


# ---------------------------------------------------------------------- renormalisation
@njit(**JIT_OPTIONS)
def _scale_pow2(row, e):
    """row *= 2**(-e), exactly (in two halves when 2**(-e) itself is not representable)."""
    if e == 0:
        return
    half = e // 2
    f1 = math.ldexp(1.0, -half)
    f2 = math.ldexp(1.0, -(e - half))
    for j in range(row.shape[0]):
        row[j] = (row[j] * f1) * f2


@njit(**JIT_OPTIONS)
def renorm_rows(V, E):
    """Bring every row of V (R, C) to a largest magnitude in [0.5, 1); E (R,) += exponent."""
    for i in range(V.shape[0]):
        m = 0.0
        for j in range(V.shape[1]):
            v = abs(V[i, j])
            if v > m or v != v:
                m = v
        if m != m or m == math.inf:
            continue  # left for the caller's finiteness check
        if m == 0.0:
            E[i] = ZERO_EXP
            continue
        e = math.frexp(m)[1]
        _scale_pow2(V[i], e)
        E[i] += e


@njit(**JIT_OPTIONS)
def apply_right(V, Jd, Jg, H, out, tmp):
    """out = V J for V (R, S*H), J given by Jd (S*H, Sd*H) and Jg (S, S, H); tmp (R, Sd*H)."""
    S = Jg.shape[0]
    Sd = Jd.shape[1] // H
    np.dot(V, Jd, tmp)
    out[:, :Sd * H] = tmp
    for c in range(Sd, S):
        for r in range(V.shape[0]):
            for j in range(H):
                acc = 0.0 * V[r, 0]
                for a in range(S):
                    acc += V[r, a * H + j] * Jg[a, c, j]
                out[r, c * H + j] = acc


@njit(**JIT_OPTIONS)
def _absmax_check(o):
    """(max |o|, sum of o * 0): the second is 0 exactly when every entry is finite.

    Four independent accumulators, so that the reductions pipeline (they cannot be
    reordered into SIMD form without fastmath)."""
    n = o.shape[0]
    zero = o[0] * 0  # in o's dtype (NaN when o[0] is not finite, which is then reported)
    m0 = m1 = m2 = m3 = zero
    c0 = c1 = c2 = c3 = zero
    j = 0
    while j + 4 <= n:
        x0, x1, x2, x3 = o[j], o[j + 1], o[j + 2], o[j + 3]
        m0 = max(m0, abs(x0))
        m1 = max(m1, abs(x1))
        m2 = max(m2, abs(x2))
        m3 = max(m3, abs(x3))
        c0 += x0 * 0
        c1 += x1 * 0
        c2 += x2 * 0
        c3 += x3 * 0
        j += 4
    while j < n:
        x0 = o[j]
        m0 = max(m0, abs(x0))
        c0 += x0 * 0
        j += 1
    return max(max(m0, m1), max(m2, m3)), (c0 + c1) + (c2 + c3)


@njit(**JIT_OPTIONS)
def step_rows(V, Jd, Jg, H, E, out, tmp):
    """out = V J with every row renormalised (E += its exponent).

    V (R, S*H), J given by Jd (S*H, Sd*H) and Jg (S, S, H); tmp (R, Sd*H) scratch.
    Returns False when a row is not finite.  The loops are branch-free so that they
    vectorise: the largest magnitude by max(), non-finite values by a sum of v * 0.
    """
    S = Jg.shape[0]
    Sd = Jd.shape[1] // H
    R = V.shape[0]
    C = out.shape[1]
    np.dot(V, Jd, tmp)
    unit = np.empty(1, dtype=out.dtype)
    ok = True
    for r in range(R):
        o = out[r]
        v = V[r]
        tr = tmp[r]
        for j in range(Sd * H):
            o[j] = tr[j]
        for c in range(Sd, S):
            g0 = Jg[0, c]
            for j in range(H):
                o[c * H + j] = v[j] * g0[j]
            for a in range(1, S):
                ga = Jg[a, c]
                for j in range(H):
                    o[c * H + j] += v[a * H + j] * ga[j]
        m, chk = _absmax_check(o)
        if chk != 0:
            ok = False
            continue
        if m == 0:
            E[r] = ZERO_EXP
            continue
        e = math.frexp(float(m))[1]
        if e != 0:
            if -100 < e < 100:
                unit[0] = math.ldexp(1.0, -e)  # exact in either dtype
                f = unit[0]
                for j in range(C):
                    o[j] *= f
            else:
                _scale_pow2(o, e)
            E[r] += e
    return ok


@njit(**JIT_OPTIONS)
def apply_left(Jd, Jg, Q, out):
    """out = J Q for Q (S*H, p): the forward direction (Lyapunov vectors)."""
    S = Jg.shape[0]
    H = Jg.shape[2]
    Sd = Jd.shape[1] // H
    np.dot(Jd, np.ascontiguousarray(Q[:Sd * H]), out)
    for a in range(S):
        for c in range(Sd, S):
            for i in range(H):
                coef = Jg[a, c, i]
                if coef != 0.0:
                    for q in range(Q.shape[1]):
                        out[a * H + i, q] += coef * Q[c * H + i, q]


# ---------------------------------------------------------------------- norms
@njit(**JIT_OPTIONS)
def scaled_block(V, E, r0, r1, c0, c1, A):
    """Copy V[r0:r1, c0:c1] to A (float64) with every row brought to the largest row
    exponent; returns that exponent (ZERO_EXP when the block is exactly zero)."""
    emax = ZERO_EXP
    for i in range(r0, r1):
        if E[i] > emax:
            emax = E[i]
    for i in range(r0, r1):
        if E[i] == ZERO_EXP or emax == ZERO_EXP:
            for j in range(c0, c1):
                A[i - r0, j - c0] = 0.0
            continue
        d = E[i] - emax
        if d > -1000:
            f = math.ldexp(1.0, d)  # exact: a power of two well inside the range
            for j in range(c0, c1):
                A[i - r0, j - c0] = float(V[i, j]) * f
        else:
            for j in range(c0, c1):
                A[i - r0, j - c0] = math.ldexp(float(V[i, j]), d)
    return emax


@njit(**JIT_OPTIONS)
def _power(A, u):
    """Power iteration on A A^T from the unit vector u (updated in place).

    Returns (lam, converged): lam = u^T A A^T u at the last iterate; converged when
    ||A A^T u - lam u|| <= POWER_TOL * lam, which bounds the distance from lam to an
    eigenvalue of A A^T (symmetric) by POWER_TOL * lam.
    """
    m = A.shape[0]
    lam = 0.0
    for it in range(POWER_MAXIT):
        w = np.dot(A.T, u)
        lam = np.dot(w, w)
        if lam == 0.0 or lam != lam:
            return lam, True
        y = np.dot(A, w)
        res = 0.0
        ny = 0.0
        for i in range(m):
            r = y[i] - lam * u[i]
            res += r * r
            ny += y[i] * y[i]
        if math.sqrt(res) <= POWER_TOL * lam:
            return lam, True
        u[:] = y / math.sqrt(ny)
    return lam, False


@njit(**JIT_OPTIONS)
def top_singular_sq(A, u):
    """Largest eigenvalue of A A^T (= sigma_max(A)**2) for A (m, n) float64.

    Power iteration warm-started from `u` (m,) (the previous lag's vector; updated in
    place), checked against the lower bounds sigma_max**2 >= ||row||**2, ||column||**2:
    when the iteration settled below one of them (the start was an eigenvector of a lower
    singular value) it is restarted from that row or column, from which the iterates only
    rise.  Falls back to a full SVD when the iteration does not converge.
    """
    m, n = A.shape
    best = 0.0
    brow = -1
    bcol = -1
    for i in range(m):
        s = 0.0
        for j in range(n):
            s += A[i, j] * A[i, j]
        if s > best:
            best, brow, bcol = s, i, -1
    for j in range(n):
        s = 0.0
        for i in range(m):
            s += A[i, j] * A[i, j]
        if s > best:
            best, brow, bcol = s, -1, j
    if best == 0.0:
        return 0.0
    if best != best or best == math.inf:
        return best
    lam = 0.0
    ok = True
    nu = math.sqrt(np.dot(u, u))
    if nu > 0.0 and nu < math.inf:
        u /= nu
        lam, ok = _power(A, u)
    if lam < best * (1.0 - 4.0 * POWER_TOL) or not ok:
        if bcol >= 0:
            u[:] = A[:, bcol] / math.sqrt(best)
        else:
            u[:] = 0.0
            u[brow] = 1.0
        lam2, ok = _power(A, u)
        lam = max(lam, lam2)
    if not ok:
        s = np.linalg.svd(np.ascontiguousarray(A), False)[1]
        return s[0] * s[0]
    return lam


@njit(**JIT_OPTIONS)
def _log10_frobenius(V, E, r0, r1, c0, c1):
    """log10 of the Frobenius norm of the block of V (rows times 2**E) without a copy."""
    emax = ZERO_EXP
    for i in range(r0, r1):
        if E[i] > emax:
            emax = E[i]
    if emax == ZERO_EXP:
        return -math.inf
    total = 0.0
    for i in range(r0, r1):
        if E[i] == ZERO_EXP:
            continue
        s = 0.0
        for j in range(c0, c1):
            v = float(V[i, j])
            s += v * v
        d = 2 * (E[i] - emax)
        if d > -2000:
            total += math.ldexp(s, d)
    if total == 0.0:
        return -math.inf
    return 0.5 * math.log10(total) + emax * LOG10_2


@njit(**JIT_OPTIONS)
def log10_norm(V, E, blk, spectral, A, u):
    """log10 of the spectral or Frobenius norm of the renormalised block
    blk = (r0, r1, c0, c1) of V (true value: row i of V times 2**E[i])."""
    r0, r1, c0, c1 = blk[0], blk[1], blk[2], blk[3]
    if not spectral:
        return _log10_frobenius(V, E, r0, r1, c0, c1)
    Ab = A[:(r1 - r0) * (c1 - c0)].reshape((r1 - r0, c1 - c0))
    emax = scaled_block(V, E, r0, r1, c0, c1, Ab)
    if emax == ZERO_EXP:
        return -math.inf
    sq = top_singular_sq(Ab, u[:r1 - r0])
    if sq == 0.0:
        return -math.inf
    return 0.5 * math.log10(sq) + emax * LOG10_2


# ---------------------------------------------------------------------- products
@njit(**JIT_OPTIONS)
def lagmap_kernel(dense, diag, t0, T, V, E, Vn, tmp, blocks, slot, spectral, out, ustate,
                  A, snap_slot, snap_block, snaps, snap_exp):
    """Propagate V_b <- V_b J_t backward over the steps t0 + n - 1 .. t0 of a chunk.

    V (B, R, S*H), E (B, R) int64: the running product of the rows wanted (row i of the
    true product is V[b, i] * 2**E[b, i]); Vn (B, R, S*H) and tmp (B, R, Sd*H) scratch.
    After the step of array index t (lag T - t), and at lag 0 when the chunk ends at T,
    for lags with slot[lag] >= 0 the log10 norms of blocks (nb, 4) are written to
    out (nb, K, B) (spectral or Frobenius); ustate (nb, B, R) holds the warm starts;
    A (R*S*H,) float64 scratch.  For lags with snap_slot[lag] >= 0 the block snap_block
    is copied, rescaled, to snaps (Ks, B, r, c) float64 with its exponent in snap_exp.
    Returns the first array index t whose product is not finite, or -1.
    """
    n = dense.shape[0]
    B = V.shape[0]
    H = diag.shape[4]
    bad = -1
    for b in range(B):
        Vb = V[b]
        Vnb = Vn[b]
        if t0 + n == T:
            _record(Vb, E[b], 0, b, blocks, slot, spectral, out, ustate, A, snap_slot,
                    snap_block, snaps, snap_exp)
        cur, nxt = Vb, Vnb
        for k in range(n - 1, -1, -1):
            t = t0 + k
            if not step_rows(cur, dense[k, b], diag[k, b], H, E[b], nxt, tmp[b]):
                if t > bad:
                    bad = t
                break
            cur, nxt = nxt, cur
            _record(cur, E[b], T - t, b, blocks, slot, spectral, out, ustate, A, snap_slot,
                    snap_block, snaps, snap_exp)
        if n % 2 == 1:
            Vb[:, :] = cur
    return bad


@njit(**JIT_OPTIONS)
def _record(Vb, Eb, lag, b, blocks, slot, spectral, out, ustate, A, snap_slot, snap_block,
            snaps, snap_exp):
    s = slot[lag]
    if s >= 0:
        for q in range(blocks.shape[0]):
            out[q, s, b] = log10_norm(Vb, Eb, blocks[q], spectral, A, ustate[q, b])
    s = snap_slot[lag]
    if s >= 0:
        r0, r1, c0, c1 = snap_block[0], snap_block[1], snap_block[2], snap_block[3]
        snap_exp[s, b] = scaled_block(Vb, Eb, r0, r1, c0, c1, snaps[s, b])


@njit(**JIT_OPTIONS)
def lossgrad_kernel(dense, diag, t0, dh, g, e, gn, tmp, out_h, out_s):
    """One backward pass of a loss gradient with renormalisation, over a chunk.

    g (B, 1, S*H), e (B, 1) int64: dL/ds_{t0+n} as mantissas and exponents on entry,
    dL/ds_{t0} on exit.  For each array step t (descending) dh[t] (B, H) is added, then
    log10 ||dL/dh_{t+1}|| and log10 ||dL/ds_{t+1}|| are written to out_h[t], out_s[t] (B,),
    then g <- g J_t.  gn (B, 1, S*H), tmp (B, 1, Sd*H) scratch.  Returns the first step
    with a non-finite gradient, or -1.
    """
    n = dense.shape[0]
    B = g.shape[0]
    H = dh.shape[2]
    SH = g.shape[2]
    for k in range(n - 1, -1, -1):
        t = t0 + k
        for b in range(B):
            row = g[b, 0]
            m = 0.0
            for j in range(H):
                v = abs(dh[t, b, j])
                if v > m:
                    m = v
            if m > 0.0:
                ed = math.frexp(m)[1]
                if e[b, 0] == ZERO_EXP:
                    row[:] = 0.0
                    ne = ed
                else:
                    ne = max(e[b, 0], ed)
                    _scale_pow2(row, ne - e[b, 0])
                for j in range(H):
                    row[j] += math.ldexp(float(dh[t, b, j]), -ne)
                e[b, 0] = ne
                renorm_rows(g[b], e[b])
            if e[b, 0] == ZERO_EXP:
                out_h[t, b] = -math.inf
                out_s[t, b] = -math.inf
            else:
                sh = 0.0
                ss = 0.0
                for j in range(SH):
                    v = float(row[j])
                    if j < H:
                        sh += v * v
                    ss += v * v
                out_h[t, b] = 0.5 * math.log10(sh) + e[b, 0] * LOG10_2 if sh > 0.0 else -math.inf
                out_s[t, b] = 0.5 * math.log10(ss) + e[b, 0] * LOG10_2
            apply_right(g[b], dense[k, b], diag[k, b], H, gn[b], tmp[b])
            g[b, :, :] = gn[b]
            renorm_rows(g[b], e[b])
            if not np.isfinite(g[b]).all():
                return t
    return -1


@njit(**JIT_OPTIONS)
def jacobian_lognorm(Jd, Jg):
    """log of the infinity norm (largest absolute row sum) of the one-step Jacobian given
    by Jd (S*H, Sd*H) and Jg (S, S, H); NaN when an entry is not finite.

    ``||J Z||_max <= ||J||_inf ||Z||_max``: summed over the steps since the last QR
    factorisation it bounds the entries of the propagated vectors (see lyapunov_kernel)."""
    S = Jg.shape[0]
    H = Jg.shape[2]
    Sd = Jd.shape[1] // H
    top = 0.0
    chk = 0.0
    for a in range(S):
        for i in range(H):
            row = Jd[a * H + i]
            s = 0.0
            for j in range(row.shape[0]):
                v = float(row[j])
                s += abs(v)
                chk += v * 0.0
            for c in range(Sd, S):
                v = float(Jg[a, c, i])
                s += abs(v)
                chk += v * 0.0
            top = max(top, s)
    if chk != 0.0:
        return math.nan
    return math.log(top) if top > 0.0 else -math.inf


@njit(**JIT_OPTIONS)
def qr_interval(logr, logc, since, log_cond, log_range, kmax):
    """Steps until the next QR factorisation, from the growth seen over the last `since`
    steps: logr (p,) = log |R_ii| of the last factorisation, logc = the log of its
    largest column ratio ``||R[:, i]|| / |R_ii|`` (see reorthonormalise).

    Householder QR gives R_ii with a relative error of about eps ||Z[:, i]|| / |R_ii| =
    eps ||R[:, i]|| / |R_ii|; that ratio grows like the condition number of the
    propagated vectors, exponentially in the steps between factorisations (Engelken, Wolf
    & Abbott 2020).  The interval is the largest k at which it stays below `log_cond` (at
    the rate seen) and the growth of the largest and smallest columns below `log_range`,
    at most one step longer than the last one (the rate seen early, before the vectors
    have settled, underestimates the later one), in [1, kmax].  A direction mapped to
    exactly zero (log = -inf) gives 1.
    """
    hi = -math.inf
    lo = math.inf
    for v in logr:
        hi = max(hi, v)
        lo = min(lo, v)
    if not (-math.inf < lo and hi < math.inf and logc < math.inf):
        return 1
    k = float(min(kmax, since + 1))
    rate = logc / since
    if rate > 0.0:
        k = min(k, log_cond / rate)
    size = max(abs(hi), abs(lo)) / since
    if size > 0.0:
        k = min(k, log_range / size)
    return max(1, int(k))


@njit(**JIT_OPTIONS)
def reorthonormalise(Z, t, transient, since, sums, running):
    """Replace Z (n, p) by the Q factor of its QR factorisation.

    Z was propagated over the `since` steps t - since + 1 .. t.  Past the transient
    (t >= transient), log |R_ii| is added to sums (p,) float64, and the running means
    (N, p) of those steps are written, the growth spread evenly over the steps between
    two factorisations (exact at every factorisation).  Returns ``(log |R_ii| (p,),
    log max_i ||R[:i+1, i]|| / |R_ii|)``.
    """
    q, r = np.linalg.qr(Z)
    Z[:, :] = q
    p = r.shape[1]
    logs = np.empty(p)
    logc = 0.0
    for i in range(p):
        d = abs(float(r[i, i]))
        logs[i] = math.log(d) if d > 0.0 else -math.inf
        col = 0.0
        for j in range(i + 1):
            v = float(r[j, i])
            col += v * v
        if d > 0.0:
            logc = max(logc, 0.5 * math.log(col) - logs[i])
        elif col > 0.0:
            logc = math.inf
    if t >= transient:
        for s in range(t - since + 1, t + 1):
            frac = (s - t + since) / since
            cnt = s - transient + 1
            for i in range(p):
                running[s - transient, i] = (sums[i] + frac * logs[i]) / cnt
        for i in range(p):
            sums[i] += logs[i]
    return logs, logc


@njit(**JIT_OPTIONS)
def _lyapunov_qr(b, t, transient, W, cur, since, growth, interval, adapt, log_cond,
                 log_range, kmax, sums, running, qrs):
    """The factorisation of lyapunov_kernel for row b after step t; False when the
    vectors are not finite."""
    Z = W[cur[b], b]
    if not np.isfinite(Z).all():
        return False
    logs, logc = reorthonormalise(Z, t, transient, since[b], sums[b], running[:, b])
    qrs[b] += 1
    if adapt:
        interval[b] = qr_interval(logs, logc, since[b], log_cond, log_range, kmax)
    since[b] = 0
    growth[b] = 0.0
    return True


@njit(**JIT_OPTIONS)
def lyapunov_kernel(dense, diag, t0, transient, T, W, cur, since, growth, interval, adapt,
                    log_cond, log_range, kmax, sums, running, qrs, lo, hi):
    """Benettin's algorithm over a chunk of steps t0 .. t0 + n - 1, for batch rows lo:hi,
    with a QR factorisation every few steps.

    W (2, B, S*H, p): the vectors of row b are W[cur[b], b] (the other is scratch);
    ``Z <- J_t Z`` every step, and every interval[b] steps (and at the last step before
    the transient and at step T - 1) Z is replaced by its Q factor (reorthonormalise),
    log|R_ii| summed into sums (B, p) float64 and the running means into running
    (T - transient, B, p).  With `adapt`, the next interval follows the growth seen
    (qr_interval, bounded by log_cond, log_range, kmax).  A factorisation also comes
    before a step that could take the bound growth[b] + log ||J_t||_inf on the entries'
    growth since the last one past log_range, so the vectors never overflow.  since (B,):
    steps since the last factorisation; qrs (B,) counts them.  Returns the first step
    with a non-finite Jacobian or product, or -1.  Rows are independent: blocks of rows
    may run in parallel.
    """
    n = dense.shape[0]
    bad = -1
    for b in range(lo, hi):
        for k in range(n):
            t = t0 + k
            g = jacobian_lognorm(dense[k, b], diag[k, b])
            ok = not math.isnan(g)
            if ok and since[b] > 0 and growth[b] + g >= log_range:
                ok = _lyapunov_qr(b, t - 1, transient, W, cur, since, growth, interval, adapt,
                                  log_cond, log_range, kmax, sums, running, qrs)
            if ok:
                c = cur[b]
                apply_left(dense[k, b], diag[k, b], W[c, b], W[1 - c, b])
                cur[b] = 1 - c
                since[b] += 1
                growth[b] += g
                if (since[b] >= interval[b] or t == transient - 1 or t == T - 1):
                    ok = _lyapunov_qr(b, t, transient, W, cur, since, growth, interval, adapt,
                                      log_cond, log_range, kmax, sums, running, qrs)
            if not ok:
                if bad < 0 or t < bad:
                    bad = t
                break
    return bad


# ---------------------------------------------------------------------- singular values
@njit(**JIT_OPTIONS)
def _renorm_exp(row, e):
    """row (float64) to a largest magnitude in [0.5, 1); returns e plus its exponent, or
    ZERO_EXP for a zero row."""
    m = 0.0
    for j in range(row.shape[0]):
        m = max(m, abs(row[j]))
    if m == 0.0:
        return ZERO_EXP
    k = math.frexp(m)[1]
    _scale_pow2(row, k)
    return e + k


@njit(**JIT_OPTIONS)
def tri_apply(R, U, E, buf):
    """U <- R U in place, for R (m, m) upper triangular and U (m, n) float64 whose row i
    stands for U[i] * 2**E[i] (E (m,) int64, ZERO_EXP for a zero row); rows renormalised.

    Row i of the product is sum_{j >= i} R[i, j] U[j]: each term is brought to the
    largest exponent among them, so every row is computed to a relative accuracy of its
    own, whatever the spread between the rows.  buf (n,) float64 scratch."""
    m = R.shape[0]
    for i in range(m):
        emax = ZERO_EXP
        for j in range(i, m):
            r = float(R[i, j])
            if r != 0.0 and E[j] != ZERO_EXP:
                emax = max(emax, math.frexp(r)[1] + E[j])
        if emax == ZERO_EXP:
            U[i, :] = 0.0
            E[i] = ZERO_EXP
            continue
        buf[:] = 0.0
        for j in range(i, m):
            r = float(R[i, j])
            if r != 0.0 and E[j] != ZERO_EXP and E[j] - emax > -1100:
                f = math.ldexp(r, E[j] - emax)
                if f != 0.0:
                    u = U[j]
                    for c in range(buf.shape[0]):
                        buf[c] += f * u[c]
        U[i, :] = buf
        E[i] = _renorm_exp(U[i], emax)


#: sweeps of one-sided Jacobi before giving up (it converges in a handful)
JACOBI_SWEEPS = 100


@njit(**JIT_OPTIONS)
def jacobi_log10_sv(A, E, out):
    """log10 of the singular values of the matrix whose row i is A[i] * 2**E[i] (A (m, n)
    float64 with rows renormalised, E (m,) int64, ZERO_EXP for a zero row), largest first,
    into out (m,) (-inf for zero rows).  A and E are overwritten.

    One-sided Jacobi (Hestenes) on the rows, in the scaled form: a pair of rows is
    rotated until they are orthogonal; the singular values are then the rows' norms.
    Each rotation is computed from the rows' normalised dot products and the ratio of
    their scales, so no quantity overflows or underflows however far apart the rows are
    (the smaller row loses its component along the larger one; the larger row's change is
    the square of that ratio).  Rows whose scales differ give singular values to a
    relative accuracy of about eps times the condition number of the row-normalised
    matrix (Demmel & Veselic 1992).  Returns the number of sweeps (JACOBI_SWEEPS + 1 if it
    did not converge).
    """
    m, n = A.shape
    tol = math.sqrt(float(n)) * 2.0 ** -52
    sweeps = 0
    converged = False
    for sweep in range(JACOBI_SWEEPS):
        sweeps = sweep + 1
        rotated = False
        for i in range(m - 1):
            for j in range(i + 1, m):
                if E[i] == ZERO_EXP or E[j] == ZERO_EXP:
                    continue
                if E[i] >= E[j]:
                    p, q = i, j
                else:
                    p, q = j, i
                a = A[p]
                b = A[q]
                alpha = 0.0
                beta = 0.0
                gamma = 0.0
                for c in range(n):
                    alpha += a[c] * a[c]
                    beta += b[c] * b[c]
                    gamma += a[c] * b[c]
                if abs(gamma) <= tol * math.sqrt(alpha * beta):
                    continue
                rotated = True
                d = E[q] - E[p]
                s2 = math.ldexp(1.0, 2 * d) if d > -540 else 0.0
                diff = s2 * beta - alpha
                sgn = 1.0 if diff >= 0.0 else -1.0
                tau = 2.0 * sgn * gamma / (abs(diff) + math.sqrt(4.0 * s2 * gamma * gamma
                                                                  + diff * diff))
                cs = 1.0 / math.sqrt(1.0 + s2 * tau * tau)
                for c in range(n):
                    ap = a[c]
                    bq = b[c]
                    a[c] = cs * (ap - s2 * tau * bq)
                    b[c] = cs * (tau * ap + bq)
                E[p] = _renorm_exp(a, E[p])
                E[q] = _renorm_exp(b, E[q])
        if not rotated:
            converged = True
            break
    if not converged:
        sweeps = JACOBI_SWEEPS + 1
    for i in range(m):
        if E[i] == ZERO_EXP:
            out[i] = -math.inf
            continue
        nrm = 0.0
        for c in range(n):
            nrm += A[i, c] * A[i, c]
        out[i] = 0.5 * math.log10(nrm) + E[i] * LOG10_2
    out[:] = np.sort(out)[::-1]
    return sweeps


@njit(**JIT_OPTIONS)
def _record_qr_sv(Qt, U, E, c0, c1, out):
    """log10 singular values of the block of columns c0:c1 of U^T Qt (U rows scaled by
    2**E): (Qt[:, c0:c1])^T = Qc Rc, so the block's transpose is Qc (Rc U) and its
    singular values are those of Rc U, computed by tri_apply and jacobi_log10_sv."""
    Ct = np.ascontiguousarray(Qt[:, c0:c1].T).astype(np.float64)
    r = np.linalg.qr(Ct)[1]
    A = U.copy()
    Ea = E.copy()
    tri_apply(r, A, Ea, np.empty(A.shape[1]))
    return jacobi_log10_sv(A, Ea, out)


@njit(**JIT_OPTIONS)
def qr_product_kernel(dense, diag, t0, T, Qt, U, E, W, tmp, c0, c1, slot, out, sweeps, lo, hi):
    """Singular values of Jacobian products by products of QR factors, backward over the
    steps t0 + n - 1 .. t0 of a chunk, for batch rows lo:hi.

    The product of the rows wanted, V = P J_T ... J_{t+1} (R, S*H), is held as
    ``V = U^T Qt``: Qt (B, R, S*H) with orthonormal rows, U (B, R, R) float64 upper
    triangular with row i scaled by 2**E[b, i] (E (B, R) int64).  A step is
    ``Qt J = (Qt_new^T R_step)^T`` (QR of (Qt J)^T) and ``U <- R_step U``
    (tri_apply): no product of the small singular directions is ever formed against the
    large ones.  At the lags with slot[lag] >= 0 (lag 0 when the chunk ends at T) the
    log10 singular values of V's columns c0:c1 go to out (K, B, R), the Jacobi sweeps
    to sweeps (K, B).  W (B, R, S*H) and tmp (B, R, Sd*H) scratch.  Returns the first
    step whose product is not finite, or -1.
    """
    n = dense.shape[0]
    H = diag.shape[4]
    bad = -1
    for b in range(lo, hi):
        buf = np.empty(U.shape[2])
        if t0 + n == T and slot[0] >= 0:
            sweeps[slot[0], b] = _record_qr_sv(Qt[b], U[b], E[b], c0, c1, out[slot[0], b])
        for k in range(n - 1, -1, -1):
            t = t0 + k
            apply_right(Qt[b], dense[k, b], diag[k, b], H, W[b], tmp[b])
            if not np.isfinite(W[b]).all():
                if bad < 0 or t > bad:
                    bad = t
                break
            q, r = np.linalg.qr(np.ascontiguousarray(W[b].T))
            Qt[b] = q.T
            tri_apply(r, U[b], E[b], buf)
            s = slot[T - t]
            if s >= 0:
                sweeps[s, b] = _record_qr_sv(Qt[b], U[b], E[b], c0, c1, out[s, b])
    return bad


# ---------------------------------------------------------------------- network adjoints
#: exponent differences beyond this scale any mantissa below 4 to exactly 0
_SPAN = 2200


@njit(**JIT_OPTIONS)
def _shift(row, s):
    """row *= 2**s exactly for s <= 0 (to 0 when s is beyond the float64 range)."""
    if s == 0:
        return
    if s < -_SPAN:
        row[:] = 0.0
        return
    _scale_pow2(row, -s)


@njit(**JIT_OPTIONS)
def _add_scaled(M, em, G, eg):
    """M[:h] * 2**em += G * 2**eg (G (h,)), both brought to the larger exponent, which is
    returned; ZERO_EXP marks a zero row.  M is not renormalised (its entries stay < 2
    when both were < 1)."""
    if eg == ZERO_EXP:
        return em
    if em == ZERO_EXP:
        M[:] = 0.0
        em = eg
    en = max(em, eg)
    _shift(M, em - en)
    s = eg - en
    if s >= -_SPAN:
        f1 = math.ldexp(1.0, s // 2)
        f2 = math.ldexp(1.0, s - s // 2)
        for j in range(G.shape[0]):
            M[j] += (G[j] * f1) * f2
    return en


@njit(**JIT_OPTIONS)
def _renorm_row(row, e):
    """row to a largest magnitude in [0.5, 1); returns its exponent plus e (ZERO_EXP for
    a zero row)."""
    m = 0.0
    for j in range(row.shape[0]):
        v = abs(row[j])
        if v > m:
            m = v
    if m == 0.0 or e == ZERO_EXP:
        row[:] = 0.0
        return ZERO_EXP
    k = math.frexp(m)[1]
    _scale_pow2(row, k)
    return e + k


@njit(**JIT_OPTIONS)
def adjoint_kernel(dense, diag, dx, t0, T, d, Gm, Ge, live, V, E, Vn, slot, blk, spectral,
                   lag_out, ustate, R0, loss, grad_out, unit_out, below_m, below_e, lo, hi):
    """One direction of one layer of a network's adjoint sweep, over a chunk of its steps
    t0 + n - 1 .. t0 (its own order), for batch rows lo:hi.  Everything float64.

    V (B, R, S*H), E (B, R) int64: the adjoint on the direction's state (rows renormalised,
    row i is V[b, i] * 2**E[b, i]); Vn scratch like V.  At the step tau, with state index
    tau + 1:

    1. what flows in from above, Gm[tau] (B, R, H) with exponents Ge[tau] (B, R), is added
       to the h columns when live[tau];
    2. for the lag slot[lag] >= 0 (lag = T - tau - 1 forward, tau reverse) the log10 norm
       of the block blk of rows 0:R0 goes to lag_out (K, B) (warm starts ustate (B, R0));
       with `loss`, row R0's h columns give grad_out[p] (T, B) and, when unit_out
       (T, B, H) is not empty, unit_out[p] (p: the sequence's step);
    3. when below_m (dirs, T, B, R, Hb) is not empty, V dx[k] (dx (n, B, S*H, dirs*Hb))
       is added, one direction's columns at a time, to below_m[d2] (exponents below_e
       (dirs, T, B, R)) at that direction's step of the same time;
    4. V <- V J_tau, renormalised (:func:`step_rows`).

    Returns the first step (the sequence's) with a non-finite value, or -1.
    """
    n = dense.shape[0]
    R = V.shape[1]
    H = diag.shape[4]
    Sd = dense.shape[3] // H
    dirs = below_m.shape[0]
    Hb = below_m.shape[4]
    units = unit_out.shape[0] > 0
    A = np.empty(R0 * (blk[3] - blk[2]))
    tmp = np.empty((R, Sd * H))
    P = np.empty((R, dx.shape[3]))
    part = np.empty(Hb)
    bad = -1
    for b in range(lo, hi):
        cur = V[b]
        nxt = Vn[b]
        Eb = E[b]
        for k in range(n - 1, -1, -1):
            tau = t0 + k
            seq = tau if d == 0 else T - 1 - tau
            if live[tau]:
                for r in range(R):
                    Eb[r] = _add_scaled(cur[r], Eb[r], Gm[tau, b, r], Ge[tau, b, r])
            lag = T - tau - 1 if d == 0 else tau
            s = slot[lag]
            if s >= 0 and R0 > 0:
                lag_out[s, b] = log10_norm(cur, Eb, blk, spectral, A, ustate[b])
            if loss:
                v = cur[R0, :H]
                e = Eb[R0]
                top = 0.0
                for j in range(H):
                    top = max(top, abs(v[j]))
                if top == 0.0 or e == ZERO_EXP:
                    grad_out[seq, b] = -math.inf
                else:
                    ss = 0.0
                    for j in range(H):
                        ss += (v[j] / top) ** 2
                    grad_out[seq, b] = math.log10(top) + 0.5 * math.log10(ss) + e * LOG10_2
                if units:
                    for j in range(H):
                        a = abs(v[j])
                        unit_out[seq, b, j] = -math.inf if a == 0.0 or e == ZERO_EXP \
                            else math.log10(a) + e * LOG10_2
            if dirs > 0:
                np.dot(cur, dx[k, b], P)
                for d2 in range(dirs):
                    idx = tau if d2 == d else T - 1 - tau
                    for r in range(R):
                        for j in range(Hb):
                            part[j] = P[r, d2 * Hb + j]
                        ep = _renorm_row(part, Eb[r])
                        if ep != ZERO_EXP:
                            M = below_m[d2, idx, b, r]
                            en = _add_scaled(M, below_e[d2, idx, b, r], part, ep)
                            below_e[d2, idx, b, r] = _renorm_row(M, en)
                        if bad < 0 and not np.isfinite(part).all():
                            bad = seq
            if not step_rows(cur, dense[k, b], diag[k, b], H, Eb, nxt, tmp):
                if bad < 0:
                    bad = seq
                break
            cur, nxt = nxt, cur
        if n % 2 == 1:
            V[b, :, :] = cur
    return bad


# a corrupt or unwritable Numba cache of these kernels is a warning, not an error
guard_dispatchers(sys.modules[__name__])
