"""Independent references for the identities: closed forms evaluated in NumPy from a
cell's parameters and states, written from the papers (see :mod:`.identities`).

Each ``_<identity>(res, point)`` adds its comparisons to the
:class:`~gradflow.testing.CheckResult` ``res``.  Nothing in gradflow computes with these
forms; they are only what gradflow's own Jacobians and gradients are checked against.
"""

from __future__ import annotations

import numpy as np

from ..config import tolerance
from ._numeric import step_jacobians
from ._result import INCONCLUSIVE

# ---------------------------------------------------------------------- helpers
def _sig(a):
    from scipy.special import expit

    return expit(a)


class Point:
    """A cell, an input and an initial state; the forward pass and Jacobians on demand."""

    def __init__(self, cell, x, state0, method):
        self.cell, self.method = cell, method
        self.trace = cell.forward(x, state0)
        self.x = self.trace.x
        self.state0 = tuple(self.trace.states[:, 0])
        self._jac = None
        self.H = cell.hidden_size
        self.p = {k: np.asarray(v, dtype=np.float64) for k, v in cell.params.items()}

    def jacobians(self):
        """[(source, J (T, B, S*H, S*H))]: the backward pass's rows, and state_jacobians."""
        if self._jac is None:
            out = []
            if self.method in ("vjp", "both"):
                out.append(("backward rows", step_jacobians(self.cell, self.x, self.state0)[1]))
            if self.method in ("flow", "both"):
                out.append(("state_jacobians",
                            step_jacobians(self.cell, self.x, self.state0, method="flow")[1]))
            self._jac = out
        return self._jac

    def block(self, J, of, wrt):
        st, H = self.cell.spec.state, self.H
        a, c = st.index(of), st.index(wrt)
        return J[:, :, a * H:(a + 1) * H, c * H:(c + 1) * H]

    def prev(self, comp):
        return self.trace.states[self.cell.spec.state.index(comp), :-1].astype(np.float64)

    def new(self, comp):
        return self.trace.states[self.cell.spec.state.index(comp), 1:].astype(np.float64)

    def preact(self):
        """Per-gate pre-activations a_g = x W_ih[g]^T + b_ih[g] + h_prev W_hh[g]^T + b_hh[g],
        in NumPy float64 from the parameters (single-stage gates), {g: (T, B, H)}."""
        H, p = self.H, self.p
        x = self.x.astype(np.float64)
        hp = self.prev("h")
        out = {}
        for k, g in enumerate(self.cell.spec.gates):
            sl = slice(k * H, (k + 1) * H)
            out[g] = (x @ p["weight_ih"][sl].T + p["bias_ih"][sl]
                      + hp @ p["weight_hh"][sl].T + p["bias_hh"][sl])
        return out

    def rounding(self, g, gate_value):
        """A bound on the relative difference, per step, between a sigmoid gate `g` computed
        in the cell's precision and in float64: the pre-activation's rounding error
        (sum of the magnitudes of its terms times (D + H + 2) eps) times (1 - gate), plus a
        few eps for the sigmoid itself.  (T, B, H)."""
        H, p = self.H, self.p
        k = self.cell.spec.gates.index(g)
        sl = slice(k * H, (k + 1) * H)
        mag = (np.abs(self.x.astype(np.float64)) @ np.abs(p["weight_ih"][sl]).T + np.abs(p["bias_ih"][sl])
               + np.abs(self.prev("h")) @ np.abs(p["weight_hh"][sl]).T + np.abs(p["bias_hh"][sl]))
        n = self.x.shape[-1] + H + 2
        return ((1 - gate_value) * mag * n + 4) * np.finfo(self.cell.dtype).eps

    def U(self, g):
        H, k = self.H, self.cell.spec.gates.index(g)
        return self.p["weight_hh"][k * H:(k + 1) * H]

    @property
    def tol(self):
        return tolerance(self.cell.dtype, "reference")


def _diag(v):
    """(T, B, H) -> (T, B, H, H) diagonal matrices."""
    return v[..., :, None] * np.eye(v.shape[-1])


def _labels(shape, extra=None):
    def f(k):
        idx = np.unravel_index(k, shape)
        loc = {"step": int(idx[0]) + 1, "index": tuple(int(i) for i in idx[1:])}
        loc.update(extra or {})
        return loc
    return f


def _compare_blocks(res, pt, expected: dict):
    """expected: {(of, wrt): (T, B, H, H)} closed forms; compared with every source."""
    tol = pt.tol
    for source, J in pt.jacobians():
        for (of, wrt), E in expected.items():
            A = pt.block(J, of, wrt)
            res.add(A, E, **tol, where={"source": source, "block": f"d{of}_t/d{wrt}_t-1"},
                    labels=_labels(A.shape))


# ---------------------------------------------------------------------- identities
def rnn_step(res, pt):
    a = pt.preact()["a"]
    name = pt.cell.spec.name
    dphi = {"rnn": lambda: 1 - np.tanh(a) ** 2, "rnn-relu": lambda: (a > 0).astype(float),
            "rnn-linear": lambda: np.ones_like(a)}[name]()
    _compare_blocks(res, pt, {("h", "h"): dphi[..., None] * pt.U("a")})


def _log10_norm_products(J):
    """log10 ||J_T ... J_{k+1}||_2 for k = 0..T-1, per batch row: (T, B) (renormalised)."""
    T, B = J.shape[:2]
    out = np.empty((T, B))
    for b in range(B):
        M = np.eye(J.shape[-1])
        scale = 0.0
        for t in range(T - 1, -1, -1):
            M = M @ J[t, b]
            s = np.max(np.abs(M))
            if s == 0:
                out[: t + 1, b] = -np.inf
                break
            M /= s
            scale += np.log10(s)
            out[t, b] = scale + np.log10(np.linalg.norm(M, 2))
    return out


def rnn_bound(res, pt):
    W = pt.U("a")
    w = np.linalg.norm(W, 2)
    for source, J in pt.jacobians():
        J = J.astype(np.float64)
        T = J.shape[0]
        lhs = _log10_norm_products(J)
        lags = (T - np.arange(T))[:, None] * np.ones_like(lhs)
        if w == 0:
            res.add(np.where(np.isinf(lhs), 0.0, 1.0), np.zeros_like(lhs), rtol=0, atol=0,
                    where={"source": source, "note": "W_hh = 0: every product is 0"})
            continue
        bound = lags * np.log10(w)  # gamma = 1 for tanh, ReLU and the identity
        ok = np.isfinite(lhs)
        # log10 of the norms: a relative tolerance r on norms is an absolute one on logs
        res.add_le(lhs[ok], bound[ok], rtol=0, atol=pt.tol["rtol"] * T, where={"source": source},
                   labels=lambda k, T=T, ok=ok: {"lag k": int(T - np.argwhere(ok)[k][0]),
                                                 "batch": int(np.argwhere(ok)[k][1])})


def lstm_blocks(res, pt):
    a = pt.preact()
    i, f, g, o = _sig(a["i"]), _sig(a["f"]), np.tanh(a["g"]), _sig(a["o"])
    cp = pt.prev("c")
    c = f * cp + i * g
    tc = np.tanh(c)
    Ui, Uf, Ug, Uo = (pt.U(k) for k in "ifgo")
    dch = ((cp * f * (1 - f))[..., None] * Uf + (g * i * (1 - i))[..., None] * Ui
           + (i * (1 - g ** 2))[..., None] * Ug)
    exp = {
        ("c", "c"): _diag(f),
        ("c", "h"): dch,
        ("h", "c"): _diag(o * (1 - tc ** 2) * f),
        ("h", "h"): (tc * o * (1 - o))[..., None] * Uo + (o * (1 - tc ** 2))[..., None] * dch,
    }
    _compare_blocks(res, pt, exp)


def _symbolic_direct(res, spec, of, wrt, gate_expr_name, transform=lambda e: e):
    """The weight-free term of d of/d wrt, simplified against the equations (SymPy)."""
    import sympy

    direct = spec.jacobian()[(of, wrt)].direct
    target = transform(spec.derivation.full[gate_expr_name])
    diff = sympy.simplify(direct - target)
    res.add([0.0 if diff == 0 else 1.0], [0.0], rtol=0, atol=0,
            where={"source": "SymPy", "statement": f"direct d{of}/d{wrt} = {target}"})


def _forget_products(res, pt, f):
    """log-space and renormalised-product comparison of the (c, c) path with diag(prod f)."""
    tol = pt.tol
    T = f.shape[0]
    logf = np.log(f).sum(axis=0)                                    # (B, H)
    # relative rounding of a product of T gates: the sum of the per-step bounds
    drift = float(pt.rounding("f", f).sum(axis=0).max())
    for source, J in pt.jacobians():
        C = pt.block(J, "c", "c").astype(np.float64)                # (T, B, H, H)
        H = C.shape[-1]
        off = C * (1 - np.eye(H))
        res.add(off, np.zeros_like(off), **tol, where={"source": source, "part": "off-diagonal"},
                labels=_labels(off.shape))
        d = np.diagonal(C, axis1=-2, axis2=-1)                      # (T, B, H)
        with np.errstate(divide="ignore"):
            logd = np.log(np.abs(d)).sum(axis=0)
        res.add(logd, logf, rtol=0, atol=tol["rtol"] + drift,
                where={"source": source, "part": "log of the diagonal of the product"},
                labels=lambda k, s=logd.shape: {"batch": int(np.unravel_index(k, s)[0]),
                                                "unit": int(np.unravel_index(k, s)[1])})
        for b in range(C.shape[1]):                                # the matrix product itself
            M, scale = np.eye(H), 0.0
            for t in range(T):
                M = C[t, b] @ M
                s = np.max(np.abs(M))
                if s == 0:
                    break
                M /= s
                scale += np.log(s)
            E = np.diag(np.exp(logf[b] - scale)) if s else np.zeros((H, H))
            res.add(M, E, rtol=tol["rtol"] + drift, atol=tol["atol"],
                    where={"source": source, "part": "product of the blocks",
                                        "batch": b})


def cell_path(res, pt):
    _symbolic_direct(res, pt.cell.spec, "c", "c", "f")
    f = _sig(pt.preact()["f"])
    _forget_products(res, pt, f)


def total_cell_path(res, pt):
    """d c_T / d c_k from the backward pass over steps k+1..T, W_hh = 0."""
    cell, H = pt.cell, pt.H
    tol = pt.tol
    f = _sig(pt.preact()["f"])
    T, B = f.shape[:2]
    ci = cell.spec.state.index("c")
    for k in sorted({0, T // 2}):
        xs = np.repeat(pt.x[k:], H, axis=1)                         # batch (B*H)
        st = tuple(np.repeat(pt.trace.states[s, k], H, axis=0) for s in range(len(cell.spec.state)))
        tr = cell.forward(xs, st)
        seed = [np.zeros((B * H, H), dtype=cell.dtype) for _ in cell.spec.state]
        seed[ci][np.arange(B * H), np.tile(np.arange(H), B)] = 1.0
        g = cell.backward(tr, dstate=tuple(seed))
        D = g.state0["c"].reshape(B, H, H).astype(np.float64)       # D[b, j, :] = d c_T[j]/d c_k
        logf = np.log(f[k:]).sum(axis=0)
        off = D * (1 - np.eye(H))
        res.add(off, np.zeros_like(off), **tol, where={"k": k, "part": "off-diagonal"})
        d = np.diagonal(D, axis1=-2, axis2=-1)
        # the backward pass multiplies in the cell's precision: below its smallest normal
        # number the product has underflowed, and only the log-space references hold it
        ok = logf > np.log(np.finfo(cell.dtype).tiny) + 5
        if not ok.all():
            res.note = "entries whose product underflows the cell's dtype are skipped"
        with np.errstate(divide="ignore"):
            logd = np.log(np.abs(d))
        res.add(logd[ok], logf[ok], rtol=0,
                atol=tol["rtol"] + float(pt.rounding("f", f)[k:].sum(axis=0).max()),
                where={"k": k, "T": T, "part": "log of the diagonal"})


def peephole_edge(res, pt):
    a = pt.preact()
    p = pt.p
    cp = pt.prev("c")
    i = _sig(a["i"] + p["peephole_i"] * cp)
    f = _sig(a["f"] + p["peephole_f"] * cp)
    g = np.tanh(a["g"])
    c = f * cp + i * g
    o = _sig(a["o"] + p["peephole_o"] * c)
    dcc = f + cp * p["peephole_f"] * f * (1 - f) + g * p["peephole_i"] * i * (1 - i)
    dhc = (np.tanh(c) * o * (1 - o) * p["peephole_o"] + o * (1 - np.tanh(c) ** 2)) * dcc
    _compare_blocks(res, pt, {("c", "c"): _diag(dcc), ("h", "c"): _diag(dhc)})


def nfg_cec(res, pt):
    for source, J in pt.jacobians():
        C = pt.block(J, "c", "c")
        res.add(C, np.broadcast_to(np.eye(pt.H), C.shape), rtol=0, atol=0,
                where={"source": source}, labels=_labels(C.shape))


def cifg(res, pt):
    a = pt.preact()
    f, g = _sig(a["f"]), np.tanh(a["g"])
    tol = pt.tol
    res.add(pt.trace.intermediate("i"), 1 - f, **tol, where={"quantity": "i (kernel) vs 1 - f"},
            labels=_labels(f.shape))
    c = f * pt.prev("c") + (1 - f) * g
    res.add(pt.new("c"), c, **tol, where={"quantity": "c_t vs f c_{t-1} + (1 - f) g"},
            labels=_labels(c.shape))
    _compare_blocks(res, pt, {("c", "c"): _diag(f)})


def _gru_gates(pt):
    """r, z, n from the parameters in NumPy, PyTorch's or Cho's convention."""
    H, p, spec = pt.H, pt.p, pt.cell.spec
    x, hp = pt.x.astype(np.float64), pt.prev("h")

    def lin(k, v, w, b):
        sl = slice(k * H, (k + 1) * H)
        return v @ p[w][sl].T + p[b][sl]

    r = _sig(lin(0, x, "weight_ih", "bias_ih") + lin(0, hp, "weight_hh", "bias_hh"))
    z = _sig(lin(1, x, "weight_ih", "bias_ih") + lin(1, hp, "weight_hh", "bias_hh"))
    if spec.name == "gru":
        n = np.tanh(lin(2, x, "weight_ih", "bias_ih") + r * lin(2, hp, "weight_hh", "bias_hh"))
    else:
        n = np.tanh(lin(2, x, "weight_ih", "bias_ih") + lin(2, r * hp, "weight_hh", "bias_hh"))
    return r, z, n


def gru_update(res, pt):
    r, z, n = _gru_gates(pt)
    h = (1 - z) * n + z * pt.prev("h")
    res.add(pt.new("h"), h, **pt.tol, where={"quantity": "h_t vs (1 - z) n + z h_{t-1}"},
            labels=_labels(h.shape))


def gru_leak(res, pt):
    _symbolic_direct(res, pt.cell.spec, "h", "h", "z")
    _, z, _ = _gru_gates(pt)
    _compare_blocks(res, pt, {("h", "h"): _diag(z)})


def mgu_leak(res, pt):
    _symbolic_direct(res, pt.cell.spec, "h", "h", "f", transform=lambda e: 1 - e)
    f = _sig(pt.preact()["f"])
    _compare_blocks(res, pt, {("h", "h"): _diag(1 - f)})


def finite_differences(res, pt):
    from .checks import check_grads

    r = check_grads(pt.cell, pt.x, pt.state0, raise_on_failure=False, max_entries=60)
    res.tolerance = r.tolerance
    res.merge(r)


def adjoint(res, pt):
    """<J v, w> = <v, J^T w> for the map (x, state0) -> (h_1..h_T, final state)."""
    cell = pt.cell
    rng = np.random.default_rng(abs(hash(pt.x.tobytes())) % 2**32)
    T, B, D = pt.x.shape
    S, H = len(cell.spec.state), pt.H
    vx = rng.standard_normal((T, B, D))
    vs = rng.standard_normal((S, B, H))
    wh = rng.standard_normal((T, B, H))
    ws = rng.standard_normal((S, B, H))
    g = cell.backward(pt.trace, wh.astype(cell.dtype), tuple(ws.astype(cell.dtype)))
    vjp = float(np.sum(vx * g.x) + sum(np.sum(vs[k] * g.state0[s]) for k, s in enumerate(cell.spec.state)))
    _, J, Jx = step_jacobians(cell, pt.x, pt.state0, method="flow", wrt_x=True)
    J, Jx = J.astype(np.float64), Jx.astype(np.float64)
    ds = vs.transpose(1, 0, 2).reshape(B, S * H)
    jvp, scale = 0.0, 0.0
    for t in range(T):
        ds = np.einsum("bij,bj->bi", J[t], ds) + np.einsum("bij,bj->bi", Jx[t], vx[t])
        jvp += float(np.sum(ds[:, :H] * wh[t]))
        scale += float(np.sum(np.abs(ds[:, :H] * wh[t])))
    fin = ds.reshape(B, S, H).transpose(1, 0, 2)
    jvp += float(np.sum(fin * ws))
    scale += float(np.sum(np.abs(fin * ws)))
    tol = dict(pt.tol)
    res.note = "J v by tangent propagation through gradflow.state_jacobians"
    res.add([jvp], [vjp], rtol=tol["rtol"], atol=tol["atol"] + tol["rtol"] * scale,
            where={"quantity": "<J v, w> vs <v, J^T w>"})


def pytorch(res, pt):
    try:
        import torch
    except ImportError:
        res.verdict, res.note = INCONCLUSIVE, "PyTorch is not installed"
        return
    from ..interop import to_torch

    cell = pt.cell.astype(np.float64)
    m = to_torch(cell)
    x = torch.tensor(pt.x.astype(np.float64), requires_grad=True)
    st = [torch.tensor(s.astype(np.float64)[None], requires_grad=True) for s in pt.state0]
    out, fin = m(x, tuple(st) if len(st) > 1 else st[0])
    rng = np.random.default_rng(0)
    wh = rng.standard_normal(tuple(out.shape))
    (out * torch.from_numpy(wh)).sum().backward()
    tr = cell.forward(pt.x.astype(np.float64), tuple(s.astype(np.float64) for s in pt.state0))
    g = cell.backward(tr, wh)
    tol = tolerance(np.float64, "reference")
    res.add(tr.h, out.detach().numpy(), **tol, where={"quantity": "h"}, labels=_labels(tr.h.shape))
    for name in cell.params:
        tp = getattr(m, f"{name}_l0").grad.numpy()
        res.add(g.params[name], tp, **tol, where={"quantity": f"grad {name}"})
    res.add(g.x, x.grad.numpy(), **tol, where={"quantity": "grad x"})
    for k, s in enumerate(cell.spec.state):
        res.add(g.state0[s], st[k].grad.numpy()[0], **tol, where={"quantity": f"grad state0[{s}]"})
