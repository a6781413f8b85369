"""Sweeps: points per second and per-point overhead of ``gradflow.sweep`` serially, on
joblib with 2 workers and on a local Dask cluster with 2 workers, in one run; the cost of
the phase-diagram study's points, and what its full grid would take on 10 and 100 workers.

    python benchmarks/sweep.py                 # executors (about a minute)
    python benchmarks/sweep.py --cost          # + per-point cost of the phase grids (minutes)
    python benchmarks/sweep.py --phase         # + the default phase study on 2 cores (minutes)

Two point functions: a small lag map (an LSTM of 16 units, 50 steps, a batch of 2: a few
milliseconds), and an empty one (returns at once), whose rate is the executor's overhead
alone.  Each executor runs the same grid `--repeat` times; the medians are reported.
Needs ``gradflow-rnn[dask]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def lag_point(point):
    """A small lag map, seeded by the point."""
    import gradflow

    rng = np.random.default_rng(point["seed"])
    cell = gradflow.Cell("lstm", 4, 16, seed=int(rng.integers(1 << 30)))
    x = rng.standard_normal((50, 2, 4))
    return {"end": float(gradflow.gradient_flow(cell, x, state=False).log10_h[-1, 0])}


def empty_point(point):
    return {}


def _rate(fn, n, executor, n_jobs, repeat):
    import gradflow

    walls = []
    for _ in range(repeat):
        start = time.perf_counter()
        res = gradflow.sweep(fn, {"i": list(range(n))}, executor=executor, n_jobs=n_jobs,
                             progress=False)
        walls.append(time.perf_counter() - start)
        assert res.table["error"].isna().all()
    wall = statistics.median(walls)
    return {"wall_s": wall, "points_per_s": n / wall, "ms_per_point": 1e3 * wall / n,
            "compute_ms_per_point": 1e3 * float(res.table["seconds"].median())}


def executors(n: int, repeat: int) -> list[dict]:
    """The rates of the three executors, with the lag-map point and the empty one."""
    import distributed

    import gradflow

    lag_point({"seed": 0})  # compile (or load) the kernels once, here
    rows = []
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        client.run(lag_point, {"seed": 0})  # each worker loads the kernels before timing
        gradflow.sweep(lag_point, {"i": [0, 1]}, executor="joblib", n_jobs=2, progress=False)
        for name, executor, jobs in (("serial", "serial", 1), ("joblib, 2 workers", "joblib", 2),
                                     ("dask, 2 workers", client, 2)):
            for kind, fn in (("lag map", lag_point), ("empty", empty_point)):
                row = {"executor": name, "point": kind, **_rate(fn, n, executor, jobs, repeat)}
                rows.append(row)
                print(f"  {name:<18} {kind:<8} {row['points_per_s']:8.1f} points/s  "
                      f"{row['ms_per_point']:7.2f} ms/point (wall)  "
                      f"compute {row['compute_ms_per_point']:6.2f} ms", file=sys.stderr)
    finally:
        client.close()
        cluster.close()
    return rows


def cost(samples: int = 3) -> dict:
    """Seconds per map point and per training run of the phase study, default and full
    sizes, on one core (median over a few points spread over the grid)."""
    from gradflow.report import StudyConfig
    from gradflow.studies import phase

    out = {}
    for kind, config in (("default", StudyConfig()), ("full", StudyConfig(full=True))):
        s = phase.sizes(config)
        g = s["learn"]
        radii = [s["radius"][len(s["radius"]) // 4], s["radius"][3 * len(s["radius"]) // 4]]
        phase.measure("lstm", 1.0, 0.0, 1.0, 0, 20, s["H"], s["D"], 1)  # kernels
        maps = []
        for cell, bias in (("rnn", None), ("lstm", 1.0)):
            for r in radii[:samples]:
                t = time.perf_counter()
                phase.measure(cell, r, bias, 1.0, 1, s["T"], s["H"], s["D"], s["B"])
                maps.append((cell, time.perf_counter() - t))
        # the grid's mix: one RNN point per len(bias) LSTM points
        n_rnn = len(s["scale"])
        n_lstm = len(s["bias"]) * len(s["lstm_scales"])
        rnn_t = statistics.median(t for c, t in maps if c == "rnn")
        lstm_t = statistics.median(t for c, t in maps if c == "lstm")
        learns = []
        for cell, r, bias in (("rnn", 1.0, None), ("lstm", 1.0, 0.0), ("lstm", 2.0, -2.0)):
            t = time.perf_counter()
            res = phase.learn(cell, r, bias, 1.0, 0, g["T"], s["H"], g["budget"], g["test"])
            learns.append(time.perf_counter() - t)
            print(f"  {kind} learn {cell} rho={r} b={bias}: {learns[-1]:.1f} s "
                  f"(solved={res['solved']}, {res['sequences']} sequences)", file=sys.stderr)
        out[kind] = {"map_s": (n_rnn * rnn_t + n_lstm * lstm_t) / (n_rnn + n_lstm),
                     "map_rnn_s": rnn_t, "map_lstm_s": lstm_t,
                     "learn_s": statistics.median(learns), "learn_max_s": max(learns)}
        print(f"  {kind}: map point {out[kind]['map_s']:.3f} s (rnn {rnn_t:.3f}, lstm "
              f"{lstm_t:.3f}), training run {out[kind]['learn_s']:.1f} s (median of 3, max "
              f"{out[kind]['learn_max_s']:.1f})", file=sys.stderr)
    return out


def phase_study(n_jobs: int = 2) -> float:
    """Seconds of the default phase study on `n_jobs` local processes."""
    from gradflow.report import StudyConfig
    from gradflow.studies import phase

    t = time.perf_counter()
    phase.run(StudyConfig(n_jobs=n_jobs, label="phase"))
    return time.perf_counter() - t


def estimate(costs: dict, overhead_ms: float) -> dict:
    """CPU-hours of the full phase grid and its wall time on 2, 10 and 100 workers (perfect
    balance, plus the measured per-point overhead of Dask)."""
    from gradflow.report import StudyConfig
    from gradflow.studies import phase

    c = phase.counts(StudyConfig(full=True))
    cpu = c["maps"] * costs["full"]["map_s"] + c["runs"] * costs["full"]["learn_s"]
    points = c["maps"] + c["runs"]
    return {"maps": c["maps"], "runs": c["runs"], "cpu_hours": cpu / 3600,
            **{f"hours_on_{w}": (cpu + points * overhead_ms / 1e3) / w / 3600
               for w in (2, 10, 100)}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200, help="points per sweep (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="sweeps per executor (default 5)")
    parser.add_argument("--cost", action="store_true", help="measure the phase grid's points")
    parser.add_argument("--phase", action="store_true", help="time the default phase study")
    parser.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"sweep of {args.points} points, median of {args.repeat}:", file=sys.stderr)
    result = {"executors": executors(args.points, args.repeat)}
    rows = {(r["executor"], r["point"]): r for r in result["executors"]}
    base = rows[("serial", "lag map")]["points_per_s"]
    print("\nexecutor            lag-map points/s   vs serial   overhead ms/point (empty point)")
    for name in ("serial", "joblib, 2 workers", "dask, 2 workers"):
        lag, empty = rows[(name, "lag map")], rows[(name, "empty")]
        print(f"{name:<20}{lag['points_per_s']:>16.1f}{lag['points_per_s'] / base:>11.2f}x"
              f"{empty['ms_per_point']:>16.2f}")
    if args.cost:
        result["cost"] = cost()
        overhead = rows[("dask, 2 workers", "empty")]["ms_per_point"] * 2  # per worker
        result["full_grid"] = est = estimate(result["cost"], overhead)
        print(f"\nfull phase grid: {est['maps']:,} map points + {est['runs']:,} training runs "
              f"= {est['cpu_hours']:.1f} CPU-hours; {est['hours_on_2']:.1f} h on 2 workers, "
              f"{60 * est['hours_on_10']:.0f} min on 10, {60 * est['hours_on_100']:.1f} min "
              "on 100")
    if args.phase:
        result["phase_study_s"] = phase_study()
        print(f"\ndefault phase study on 2 local processes: {result['phase_study_s']:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
