"""The report's figures as functions of your own results, returning matplotlib Axes.

Each function takes a result object of gradflow (or plain arrays) and an optional ``ax``;
without one it makes a figure in the report's style.  The report's studies draw with the
same functions.  Needs matplotlib (``pip install "gradflow-rnn[report]"``).

>>> import numpy as np, gradflow
>>> from gradflow import plot
>>> flow = gradflow.gradient_flow(gradflow.Cell("lstm", 2, 8, seed=0), np.zeros((50, 3, 2)))
>>> ax = plot.lag_map(flow, label="lstm")
>>> ax.get_xlabel()
'lag k (time steps)'
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["RC", "CELL_COLORS", "cell_color", "new_figure", "band_summary", "lag_map",
           "path_decomposition", "singular_values", "singular_value_labels", "lyapunov", "horizons", "training_curves",
           "heatmap", "phase_map"]

#: matplotlib settings of every gradflow figure.
RC = {
    "svg.hashsalt": "gradflow-report",
    "svg.fonttype": "path",
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "legend.fontsize": 8.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.5,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "mathtext.fontset": "cm",
    "path.simplify": True,
}

#: A fixed colour per catalogue cell, so a cell looks the same in every figure.
CELL_COLORS = {
    "rnn": "#d62728",
    "rnn-relu": "#ff9896",
    "rnn-linear": "#8c564b",
    "lstm": "#1f77b4",
    "lstm-nfg": "#17becf",
    "lstm-peephole": "#9467bd",
    "lstm-cifg": "#2ca02c",
    "lstm-nig": "#bcbd22",
    "lstm-nog": "#e377c2",
    "lstm-niaf": "#7f7f7f",
    "lstm-noaf": "#ff7f0e",
    "gru": "#2ca02c",
    "gru-cho": "#98df8a",
    "mgu": "#c5b0d5",
}
_FALLBACK = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")

LAG_LABEL = "lag k (time steps)"
LAG_NORM_LABEL = r"$\log_{10}\,\|\partial h_T/\partial h_{T-k}\|_2$"


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ImportError('gradflow.plot needs matplotlib: pip install "gradflow-rnn[report]"') from None
    return matplotlib


def cell_color(name: str) -> str:
    """The colour of cell `name` (a stable fallback for cells outside the catalogue)."""
    if name in CELL_COLORS:
        return CELL_COLORS[name]
    return _FALLBACK[sum(map(ord, name)) % len(_FALLBACK)]


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 3.6,
               sharex: bool = False, sharey: bool = False):
    """A figure with a grid of axes, in the report's style, detached from pyplot.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or ndarray of Axes
        One ``Axes`` when ``ncols == nrows == 1``.
    """
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=True)
    return fig, axes


def _axes(ax, **figure):
    if ax is None:
        return new_figure(**figure)[1]
    return ax


def band_summary(values, quantiles=(0.1, 0.9)):
    """``(median, low, high)`` over the last axis of `values` (K, B): what the band plots draw.

    NaN where every value is NaN; ``-inf`` values (exact zeros) count as the lowest."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    q = np.asarray(quantiles, dtype=float)
    if q.shape != (2,) or not (0 <= q[0] <= q[1] <= 1):
        raise InvalidArgumentError(f"`quantiles` must be a pair 0 <= lo <= hi <= 1; got {quantiles!r}")
    with np.errstate(invalid="ignore"):
        return (np.median(v, axis=-1), np.quantile(v, q[0], axis=-1), np.quantile(v, q[1], axis=-1))


def _curve(source, lags, attr):
    """(lags (K,), values (K, B)) from a result object or arrays."""
    if hasattr(source, attr) and hasattr(source, "lags"):
        values = getattr(source, attr)
        if values is None:
            raise InvalidArgumentError(f"the result holds no {attr} (it was not computed)")
        return np.asarray(source.lags), np.asarray(values)
    values = np.asarray(source, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise InvalidArgumentError(f"`values` must have shape (K,) or (K, B); got {values.shape}")
    lags = np.arange(values.shape[0]) if lags is None else np.asarray(lags)
    if lags.shape != (values.shape[0],):
        raise InvalidArgumentError(f"`lags` must have shape ({values.shape[0]},); got {lags.shape}")
    return lags, values


def lag_map(flow, lags=None, *, ax=None, which: str = "h", quantiles=(0.1, 0.9), label=None,
            color=None, band: bool = True):
    """log10 of the gradient norm against the lag: the median over the batch as a line and
    the quantile band around it.

    Parameters
    ----------
    flow : GradientFlow or array_like, shape (K,) or (K, B)
        A result of :func:`gradflow.gradient_flow` (``which="h"``: ``log10_h``;
        ``"state"``: ``log10_state``), or log10 norms at `lags`.
    lags : array_like, shape (K,), optional
        For an array `flow` (default 0 .. K-1).
    ax : matplotlib Axes, optional
    quantiles : (float, float)
        The band's quantiles over the batch.
    label, color : optional
        For the legend; `color` defaults to the cell's colour when `flow` knows its cell.
    band : bool
        Draw the band (and not only the median).

    Returns
    -------
    matplotlib.axes.Axes
    """
    attr = {"h": "log10_h", "state": "log10_state"}.get(which)
    if attr is None:
        raise InvalidArgumentError(f"`which` must be 'h' or 'state'; got {which!r}")
    k, values = _curve(flow, lags, attr)
    med, lo, hi = band_summary(values, quantiles)
    ax = _axes(ax)
    name = getattr(flow, "cell_name", "") or ""
    color = color or (cell_color(name) if name else None)
    (line,) = ax.plot(k, med, color=color, label=label)
    if band and values.ndim == 2 and values.shape[1] > 1:
        ax.fill_between(k, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel(LAG_LABEL)
    ax.set_ylabel(LAG_NORM_LABEL if which == "h" else
                  r"$\log_{10}\,\|\partial s_T/\partial s_{T-k}\|_2$")
    return ax


def path_decomposition(paths, *, ax=None, quantiles=(0.1, 0.9), color=None, label=None):
    """The direct path (dashed) and the total (solid) against the lag: how much of the
    gradient the cell state (LSTM) or the leak (GRU) carries.

    Parameters
    ----------
    paths : PathDecomposition
        From :func:`gradflow.path_decomposition` (with ``total=True``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not hasattr(paths, "log10_path"):
        raise InvalidArgumentError(f"`paths` must be a PathDecomposition; got {type(paths).__name__}")
    ax = _axes(ax)
    k = np.asarray(paths.lags)
    med, lo, hi = band_summary(paths.log10_path, quantiles)
    (line,) = ax.plot(k, med, ls="--", color=color, label=f"{label or paths.component} path")
    ax.fill_between(k, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    if paths.log10_total is not None:
        ax.plot(k, band_summary(paths.log10_total, quantiles)[0], color=line.get_color(),
                label=f"{label or paths.component} total")
    ax.set_xlabel(LAG_LABEL)
    ax.set_ylabel(rf"$\log_{{10}}$ norm of $\partial {paths.component}_T/\partial "
                  rf"{paths.component}_{{T-k}}$")
    return ax


def singular_values(sv, *, axes=None, color=None, label=None, show_floor: bool = True):
    """The singular values of the Jacobian products, one panel per lag: log10 sigma_i
    against the index i (median over the batch); values under the rounding floor of the
    product are left out.

    Parameters
    ----------
    sv : SingularValues
        From :func:`gradflow.jacobian_singular_values`.
    axes : sequence of Axes, optional
        One per lag of `sv` (default: a new row of panels with shared axis labels; with
        your own axes, label them, e.g. with :func:`singular_value_labels`).

    Returns
    -------
    list of matplotlib.axes.Axes
    """
    if not hasattr(sv, "log10_floor"):
        raise InvalidArgumentError(f"`sv` must be a SingularValues result; got {type(sv).__name__}")
    K = len(sv.lags)
    if axes is None:
        fig, axes = new_figure(ncols=K, width=2.2 * K + 1.0, height=3.4)
        axes = np.atleast_1d(axes)
        singular_value_labels(fig)
    for a, (ax, k) in enumerate(zip(axes, sv.lags)):
        v = np.median(sv.log10[a], axis=0)
        floor = float(np.max(sv.log10_floor[a]))
        keep = np.isfinite(v) & (v > floor) if show_floor else np.isfinite(v)
        ax.plot(np.arange(1, v.size + 1)[keep], v[keep], color=color, label=label, marker=".", ms=3)
        ax.set_title(f"lag k = {k}")
    return list(axes)


def singular_value_labels(fig) -> None:
    """The shared axis labels of a row of :func:`singular_values` panels."""
    fig.supxlabel("singular value index i (1 = largest)")
    fig.supylabel(r"$\log_{10}\,\sigma_i(\partial h_T/\partial h_{T-k})$")


def lyapunov(spectrum, *, ax=None, color=None, label=None):
    """The Lyapunov exponents (log10 per step, median over the batch) against their index
    as a fraction of the state size.

    Parameters
    ----------
    spectrum : LyapunovSpectrum or array_like, shape (p,) or (B, p)
        From :func:`gradflow.lyapunov_spectrum`, or exponents in log10 per step.

    Returns
    -------
    matplotlib.axes.Axes
    """
    lam = spectrum.log10_per_step if hasattr(spectrum, "log10_per_step") else np.asarray(spectrum, float)
    lam = np.atleast_2d(lam)
    med = np.median(lam, axis=0)
    keep = np.isfinite(med)
    frac = np.arange(1, med.size + 1) / med.size
    ax = _axes(ax)
    ax.plot(frac[keep], med[keep], color=color, label=label)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xlabel("exponent index / state size (fraction)")
    ax.set_ylabel("Lyapunov exponent (log10 per step)")
    return ax


def horizons(values, *, ax=None, color=None, label=None, bins: int = 20):
    """A histogram of memory horizons (lags), such as the per-unit horizons of
    :func:`gradflow.memory_horizon`; units whose horizon is infinite are counted apart, in
    the label.

    Returns
    -------
    matplotlib.axes.Axes
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    finite = v[np.isfinite(v)]
    ax = _axes(ax)
    n_inf = int(np.sum(np.isinf(v)))
    text = (label or "units") + (f" ({n_inf} beyond the longest lag)" if n_inf else "")
    ax.hist(finite if finite.size else [0.0], bins=bins, color=color, alpha=0.75, label=text)
    ax.set_xlabel("memory horizon (time steps)")
    ax.set_ylabel("units (count)")
    return ax


def training_curves(result, *, ax=None, color=None, label=None, smooth: int = 20):
    """The training loss against the sequences seen (a running mean over `smooth` updates).

    Parameters
    ----------
    result : TrainResult
        From :func:`gradflow.train.train`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    h = getattr(result, "history", None)
    if not isinstance(h, dict) or "loss" not in h:
        raise InvalidArgumentError(f"`result` must be a TrainResult; got {type(result).__name__}")
    loss = np.asarray(h["loss"], dtype=np.float64)
    n = max(1, min(int(smooth), loss.size))
    running = np.convolve(loss, np.ones(n) / n, mode="valid")
    seen = np.asarray(h["sequences"])[n - 1:]
    ax = _axes(ax)
    ax.plot(seen, running, color=color, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("training sequences seen (count)")
    ax.set_ylabel("training loss (running mean)")
    return ax


def heatmap(values, *, ax=None, x=None, y=None, xlabel: str = "time step t",
            ylabel: str = "layer", colorbar: str = r"$\log_{10}\,\|\partial L/\partial h\|$",
            cmap: str = "viridis"):
    """A heatmap of log10 gradient norms, such as layers x time or units x time.

    Parameters
    ----------
    values : array_like, shape (rows, columns)
        -inf (exact zeros) is drawn in the colour map's lowest colour.

    Returns
    -------
    matplotlib.axes.Axes
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise InvalidArgumentError(f"`values` must be 2-D (rows, columns); got {v.shape}")
    finite = v[np.isfinite(v)]
    lo = float(finite.min()) if finite.size else 0.0
    ax = _axes(ax)
    extent = None
    if x is not None and y is not None:
        x, y = np.asarray(x), np.asarray(y)
        extent = (x[0] - 0.5, x[-1] + 0.5, y[-1] + 0.5, y[0] - 0.5)
    img = ax.imshow(np.where(np.isneginf(v), lo, v), aspect="auto", cmap=cmap,
                    interpolation="nearest", extent=extent)
    bar = ax.figure.colorbar(img, ax=ax)
    bar.set_label(colorbar)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def phase_map(values, x, y, *, ax=None, edge=None, edge_x=None, edge_y=None,
              level: float = 0.0, xlabel: str = "", ylabel: str = "", colorbar: str = "",
              cmap: str = "viridis", vmin=None, vmax=None, center: float | None = None,
              xlog: bool = False, ylog: bool = False):
    """A map of `values` over a grid of two parameters, with the contour ``edge == level``
    drawn over it (the edge of chaos, when `edge` holds the largest Lyapunov exponent).

    Parameters
    ----------
    values : array_like, shape (len(y), len(x))
        The measurement at each grid point (NaN: not measured, left blank).
    x, y : array_like
        The parameters' values (increasing, not necessarily evenly spaced).
    edge : array_like, shape (len(edge_y), len(edge_x)), optional
        A field whose `level` set is drawn as a white-edged black line, where its grid has
        at least two points along both axes.
    edge_x, edge_y : array_like, optional
        The grid of `edge`, when it is not that of `values` (a finer map's contour drawn
        over a coarser one).
    center : float, optional
        Centre a diverging colour map on this value (with `cmap` such as ``"RdBu_r"``):
        values below and above it each span their half of the map, and the colour bar is
        ticked on both halves.
    xlog, ylog : bool
        Logarithmic axes (for geometrically spaced parameters, e.g. an input scale).

    Returns
    -------
    matplotlib.axes.Axes
    """
    v = np.asarray(values, dtype=np.float64)
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if v.ndim != 2 or v.shape != (len(y), len(x)):
        raise InvalidArgumentError(
            f"`values` must have shape (len(y), len(x)) = {(len(y), len(x))}; got {v.shape}")
    ex = x if edge_x is None else np.asarray(edge_x, dtype=np.float64)
    ey = y if edge_y is None else np.asarray(edge_y, dtype=np.float64)
    if edge is not None:
        edge = np.asarray(edge, dtype=np.float64)
        if edge.shape != (len(ey), len(ex)):
            raise InvalidArgumentError(
                f"`edge` must have shape (len(edge_y), len(edge_x)) = {(len(ey), len(ex))}; "
                f"got {edge.shape}")
    ax = _axes(ax)
    finite = v[np.isfinite(v)]
    norm = None
    if center is not None and finite.size:
        from matplotlib.colors import TwoSlopeNorm

        # each side of the centre gets its half of the colour map, however unequal their
        # ranges (a faint positive exponent is as visible as a strongly negative one)
        span = max(float(np.max(np.abs(finite - center))), 1e-12)
        lo = float(finite.min()) if finite.min() < center else center - 0.05 * span
        hi = float(finite.max()) if finite.max() > center else center + 0.05 * span
        norm, vmin, vmax = TwoSlopeNorm(vcenter=center, vmin=lo, vmax=hi), None, None
    for name, axis, log in (("x", x, xlog), ("y", y, ylog)):
        if len(axis) > 1 and np.any(np.diff(axis) <= 0) or (log and np.any(axis <= 0)):
            raise InvalidArgumentError(
                f"`{name}` must be increasing{' and positive (log axis)' if log else ''}; "
                f"got {axis.tolist()}")
    img = ax.pcolormesh(_edges(x, xlog), _edges(y, ylog), np.ma.masked_invalid(v), cmap=cmap, vmin=vmin,
                        vmax=vmax, norm=norm, shading="flat")
    bar = ax.figure.colorbar(img, ax=ax)
    bar.set_label(colorbar)
    if norm is not None:  # ticks on both halves, however short one of them is
        bar.set_ticks([norm.vmin, norm.vmin / 2 + center / 2, center,
                       norm.vmax / 2 + center / 2, norm.vmax])
        bar.set_ticklabels([f"{t:.2g}" for t in bar.get_ticks()])
    if (edge is not None and len(ex) > 1 and len(ey) > 1
            and np.nanmin(edge) < level < np.nanmax(edge)):
        X, Y = np.meshgrid(ex, ey)
        ax.contour(X, Y, edge, levels=[level], colors="white", linewidths=3.0)
        ax.contour(X, Y, edge, levels=[level], colors="black", linewidths=1.4)
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(False)
    return ax


def _edges(centers: np.ndarray, log: bool = False) -> np.ndarray:
    """Cell edges around grid values: midpoints (geometric on a log axis), and half a step
    beyond the ends."""
    if log:
        return np.exp(_edges(np.log(centers)))
    if len(centers) == 1:
        return np.array([centers[0] - 0.5, centers[0] + 0.5])
    mid = (centers[1:] + centers[:-1]) / 2
    return np.r_[2 * centers[0] - mid[0], mid, 2 * centers[-1] - mid[-1]]
