"""One look for every figure of the report, deterministic SVG output, and the layout rules.

Studies draw with :mod:`gradflow.plot` (its :func:`~gradflow.plot.new_figure` and
:func:`~gradflow.plot.cell_color` are re-exported here); the writer saves with
:func:`figure_svg`, which fixes the SVG id salt and drops the date so that the same numbers
give the same bytes; :func:`layout_problems` finds text that is cut off or overlaps.
"""

from __future__ import annotations

import io
from contextlib import contextmanager

from ..plot import CELL_COLORS, RC, cell_color, new_figure  # noqa: F401  (the report's look)

__all__ = ["RC", "CELL_COLORS", "cell_color", "new_figure", "figure_svg", "style", "log10_axis_label",
           "layout_problems"]


@contextmanager
def style():
    """A context in which matplotlib uses the report's settings."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


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


def _drawn_ticklabels(axis, lim):
    """The tick labels of `axis` that matplotlib draws: those whose tick lies in the view."""
    lo, hi = min(lim), max(lim)
    pad = 1e-9 * max(abs(lo), abs(hi), 1.0)
    out = []
    for locs, labels in ((axis.get_majorticklocs(), axis.get_majorticklabels()),
                         (axis.get_minorticklocs(), axis.get_minorticklabels())):
        out += [t for loc, t in zip(locs, labels) if lo - pad <= loc <= hi + pad]
    return out


def _texts(fig, renderer):
    """(owner, text, window extent) of every piece of text a reader sees in `fig`: each
    axes' labels, title, drawn tick labels and legend (owner: the axes' index), and the
    figure's own labels (owner: "figure")."""
    from matplotlib.text import Text

    out, seen = [], set()
    for k, ax in enumerate(fig.get_axes()):
        if not ax.get_visible():
            continue
        ticks = _drawn_ticklabels(ax.xaxis, ax.get_xlim()) + _drawn_ticklabels(ax.yaxis, ax.get_ylim())
        every_tick = {id(t) for t in ax.get_xticklabels(which="both") + ax.get_yticklabels(which="both")}
        for t in ax.findobj(Text):
            seen.add(id(t))
            if id(t) in every_tick:
                continue  # only the drawn ones, below
            if t.get_visible() and t.get_text().strip():
                out.append((k, t.get_text(), t.get_window_extent(renderer)))
        for t in ticks:
            if t.get_visible() and t.get_text().strip():
                out.append((k, t.get_text(), t.get_window_extent(renderer)))
    for t in fig.findobj(Text):
        if id(t) not in seen and t.get_visible() and t.get_text().strip():
            out.append(("figure", t.get_text(), t.get_window_extent(renderer)))
    return out


def layout_problems(fig) -> list[str]:
    """Defects a reader would see in `fig`: text cut off by the figure's edge, and text of
    one axes overlapping text of another (labels, titles, tick labels, legends).

    Returns
    -------
    list of str
        One message per defect (empty when none).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with matplotlib.rc_context(RC):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        texts = _texts(fig, renderer)
    box = fig.bbox
    problems = []
    for owner, text, ext in texts:
        if ext.x0 < box.x0 - 1 or ext.y0 < box.y0 - 1 or ext.x1 > box.x1 + 1 or ext.y1 > box.y1 + 1:
            problems.append(f"{text!r} (axes {owner}) is cut off by the figure's edge")
    for i, (o1, t1, e1) in enumerate(texts):
        for o2, t2, e2 in texts[i + 1:]:
            if o1 != o2 and e1.overlaps(e2):
                problems.append(f"{t1!r} (axes {o1}) overlaps {t2!r} (axes {o2})")
    return problems
