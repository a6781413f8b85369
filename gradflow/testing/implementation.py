"""Check your own RNN implementation against gradflow's cell of the same kind.

Two protocols are accepted:

**A PyTorch module.**  ``torch.nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (one layer), or your own
``nn.Module`` whose ``forward(x)`` takes a time-major input ``x`` of shape ``(T, B, D)``
and returns the sequence of hidden states ``(T, B, H)`` (or a tuple whose first element
is it), starting from a zero state.  Its parameters must be named as PyTorch's
(``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, optionally with a ``_l0``
suffix or inside a submodule) with PyTorch's shapes and gate order (LSTM: i f g o; GRU:
r z n).  The check works on a float64 copy; your module is not modified.

**A step function** ``step(x_t, state, params) -> state`` in NumPy: ``x_t`` is
``(B, D)``, ``state`` a tuple ``(h,)`` or ``(h, c)`` of ``(B, H)`` arrays, ``params`` a
dict with the names and shapes above; it returns the new state tuple.  Its gradients
are taken by central finite differences of the whole sequence.

The checks draw random parameters (both biases non-zero), inputs and initial states,
and report one row per property:

* ``forward`` -- the hidden states agree with gradflow's cell (float64);
* ``backward`` -- the gradients of ``sum(w * h)`` with respect to every parameter and the
  input agree (PyTorch autograd, or finite differences for a step function);
* ``bias split`` -- only ``bias_ih + bias_hh`` enters each gate (moving a shift from one
  to the other changes nothing; the GRU's n gate is exempt, its ``bias_hh`` is scaled
  by r);
* ``output bounded`` -- ``|h_t| <= 1`` for cells whose output is squashed (tanh RNN,
  LSTM, GRU), under large weights and inputs;
* ``gate order``, ``bias enters once``, ``cell equations`` -- diagnoses: when the forward
  pass disagrees, is the implementation exactly gradflow's cell with the gate blocks in
  another order, with a bias counted twice or missing, or a neighbouring catalogue cell
  (an LSTM without the output tanh, Cho's GRU with the reset gate before the matmul ...)?
  These rows read "inconclusive" when nothing explains the disagreement.
"""

from __future__ import annotations

import copy
import inspect
import itertools
from dataclasses import dataclass

import numpy as np

from .. import _validate as check
from ..config import tolerance
from ..errors import InvalidArgumentError
from ._result import FAIL, INCONCLUSIVE, PASS, CheckReport, CheckResult

__all__ = ["check_implementation", "KINDS"]

#: kind -> (gradflow cell, gates, neighbouring cells with the same parameters)
KINDS = {
    "lstm": ("lstm", "i f g o".split(), ("lstm-noaf", "lstm-niaf")),
    "gru": ("gru", "r z n".split(), ("gru-cho",)),
    "rnn": ("rnn", ["a"], ("rnn-relu", "rnn-linear")),
    "rnn-relu": ("rnn-relu", ["a"], ("rnn", "rnn-linear")),
}
_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


# ---------------------------------------------------------------------- adapters
class _TorchImpl:
    method = "PyTorch autograd"

    def __init__(self, module, torch):
        self.torch = torch
        self.builtin = isinstance(module, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU))
        self.module = copy.deepcopy(module).double()
        self.map = {}
        for name, prm in self.module.named_parameters():
            key = name.rsplit(".", 1)[-1].removesuffix("_l0")
            if key in _NAMES:
                self.map[key] = prm
        missing = [k for k in _NAMES if k not in self.map]
        if missing:
            raise InvalidArgumentError(
                f"`impl` has no parameters named {missing}; a module must hold weight_ih "
                "(G*H, D), weight_hh (G*H, H), bias_ih (G*H,), bias_hh (G*H,) with PyTorch's "
                f"names and gate order; it has {[n for n, _ in self.module.named_parameters()]}")
        self.input_size = self.map["weight_ih"].shape[1]
        self.hidden_size = self.map["weight_hh"].shape[1]

    def _load(self, params):
        with self.torch.no_grad():
            for k in _NAMES:
                if tuple(self.map[k].shape) != params[k].shape:
                    raise InvalidArgumentError(
                        f"`impl` parameter {k} has shape {tuple(self.map[k].shape)}; expected "
                        f"{params[k].shape} for this kind of cell")
                self.map[k].copy_(self.torch.from_numpy(params[k]))

    def _call(self, x, state0):
        if self.builtin:
            st = [self.torch.from_numpy(s[None].copy()) for s in state0]
            out = self.module(x, tuple(st) if len(st) > 1 else st[0])
        else:
            out = self.module(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out

    def zero_state(self):
        return not self.builtin

    def run(self, params, x, state0):
        self._load(params)
        with self.torch.no_grad():
            return self._call(self.torch.from_numpy(x), state0).numpy().copy()

    def grads(self, params, x, state0, wh):
        torch = self.torch
        self._load(params)
        for p in self.module.parameters():
            p.grad = None
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        out = self._call(xt, state0)
        (out * torch.from_numpy(wh)).sum().backward()
        g = {k: (self.map[k].grad.numpy().copy() if self.map[k].grad is not None
                 else np.zeros(params[k].shape)) for k in _NAMES}
        return g, xt.grad.numpy().copy()


class _StepImpl:
    method = "central finite differences of the step function"
    input_size = hidden_size = None

    def __init__(self, step):
        self.step = step

    def zero_state(self):
        return False

    def run(self, params, x, state0):
        state = tuple(np.array(s) for s in state0)
        out = []
        for t in range(x.shape[0]):
            new = self.step(x[t], state, params)
            state = tuple(new) if isinstance(new, (tuple, list)) else (new,)
            out.append(np.asarray(state[0], dtype=np.float64))
        return np.stack(out)

    def grads(self, params, x, state0, wh, max_entries=40, eps=1e-5, rng=None):
        from ._numeric import central_difference

        def loss():
            return float(np.sum(self.run(params, x, state0) * wh))

        rng = rng or np.random.default_rng(0)
        out = {}
        for name, theta in [*((k, params[k]) for k in _NAMES), ("x", x)]:
            idx = list(np.ndindex(theta.shape))
            if len(idx) > max_entries:
                idx = [idx[i] for i in sorted(rng.choice(len(idx), max_entries, replace=False))]
            num, _ = central_difference(loss, theta, idx, eps)
            out[name] = (idx, num)
        return out


class _ImplRaised(Exception):
    """The implementation under test raised an exception."""


def _guard(fn):
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # anything the user's code raises is a finding
            raise _ImplRaised(f"{type(exc).__name__}: {exc}") from exc
        except SystemExit as exc:  # the checks cannot go on: not a verdict on a property
            raise InvalidArgumentError(
                f"the implementation under test called sys.exit({exc.code!r}) while it was "
                "being checked; it must return its result instead") from None
    return call


def _adapter(impl):
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and isinstance(impl, torch.nn.Module):
        return _TorchImpl(impl, torch)
    if callable(impl):
        try:
            sig = inspect.signature(impl)
            required = [p for p in sig.parameters.values()
                        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            required = [None] * 3
        if len(required) == 3:
            return _StepImpl(impl)
    raise InvalidArgumentError(
        f"`impl` must be a torch.nn.Module or a step function step(x_t, state, params) -> state; "
        f"got {impl!r}")


def _infer_kind(impl):
    try:
        import torch
    except ImportError:
        return None
    if isinstance(impl, torch.nn.LSTM):
        return "lstm"
    if isinstance(impl, torch.nn.GRU):
        return "gru"
    if isinstance(impl, torch.nn.RNN):
        return "rnn" if impl.nonlinearity == "tanh" else "rnn-relu"
    return None


# ---------------------------------------------------------------------- draws
def _draw_params(kind, D, H, rng, scale):
    _, gates, _ = KINDS[kind]
    G = len(gates)
    k = scale / np.sqrt(H)
    p = {
        "weight_ih": rng.uniform(-k, k, (G * H, D)),
        "weight_hh": rng.uniform(-k, k, (G * H, H)),
        "bias_ih": rng.uniform(-k, k, G * H) + rng.choice([-1, 1], G * H) * 0.2,
        "bias_hh": rng.uniform(-k, k, G * H) + rng.choice([-1, 1], G * H) * 0.2,
    }
    if kind == "lstm":
        p["bias_ih"][H:2 * H] += rng.uniform(0.0, 1.5)
    return p


def _gradflow(name, params, x, state0):
    from ..cell import Cell

    D, H = params["weight_ih"].shape[1], params["weight_hh"].shape[1]
    cell = Cell(name, D, H)
    cell.params = {k: v.copy() for k, v in params.items()}
    return cell, cell.forward(x, state0)


def _permuted(params, perm, H):
    out = dict(params)
    for k in _NAMES:
        blocks = [params[k][g * H:(g + 1) * H] for g in perm]
        out[k] = np.ascontiguousarray(np.concatenate(blocks))
    return out


def _fits(res_tol, a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or not np.isfinite(a).all():
        return False
    return bool(np.all(np.abs(a - b) <= res_tol["atol"] + res_tol["rtol"] * np.abs(b)))


# ---------------------------------------------------------------------- the check
def check_implementation(impl, kind: str | None = None, *, examples: int = 10, seed: int = 0,
                         length: int | None = None, batch: int | None = None,
                         input_size: int | None = None, hidden_size: int | None = None,
                         raise_on_failure: bool = True) -> CheckReport:
    """Compare an RNN implementation with gradflow's cell of the same kind.

    Parameters
    ----------
    impl : torch.nn.Module or callable
        A PyTorch module or a NumPy step function ``step(x_t, state, params) -> state``
        (see the module documentation for the protocols).
    kind : {"lstm", "gru", "rnn", "rnn-relu"}, optional
        The cell it implements; inferred for ``nn.LSTM``/``nn.GRU``/``nn.RNN``.
    examples : int
        Random examples per property.
    seed : int
    length, batch : int, optional
        Sequence length T (default: drawn in 2..6) and batch size B (default: drawn in 1..2).
    input_size, hidden_size : int, optional
        For a step function (a module has its own); default: drawn in 1..3 and 1..4.

    Returns
    -------
    CheckReport
        One :class:`CheckResult` per property; ``report.table()`` prints them.

    Raises
    ------
    CheckFailure
        If a property fails (with `raise_on_failure`), naming every property that broke.

    Examples
    --------
    >>> import torch
    >>> from gradflow.testing import check_implementation
    >>> report = check_implementation(torch.nn.GRU(3, 4), examples=2)
    >>> report.passed
    True
    """
    if kind is None:
        kind = _infer_kind(impl)
        if kind is None:
            raise InvalidArgumentError(
                f"`kind` must be given (one of {list(KINDS)}): it cannot be inferred from a "
                f"{type(impl).__name__}")
    check.choice("kind", kind, KINDS)
    examples = check.positive_int("examples", examples)
    ad = _adapter(impl)
    cell_name, gates, variants = KINDS[kind]
    G = len(gates)
    rng = np.random.default_rng(seed)
    ref = tolerance(np.float64, "reference")
    fd = tolerance(np.float64, "finite_difference")
    subject = f"{type(impl).__name__ if not inspect.isfunction(impl) else impl.__name__} as {kind!r}"
    R = {
        "forward": CheckResult("forward", f"h_t of the implementation vs gradflow's {cell_name!r} (float64)",
                               "any weights, inputs and initial state"),
        "backward": CheckResult("backward", f"d sum(w h)/d(params, x) of the implementation ({ad.method}) "
                                f"vs gradflow's Cell.backward", "any weights and inputs"),
        "bias split": CheckResult("bias split", "outputs after moving a shift from bias_ih to bias_hh "
                                  "of one gate vs before", "only bias_ih + bias_hh enters"
                                  + (" (gates r, z; n is exempt)" if kind == "gru" else "")),
    }
    if kind != "rnn-relu":
        R["output bounded"] = CheckResult("output bounded", "max |h_t| vs 1",
                                          "tanh-squashed output; weights x3 and inputs x3")
    if G > 1:
        R["gate order"] = CheckResult("gate order", f"gate blocks read as {' '.join(gates)}",
                                      "diagnosis when forward fails")
    R["bias enters once"] = CheckResult("bias enters once", "each gate's biases enter once",
                                        "diagnosis when forward fails")
    R["cell equations"] = CheckResult("cell equations", f"equations of {cell_name!r} vs {list(variants)}",
                                      "diagnosis when forward fails")
    diag_found = {k: [] for k in ("gate order", "bias enters once", "cell equations")}
    diag_ok = {k: 0 for k in diag_found}

    ctx = _Ctx(ad, _guard(ad.run), _guard(ad.grads), kind, cell_name, gates, variants, rng, R,
               diag_found, diag_ok, ref, fd, (input_size, hidden_size, length, batch))
    for e in range(examples):
        try:
            _example(e, ctx)
        except _ImplRaised as exc:
            R["forward"].fail(f"the implementation raised {exc}", where={"example": e})
    _finish(R, diag_found, diag_ok, examples)
    report = CheckReport(R.values(), subject=subject)
    if isinstance(ad, _StepImpl):
        R["backward"].note = "gradients of the step function by central finite differences"
    return report.raise_if_failed() if raise_on_failure else report


@dataclass
class _Ctx:
    """What every example of :func:`check_implementation` shares."""

    ad: object
    run: object
    grads: object
    kind: str
    cell_name: str
    gates: list
    variants: tuple
    rng: np.random.Generator
    R: dict
    found: dict
    ok: dict
    ref: dict
    fd: dict
    sizes: tuple


def _example(e, ctx):
    """One random example of every property."""
    ad, run_impl, grads_impl, R, rng = ctx.ad, ctx.run, ctx.grads, ctx.R, ctx.rng
    kind, cell_name, gates, variants = ctx.kind, ctx.cell_name, ctx.gates, ctx.variants
    diag_found, diag_ok, ref, fd = ctx.found, ctx.ok, ctx.ref, ctx.fd
    input_size, hidden_size, length, batch = ctx.sizes
    G = len(gates)
    D = ad.input_size or input_size or int(rng.integers(1, 4))
    H = ad.hidden_size or hidden_size or int(rng.integers(1, 5))
    T = length or int(rng.integers(2, 7))
    B = batch or int(rng.integers(1, 3))
    p = _draw_params(kind, D, H, rng, float(rng.uniform(0.5, 1.5)))
    x = rng.standard_normal((T, B, D))
    S = 2 if kind == "lstm" else 1
    state0 = tuple(np.zeros((B, H)) if ad.zero_state() else rng.uniform(-0.9, 0.9, (B, H))
                   for _ in range(S))
    where = {"example": e}
    # forward
    h_impl = np.asarray(run_impl(p, x, state0), dtype=np.float64)
    cell, tr = _gradflow(cell_name, p, x, state0)
    if h_impl.shape != tr.h.shape:
        R["forward"].fail(f"the implementation returned shape {h_impl.shape}; expected (T, B, H) = "
                          f"{tr.h.shape}", where=where)
    else:
        shp = tr.h.shape
        R["forward"].add(h_impl, tr.h, **ref, where=where,
                         labels=lambda k: dict(zip(("step", "batch", "unit"),
                                                   (int(i) for i in np.unravel_index(k, shp)))))
    R["forward"].examples += 1
    # backward
    wh = rng.standard_normal((T, B, H))
    g = cell.backward(tr, wh)
    bw = R["backward"]
    bw.examples += 1
    if h_impl.shape == tr.h.shape:
        if isinstance(ad, _StepImpl):
            for name, (idx, num) in grads_impl(p, x, state0, wh, rng=rng).items():
                ana = g.x if name == "x" else g.params[name]
                bw.add(num, np.array([ana[i] for i in idx]), **fd,
                       where={**where, "parameter": name},
                       labels=lambda k, idx=idx: {"index": tuple(int(i) for i in idx[k])})
        else:
            gp, gx = grads_impl(p, x, state0, wh)
            for name in _NAMES:
                bw.add(gp[name], g.params[name], **ref, where={**where, "parameter": name},
                       labels=lambda k, s=g.params[name].shape: {"index": tuple(int(i) for i in np.unravel_index(k, s))})
            bw.add(gx, g.x, **ref, where={**where, "parameter": "x"})
    else:
        bw.fail("not compared: the forward output has the wrong shape", where=where)
    # bias split
    for k, gname in enumerate(gates):
        if kind == "gru" and gname == "n":
            continue
        q = {n: v.copy() for n, v in p.items()}
        delta = rng.uniform(-1, 1, H)
        q["bias_ih"][k * H:(k + 1) * H] += delta
        q["bias_hh"][k * H:(k + 1) * H] -= delta
        R["bias split"].add(run_impl(q, x, state0), h_impl, **ref, where={**where, "gate": gname})
    R["bias split"].examples += 1
    # output bounded
    if "output bounded" in R:
        q = {n: 3 * v for n, v in p.items()}
        hb = np.asarray(run_impl(q, 3 * x, state0))
        R["output bounded"].add_le(np.abs(hb).max(), 1.0, rtol=0, atol=ref["atol"], where=where)
        R["output bounded"].examples += 1
    # diagnoses
    if _fits(ref, h_impl, tr.h):
        for k in diag_ok:
            diag_ok[k] += 1
    else:
        if G > 1:
            for perm in itertools.permutations(range(G)):
                if perm == tuple(range(G)):
                    continue
                _, t2 = _gradflow(cell_name, _permuted(p, perm, H), x, state0)
                if _fits(ref, h_impl, t2.h):
                    order = " ".join(gates[i] for i in np.argsort(perm))
                    diag_found["gate order"].append(
                        f"matches {cell_name!r} with the gate blocks read in the order {order} "
                        f"instead of {' '.join(gates)}")
                    break
        for k, gname in enumerate(gates):
            for which, factor in itertools.product((("bias_ih",), ("bias_hh",), ("bias_ih", "bias_hh")),
                                                   (2.0, 0.0)):
                q = {n: v.copy() for n, v in p.items()}
                for b in which:
                    q[b][k * H:(k + 1) * H] *= factor
                _, t2 = _gradflow(cell_name, q, x, state0)
                if _fits(ref, h_impl, t2.h):
                    what = " and ".join(f"{b}[{gname}]" for b in which)
                    diag_found["bias enters once"].append(
                        f"{what} {'enters twice' if factor == 2 else 'is missing'} "
                        f"(gate {gname})")
        for v in variants:
            from ..cells import get

            _, t2 = _gradflow(v, p, x, state0)
            if _fits(ref, h_impl, t2.h):
                diag_found["cell equations"].append(f"matches {v!r} ({get(v).description})")


def _finish(R, diag_found, diag_ok, examples):
    for r in R.values():
        r.examples = examples
    for k, found in diag_found.items():
        if k not in R:
            continue
        r = R[k]
        r.examples = examples
        if found:
            r.verdict = FAIL
            r.note = "; ".join(sorted(set(found)))
        elif diag_ok[k] == examples:
            r.verdict, r.note = PASS, "the forward pass agrees"
        else:
            r.verdict = INCONCLUSIVE
            r.note = "nothing of this kind explains the disagreement"
