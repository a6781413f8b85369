"""Gradient norms against lag, ‖∂L/∂h_k‖, from the cell's own backward pass.

:meth:`~gradflow.Cell.backward` returns the gradient of the initial state.  Run on a one-step
piece of a trace with the gradient of that step's output state given as ``dstate``, it
carries a state gradient back one step; chaining the pieces from the end gives the total
derivative ``∂L/∂s_k`` at every step k — the same numbers as one full backward pass, kept
step by step.  Each sequence's gradient is renormalised after every step and its scale
kept as a base-10 logarithm, so a norm of 1e-400 comes out as -400, not 0.
"""

from __future__ import annotations

import numpy as np

from ..cell import Trace

__all__ = ["state_gradient_log10_norms", "lag_curve"]


def state_gradient_log10_norms(cell, trace: Trace, dh: np.ndarray) -> np.ndarray:
    """``log10 ‖∂L/∂h_k‖`` for every step k and every sequence.

    Parameters
    ----------
    cell : Cell
        The cell that computed `trace`.
    trace : Trace
        ``cell.forward(x)`` for x of shape (T, B, D).
    dh : ndarray, shape (T, B, H), float
        dL/dh_t from outside the recurrence (``dh[t]`` acts on ``h_{t+1}`` = ``trace.h[t]``).

    Returns
    -------
    ndarray, shape (T + 1, B), float64
        Row k is ``log10 ‖∂L/∂h_k‖₂`` per sequence, ``h_0`` the initial state; ``-inf``
        where the gradient is exactly zero (after the last step the loss reads).
    """
    T, B, H = trace.h.shape
    S = len(cell.spec.state)
    out = np.full((T + 1, B), -np.inf)
    g = np.zeros((S, B, H), dtype=trace.x.dtype)      # gradient / 10**scale
    scale = np.full(B, -np.inf)
    with np.errstate(divide="ignore"):
        for t in range(T - 1, -1, -1):
            # total gradient on s_{t+1}: what came back from later steps + the direct dh[t]
            top = np.log10(np.abs(dh[t]).max(axis=-1))
            m = np.maximum(scale, top)
            m = np.where(np.isfinite(m), m, 0.0)
            g *= np.where(np.isfinite(scale), 10.0 ** (scale - m), 0.0)[None, :, None]
            peak = np.abs(dh[t]).max(axis=-1)
            ratio = np.where(peak > 0, 10.0 ** (np.where(peak > 0, top, m) - m), 0.0)
            g[0] += dh[t] / np.where(peak > 0, peak, 1.0)[:, None] * ratio[:, None]
            out[t + 1] = np.log10(np.linalg.norm(g[0], axis=-1)) + m
            back = cell.backward(trace.slice(t, t + 1), dstate=tuple(g))
            g = np.stack([back.state0[s] for s in cell.spec.state])
            n = np.abs(g).max(axis=(0, 2))
            safe = np.where(n > 0, n, 1.0)
            g /= safe[None, :, None]
            scale = np.where(n > 0, m + np.log10(safe), -np.inf)
        out[0] = np.log10(np.linalg.norm(g[0], axis=-1)) + scale
    return out


def lag_curve(log_norms: np.ndarray, ends: np.ndarray, max_lag: int) -> np.ndarray:
    """Median over sequences of ``log10 ‖∂L/∂h_{end - lag}‖`` for lag = 0 .. max_lag.

    Parameters
    ----------
    log_norms : ndarray, shape (T + 1, B)
        From :func:`state_gradient_log10_norms`.
    ends : ndarray, shape (B,), int
        Index k of each sequence's output state h_k (its length).
    max_lag : int
        At most ``min(ends)``.

    Returns
    -------
    ndarray, shape (max_lag + 1,), float64
    """
    lags = np.arange(max_lag + 1)
    idx = ends[None, :] - lags[:, None]                      # (L, B)
    vals = np.take_along_axis(log_norms, idx, axis=0)
    return np.median(vals, axis=1)
