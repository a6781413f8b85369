"""LaTeX to SVG without a network: matplotlib's mathtext, with graceful fallbacks.

Mathtext renders a large subset of TeX math (fractions, sub/superscripts, ``\\left(``,
``\\operatorname``, Greek letters) but no environments.  :func:`latex_rows` turns SymPy's
``aligned`` blocks into rows; :func:`render_display` lays the rows out with their ``=``
signs aligned in one SVG, breaking rows too wide for the page at top-level ``+`` signs.
Whatever mathtext still cannot parse is simplified (:func:`simplify`) and, failing that,
returned as source for the writer to show as code.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["Rendered", "latex_rows", "simplify", "split_terms", "render_display",
           "render_inline", "mathtext_ok"]

#: Font size of display equations (points) and the widest row before it is broken.
DISPLAY_SIZE = 14.0
INLINE_SIZE = 12.0
MAX_WIDTH_PT = 640.0

_ENV = re.compile(r"\\(begin|end)\{(aligned|align\*?|gathered|split|equation\*?)\}")


@dataclass
class Rendered:
    """An equation as SVG, or the reason it could not be rendered.

    Attributes
    ----------
    latex : str
        The source.
    svg : bytes or None
        The rendering (``None`` when mathtext could not parse it).
    width, height, depth : float
        Size in points (depth: below the baseline, for inline alignment).
    simplified : bool
        True when the source was simplified before rendering.
    failed : list of str
        Rows that could not be rendered.
    """

    latex: str
    svg: bytes | None = None
    width: float = 0.0
    height: float = 0.0
    depth: float = 0.0
    simplified: bool = False
    failed: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.svg is not None and not self.failed


def latex_rows(latex: str) -> list[list[str]]:
    """Split `latex` into rows, each ``[lhs, rhs]`` (aligned at ``&``) or ``[text]``.

    ``aligned`` environments (one or several, e.g. joined by ``\\qquad``) become their rows
    in order; a plain formula is one row.
    """
    body = _ENV.sub("\n", latex)
    body = body.replace(r"\qquad", "\n") if _ENV.search(latex) else body
    rows = []
    for chunk in re.split(r"\\\\|\n", body):
        chunk = chunk.strip()
        if not chunk:
            continue
        if "&" in chunk:
            lhs, rhs = chunk.split("&", 1)
            rows.append([lhs.strip(), rhs.replace("&", "").strip()])
        else:
            rows.append([chunk])
    return rows


_SIMPLIFY = [
    (re.compile(r"\\operatorname\{([^{}]*)\}"), r"\\mathrm{\1}"),
    (re.compile(r"\\text\{([^{}]*)\}"), r"\\mathrm{\1}"),
    (re.compile(r"\\[dt]frac"), r"\\frac"),
    (re.compile(r"\\lVert|\\rVert"), r"\\|"),
    (re.compile(r"\\displaystyle|\\nonumber|\\!"), ""),
    (re.compile(r"\\left\.|\\right\."), ""),
    (re.compile(r"\\left|\\right"), ""),
    (re.compile(r"\\le(?![a-zA-Z])"), r"\\leq"),
    (re.compile(r"\\ge(?![a-zA-Z])"), r"\\geq"),
    (re.compile(r"\\ne(?![a-zA-Z])"), r"\\neq"),
]


def simplify(latex: str) -> str:
    """A form of `latex` closer to mathtext's subset (names as roman text, no ``\\left``)."""
    for pattern, repl in _SIMPLIFY:
        latex = pattern.sub(repl, latex)
    return latex


def split_terms(expr: str) -> list[str]:
    """Split `expr` at top-level ``+`` and ``-`` signs; each term keeps its sign.

    >>> split_terms(r"a + \\left(b + c\\right) - d")
    ['a', '+ \\\\left(b + c\\\\right)', '- d']
    """
    terms, depth, start = [], 0, 0
    i = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif ch in "+-" and depth == 0 and i > 0 and expr[i - 1] == " " and i + 1 < len(expr) \
                and expr[i + 1] == " ":
            terms.append(expr[start:i].strip())
            start = i
        i += 1
    terms.append(expr[start:].strip())
    return [t for t in terms if t]


@lru_cache(maxsize=None)
def _parser():
    from matplotlib.mathtext import MathTextParser

    return MathTextParser("path")


def _measure(tex: str, size: float):
    """(width, height, depth) in points of ``$tex$``, or None if mathtext rejects it."""
    import matplotlib
    from matplotlib.font_manager import FontProperties

    from .style import RC

    with matplotlib.rc_context(RC):
        try:
            w, h, d, _, _ = _parser().parse(f"${tex}$", dpi=72, prop=FontProperties(size=size))
        except (ValueError, RuntimeError):
            return None
    return float(w), float(h), float(d)


def mathtext_ok(tex: str) -> bool:
    """Whether mathtext renders `tex` (one formula, without ``$``) as it is."""
    return _measure(tex, DISPLAY_SIZE) is not None


def _fit(tex: str, size: float):
    """`tex` or its simplified form, with its size; (None, None, False) if neither renders."""
    m = _measure(tex, size)
    if m is not None:
        return tex, m, False
    simple = simplify(tex)
    m = _measure(simple, size)
    if m is not None:
        return simple, m, True
    return None, None, False


def _layout_rows(rows, size):
    """Lines to draw: (left_tex, left_size, right_tex, right_size); breaks wide rows."""
    lines, failed, simplified = [], [], False
    for row in rows:
        if len(row) == 1:
            tex, m, s = _fit(row[0], size)
            if tex is None:
                failed.append(row[0])
                continue
            simplified |= s
            lines.append((None, None, tex, m))
            continue
        lhs, rhs = row
        lt, lm, s1 = _fit(lhs, size)
        rt, rm, s2 = _fit(rhs, size)
        if lt is None or rt is None:
            failed.append(f"{lhs} {rhs}")
            continue
        simplified |= s1 or s2
        if lm[0] + rm[0] <= MAX_WIDTH_PT:
            lines.append((lt, lm, rt, rm))
            continue
        # break the right-hand side at top-level + / - signs
        rel, _, body = rt.partition(" ")
        terms = split_terms(body) if rel in ("=", r"\approx", r"\le", r"\leq") else split_terms(rt)
        if rel not in ("=", r"\approx", r"\le", r"\leq"):
            rel = ""
        current, first = [], True
        budget = MAX_WIDTH_PT - lm[0]
        for term in terms:
            trial = " ".join(current + [term])
            head = (rel + " " if first else r"\quad ") + trial
            m = _measure(head, size)
            if m is not None and m[0] > budget and current:
                text = (rel + " " if first else r"\quad ") + " ".join(current)
                lines.append((lt if first else None, lm if first else None, text, _measure(text, size)))
                first, current = False, [term]
            else:
                current.append(term)
        text = (rel + " " if first else r"\quad ") + " ".join(current)
        m = _measure(text, size)
        if m is None:
            failed.append(f"{lhs} {rhs}")
            continue
        lines.append((lt if first else None, lm if first else None, text, m))
    return lines, failed, simplified


def _draw(lines, size, pad=3.0, gap=5.0, fmt="svg") -> tuple[bytes, float, float]:
    import matplotlib
    from matplotlib.figure import Figure

    from .style import RC

    col = max((lm[0] for _, lm, _, _ in lines if lm is not None), default=0.0)
    col = col + 3.0 if col else 0.0
    width = max(col + rm[0] for _, _, _, rm in lines) + 2 * pad
    heights = [max(rm[1], lm[1] if lm else 0.0) for _, lm, _, rm in lines]
    depths = [max(rm[2], lm[2] if lm else 0.0) for _, lm, _, rm in lines]
    total = sum(heights) + gap * (len(lines) - 1) + 2 * pad
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width / 72.0, total / 72.0), dpi=72)
        y = total - pad
        for (lt, lm, rt, rm), h, d in zip(lines, heights, depths):
            base = y - (h - d)
            if lt is not None:
                fig.text((pad + col - 3.0) / width, base / total, f"${lt}$", fontsize=size,
                         ha="right", va="baseline")
            fig.text((pad + col) / width, base / total, f"${rt}$", fontsize=size,
                     ha="left", va="baseline")
            y -= h + gap
        buf = io.BytesIO()
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
        else:
            fig.savefig(buf, format=fmt, dpi=144)
    return buf.getvalue(), width, total


_FUNCTION = re.compile(r"(\\(?:tanh|sigma|exp|log|sin|cos)(?:\^\{[^{}]*\})?|\\operatorname\{[^{}]*\})\{\\left\(")


def display_form(latex: str) -> str:
    """`latex` as a display equation reads best in mathtext: fractions in display style
    (``\\dfrac``: mathtext sets ``\\frac`` in the smaller text style), and a function's
    argument in plain parentheses (SymPy writes ``\\tanh^{2}{\\left(c\\right)}``, which
    mathtext sets with parentheses smaller than the text's)."""
    latex = re.sub(r"\\frac(?=\{)", r"\\dfrac", latex)
    out, i = [], 0
    for m in _FUNCTION.finditer(latex):
        start = m.end() - len("\\left(")
        depth, j = 1, start + len("\\left(")
        while j < len(latex) and depth:
            if latex.startswith("\\left", j):
                depth += 1
            elif latex.startswith("\\right", j):
                depth -= 1
                if depth == 0:
                    break
            j += 1
        close = latex.find(")", j)
        if depth or close < 0 or latex[close + 1:close + 2] != "}" or m.start() < i:
            continue
        # plain parentheses: mathtext's smallest \left( is smaller than a text parenthesis
        inner = latex[start + len("\\left("):j]
        out.append(latex[i:m.end() - len("{\\left(")] + "(" + inner.strip() + ")")
        i = close + 2
    out.append(latex[i:])
    return "".join(out)


def render_display(latex: str, size: float = DISPLAY_SIZE) -> Rendered:
    """Render a display equation (possibly ``aligned`` blocks) to one SVG, in
    :func:`display_form`."""
    rows = latex_rows(display_form(latex))
    lines, failed, simplified = _layout_rows(rows, size)
    out = Rendered(latex=latex, simplified=simplified, failed=failed)
    if lines:
        out.svg, out.width, out.height = _draw(lines, size)
    return out


def render_inline(latex: str, size: float = INLINE_SIZE) -> Rendered:
    """Render inline math (one formula) to an SVG sized to its ink, with its depth."""
    tex, m, simplified = _fit(latex.strip(), size)
    out = Rendered(latex=latex, simplified=simplified)
    if tex is None:
        out.failed = [latex]
        return out
    import matplotlib
    from matplotlib.figure import Figure

    from .style import RC

    w, h, d = m
    pad = 1.0
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=((w + 2 * pad) / 72.0, (h + 2 * pad) / 72.0), dpi=72)
        fig.text(pad / (w + 2 * pad), (pad + d) / (h + 2 * pad), f"${tex}$", fontsize=size,
                 ha="left", va="baseline")
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None}, transparent=True)
    out.svg, out.width, out.height, out.depth = buf.getvalue(), w + 2 * pad, h + 2 * pad, d + pad
    return out
