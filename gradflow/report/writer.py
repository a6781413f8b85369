"""Write sections out: ``index.md``, a self-contained ``index.html``, figures and data.

Every figure becomes ``figures/<key>-<name>.svg`` and its numbers
``data/<key>-<name>.csv``; every table ``data/<key>-<name>.csv``; a section's further
results ``data/<key>.json``.  Output is deterministic: same sections, same bytes.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .content import REPORT_TITLE, cell_text, dumps, intro
from .html import to_html
from .section import Section, StudyConfig

__all__ = ["write_report", "figure_csv", "table_csv", "to_markdown"]

def figure_csv(data: dict) -> str:
    """The columns of a figure's data as CSV (one row per plotted point)."""
    import numpy as np

    cols = list(data)
    arrays = [np.asarray(data[c]).ravel() for c in cols]
    n = max((a.shape[0] for a in arrays), default=0)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for i in range(n):
        w.writerow([cell_text(a[i]) if i < a.shape[0] else "" for a in arrays])
    return buf.getvalue()


def table_csv(table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(table.columns)
    for row in table.rows:
        w.writerow([cell_text(v) for v in row])
    return buf.getvalue()


def _fig_file(section: Section, fig) -> str:
    return f"{section.key}-{fig.name}"


def _md_table(table) -> str:
    def esc(v):
        return cell_text(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in table.rows]
    return "\n".join(lines)


def to_markdown(sections, config: StudyConfig, skipped=(), *, title: str | None = None,
                opening: str | None = None) -> str:
    """The report as Markdown (LaTeX left for the viewer; figures linked as files).  A page
    of its own (a reproduction's) gives its `title` and `opening` paragraphs instead of the
    report's."""
    parts = [f"# {title or REPORT_TITLE}", "",
             opening if opening is not None else intro(config, sections, skipped), ""]
    fig_no = table_no = 0
    for k, s in enumerate(sections, start=1):
        parts += [f'<a id="{s.key}"></a>', "", f"## {k}. {s.title}", "", s.text.strip(), ""]
        for t in s.tables:
            table_no += 1
            parts += [f"**Table {table_no}.** {t.caption}" if t.caption else f"**Table {table_no}.**",
                      "", _md_table(t), "", f"Data: [`data/{s.key}-{t.name}.csv`](data/{s.key}-{t.name}.csv)", ""]
        for f in s.figures:
            fig_no += 1
            stem = _fig_file(s, f)
            parts += [f"![Figure {fig_no}](figures/{stem}.svg)", "",
                      f"**Figure {fig_no}.** {f.caption} Data: [`data/{stem}.csv`](data/{stem}.csv).", ""]
    return "\n".join(parts).rstrip() + "\n"


def write_report(out, sections, *, config: StudyConfig, formats=("md", "html"), skipped=(),
                 progress: bool = False, title: str | None = None,
                 opening: str | None = None) -> list:
    """Write the report files into `out`; returns the paths written.  With `progress`, a
    bar on stderr counts the figures drawn and the pages written.  `title` and `opening`
    (Markdown) replace the report's title and introduction, for a page of its own."""
    import sys

    from tqdm.auto import tqdm

    from .style import figure_svg

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    written = []

    def put(path: Path, content):
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        written.append(path)

    steps = sum(len(s.figures) for s in sections) + len(formats)
    bar = tqdm(total=steps, desc="writing the report", unit="part", disable=not progress,
               file=sys.stderr, dynamic_ncols=True, leave=False)
    svgs = {}
    for s in sections:
        for f in s.figures:
            stem = _fig_file(s, f)
            svgs[stem] = figure_svg(f.figure)
            put(out / "figures" / f"{stem}.svg", svgs[stem])
            put(out / "data" / f"{stem}.csv", figure_csv(f.data))
            bar.update()
        for t in s.tables:
            put(out / "data" / f"{s.key}-{t.name}.csv", table_csv(t))
        if s.data:
            put(out / "data" / f"{s.key}.json", dumps(s.data) + "\n")
    if "md" in formats:
        put(out / "index.md", to_markdown(sections, config, skipped, title=title, opening=opening))
        bar.update()
    if "html" in formats:
        bar.set_description("writing the report: equations and HTML")
        put(out / "index.html", to_html(sections, config, svgs, skipped, title=title,
                                        opening=opening))
        bar.update()
    bar.close()
    return written
