"""How result objects show themselves: a short repr (shapes and a few numbers, not whole
arrays), a small table and figure in Jupyter (``_repr_html_``), and a tidy
``pandas.DataFrame`` (``to_frame()``), the shape seaborn and plotting code expect.

A result class derives from :class:`Displayed`, lists in ``_shown`` the fields its repr
summarises, and implements ``_frame_columns()`` (columns of equal length) and, for the
figure, ``_plot(ax)``.
"""

from __future__ import annotations

import base64
import html

import numpy as np

from .errors import MissingDependencyError

__all__ = ["Displayed", "summary", "pandas"]


def pandas():
    """The pandas module, or an error that says how to install it."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError(
            'to_frame() needs pandas; install it with pip install "gradflow-rnn[frames]"') from None
    return pd


def summary(value) -> str:
    """A value in a few characters: arrays as ``shape dtype [first .. last]``."""
    if isinstance(value, np.ndarray):
        flat = value.ravel()
        if flat.size == 0:
            return f"array{value.shape}"
        head = ", ".join(f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)
                         for v in flat[:2])
        tail = f" .. {flat[-1]:.4g}" if flat.size > 2 and flat.dtype.kind == "f" else \
            (f" .. {flat[-1]}" if flat.size > 2 else "")
        return f"array{value.shape} {value.dtype} [{head}{tail}]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {summary(v)}" for k, v in list(value.items())[:4]) + \
            (", ..." if len(value) > 4 else "") + "}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Displayed:
    """Mixin: short repr, ``_repr_html_`` and ``to_frame()`` from ``_shown``,
    ``_frame_columns()`` and ``_plot(ax)``."""

    _shown: tuple = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={summary(getattr(self, name))}" for name in self._shown)
        return f"{type(self).__name__}({fields})"

    def _frame_columns(self) -> dict:  # pragma: no cover - every result implements it
        raise NotImplementedError

    def to_frame(self):
        """The result as a tidy ``pandas.DataFrame``: one row per measured number, with
        the coordinates (lag, batch row, unit ...) as columns."""
        return pandas().DataFrame(self._frame_columns())

    def _plot(self, ax) -> None:
        return None

    def _figure_svg(self) -> str:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            return ""
        import io

        from .plot import RC, new_figure

        fig, ax = new_figure(width=4.8, height=2.6)
        if self._plot(ax) is False:
            return ""
        buf = io.BytesIO()
        with matplotlib.rc_context(RC):
            fig.savefig(buf, format="svg", metadata={"Date": None})
        uri = base64.b64encode(buf.getvalue()).decode("ascii")
        return f'<img alt="{html.escape(type(self).__name__)}" src="data:image/svg+xml;base64,{uri}">'

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
                       f"<td style='text-align:left'><code>{html.escape(summary(getattr(self, name)))}"
                       "</code></td></tr>" for name in self._shown)
        return (f"<div><strong>{html.escape(type(self).__name__)}</strong>"
                f"<table>{rows}</table>{self._figure_svg()}</div>")
