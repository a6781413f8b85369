"""The report as one self-contained HTML file: inline CSS, figures and equations as data URIs.

Section text is a small subset of Markdown (headings, paragraphs, ``-`` and ``1.`` lists,
``**bold**``, ``*italic*``, ```code```, links, ``$inline$`` and ``$$display$$`` math).
Equations are rendered offline by :mod:`gradflow.report.mathrender`; one that mathtext
cannot render is shown as its LaTeX source in a code block, marked as such.
"""

from __future__ import annotations

import base64
import html
import re

from .content import REPORT_TITLE, cell_text, intro
from .mathrender import render_display, render_inline
from .section import StudyConfig

__all__ = ["to_html", "markdown_to_html", "CSS"]

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;line-height:1.5;
max-width:980px;margin:2em auto;padding:0 1.2em;color:#1b1b1b;background:#fff}
h1{font-size:1.7em;line-height:1.25;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.35em;margin-top:2.2em;border-bottom:1px solid #e4e4e4;padding-bottom:.2em}
h3{font-size:1.1em;margin-top:1.5em}
code{background:#f3f3f3;padding:.05em .3em;border-radius:3px;font-size:.92em}
pre{background:#f6f6f6;padding:.7em;overflow-x:auto;border-radius:4px}
figure{margin:1.4em 0;padding:.6em;border:1px solid #eee;border-radius:4px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:.92em;color:#333;margin-top:.5em}
.eq{overflow-x:auto;margin:.8em 0;padding:.2em 0}
.eq img{display:block;margin:0 auto;max-width:none}
img.im{display:inline}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .55em;vertical-align:top;text-align:left}
th{background:#f5f5f5}
.tcap{font-size:.92em;margin-top:1em}
.note{color:#666;font-size:.88em}
.toc li{margin:.1em 0}
.failed{background:#fff4f4;border-left:3px solid #c33;padding:.3em .6em}
details{margin:.7em 0;border:1px solid #e6e6e6;border-radius:4px;padding:.2em .8em}
summary{cursor:pointer;font-weight:600;padding:.2em 0}
"""

#: equations rendered, simplified and left as source by the current :func:`to_html` call
_STATS = {"rendered": 0, "simplified": 0, "source": 0}

_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$", re.S)
_CODE = re.compile(r"`([^`]+)`")


def _svg_img(svg: bytes, alt: str, cls: str, style: str = "") -> str:
    uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return f'<img class="{cls}" alt="{html.escape(alt, quote=True)}" src="{uri}"{style}>'


def _display(tex: str) -> str:
    r = render_display(tex)
    _count(r)
    parts = []
    if r.svg is not None:
        parts.append(f'<div class="eq">{_svg_img(r.svg, tex, "dm", _size(r.width, r.height))}</div>')
    if r.failed or r.svg is None:
        parts.append('<pre class="latex" title="LaTeX source (not rendered offline)">'
                     + html.escape("\n".join(r.failed) or tex) + "</pre>")
    return "\n".join(parts)


def _size(w: float, h: float, depth: float | None = None) -> str:
    # points -> CSS pixels at 96 dpi
    style = f' width="{w * 4 / 3:.1f}" height="{h * 4 / 3:.1f}"'
    if depth is not None:
        style += f' style="vertical-align:-{depth * 4 / 3:.1f}px"'
    return style


def _inline_math(tex: str) -> str:
    r = render_inline(tex)
    _count(r)
    if r.svg is None:
        return f"<code>{html.escape(tex)}</code>"
    return _svg_img(r.svg, tex, "im", _size(r.width, r.height, r.depth))


def _count(r) -> None:
    if r.svg is not None:
        _STATS["rendered"] += 1
        _STATS["simplified"] += int(r.simplified)
    if r.failed or r.svg is None:
        _STATS["source"] += 1


def _inline(text: str) -> str:
    """Inline Markdown of one paragraph to HTML."""
    tokens = {}

    def keep(value):
        key = f"\x00{len(tokens)}\x00"
        tokens[key] = value
        return key

    text = _CODE.sub(lambda m: keep(f"<code>{html.escape(m.group(1))}</code>"), text)
    text = _MATH.sub(lambda m: keep(_display(m.group(1)) if m.group(1) is not None
                                    else _inline_math(m.group(2))), text)
    text = html.escape(text, quote=False)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)",
                  lambda m: f'<a href="{html.escape(m.group(2), quote=True)}">{m.group(1)}</a>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    for key, value in tokens.items():
        text = text.replace(key, value)
    return text


def markdown_to_html(md: str) -> str:
    """Convert the report's Markdown subset to HTML."""
    out, para, items, kind = [], [], [], None
    lines = md.splitlines()

    def flush_para():
        if para:
            body = " ".join(para).strip()
            if body.startswith("$$") and body.endswith("$$") and body.count("$$") == 2:
                out.append(_display(body[2:-2]))
            else:
                out.append(f"<p>{_inline(body)}</p>")
            para.clear()

    def flush_list():
        nonlocal kind
        if items:
            out.append(f"<{kind}>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + f"</{kind}>")
            items.clear()
        kind = None

    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("$$") and not (stripped.endswith("$$") and len(stripped) > 2):
            flush_para()
            flush_list()
            block = [stripped[2:]]
            i += 1
            while i < len(lines) and not lines[i].strip().endswith("$$"):
                block.append(lines[i])
                i += 1
            if i < len(lines):
                block.append(lines[i].strip()[:-2])
            out.append(_display("\n".join(block)))
            i += 1
            continue
        m_head = re.match(r"^(#{1,4})\s+(.*)$", stripped)
        m_ul = re.match(r"^[-*]\s+(.*)$", stripped)
        m_ol = re.match(r"^\d+\.\s+(.*)$", stripped)
        m_summary = re.match(r"^<summary>(.*)</summary>$", stripped)
        if not stripped:
            flush_para()
            flush_list()
        elif stripped in ("<details>", "<details open>", "</details>") or m_summary:
            # collapsible blocks pass through (their summary line as inline Markdown)
            flush_para()
            flush_list()
            out.append(f"<summary>{_inline(m_summary.group(1))}</summary>" if m_summary else stripped)
        elif m_head:
            flush_para()
            flush_list()
            level = len(m_head.group(1)) + 1
            out.append(f"<h{level}>{_inline(m_head.group(2))}</h{level}>")
        elif m_ul or m_ol:
            flush_para()
            want = "ul" if m_ul else "ol"
            if kind and kind != want:
                flush_list()
            kind = want
            items.append((m_ul or m_ol).group(1))
        elif items and line.startswith((" ", "\t")):
            items[-1] += " " + stripped
        else:
            flush_list()
            para.append(stripped)
        i += 1
    flush_para()
    flush_list()
    return "\n".join(out)


def _table_html(table, number: int, key: str) -> str:
    head = "".join(f"<th>{_inline(str(c))}</th>" for c in table.columns)
    rows = "".join("<tr>" + "".join(f"<td>{_inline(cell_text(v))}</td>" for v in row) + "</tr>"
                   for row in table.rows)
    cap = f'<p class="tcap"><strong>Table {number}.</strong> {_inline(table.caption)} ' \
          f'<span class="note">Data: <a href="data/{key}-{table.name}.csv">data/{key}-{table.name}.csv</a></span></p>'
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def to_html(sections, config: StudyConfig, svgs: dict, skipped=(), *, title: str | None = None,
            opening: str | None = None) -> str:
    """The whole report as one HTML document (no external resources); `title` and
    `opening` (Markdown) replace the report's title and introduction."""
    _STATS.update(rendered=0, simplified=0, source=0)
    title = title or REPORT_TITLE
    first = opening if opening is not None else intro(config, sections, skipped)
    body = [f"<h1>{html.escape(title)}</h1>",
            markdown_to_html(first).replace("<ol>", '<ol class="toc">', 1)]
    fig_no = table_no = 0
    for k, s in enumerate(sections, start=1):
        body.append(f'<section id="{html.escape(s.key)}"><h2>{k}. {_inline(s.title)}</h2>')
        body.append(markdown_to_html(s.text))
        for t in s.tables:
            table_no += 1
            body.append(_table_html(t, table_no, s.key))
        for f in s.figures:
            fig_no += 1
            stem = f"{s.key}-{f.name}"
            img = _svg_img(svgs[stem], f"Figure {fig_no}", "fig")
            body.append(
                f"<figure>{img}<figcaption><strong>Figure {fig_no}.</strong> {_inline(f.caption)} "
                f'<span class="note">Data: <a href="data/{stem}.csv">data/{stem}.csv</a>; '
                f'vector file: <a href="figures/{stem}.svg">figures/{stem}.svg</a>.</span>'
                "</figcaption></figure>")
        body.append("</section>")
    body.append(
        f'<p class="note">Equations rendered offline by matplotlib\'s mathtext: '
        f'{_STATS["rendered"]} rendered ({_STATS["simplified"]} of them after simplifying '
        f'commands mathtext lacks), {_STATS["source"]} shown as LaTeX source.</p>')
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
