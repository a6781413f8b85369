"""Checkers of a cell: its backward pass against finite differences, its kernels against
its own symbolic equations.

Both return a :class:`~gradflow.testing.CheckResult` and raise
:class:`~gradflow.testing.CheckFailure` (an ``AssertionError``) when the comparison fails,
with the analytic and the reference value of the worst element.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import _validate as check
from ..cell import Cell, as_cell
from ..cells import get
from ..config import tolerance
from ..errors import InvalidArgumentError
from ._numeric import central_difference, draw_case, step_jacobians
from ._result import CheckResult

__all__ = ["check_grads", "check_symbolic"]


def check_grads(cell, x, state0=None, *, dh=None, dstate=None, seed: int = 0,
                max_entries: int | None = None, eps: float = 1e-5,
                rtol: float | None = None, atol: float | None = None,
                raise_on_failure: bool = True) -> CheckResult:
    """Compare :meth:`~gradflow.Cell.backward` with central finite differences of the forward pass.

    The loss is ``L = sum(dh * h) + sum_s sum(dstate[s] * final[s])``; its gradient with
    respect to every parameter, the input and the initial state is compared with central
    differences computed in float64 (on a float64 copy of the cell).

    Parameters
    ----------
    cell : Cell
    x : ndarray, shape (T, B, D), the cell's dtype
    state0 : array, tuple or dict, optional
        As for :meth:`~gradflow.Cell.forward`.
    dh : ndarray, shape (T, B, H), optional
        Weights of ``h`` in the loss; standard normal (from `seed`) if not given.
    dstate : tuple of ndarray, each (B, H), optional
        Weights of the final state in the loss; standard normal if not given.
    seed : int
        Seed of the random loss weights and of the entries sampled by `max_entries`.
    max_entries : int, optional
        Check at most this many entries per array (a random subset); all by default.
    eps : float
        Relative step of the differences: ``h = eps * max(1, |theta|)``.
    rtol, atol : float, optional
        Default: ``gradflow.config.tolerance(cell.dtype, "finite_difference")``.

    Returns
    -------
    CheckResult
        ``where`` names the parameter (or ``x`` / ``state0[...]``), the index and, for the
        input, the step.  Entries at a non-differentiable point (a ReLU at 0, detected by
        disagreeing one-sided differences) are skipped and counted in ``note``.

    Raises
    ------
    CheckFailure
        When an element differs by more than ``atol + rtol |reference|``.

    Examples
    --------
    >>> import numpy as np, gradflow
    >>> from gradflow.testing import check_grads
    >>> cell = gradflow.Cell("gru", input_size=2, hidden_size=3, seed=0)
    >>> check_grads(cell, np.ones((4, 1, 2))).passed
    True
    """
    cell = as_cell(cell)
    tol = tolerance(cell.dtype, "finite_difference")
    rtol = tol["rtol"] if rtol is None else float(rtol)
    atol = tol["atol"] if atol is None else float(atol)
    rng = np.random.default_rng(seed)
    trace = cell.forward(x, state0)
    T, B, D = trace.x.shape
    S, H = len(cell.spec.state), cell.hidden_size
    if dh is None:
        dh = rng.standard_normal((T, B, H)).astype(cell.dtype)
    dh = check.array("dh", dh, dtype=cell.dtype, shape=(T, B, H))
    if dstate is None:
        dstate = tuple(rng.standard_normal((B, H)).astype(cell.dtype) for _ in range(S))
    dsT = cell.state_array("dstate", dstate, B)
    grads = cell.backward(trace, dh, tuple(dsT))

    ref = cell.astype(np.float64)
    x64 = trace.x.astype(np.float64)
    s64 = trace.states[:, 0].astype(np.float64)
    dh64, ds64 = dh.astype(np.float64), dsT.astype(np.float64)

    def loss():
        tr = ref.forward(x64, tuple(s64))
        return float(np.sum(dh64 * tr.h) + np.sum(ds64 * tr.states[:, -1]))

    res = CheckResult("backward vs finite differences",
                      f"Cell.backward of {cell.spec.name!r} ({cell.dtype.name}) against central "
                      f"differences (float64, eps={eps:g})",
                      "the cell is differentiable at the point (ReLU pre-activations not at 0)",
                      examples=1)
    res.tolerance = {"rtol": rtol, "atol": atol}
    skipped = 0
    # only cells with a non-differentiable function (ReLU) can sit at a kink
    kinks = any(type(f).__name__ in ("relu", "step")
                for e in cell.spec.derivation.outputs for f in e.atoms(_sympy_function()))
    targets = [(f"params['{n}']", n, ref.params[n], grads.params[n]) for n in ref.params]
    targets.append(("x", "x", x64, grads.x))
    targets += [(f"state0['{s}']", f"state0['{s}']", s64[k], grads.state0[s])
                for k, s in enumerate(cell.spec.state)]
    for label, key, theta, analytic in targets:
        indices = list(np.ndindex(theta.shape))
        if max_entries is not None and len(indices) > max_entries:
            pick = rng.choice(len(indices), size=max_entries, replace=False)
            indices = [indices[i] for i in sorted(pick)]
        num, kink = central_difference(loss, theta, indices, eps)
        keep = ~kink if kinks else np.ones(len(indices), dtype=bool)
        skipped += int((~keep).sum())
        ana = np.array([analytic[i] for i in indices], dtype=np.float64)
        kept = [i for i, k in zip(indices, keep) if k]

        def labels(k, key=key, kept=kept):
            loc = {"parameter" if key in ref.params else "input": key, "index": kept[k]}
            if key == "x":
                loc["step"] = kept[k][0]
            return loc

        res.add(ana[keep], num[keep], rtol=rtol, atol=atol, labels=labels)
    if skipped:
        res.note = f"{skipped} entries at a non-differentiable point skipped"
    return res.raise_if_failed() if raise_on_failure else res


def _sympy_function():
    import sympy

    return sympy.Function


# ---------------------------------------------------------------------- symbolic
@lru_cache(maxsize=32)
def _explicit(spec, n: int, m: int):
    import sympy

    from ..symbolic.jacobian import explicit_step

    new, sym = explicit_step(spec, n, m)
    prev = [e for s in spec.state for e in sympy.Matrix(sym[f"{s}_prev"])]
    return new, new.jacobian(prev), new.jacobian(list(sympy.Matrix(sym["x"]))), sym


def _subs(expr, values):
    import sympy

    out = expr.subs(values).doit().evalf()
    return np.array(sympy.Matrix(out).tolist(), dtype=np.float64)


def check_symbolic(cell, *, examples: int = 3, seed: int = 0, hidden_size: int = 2,
                   input_size: int = 2, rtol: float | None = None, atol: float | None = None,
                   raise_on_failure: bool = True) -> CheckResult:
    """Compare a cell's compiled kernels with its own equations, evaluated by SymPy.

    For `examples` random points (parameters, input, previous state), the new state and
    the one-step Jacobians ``d s_t / d s_{t-1}`` and ``d s_t / d x_t`` from the kernels
    (forward pass; backward pass, one row per vector-Jacobian product) are compared with
    :func:`gradflow.symbolic.jacobian.explicit_step` for `hidden_size` units, its
    ``sympy.Matrix.jacobian``, and ``.subs()`` of the numbers.

    Parameters
    ----------
    cell : str, CellSpec or Cell
        A catalogue name, a spec or a cell.  A cell's parameters are used when its sizes
        are at most 3; otherwise a small cell of the same spec is drawn.
    examples : int
        Number of random points.
    seed : int
    hidden_size, input_size : int
        Sizes of the small cell (1 to 3).
    rtol, atol : float, optional
        Default: ``tolerance(float64, "reference")``.

    Returns
    -------
    CheckResult
        ``where`` gives the example, the quantity (``"state"``, ``"J_state"``,
        ``"J_x"``) and the row and column.

    Examples
    --------
    >>> from gradflow.testing import check_symbolic
    >>> check_symbolic("lstm", examples=1).passed
    True
    """
    import sympy

    examples = check.positive_int("examples", examples)
    n = check.positive_int("hidden_size", hidden_size)
    m = check.positive_int("input_size", input_size)
    if n > 3 or m > 3:
        raise InvalidArgumentError(
            f"`hidden_size` and `input_size` must be at most 3 (SymPy evaluates every entry); "
            f"got {n} and {m}")
    given = cell if isinstance(cell, Cell) and cell.hidden_size <= 3 and cell.input_size <= 3 else None
    spec = cell.spec if isinstance(cell, Cell) else get(cell)
    if given is not None:
        n, m = given.hidden_size, given.input_size
    tol = tolerance(np.float64, "reference")
    rtol = tol["rtol"] if rtol is None else float(rtol)
    atol = tol["atol"] if atol is None else float(atol)
    rng = np.random.default_rng(seed)
    new, J, Jx, sym = _explicit(spec, n, m)
    res = CheckResult("kernels vs symbolic equations",
                      f"forward state and one-step Jacobians of {spec.name!r} against SymPy "
                      f".subs() of its equations ({n} units, {m} inputs)", "any point",
                      examples=examples)
    S = len(spec.state)
    for e in range(examples):
        c, x, state0 = draw_case(spec, rng, input_size=m, hidden_size=n, length=1, batch=1)
        if given is not None:
            c = given.astype(np.float64)
        values = {sym["x"]: sympy.ImmutableMatrix(x[0, 0].reshape(m, 1))}
        for name in ("weight_ih", "weight_hh"):
            values[sym[name]] = sympy.ImmutableMatrix(c.params[name])
        for name in ("bias_ih", "bias_hh", *spec.params):
            values[sym[name]] = sympy.ImmutableMatrix(c.params[name].reshape(-1, 1))
        for k, s in enumerate(spec.state):
            values[sym[f"{s}_prev"]] = sympy.ImmutableMatrix(state0[k][0].reshape(n, 1))
        trace, Js, Jxs = step_jacobians(c, x, state0, wrt_x=True)
        got_state = trace.states[:, 1, 0].reshape(S * n)
        for what, ana, expr in (("state", got_state, new), ("J_state", Js[0, 0], J),
                                ("J_x", Jxs[0, 0], Jx)):
            ref = _subs(expr, values).reshape(np.shape(ana))
            shape = np.shape(ana)

            def labels(k, what=what, shape=shape):
                idx = np.unravel_index(k, shape)
                comp = spec.state[idx[0] // n]
                return {"quantity": what, "component": comp, "index": tuple(int(i) for i in idx)}

            res.add(ana, ref, rtol=rtol, atol=atol, where={"example": e}, labels=labels)
    return res.raise_if_failed() if raise_on_failure else res
