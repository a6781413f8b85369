"""Reproductions of published experiments, side by side with the papers' numbers.

``gradflow reproduce hochreiter1997`` (or :func:`reproduce`) runs the experiments of
Hochreiter & Schmidhuber (1997), section 5 (:mod:`gradflow.reproduce.hochreiter1997`), with
the paper's nets and training and with today's cells, and writes a table of the paper's
success rates and training sequences to success beside the measured ones.  The trials are
a grid of :func:`gradflow.sweep` (local processes or a Dask cluster); each finished trial is
appended to ``OUT/runs/points.csv``, and a run started again with the same options goes on
where it stopped.

>>> from gradflow.reproduce import reproduce
>>> res = reproduce(exp="2a", models=["lstm1997"], trials=1, budget=0.2,
...                 executor="serial", progress=False)                  # doctest: +SKIP
>>> res.rows[0]["solved"]                                               # doctest: +SKIP
1
"""

from __future__ import annotations

import functools
import importlib
import logging
import time
from dataclasses import dataclass, field

from .. import _validate as check
from .._display import Displayed, pandas
from ..errors import InvalidArgumentError
from .runner import trial_seed as trial_seed

__all__ = ["PAPERS", "Reproduction", "reproduce", "paper", "trial_seed", "read_runs"]

log = logging.getLogger("gradflow")

#: paper key -> the module that holds its experiments
PAPERS = {"hochreiter1997": "gradflow.reproduce.hochreiter1997"}


def paper(name: str):
    """The module of paper `name` (see ``PAPERS``)."""
    if not isinstance(name, str) or name not in PAPERS:
        raise InvalidArgumentError(f"`paper` must be one of {list(PAPERS)}; got {name!r:.60}")
    return importlib.import_module(PAPERS[name])


@dataclass(eq=False, repr=False)
class Reproduction(Displayed):
    """What :func:`reproduce` returns.

    Attributes
    ----------
    paper : str
    runs : pandas.DataFrame
        One row per trial: ``exp, model, trial, budget`` and the trial's results
        (``solved``, ``sequences``, ``seconds``, ``weights``, the rule's tests ...).
    rows : list of dict
        One per experiment and model: trials, successes, sequences to success (mean, sd,
        min, max), test results, CPU seconds.
    seconds : float
        Wall time of this call.
    executor : str
    resumed : int
        Trials read back from an earlier, interrupted run.
    """

    paper: str
    runs: object
    rows: list
    seconds: float
    executor: str
    resumed: int = 0
    options: dict = field(default_factory=dict)
    _shown = ("paper", "executor", "resumed", "seconds")

    def _frame_columns(self) -> dict:
        keys = ["exp", "model", "trials", "solved", "sequences_mean", "sequences_sd",
                "sequences_min", "sequences_max", "seconds"]
        return {k: [r.get(k) for r in self.rows] for k in keys}

    def section(self, key: str = "hochreiter1997"):
        """The reproduction as a :class:`~gradflow.report.Section`."""
        from .table import section

        mod = paper(self.paper)
        return section(self.runs, mod, key=key, title=mod.TITLE, text=text(self, mod),
                       config_note=_config_note(self.options))

    def write(self, folder, *, formats=("md", "html")) -> list:
        """Write the page (``index.md``, ``index.html``, ``data/``, ``figures/``) into
        `folder`, replacing an earlier page there as a whole; returns the files."""
        from ..report import output
        from ..report.section import StudyConfig
        from ..report.style import style
        from ..report.writer import write_report

        folder = check.path("folder", folder)
        staged = output.staging(folder)
        try:
            with style():
                sec = self.section()
            mod = paper(self.paper)
            written = write_report(staged, [sec], config=StudyConfig(), formats=formats,
                                   title=mod.TITLE, preface=opening(self, mod))
            output.publish(staged, folder)
        except BaseException:
            output.discard(staged)
            raise
        return [folder / p.relative_to(staged) for p in written]


def _config_note(options: dict) -> str:
    if not options:
        return ""
    trials = options.get("trials")
    return (f"This run: {'the paper’s number of trials' if trials is None else f'{trials} trials per model'}, "
            f"budget {options.get('budget'):g} × the paper's mean sequences per trial"
            + (f", at most {options['max_seconds']:g} s per trial" if options.get("max_seconds") else "")
            + ".")


def opening(res: Reproduction, mod) -> str:
    """The page's first paragraphs."""
    o = res.options
    trial_minutes = float(res.runs["seconds"].sum()) / 60 if len(res.runs) else 0.0
    when = (f"in {res.seconds / 60:.1f} min of wall time on {res.executor}" if not res.resumed
            else f"from {res.resumed} trials of an earlier run read back (this call: "
                 f"{res.seconds / 60:.1f} min on {res.executor})")
    return "\n".join([
        f"Written by `gradflow reproduce {res.paper}`"
        + (f" with `--exp {' '.join(o['exp'])}`" if o.get("exp") else "")
        + f", {when}; the trials themselves took {trial_minutes:.1f} min (the time of "
        f"every experiment and model is in the table, each trial in `runs/points.csv`)."
        + (f" The table also holds {o['included']} trials read from the runs of "
           f"{', '.join(f'`{f}`' for f in o['include'])}, which ran with their own options."
           if o.get("include") else ""),
    ])


def text(res: Reproduction, mod) -> str:
    """The section's text: what was run, and the readings of the paper."""
    from .table import differences

    lines = [mod.INTRO, ""]
    measured = differences(res.rows, mod)
    if measured:
        own = " and ".join(f"`{m}`" for m in mod.PAPER_NETS)
        lines += [f"**Measured against the paper** (its own net, {own}, first; then the "
                  "other models on the same experiment):", ""]
        lines += [f"- {m}" for m in measured] + [""]
    lines += ["**Readings and differences.** Where the paper is ambiguous, or gradflow differs "
             "from it, this is what was done:", ""]
    lines += [f"- {r}" for r in mod.READINGS]
    return "\n".join(lines)


def read_runs(folder):
    """The finished trials of a reproduction folder (``folder/runs/points.csv``, as written
    by :func:`reproduce` with ``out=folder``): a DataFrame like ``Reproduction.runs``.

    Raises
    ------
    InvalidArgumentError
        If the folder holds no readable trials.
    """
    from ..sweeps import finished_points

    pd = pandas()
    folder = check.path("include", folder)
    path = folder / "runs" / "points.csv"
    try:
        if not path.is_file():
            raise FileNotFoundError(2, "No such file or directory")
        records = [{**p["params"], **p["result"], "error": p["error"], "seconds": p["seconds"]}
                   for p in finished_points(path.parent)]
    except OSError as exc:
        raise InvalidArgumentError(f"`include`: cannot read the trials of {str(folder)!r} "
                                   f"({path}: {exc.strerror or exc})") from None
    if not records or not all({"exp", "model", "trial"} <= set(r) for r in records):
        raise InvalidArgumentError(f"`include`: {path} holds no trials of a reproduction")
    return pd.DataFrame.from_records(records)


def reproduce(name: str = "hochreiter1997", *, exp=None, models=None, trials: int | None = None,
              budget: float = 3.0, max_seconds: float | None = None, out=None,
              resume: bool = True, n_jobs: int | None = None, executor=None, seed: int = 0,
              progress: bool = True, include=()) -> Reproduction:
    """Run a paper's experiments (or some of them) and summarise them beside its results.

    Parameters
    ----------
    name : str
        The paper (``PAPERS``).
    exp : str or sequence of str, optional
        Experiment groups or keys (``"4"``, ``"4-500"``, ``"2c"``); default all.
    models : sequence of str, optional
        Default all of the paper's models (``MODELS``).
    trials : int, optional
        Trials per experiment and model; default the paper's number for each experiment.
    budget : float
        A trial that has not met the stopping rule after ``budget`` times the paper's mean
        number of training sequences counts as failed (the paper's own module says how it
        counts: :func:`gradflow.reproduce.hochreiter1997.budget_of` adds the 10,000 correct
        sequences that Exp. 2's rule waits for).
    max_seconds : float, optional
        Wall-time limit per trial as well (a trial stopped by it counts as failed).
    out : str or Path, optional
        Folder for the trials (``out/runs``): each finished trial is appended there, and a
        trial in progress saves its state to ``out/checkpoints`` every minute, so that a
        run that was killed continues its unfinished trials where they stopped (on a Dask
        cluster, where the workers share that folder).
    resume : bool
        With `out`, run only the trials missing there (the same options must be given).
    n_jobs : int, optional
        Local worker processes (default: the number of cores).
    executor : {None, "serial", "joblib"}, distributed.Client or str
        As for :func:`gradflow.sweep`; a string other than those names is a Dask
        scheduler's address.
    seed : int
        The base of every trial's seed (:func:`trial_seed`).
    progress : bool
        A progress bar of the trials.
    include : sequence of str or Path
        Other reproduction folders (``out`` of earlier calls, with other experiments or
        options) whose finished trials join this call's in the table, read and not run
        again: a reproduction run in parts shows as one.  Where both have a trial of the
        same experiment, model and number, this call's is kept.

    Returns
    -------
    Reproduction
    """
    from ..sweeps import sweep

    mod = paper(name)
    exps = mod.experiments(exp)
    all_models = list(mod.MODELS)
    models = all_models if models is None else list(check.names("models", models, allowed=all_models))
    if trials is not None:
        trials = check.positive_int("trials", trials)
    budget = check.real("budget", budget)
    if not budget > 0:
        raise InvalidArgumentError(f"`budget` must be a positive number; got {budget!r}")
    if max_seconds is not None:
        max_seconds = check.real("max_seconds", max_seconds, minimum=0.0)
    seed = check.positive_int("seed", seed, minimum=0)
    points = []
    for e in exps:
        for m in mod.models_for(e, models):
            for t in range(trials or e.trials):
                points.append({"exp": e.key, "model": m, "trial": t,
                               "budget": mod.budget_of(e, budget),
                               "max_seconds": max_seconds, "base_seed": seed})
    if not points:
        raise InvalidArgumentError(f"nothing to run: the models {models} run on none of "
                                   f"{[e.key for e in exps]}")
    if executor is None:
        executor = "joblib" if (n_jobs is None or n_jobs > 1) else "serial"
    if executor != "serial":
        mod.warm(sorted({m for p in points for m in [p["model"]]}), exps)
    start = time.perf_counter()
    out_dir = None if out is None else check.path("out", out)
    fn = mod.trial
    if out_dir is not None:
        # a trial interrupted with the run continues from its last checkpoint
        fn = functools.partial(mod.trial, checkpoints=str(out_dir / "checkpoints"))
    res = sweep(fn, points, executor=executor, n_jobs=n_jobs,
                out=None if out_dir is None else out_dir / "runs", resume=resume,
                progress=progress, desc=f"{name} trials")
    runs = res.table
    included = [read_runs(folder) for folder in include]
    if included:
        pd = pandas()
        ours = set(zip(runs["exp"], runs["model"], runs["trial"]))
        others = [t[[k not in ours for k in zip(t["exp"], t["model"], t["trial"])]]
                  for t in included]
        runs = pd.concat([runs, *others], ignore_index=True)
        runs = runs.drop_duplicates(subset=["exp", "model", "trial"], keep="first")
    rows = []
    if len(runs):
        from .table import summarise

        rows = summarise(runs, mod)
    options = {"exp": None if exp is None else list(check.names("exp", exp)),
               "models": models, "trials": trials, "budget": budget,
               "max_seconds": max_seconds, "seed": seed,
               "include": [str(f) for f in include],
               "included": len(runs) - len(res.table)}
    pandas()  # the table needs pandas: say so before anything else if it is missing
    return Reproduction(name, runs, rows, time.perf_counter() - start, res.executor,
                        res.resumed, options)
