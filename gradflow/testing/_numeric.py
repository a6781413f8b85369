"""Numerical building blocks of the checks: random cases, one-step Jacobians, differences.

One-step Jacobians come from the backward pass (a vector-Jacobian product per row,
batched: one forward and one backward call for every row of every step), or from
:func:`gradflow.state_jacobians` when asked for.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgumentError
from ..flow import state_jacobians

__all__ = ["draw_case", "step_jacobians", "central_difference"]


def draw_case(cell_name, rng: np.random.Generator, *, input_size=None, hidden_size=None,
              length=None, batch=None, dtype=np.float64, scale=None, forget_bias=None,
              zero_recurrence: bool = False, state_scale: float = 1.0,
              max_hidden: int = 4, max_length: int = 6):
    """A random cell, input and initial state, from a NumPy generator.

    Sizes not given are drawn (hidden 1..`max_hidden`, input 1..3, length 1..`max_length`,
    batch 1..2); the weights are PyTorch's uniform initialisation times a `scale` drawn
    in [0.5, 2]; `forget_bias` (if the cell has a forget gate and none is given) is drawn
    in [-1, 3].  With `zero_recurrence`, ``weight_hh`` is 0.

    Returns
    -------
    cell : Cell
    x : ndarray, shape (T, B, D), `dtype`
    state0 : tuple of ndarray, each (B, H), `dtype`
    """
    from ..cell import Cell
    from ..cells import get

    spec = get(cell_name)
    D = int(input_size or rng.integers(1, 4))
    H = int(hidden_size or rng.integers(1, max_hidden + 1))
    T = int(length or rng.integers(1, max_length + 1))
    B = int(batch or rng.integers(1, 3))
    fb = forget_bias
    if fb is None and spec.forget_gate is not None:
        fb = float(rng.uniform(-1.0, 3.0))
    cell = Cell(spec, D, H, dtype=np.float64, seed=int(rng.integers(2**31)), forget_bias=fb)
    s = float(scale if scale is not None else rng.uniform(0.5, 2.0))
    for value in cell.params.values():
        value *= s
    if fb is not None:
        rows = cell.gate_slice(spec.forget_gate)
        cell.params["bias_ih"][rows] = fb
        cell.params["bias_hh"][rows] = 0.0
    if zero_recurrence:
        cell.params["weight_hh"][:] = 0.0
    if np.dtype(dtype) != np.float64:
        cell = cell.astype(dtype)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    state0 = tuple((state_scale * rng.uniform(-1, 1, size=(B, H))).astype(dtype)
                   for _ in spec.state)
    return cell, x, state0


def step_jacobians(cell, x, state0=None, *, method: str = "vjp", wrt_x: bool = False):
    """The one-step Jacobian of every step, ``d s_t / d s_{t-1}``, from the backward pass.

    Parameters
    ----------
    cell : Cell
    x : ndarray, shape (T, B, D)
    state0 : array, tuple or dict, optional
        As for :meth:`Cell.forward`.
    method : {"vjp", "flow"}
        ``"vjp"``: rows from :meth:`Cell.backward` (one batched forward and backward call);
        ``"flow"``: :func:`gradflow.state_jacobians` (an error if it is not available).
    wrt_x : bool
        Also return ``d s_t / d x_t`` (``"vjp"`` only).

    Returns
    -------
    trace : Trace
        The forward pass over `x`.
    J : ndarray, shape (T, B, S*H, S*H), the cell's dtype
        ``J[t, b, s*H + j, q*H + k] = d s_t[j] / d q_{t-1}[k]`` (components in
        ``spec.state`` order).
    Jx : ndarray, shape (T, B, S*H, D)
        Only with `wrt_x`.
    """
    if method not in ("vjp", "flow"):
        raise InvalidArgumentError(f"`method` must be 'vjp' or 'flow'; got {method!r}")
    trace = cell.forward(x, state0)
    T, B, D = trace.x.shape
    S, H = len(cell.spec.state), cell.hidden_size
    if method == "flow":
        sj = state_jacobians(cell, trace.x, state0=tuple(trace.states[:, 0]))
        return (trace, np.asarray(sj.full)) if not wrt_x else (trace, np.asarray(sj.full),
                                                                np.asarray(sj.input))
    N = S * H
    prev = trace.states[:, :T].reshape(S, T * B, H)
    rep = np.repeat(prev, N, axis=1)                       # (S, T*B*N, H)
    xr = np.repeat(trace.x.reshape(T * B, D), N, axis=0)[None]
    one = cell.forward(xr, tuple(rep[s] for s in range(S)))
    seed = np.zeros((S, T * B, N, H), dtype=cell.dtype)
    for r in range(N):
        seed[r // H, :, r, r % H] = 1.0
    seed = seed.reshape(S, T * B * N, H)
    g = one.cell.backward(one, dstate=tuple(seed[s] for s in range(S)))
    J = np.concatenate([g.state0[s].reshape(T, B, N, H) for s in cell.spec.state], axis=-1)
    if wrt_x:
        return trace, J, g.x[0].reshape(T, B, N, D)
    return trace, J


def central_difference(fun, theta: np.ndarray, indices, eps: float):
    """Central differences of the scalar `fun` with respect to entries of `theta`.

    `theta` is modified in place during the evaluation and restored.  Returns
    ``(grad, kink)`` where ``kink[k]`` flags entries whose one-sided differences disagree
    by more than ``max(1e-4, 1e-3 |grad|)``, i.e. a non-differentiable point within
    ``eps`` (a ReLU at 0).
    """
    n = len(indices)
    grad = np.empty(n)
    kink = np.zeros(n, dtype=bool)
    f0 = fun()
    for k, idx in enumerate(indices):
        old = theta[idx]
        h = eps * max(1.0, abs(old))
        theta[idx] = old + h
        fp = fun()
        theta[idx] = old - h
        fm = fun()
        theta[idx] = old
        grad[k] = (fp - fm) / (2 * h)
        right, left = (fp - f0) / h, (f0 - fm) / h
        kink[k] = abs(right - left) > max(1e-4, 1e-3 * abs(grad[k]))
    return grad, kink

