"""``gradflow reproduce hochreiter1997 [--exp N ...] [--trials K] [--jobs N | --scheduler
ADDRESS]``: run a paper's experiments and write the table beside its results."""

from __future__ import annotations

import sys

DEFAULT_OUT = "{paper}-reproduction"


def add_arguments(parser) -> None:
    from . import PAPERS

    parser.add_argument("paper", choices=list(PAPERS), help="the paper whose experiments to run")
    parser.add_argument("--exp", nargs="+", metavar="N",
                        help="experiments to run: groups (1 2a 2b 2c 3a 3b 3c 4 5 6a 6b) or "
                             "keys (4-500, 2c-1000-50 ...); default all")
    parser.add_argument("--models", nargs="+", metavar="MODEL",
                        help="models to train (default all: lstm1997 lstm1997-fc lstm1997-full "
                             "lstm gru rnn; rnn only where the paper compares with such nets)")
    parser.add_argument("--trials", type=int, default=None, metavar="K",
                        help="trials per experiment and model (default: the paper's number)")
    parser.add_argument("--budget", type=float, default=3.0, metavar="F",
                        help="a trial fails if it has not met the stopping rule after F times "
                             "the paper's mean training sequences (default 3; Exp. 2 adds the "
                             "10,000 successive correct sequences its rule waits for)")
    parser.add_argument("--max-seconds", type=float, default=None, metavar="S",
                        help="wall-time limit per trial as well")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for the trials (DIR/runs, appended as they finish), "
                             "the state of unfinished trials (DIR/checkpoints, every minute: a "
                             "killed run resumes inside its trials) and the page (DIR/report); "
                             "default ./PAPER-reproduction")
    parser.add_argument("--include", nargs="+", default=(), metavar="DIR",
                        help="also show the trials of these other reproduction folders (their "
                             "runs/ are read, not run again): a reproduction run in parts "
                             "shows as one table")
    parser.add_argument("--no-resume", action="store_true",
                        help="refuse to continue an interrupted run in DIR (by default the "
                             "trials already in DIR/runs are kept and only the others run)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="local worker processes (default: the number of cores)")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run the trials on the Dask cluster of this scheduler "
                            "(tcp://host:8786); needs gradflow-rnn[dask]")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--format", default="md,html", metavar="md,html",
                        help="formats of the page (default: md,html)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from pathlib import Path

    from ..errors import InvalidArgumentError
    from . import paper, reproduce
    from .table import fmt_count

    if args.jobs is not None and args.jobs < 1:
        raise InvalidArgumentError(f"`--jobs` must be >= 1; got {args.jobs}")
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if not formats or any(f not in ("md", "html") for f in formats):
        raise InvalidArgumentError(
            f"`--format` must be md, html or md,html; got {args.format!r:.60}")
    out = Path(args.out or DEFAULT_OUT.format(paper=args.paper))
    executor = args.scheduler
    if executor is None and args.jobs == 1:
        executor = "serial"
    res = reproduce(args.paper, exp=args.exp, models=args.models, trials=args.trials,
                    budget=args.budget, max_seconds=args.max_seconds, out=out,
                    resume=not args.no_resume, n_jobs=args.jobs, executor=executor,
                    seed=args.seed, progress=not args.no_progress, include=args.include)
    files = res.write(out / "report", formats=formats)
    mod = paper(args.paper)
    exps = {e.key: e for e in mod.EXPERIMENTS}
    print(f"{'exp.':<12} {'model':<14} {'success':>12} {'sequences (mean)':>17} {'paper':>11}")
    for r in res.rows:
        e = exps[r["exp"]]
        shown = fmt_count(e.paper_sequences) if r["model"] in mod.PAPER_NETS else ""
        print(f"{r['exp']:<12} {r['model']:<14} {r['solved']:>5} of {r['trials']:<4} "
              f"{fmt_count(r['sequences_mean']):>17} {shown:>11}")
    failed = res.runs[res.runs["error"].notna()]
    for row in failed.itertuples():
        print(f"gradflow reproduce: trial {row.exp} {row.model} #{row.trial} failed: {row.error}",
              file=sys.stderr)
    print(f"wrote {out}/report/ ({', '.join(formats)}) and {out}/runs/ "
          f"({len(res.runs)} trials, {res.resumed} from an earlier run"
          + (f", {res.options['included']} from {len(args.include)} other folders"
             if args.include else "") + ") in "
          f"{res.seconds / 60:.1f} min; {len(files)} files")
    return 1 if len(failed) else 0
