"""Run the studies and write the report.

Each study is a module with ``TITLE`` and ``run(config) -> Section`` (see
:mod:`gradflow.report.studies` for where they come from).  Studies run one after another
(each may spread its own grid over ``n_jobs`` processes); a study asked for but absent is
skipped and a failing one becomes a section that says so.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import _validate as check
from .. import sweeps
from .._processes import shutdown_workers
from ..errors import InvalidArgumentError, MissingDependencyError
from . import output, studies
from .section import Section, StudyConfig
from .studies import STUDY_ORDER
from .style import layout_problems
from .writer import write_report

__all__ = ["STUDY_ORDER", "FORMATS", "available_studies", "check_section", "run_report",
           "ReportResult"]

FORMATS = ("md", "html")


def available_studies(folder=None) -> list[str]:
    """Keys of the studies present, in reading order: gradflow's own and those of entry
    points, or those of `folder`."""
    return [k for source in studies.collect(folder) for k in source.keys]


@dataclass
class ReportResult:
    """What :func:`run_report` did.

    Attributes
    ----------
    out : Path
    sections : list of Section
    seconds : dict[str, float]
        Wall time per study.
    skipped : list of str
        Studies asked for but absent.
    failed : dict[str, str]
        Studies that raised, with the error.
    problems : list of str
        Figures or data that broke the report's rules (empty, NaN, unlabelled).
    files : list of Path
    """

    out: Path
    sections: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    files: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.problems


def check_section(section: Section) -> list[str]:
    """The report's rules for one section: every figure has labelled axes with data, and
    its data columns are of equal length, non-empty and free of NaN.

    Returns
    -------
    list of str
        One message per broken rule (empty when all hold).
    """
    import numpy as np

    problems = []
    names = [f.name for f in section.figures] + [t.name for t in section.tables]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{section.key}/{dup}: two figures or tables share this name "
                        "(their data files would overwrite each other)")
    for fig in section.figures:
        where = f"{section.key}/{fig.name}"
        if not fig.caption.strip():
            problems.append(f"{where}: no caption")
        if not fig.data:
            problems.append(f"{where}: no data")
        lengths = set()
        for col, values in fig.data.items():
            arr = np.asarray(values)
            lengths.add(arr.shape[0] if arr.ndim else 1)
            if arr.size == 0:
                problems.append(f"{where}: column {col!r} is empty")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                problems.append(f"{where}: column {col!r} holds NaN or inf")
        if len(lengths) > 1:
            problems.append(f"{where}: columns of unequal lengths {sorted(lengths)}")
        axes = [ax for ax in fig.figure.get_axes() if ax.get_visible() and ax.axison]
        if not axes:
            problems.append(f"{where}: no axes")
        # a label the figure gives all its axes (supxlabel, supylabel) counts for each
        shared_x = fig.figure.get_supxlabel().strip()
        shared_y = fig.figure.get_supylabel().strip()
        for k, ax in enumerate(axes):
            if ax.get_label() == "<colorbar>":
                if not ax.get_ylabel() and not ax.get_xlabel():
                    problems.append(f"{where}: colour bar {k} has no label")
                continue
            if not (ax.get_xlabel().strip() or shared_x) or not (ax.get_ylabel().strip() or shared_y):
                problems.append(f"{where}: axes {k} lacks an x or y label")
            if not (ax.lines or ax.collections or ax.patches or ax.images):
                problems.append(f"{where}: axes {k} is empty")
        problems += [f"{where}: {p}" for p in layout_problems(fig.figure)]
    return problems


def _error_section(key: str, title: str, exc: BaseException) -> Section:
    tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return Section(key=key, title=title,
                   text=f"This study failed to run, so its results are missing:\n\n`{tb}`")


def run_report(out, *, only=None, quick: bool = False, full: bool = False, seed: int = 0,
               formats=FORMATS, n_jobs: int = 1, scheduler=None, progress: bool = True,
               folder: Path | None = None) -> ReportResult:
    """Run the studies and write ``out/index.md``, ``out/index.html``, figures and data.

    Parameters
    ----------
    out : str or Path
        Output folder: new, empty, or an earlier report, which is replaced as a whole.
        The report is written to a folder beside it and moved into place at the end, so
        `out` holds the old report or the new one, never a mix; a folder that cannot be
        written is refused before any study runs.
    only : sequence of str, optional
        Study keys to run (default: all present).
    quick : bool
        The small version.
    full : bool
        The large version (the phase diagram's full grid: a job for a cluster).
    seed : int
        Base seed: the same seed gives the same report.
    formats : sequence of {"md", "html"}
    n_jobs : int
        Worker processes for each study's grid.
    scheduler : distributed.Client or str, optional
        Run the studies' grids on this Dask cluster (a client or a scheduler's address,
        reached before any study runs) instead of local processes.  The report is the same.
    progress : bool
        Show a progress bar (stderr).
    folder : str or Path, optional
        A folder of your own studies (``*.py`` files, see :mod:`gradflow.report.studies`);
        default: gradflow's own studies and those offered by installed packages.

    Returns
    -------
    ReportResult
    """
    try:
        import matplotlib  # noqa: F401  (figures and offline equations)
    except ImportError:
        raise MissingDependencyError(
            'the report needs matplotlib; install it with pip install "gradflow-rnn[report]"'
        ) from None
    if folder is not None:
        folder = check.path("folder", folder)
    formats = check.names("formats", formats, allowed=FORMATS)
    if not formats:
        raise InvalidArgumentError(f"`formats` must be some of {list(FORMATS)}; got none")
    if only is not None:
        only = check.names("only", only)
    sources = studies.collect(folder)
    where = {k: source for source in sources for k in source.keys}
    present = list(where)
    result = ReportResult(out=check.path("out", out))
    # gradflow's own studies that a build lacks are skipped (and said), not errors
    known = present + ([k for k in STUDY_ORDER if k not in present] if folder is None else [])
    if only:
        unknown = [k for k in only if k not in known]
        if unknown:
            raise InvalidArgumentError(
                f"`only` names unknown studies {unknown}; available: {present}")
        result.skipped = [k for k in only if k not in present]
        keys = [k for k in present if k in only]
    else:
        result.skipped = [k for k in known if k not in present]
        keys = present
    quick, full = check.flag("quick", quick), check.flag("full", full)
    if quick and full:
        raise InvalidArgumentError("`quick` and `full` exclude each other; choose one")
    config = StudyConfig(quick=quick, full=full, seed=check.positive_int("seed", seed, minimum=0),
                         n_jobs=check.positive_int("n_jobs", n_jobs), progress=bool(progress))
    # the output folder is checked, and a staging folder made beside it, before any study
    staged = output.staging(result.out)
    client = None
    try:
        if scheduler is not None:
            client, own = sweeps.dask_client(scheduler)
            config = replace(config, scheduler=client)
            if not own:
                client = None
        _run_studies(result, [(k, where[k]) for k in keys], config, progress)
        written = write_report(staged, result.sections, config=config, formats=formats,
                               skipped=result.skipped, progress=progress)
        output.publish(staged, result.out)
    except BaseException:
        output.discard(staged)
        raise
    finally:
        shutdown_workers()
        if client is not None:
            client.close()
    result.files = [result.out / p.relative_to(staged) for p in written]
    return result


def _run_studies(result: ReportResult, jobs, config: StudyConfig, progress: bool):
    from tqdm.auto import tqdm

    from .style import style

    bar = tqdm(jobs, desc="gradflow report", unit="study", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    for key, source in bar:
        bar.set_description(f"gradflow report: {key}")
        start = time.perf_counter()
        title = key
        try:
            module = source.load(key)
            title = getattr(module, "TITLE", key)
            with style():
                section = module.run(replace(config, label=key))
            if not isinstance(section, Section):
                raise TypeError(f"study {key!r} returned {type(section).__name__}, not a Section")
            section.key = key
            result.problems += check_section(section)
        except Exception as exc:  # a failing study must not take the report down
            result.failed[key] = f"{type(exc).__name__}: {exc}"
            section = _error_section(key, title, exc)
            if os.environ.get("GRADFLOW_REPORT_DEBUG"):
                traceback.print_exc()
        result.seconds[key] = time.perf_counter() - start
        result.sections.append(section)
    bar.close()
