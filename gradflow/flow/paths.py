"""The direct path of a state component through time, and memory horizons.

For an LSTM the cell state reaches back along ``c_t = f_t * c_{t-1} + ...``: the product
of the direct edges ``d c_t / d c_{t-1}`` (through the unit map only) is ``diag(Pi f)``.
For a GRU the hidden state leaks along ``h_t = z_t * h_{t-1} + ...``: ``diag(Pi z)``.
The logs of the edges come from the generated ``logdirect_units`` and are summed, so the
product never underflows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validate as check
from ..cell import Cell, Trace, as_cell
from .._display import Displayed
from ..errors import InvalidArgumentError
from . import _steps as steps
from .lagmap import GradientFlow

__all__ = ["PathDecomposition", "path_decomposition", "memory_horizon", "self_edges"]

_LN10 = math.log(10.0)


@dataclass(eq=False, repr=False)
class PathDecomposition(Displayed):
    """The direct-edge path of one state component against the total, per lag.

    Attributes
    ----------
    component : str
        The state component (``"c"`` for LSTMs, ``"h"`` for GRUs).
    lags : ndarray, shape (K,), int64
    log10_path_units : ndarray, shape (K, B, H), float64
        ``log10 |prod_{t=T-k+1..T} d s_t[j] / d s_{t-1}[j]|`` per unit j (the diagonal of
        the path product; for the LSTM ``log10 prod f``).
    log10_path : ndarray, shape (K, B), float64
        log10 of the norm of the diagonal path product.
    log10_total : ndarray, shape (K, B), float64, or None
        log10 of the norm of the total ``d s_T / d s_{T-k}`` for the component (block of
        the full product); None when ``total=False``.
    log10_share : ndarray, shape (K, B), float64, or None
        ``log10_path - log10_total``: the ratio of the path's norm to the total's (0 when
        the path is all there is; it can exceed 0 when other paths cancel part of it).
    norm : str
    """

    component: str
    lags: np.ndarray
    log10_path_units: np.ndarray
    log10_path: np.ndarray
    log10_total: np.ndarray | None
    log10_share: np.ndarray | None
    norm: str

    _shown = ("component", "norm", "lags", "log10_path", "log10_total", "log10_share")

    def _frame_columns(self) -> dict:
        """One row per lag and batch row: the path, the total and the share (log10)."""
        K, B = self.log10_path.shape
        cols = {"lag": np.repeat(self.lags, B), "batch": np.tile(np.arange(B), K),
                "log10_path": self.log10_path.ravel()}
        if self.log10_total is not None:
            cols["log10_total"] = self.log10_total.ravel()
            cols["log10_share"] = self.log10_share.ravel()
        return cols

    def units_frame(self):
        """The per-unit path (``log10_path_units``) as a tidy DataFrame: lag, batch, unit."""
        from .._display import pandas

        K, B, H = self.log10_path_units.shape
        lag, b, unit = np.meshgrid(self.lags, np.arange(B), np.arange(H), indexing="ij")
        return pandas().DataFrame({"lag": lag.ravel(), "batch": b.ravel(), "unit": unit.ravel(),
                                   "log10_path": self.log10_path_units.ravel()})

    def _plot(self, ax):
        from ..plot import path_decomposition

        path_decomposition(self, ax=ax)

    @property
    def share(self) -> np.ndarray | None:
        """``10 ** log10_share``, shape (K, B) (underflows to 0 where the share is below
        the float64 range; use ``log10_share`` then)."""
        return None if self.log10_share is None else 10.0 ** self.log10_share


def self_edges(spec) -> tuple[str, ...]:
    """The state components of `spec` with a direct self edge ``s_t <- s_(t-1)`` (a
    partial derivative d/ds_prev of their update that is not identically 0): those
    :func:`path_decomposition` can follow (``("c",)`` for the LSTM, ``("h",)`` for
    the GRU, none for the vanilla RNNs)."""
    P = spec.partials()
    return tuple(s for s in spec.state if P[(s, f"{s}_prev")] != 0)


def _path_component(spec, component):
    has = self_edges(spec)
    if component is not None:
        if not isinstance(component, str) or component not in spec.state:
            raise InvalidArgumentError(
                f"`component` {component!r:.60} is not a state component of {spec.name!r}; "
                f"expected one of {list(spec.state)}"
            )
        if component not in has:
            raise InvalidArgumentError(
                f"cell {spec.name!r} has no direct edge {component}_t <- {component}_(t-1): "
                "d/d{0}_prev of its update is identically 0".format(component)
            )
        return component
    if not has:
        raise InvalidArgumentError(
            f"cell {spec.name!r} has no direct self edge of any state component "
            f"({list(spec.state)}): every path back in time goes through the recurrent "
            "weights, so there is no path to decompose"
        )
    return has[-1]


def _log_path(trace, comp_index):
    """Natural log of the path product per unit for every lag 0..T: (T + 1, B, H)."""
    cell = trace.cell
    T, B, H = trace.length, trace.batch_size, cell.hidden_size
    out = np.empty((T, len(cell.spec.state), B, H), dtype=cell.dtype)
    a = trace.kernel_arrays()
    cell.kernels.logdirect_kernel(a["ax"], a["ah1"], a["ah2"], a["states"], trace.unit_params(), out)
    logs = np.zeros((T + 1, B, H))
    # lag k covers array steps T-k .. T-1
    logs[1:] = np.cumsum(out[::-1, comp_index].astype(np.float64), axis=0)
    return logs


def _diag_norm(log_units, spectral):
    """log10 norm of diag(exp(log_units)) over the last axis."""
    if spectral:
        return log_units.max(axis=-1) / _LN10
    m = log_units.max(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.log(np.sum(np.exp(2.0 * (log_units - np.where(np.isfinite(m), m, 0.0))), axis=-1))
    return (0.5 * s + np.where(np.isfinite(m[..., 0]), m[..., 0], -np.inf)) / _LN10


def path_decomposition(cell, x, state0=None, *, component: str | None = None, lags=None,
                       norm: str = "spectral", total: bool = True) -> PathDecomposition:
    """The part of ``d s_T / d s_{T-k}`` carried by the direct self edge of a component.

    Parameters
    ----------
    cell : Cell
        A cell with a direct self edge (LSTMs: ``c``; GRU, MGU: ``h``).
    x : array_like, shape (T, B, D)
    state0 : array, tuple or dict, optional
    component : str, optional
        The component; by default the (last) one with a direct self edge.
    lags : sequence of int, optional
        Lags in [0, T]; default all.
    norm : {"spectral", "frobenius"}
    total : bool
        Also propagate the full Jacobian product for the total (costs a lag map).

    Returns
    -------
    PathDecomposition

    Raises
    ------
    InvalidArgumentError
        If the cell has no direct self edge (the vanilla RNNs).

    Examples
    --------
    >>> import numpy as np, gradflow
    >>> cell = gradflow.Cell("lstm", input_size=2, hidden_size=4, seed=0)
    >>> pd = gradflow.path_decomposition(cell, np.zeros((30, 1, 2)))
    >>> pd.component, pd.log10_path_units.shape, pd.log10_share.shape
    ('c', (31, 1, 4), (31, 1))
    """
    spectral = steps.spectral(norm)
    as_cell(cell)
    comp = _path_component(cell.spec, component)
    trace = steps.run(cell, x, state0)
    T, H = trace.length, cell.hidden_size
    lags = check.lags(lags, T)
    a = cell.spec.state.index(comp)
    logs = _log_path(trace, a)[lags]
    log10_units = logs / _LN10
    log10_path = _diag_norm(logs, spectral)
    log10_total = log10_share = None
    if total:
        st = steps.Steps(trace)
        blocks = np.asarray([(0, H, a * H, (a + 1) * H)], np.int64)
        out = st.backward_products(a * H + np.arange(H), blocks, lags, spectral)[0]
        log10_total = out[0]
        with np.errstate(invalid="ignore"):
            log10_share = log10_path - log10_total
    return PathDecomposition(component=comp, lags=lags, log10_path_units=log10_units,
                             log10_path=log10_path, log10_total=log10_total,
                             log10_share=log10_share, norm=norm)


def memory_horizon(source, x=None, *, threshold: float = 1e-3, lags=None, state0=None,
                   norm: str = "spectral") -> np.ndarray | float:
    """The lag at which a gradient norm first falls below `threshold` times its lag-0 value.

    Parameters
    ----------
    source : GradientFlow, PathDecomposition, Trace, Cell or array_like
        * :class:`GradientFlow`: the curve ``log10_h``.
        * :class:`PathDecomposition`: the direct-path curve ``log10_path`` (for LSTMs the
          horizon implied by ``Pi f``).
        * a :class:`~gradflow.cell.Trace`, or a :class:`~gradflow.cell.Cell` with `x`:
          the direct-path horizon of that run (``Pi f`` for LSTMs, ``Pi z`` for GRUs).
        * an array of log10 norms, shape (K,) or (K, B), at lags `lags` (default 0..K-1).
    x : array_like, shape (T, B, D), optional
        The input when `source` is a Cell.
    threshold : float
        Relative level in (0, inf), e.g. 1e-3.
    lags : sequence of int, optional
        Lags of an array `source`.
    state0, norm
        For a Cell or Trace source.

    Returns
    -------
    ndarray, shape (B,), float64, or float for a 1-D curve
        The first lag whose norm is below ``threshold * norm(lag 0)``; ``inf`` when no
        measured lag is.

    Examples
    --------
    >>> import numpy as np, gradflow
    >>> gradflow.memory_horizon(np.array([0.0, -1.0, -2.5, -4.0]), threshold=1e-2)
    2.0
    """
    thr = float(threshold) if isinstance(threshold, (int, float, np.floating, np.integer)) else None
    if thr is None or not np.isfinite(thr) or thr <= 0:
        raise InvalidArgumentError(f"`threshold` must be a finite number > 0; got {threshold!r}")
    if isinstance(source, GradientFlow):
        curve, lag_arr = source.log10_h, source.lags
    elif isinstance(source, PathDecomposition):
        curve, lag_arr = source.log10_path, source.lags
    elif isinstance(source, (Trace, Cell)):
        if isinstance(source, Cell):
            if x is None:
                raise InvalidArgumentError("`x` is required when `source` is a Cell")
            trace = steps.run(source, x, state0)
        else:
            trace = source
        comp = _path_component(trace.cell.spec, None)
        logs = _log_path(trace, trace.cell.spec.state.index(comp))
        curve = _diag_norm(logs, steps.spectral(norm))
        lag_arr = np.arange(trace.length + 1)
    else:
        if np.iscomplexobj(source):     # a cast would drop the imaginary parts, with a warning
            raise InvalidArgumentError(
                "`source` as an array must hold real log10 norms; got complex values")
        try:
            curve = np.asarray(source, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                "`source` must be a GradientFlow, a PathDecomposition, a Trace, a Cell or an "
                f"array of log10 norms; got {type(source).__name__} {source!r:.60}"
            ) from None
        if curve.ndim not in (1, 2) or curve.shape[0] == 0:
            raise InvalidArgumentError(
                f"`source` as an array must be log10 norms of shape (K,) or (K, B); got {curve.shape}"
            )
        if np.isnan(curve).any():
            raise InvalidArgumentError("`source` holds NaN; expected log10 norms (-inf for zero)")
        lag_arr = np.arange(curve.shape[0]) if lags is None else np.asarray(lags)
        if lag_arr.dtype.kind not in "iu" or (lag_arr.ndim == 1 and np.any(np.diff(lag_arr) <= 0)):
            raise InvalidArgumentError(
                f"`lags` must be increasing integers, one per value of `source`; got {lags!r:.60}")
        if lag_arr.shape != (curve.shape[0],):
            raise InvalidArgumentError(
                f"`lags` must have shape ({curve.shape[0]},) to match `source`; got {lag_arr.shape}"
            )
    if lag_arr[0] != 0:
        raise InvalidArgumentError("the curve must start at lag 0 (the reference level)")
    level = curve[0] + math.log10(thr)
    below = curve < level
    first = np.argmax(below, axis=0)
    found = below.any(axis=0)
    out = np.where(found, lag_arr[first].astype(np.float64), np.inf)
    return float(out) if out.ndim == 0 else out
