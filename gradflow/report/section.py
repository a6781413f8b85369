"""What a study returns: a section of the report, with the data behind every figure.

A study is a module in ``analysis/`` with a ``TITLE`` and a function
``run(config: StudyConfig) -> Section``.  The report writer turns sections into
Markdown and HTML and writes every figure's data next to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["StudyConfig", "Figure", "Table", "Section"]


@dataclass(frozen=True)
class StudyConfig:
    """How to run a study.

    Attributes
    ----------
    quick : bool
        A small version (for CI and smoke tests): fewer seeds, shorter sequences.
    full : bool
        The large version, for a cluster: the studies that have one (the phase diagram)
        run their full grid.
    seed : int
        The base seed; the same seed gives the same section.
    n_jobs : int
        Worker processes for the study's grid of runs.
    progress : bool
        Show a progress bar of the study's runs (stderr).
    label : str
        The study's key, for that bar.
    scheduler : distributed.Client or str, optional
        A Dask cluster (a client, or its scheduler's address) to run the grids on, instead
        of `n_jobs` local processes.  Where the runs go does not change the report.
    """

    quick: bool = False
    seed: int = 0
    n_jobs: int = 1
    progress: bool = False
    label: str = ""
    full: bool = False
    scheduler: Any = None


@dataclass
class Figure:
    """A matplotlib figure with its caption and the numbers it plots.

    Attributes
    ----------
    name : str
        File stem (``"lag_norms"``): ``figures/<section>-<name>.svg`` and
        ``data/<section>-<name>.csv``.
    figure : matplotlib.figure.Figure
    caption : str
        What to see in the figure.
    data : dict[str, sequence]
        Columns of equal length: every plotted number.
    """

    name: str
    figure: Any
    caption: str
    data: dict


@dataclass
class Table:
    """A table: column names and rows of values, with a caption."""

    name: str
    columns: list
    rows: list
    caption: str = ""


@dataclass
class Section:
    """One study's part of the report.

    Attributes
    ----------
    key : str
        Short identifier, used in file names and ``--only``.
    title : str
    text : str
        Markdown; equations in ``$...$`` / ``$$...$$``.
    figures, tables : list
    data : dict
        Further JSON-serialisable results (``data/<key>.json``).
    """

    key: str
    title: str
    text: str = ""
    figures: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
