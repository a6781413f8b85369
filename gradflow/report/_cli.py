"""``gradflow report``: run the studies and write the analytical report."""

from __future__ import annotations

import sys
import time

DEFAULT_OUT = "gradflow-report"


def add_arguments(parser) -> None:
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="+", metavar="STUDY",
                        help="run only these studies (keys: the studies' module names)")
    parser.add_argument("--studies", metavar="DIR", default=None,
                        help="run the studies in this folder of your own (*.py files, each "
                             "with TITLE and run(config)) instead of gradflow's")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="a small version for CI (well under a minute)")
    size.add_argument("--full", action="store_true",
                      help="the phase diagram's full grid (hours on 2 cores: a job for a "
                           "cluster, see --scheduler)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--format", default="md,html", metavar="md,html",
                        help="comma-separated output formats (default: md,html)")
    parser.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="local worker processes for each study's grid (default 2)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run the grids on the Dask cluster of this scheduler "
                             "(tcp://host:8786) instead of local processes; needs "
                             "gradflow-rnn[dask]")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from ..errors import InvalidArgumentError
    from .runner import run_report

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    if args.jobs < 1:
        raise InvalidArgumentError(f"`--jobs` must be >= 1; got {args.jobs}")
    start = time.perf_counter()
    result = run_report(args.out, only=args.only, quick=args.quick, full=args.full,
                        seed=args.seed, formats=formats, n_jobs=args.jobs,
                        scheduler=args.scheduler, progress=not args.no_progress,
                        folder=args.studies)
    total = time.perf_counter() - start
    for key, sec in result.seconds.items():
        print(f"  {key:<14} {sec:7.1f} s", file=sys.stderr)
    for key in result.skipped:
        print(f"  {key:<14} skipped (not in this build)", file=sys.stderr)
    for key, err in result.failed.items():
        print(f"gradflow report: study {key!r} failed: {err}", file=sys.stderr)
    for p in result.problems:
        print(f"gradflow report: rule broken: {p}", file=sys.stderr)
    print(f"wrote {result.out}/ ({', '.join(formats)}) in {total:.1f} s")
    return 0 if result.ok else 1
