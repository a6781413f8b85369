"""Reports: studies in ``analysis/`` return sections; this package writes them out.

``run_report(out, quick=..., seed=...)`` runs the studies and writes ``out/index.md``,
a self-contained ``out/index.html``, ``out/figures/`` and ``out/data/``; the command
``gradflow report`` calls it.  Matplotlib is imported only when a report is written.
"""

from .section import Figure as Figure
from .section import Section as Section
from .section import StudyConfig as StudyConfig
from .section import Table as Table

__all__ = ["Figure", "Section", "StudyConfig", "Table", "run_report"]


def run_report(out, **kwargs):
    """Run the studies and write the report; see :func:`gradflow.report.runner.run_report`."""
    from .runner import run_report as _run

    return _run(out, **kwargs)
