"""One look for every figure of the report, and deterministic SVG output.

Studies draw with :func:`new_figure` and colour cells with :func:`cell_color`; the writer
saves with :func:`figure_svg`, which fixes the SVG id salt and drops the date so that the
same numbers give the same bytes.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

__all__ = ["RC", "CELL_COLORS", "cell_color", "new_figure", "figure_svg", "style", "log10_axis_label"]

#: matplotlib settings of every report figure.
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


def cell_color(name: str) -> str:
    """The colour of cell `name` (a stable fallback for cells outside the catalogue)."""
    if name in CELL_COLORS:
        return CELL_COLORS[name]
    return _FALLBACK[sum(map(ord, name)) % len(_FALLBACK)]


@contextmanager
def style():
    """A context in which matplotlib uses the report's settings."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 6.4, height: float = 3.6,
               sharex: bool = False, sharey: bool = False):
    """A figure with a grid of axes, in the report's style, detached from pyplot.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or ndarray of Axes
        One ``Axes`` when ``ncols == nrows == 1``.
    """
    import matplotlib

    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, sharex=sharex, sharey=sharey, squeeze=True)
    return fig, axes


def figure_svg(fig) -> bytes:
    """The figure as SVG bytes: glyphs as paths (no fonts needed), no date, fixed ids."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def log10_axis_label(quantity: str) -> str:
    """Axis label for a base-10 logarithm of a dimensionless `quantity`."""
    return f"log10 {quantity} (dimensionless)"
