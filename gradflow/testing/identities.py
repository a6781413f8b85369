"""The identities of the gradient-flow literature, each with the conditions it needs.

Each :class:`Identity` compares what gradflow computes (one-step Jacobians from the
backward pass and, when available, from :func:`gradflow.state_jacobians`; gradients from
:meth:`Cell.backward`) with an independent reference: a closed form evaluated in NumPy
from the parameters and the states, central finite differences, or PyTorch autograd.
The closed forms below are *references to check against*, written from the papers; no
computation of gradflow uses them.

>>> from gradflow.testing import IDENTITIES
>>> print(IDENTITIES["cell-path"].conditions)
any weights and inputs; LSTMs with a forget gate f and no peepholes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import _validate as check
from ..config import tolerance
from ..errors import InvalidArgumentError
from ._numeric import draw_case, flow_available, step_jacobians
from ._result import INCONCLUSIVE, CheckReport, CheckResult

__all__ = ["Identity", "IDENTITIES", "check_identity", "check_identities", "applicable"]

_LSTM_F = ("lstm", "lstm-cifg", "lstm-nig", "lstm-nog", "lstm-niaf", "lstm-noaf")


@dataclass(frozen=True)
class Identity:
    """One identity: what it states, when it holds, and which cells it is about.

    Attributes
    ----------
    key : str
        Short name (``"cell-path"``).
    statement : str
        The identity.
    conditions : str
        When it holds.
    cells : tuple of str
        Catalogue cells it applies to (empty: every cell).
    reference : str
        The independent reference it is checked against.
    zero_recurrence : bool
        The identity needs ``weight_hh = 0`` (:meth:`prepare` sets it).
    """

    key: str
    statement: str
    conditions: str
    cells: tuple
    reference: str
    run: Callable
    zero_recurrence: bool = False
    min_examples: int = 1

    def applies_to(self, name: str) -> bool:
        return not self.cells or name in self.cells

    def prepare(self, cell):
        """A copy of `cell` that meets the identity's conditions (``weight_hh = 0`` ...)."""
        new = cell.copy()
        if self.zero_recurrence:
            new.params["weight_hh"][:] = 0.0
        return new


# ---------------------------------------------------------------------- helpers
def _sig(a):
    from scipy.special import expit

    return expit(a)


class _Point:
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
            if self.method in ("flow", "both") and flow_available():
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
def _rnn_step(res, pt):
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


def _rnn_bound(res, pt):
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
        res.add_le(lhs[ok], bound[ok], rtol=0, atol=1e-9 * T, where={"source": source},
                   labels=lambda k, T=T, ok=ok: {"lag k": int(T - np.argwhere(ok)[k][0]),
                                                 "batch": int(np.argwhere(ok)[k][1])})


def _lstm_blocks(res, pt):
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
    for source, J in pt.jacobians():
        C = pt.block(J, "c", "c").astype(np.float64)                # (T, B, H, H)
        H = C.shape[-1]
        off = C * (1 - np.eye(H))
        res.add(off, np.zeros_like(off), **tol, where={"source": source, "part": "off-diagonal"},
                labels=_labels(off.shape))
        d = np.diagonal(C, axis1=-2, axis2=-1)                      # (T, B, H)
        with np.errstate(divide="ignore"):
            logd = np.log(np.abs(d)).sum(axis=0)
        res.add(logd, logf, rtol=0, atol=tol["rtol"] * max(1, T) ** 0.5 + 4 * T * np.finfo(pt.cell.dtype).eps,
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
            res.add(M, E, **tol, where={"source": source, "part": "product of the blocks",
                                        "batch": b})


def _cell_path(res, pt):
    _symbolic_direct(res, pt.cell.spec, "c", "c", "f")
    f = _sig(pt.preact()["f"])
    _forget_products(res, pt, f)


def _total_cell_path(res, pt):
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
        ok = logf > np.log(np.finfo(np.float64).tiny) + 50
        with np.errstate(divide="ignore"):
            logd = np.log(np.abs(d))
        res.add(logd[ok], logf[ok], rtol=0,
                atol=tol["rtol"] * max(1, T - k) ** 0.5 + 4 * (T - k) * np.finfo(cell.dtype).eps,
                where={"k": k, "T": T, "part": "log of the diagonal"})


def _peephole_edge(res, pt):
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


def _nfg_cec(res, pt):
    for source, J in pt.jacobians():
        C = pt.block(J, "c", "c")
        res.add(C, np.broadcast_to(np.eye(pt.H), C.shape), rtol=0, atol=0,
                where={"source": source}, labels=_labels(C.shape))


def _cifg(res, pt):
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


def _gru_update(res, pt):
    r, z, n = _gru_gates(pt)
    h = (1 - z) * n + z * pt.prev("h")
    res.add(pt.new("h"), h, **pt.tol, where={"quantity": "h_t vs (1 - z) n + z h_{t-1}"},
            labels=_labels(h.shape))


def _gru_leak(res, pt):
    _symbolic_direct(res, pt.cell.spec, "h", "h", "z")
    r, z, n = _gru_gates(pt)
    _compare_blocks(res, pt, {("h", "h"): _diag(z)})


def _mgu_leak(res, pt):
    _symbolic_direct(res, pt.cell.spec, "h", "h", "f", transform=lambda e: 1 - e)
    f = _sig(pt.preact()["f"])
    _compare_blocks(res, pt, {("h", "h"): _diag(1 - f)})


def _fd(res, pt):
    from .checks import check_grads

    r = check_grads(pt.cell, pt.x, pt.state0, raise_on_failure=False, max_entries=60)
    res.tolerance = r.tolerance
    res.merge(r)


def _adjoint(res, pt):
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
    if flow_available():
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
    else:
        eps = 1e-6
        ref = cell.astype(np.float64)

        def out(sign):
            tr = ref.forward(pt.x + sign * eps * vx, tuple(np.asarray(pt.state0) + sign * eps * vs))
            return float(np.sum(tr.h * wh) + np.sum(tr.states[:, -1] * ws))

        jvp = (out(1) - out(-1)) / (2 * eps)
        scale = abs(jvp)
        tol = tolerance(cell.dtype, "finite_difference")
        res.note = "J v by central differences (state_jacobians not available)"
    res.add([jvp], [vjp], rtol=tol["rtol"], atol=tol["atol"] + tol["rtol"] * scale,
            where={"quantity": "<J v, w> vs <v, J^T w>"})


def _torch(res, pt):
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



IDENTITIES: dict[str, Identity] = {i.key: i for i in [
    Identity("rnn-step", "vanilla RNN: d h_t / d h_{t-1} = diag(phi'(a_t)) W_hh",
             "any weights and inputs (ReLU: phi'(0) = 0)", ("rnn", "rnn-relu", "rnn-linear"),
             "closed form in NumPy from the parameters", _rnn_step),
    Identity("rnn-bound", "vanilla RNN: ||d h_T / d h_k||_2 <= (gamma ||W_hh||_2)^(T-k)",
             "gamma = sup|phi'| = 1 for tanh, ReLU, linear; any weights and inputs",
             ("rnn", "rnn-relu", "rnn-linear"), "spectral norm of W_hh (NumPy)", _rnn_bound),
    Identity("lstm-blocks", "LSTM one step: dc/dc = diag(f); dc/dh = diag(c_prev f(1-f)) U_f + "
             "diag(g i(1-i)) U_i + diag(i(1-g^2)) U_g; dh/dc = diag(o(1-tanh^2 c)) diag(f); "
             "dh/dh = diag(tanh c o(1-o)) U_o + diag(o(1-tanh^2 c)) dc/dh",
             "any weights and inputs; the LSTM without peepholes", ("lstm",),
             "closed forms in NumPy from the parameters", _lstm_blocks),
    Identity("cell-path", "cell-state path: prod_t d c_t/d c_{t-1} (direct edges) = diag(prod_t f_t)",
             "any weights and inputs; LSTMs with a forget gate f and no peepholes", _LSTM_F,
             "product of f = sigmoid(a_f) computed in NumPy (log space); SymPy for the edge",
             _cell_path),
    Identity("total-cell-path", "total d c_T / d c_k = diag(prod_{t>k} f_t)",
             "W_hh = 0 (no path through h); LSTMs with a forget gate and no peepholes", _LSTM_F,
             "product of f in NumPy (log space)", _total_cell_path, zero_recurrence=True),
    Identity("peephole-edge", "peephole LSTM: dc/dc_prev = diag(f + c_prev p_f f(1-f) + g p_i i(1-i)); "
             "dh/dc_prev = diag(tanh(c) o(1-o) p_o + o(1-tanh^2 c)) dc/dc_prev",
             "any weights and inputs", ("lstm-peephole",), "closed form in NumPy", _peephole_edge),
    Identity("nfg-cec", "no forget gate: the direct edge d c_t / d c_{t-1} = I (the CEC)",
             "any weights and inputs", ("lstm-nfg",), "the identity matrix, exactly", _nfg_cec),
    Identity("cifg-coupling", "CIFG: i = 1 - f, so c_t = f c_{t-1} + (1 - f) g and dc/dc = diag(f)",
             "any weights and inputs", ("lstm-cifg",), "NumPy from the parameters", _cifg),
    Identity("gru-update", "GRU: h_t = (1 - z) n + z h_{t-1}",
             "any weights and inputs; PyTorch (reset after the matmul) and Cho conventions",
             ("gru", "gru-cho"), "NumPy from the parameters", _gru_update),
    Identity("gru-leak", "GRU leak path: the direct edge of d h_t/d h_{t-1} is diag(z); "
             "with W_hh = 0 it is the whole one-step Jacobian",
             "SymPy part: any weights; numeric part: W_hh = 0", ("gru", "gru-cho"),
             "SymPy simplification; z in NumPy", _gru_leak, zero_recurrence=True),
    Identity("mgu-leak", "minimal gated unit: h_t = (1 - f) h_{t-1} + f n, so the direct edge of "
             "d h_t/d h_{t-1} is diag(1 - f); with W_hh = 0 it is the whole one-step Jacobian",
             "SymPy part: any weights; numeric part: W_hh = 0", ("mgu",),
             "SymPy simplification; f in NumPy", _mgu_leak, zero_recurrence=True),
    Identity("finite-differences", "backward pass = central finite differences",
             "the cell is differentiable at the point; float64 differences", (),
             "central differences of the forward pass", _fd),
    Identity("adjoint", "JVP and VJP are adjoint: <J v, w> = <v, J^T w>",
             "any weights, inputs, directions v and cotangents w", (),
             "Cell.backward (VJP) against tangent propagation (JVP)", _adjoint),
    Identity("pytorch", "float64 forward and gradients = PyTorch autograd",
             "float64; the cells PyTorch has (rnn, rnn-relu, lstm, gru)",
             ("rnn", "rnn-relu", "lstm", "gru"), "torch.nn.RNN/LSTM/GRU autograd", _torch),
]}


def applicable(cell_name) -> list[str]:
    """Keys of the identities that apply to catalogue cell `cell_name`."""
    from ..cells import get

    name = get(cell_name).name
    return [k for k, i in IDENTITIES.items() if i.applies_to(name)]


def _identity(key) -> Identity:
    if key not in IDENTITIES:
        raise InvalidArgumentError(f"`identity` {key!r} is unknown; expected one of {list(IDENTITIES)}")
    return IDENTITIES[key]


def check_identity(key: str, cell, x, state0=None, *, method: str = "both",
                   raise_on_failure: bool = True, result: CheckResult | None = None) -> CheckResult:
    """Check one identity at one point (a cell, an input and an initial state).

    Parameters
    ----------
    key : str
        A key of :data:`IDENTITIES`.
    cell : Cell
        Must meet the identity's conditions (use ``IDENTITIES[key].prepare(cell)``).
    x : ndarray, shape (T, B, D)
    state0 : array, tuple or dict, optional
    method : {"both", "vjp", "flow"}
        Where the one-step Jacobians come from: the backward pass's rows, and/or
        :func:`gradflow.state_jacobians` (skipped when not available).
    result : CheckResult, optional
        Accumulate into this result (several examples of one property).

    Returns
    -------
    CheckResult

    Raises
    ------
    InvalidArgumentError
        If the identity does not apply to the cell or its conditions are not met.
    CheckFailure
        If the identity does not hold.
    """
    ident = _identity(key)
    if method not in ("both", "vjp", "flow"):
        raise InvalidArgumentError(f"`method` must be 'both', 'vjp' or 'flow'; got {method!r}")
    name = cell.spec.name
    if not ident.applies_to(name):
        raise InvalidArgumentError(
            f"identity {key!r} is about the cells {list(ident.cells)}; got {name!r}")
    if ident.zero_recurrence and np.any(cell.params["weight_hh"] != 0):
        raise InvalidArgumentError(
            f"identity {key!r} holds only when W_hh = 0 ({ident.conditions}); pass "
            f"IDENTITIES[{key!r}].prepare(cell)")
    res = result if result is not None else CheckResult(
        key, ident.statement, ident.conditions)
    res.examples += 1
    ident.run(res, _Point(cell, x, state0, method))
    return res.raise_if_failed() if raise_on_failure else res


def check_identities(cell_name, *, identities=None, examples: int = 10, seed: int = 0,
                     method: str = "both", max_length: int = 6, max_hidden: int = 4,
                     dtype=np.float64, raise_on_failure: bool = True) -> CheckReport:
    """Check every identity that applies to a catalogue cell on random examples.

    Each example draws sizes, weights (PyTorch's initialisation times a scale in
    [0.5, 2]), a forget-gate bias in [-1, 3], an input and an initial state from
    ``numpy.random.default_rng(seed)``; identities that need ``W_hh = 0`` get it.

    Parameters
    ----------
    cell_name : str or CellSpec
    identities : sequence of str, optional
        Keys of :data:`IDENTITIES`; default every one that applies.
    examples : int
        Examples per identity (the finite-difference and PyTorch checks run on
        ``max(1, examples // 4)`` of them).
    seed : int
    method : {"both", "vjp", "flow"}
    max_length, max_hidden : int
        Largest sequence length and hidden size drawn.
    dtype : numpy.float64 or numpy.float32

    Returns
    -------
    CheckReport
        One :class:`CheckResult` per identity.

    Examples
    --------
    >>> from gradflow.testing import check_identities
    >>> report = check_identities("gru", examples=2)
    >>> [r.name for r in report]
    ['gru-update', 'gru-leak', 'finite-differences', 'adjoint', 'pytorch']
    """
    from ..cells import get

    spec = get(cell_name)
    examples = check.positive_int("examples", examples)
    max_length = check.positive_int("max_length", max_length)
    max_hidden = check.positive_int("max_hidden", max_hidden)
    dtype = check.float_dtype("dtype", dtype)
    keys = applicable(spec) if identities is None else list(identities)
    for k in keys:
        ident = _identity(k)
        if not ident.applies_to(spec.name):
            raise InvalidArgumentError(
                f"identity {k!r} does not apply to {spec.name!r}; applicable: {applicable(spec)}")
    report = CheckReport(subject=f"identities of {spec.name!r}")
    rng = np.random.default_rng(seed)
    for k in keys:
        ident = IDENTITIES[k]
        res = CheckResult(k, ident.statement, ident.conditions)
        n = max(1, examples // 4) if k in ("finite-differences", "pytorch") else examples
        case_dtype = np.float64 if k == "pytorch" else dtype
        for e in range(n):
            cell, x, s0 = draw_case(spec, rng, dtype=case_dtype, max_length=max_length,
                                    max_hidden=max_hidden, zero_recurrence=ident.zero_recurrence)
            before = res._ratio
            check_identity(k, cell, x, s0, method=method, raise_on_failure=False, result=res)
            if res._ratio > before:
                res.where = {"example": e, **res.where}
            if res.verdict == INCONCLUSIVE:
                break
        report.append(res)
    return report.raise_if_failed() if raise_on_failure else report
