"""gradflow against PyTorch and JAX, side by side, and against the machine's GEMM peak.

    python benchmarks/run.py [--quick] [--out BENCHMARKS.md]

Every comparison runs in a process of its own, gradflow and one peer in turn in that
process: a warm-up of each, then alternating timed runs, reported as medians with the
min-max spread.  Achieved GFLOP/s counts the matrix products only and is compared with
the GEMM peak this machine reaches with NumPy (n x n matmul).  Whole-process figures
(``import gradflow``, kernel compilation cold and cached, a warm start) are timed from
outside with ``time.perf_counter`` around ``subprocess.run``.

This machine sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which slow a current NumPy's
OpenBLAS; a user's machine does not.  The comparisons run once with the environment as
it stands and once with both unset (in this command's child processes only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # the sibling modules, and this checkout's gradflow

from _machine import BLAS_ENV  # noqa: E402
import _report  # noqa: E402

#: (cell, B, T, D=H, dtype) of the forward + backward comparisons.
FB_CASES = [
    ("lstm", B, T, H, dt)
    for (B, T, H) in [(32, 100, 32), (32, 100, 128), (32, 100, 512), (1, 1000, 64), (256, 50, 256)]
    for dt in ("float64", "float32")
] + [("gru", 32, 100, 128, dt) for dt in ("float64", "float32")] + [
    ("rnn", 32, 100, 128, dt) for dt in ("float64", "float32")]


def _child_env(unset: bool) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    if unset:
        for k in BLAS_ENV:
            env.pop(k, None)
    return env


def _json_child(args: list[str], env: dict, timeout: float = 3600) -> dict:
    """Run ``python <args>`` and parse the last line of its output as JSON."""
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _worker(spec: dict) -> dict:
    """Inside a child process: time one case (gradflow and one peer in turn)."""
    import numpy as np

    import _workloads as w

    threads = os.cpu_count()
    kind = spec["kind"]
    if kind == "fb":
        cell, x, dh = w.problem(spec["cell"], spec["B"], spec["T"], spec["H"], spec["H"], spec["dtype"])
        runs = {"gradflow": w.make_gradflow(cell, x, dh)}
        if spec["peer"] == "pytorch":
            runs["pytorch"] = w.make_torch(cell, x, dh, threads)
        else:
            runs["jax"] = w.make_jax(cell, x, dh)
        out = _alternate({k: v[0] for k, v in runs.items()}, spec["budget"], spec["max_repeats"])
        ref, other = (np.asarray(v[1](), dtype=np.float64) for v in runs.values())
        out["max_rel_diff_weight_hh"] = float(np.max(np.abs(ref - other)) / np.max(np.abs(ref)))
        out["flops"] = w.flops(spec["cell"], spec["B"], spec["T"], spec["H"], spec["H"])
        return out
    if kind == "lyapunov":
        import gradflow

        cell = gradflow.Cell("lstm", spec["H"], spec["H"], dtype=np.dtype(spec["dtype"]), seed=0)
        x = np.random.default_rng(1).standard_normal((spec["T"], 1, spec["H"])).astype(spec["dtype"])
        warm = x[: max(2, spec["T"] // 100)]
        fns = {"gradflow": w.gradflow_lyapunov(cell, x)}
        w.gradflow_lyapunov(cell, warm)()
        if spec["peer"] == "pytorch":
            fns["pytorch"] = w.torch_lyapunov(cell, x, threads)
            w.torch_lyapunov(cell, warm, threads)()
        out = {}
        for name, fn in fns.items():
            times, result = [], None
            for _ in range(spec["repeats"]):
                t0 = time.perf_counter()
                result = fn()
                times.append(time.perf_counter() - t0)
            out[name] = times
            out[f"{name}_top"] = float(np.ravel(result)[0])
        return out
    if kind == "lagmap":
        import lagmap

        return lagmap.run(spec["dtype"], spec["repeats"], threads=threads, jax=spec["jax"])
    raise ValueError(kind)


#: Seconds of rest before each timed run: OpenBLAS's idle threads spin for about 0.1 s
#: after a call (and OpenMP's and XLA's for a while too); without a pause they would still
#: be spinning on the cores while the next framework runs.
PAUSE = 0.25


def _alternate_once(fns: dict, repeats: int) -> dict:
    """`repeats` rounds of timed runs, the functions in turn, each after a pause (the
    functions are already warm): {"times": {name: [seconds, ...]}}."""
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(PAUSE)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {"times": times}


def _alternate(fns: dict, budget: float, max_repeats: int) -> dict:
    """Warm up each function twice, then time them in turn until the budget is spent.

    Then, for each function, a block of back-to-back runs after one pause ("b2b": the
    steady state of a loop such as training, where the threads and caches stay warm; the
    first run of the block is left out).
    """
    first = {}
    for name, fn in fns.items():
        fn()
        time.sleep(PAUSE)
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    per_round = sum(first.values())
    repeats = int(max(3, min(max_repeats, budget / max(per_round, 1e-9))))
    times = _alternate_once(fns, repeats)["times"]
    b2b = {}
    for name, fn in fns.items():
        time.sleep(PAUSE)
        block = []
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            fn()
            block.append(time.perf_counter() - t0)
        b2b[name] = block[1:]
    return {"times": times, "b2b": b2b}


def _process_time(code: str, env: dict, repeats: int) -> dict:
    """Wall time of whole ``python -c code`` processes, and what each printed (a float)."""
    walls, inner = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1]}
        lines = proc.stdout.strip().splitlines()
        if lines:
            inner.append(float(lines[-1]))
    return {"wall": walls, "inner": inner}


_FIRST_PASS = """
import time, numpy as np
t0 = time.perf_counter()
import gradflow
cell = gradflow.Cell("lstm", 64, 64, seed=0)
x = np.ones((20, 4, 64)); t1 = time.perf_counter()
cell.backward(cell.forward(x), np.ones((20, 4, 64)))
print(time.perf_counter() - t1)
"""


def startup(env: dict, quick: bool) -> dict:
    """import time, cold and cached kernel compilation, and a warm start, as whole processes."""
    n = 3 if quick else 7
    out = {
        "python": _process_time("pass", env, n),
        "import": _process_time(
            "import time; t = time.perf_counter(); import gradflow; print(time.perf_counter() - t)",
            env, n),
    }
    cold, cached = [], []
    for _ in range(1 if quick else 2):
        with tempfile.TemporaryDirectory(prefix="gradflow-bench-") as tmp:
            fresh = {**env, "GRADFLOW_CACHE_DIR": tmp, "NUMBA_CACHE_DIR": os.path.join(tmp, "numba")}
            cold.append(_process_time(_FIRST_PASS, fresh, 1))
            cached.append(_process_time(_FIRST_PASS, fresh, 1 if quick else 3))
    out["cold"] = {k: sum((c.get(k, []) for c in cold), []) for k in ("wall", "inner")}
    out["cached"] = {k: sum((c.get(k, []) for c in cached), []) for k in ("wall", "inner")}
    return out


def comparisons(env: dict, quick: bool, jax: bool, log, only: str | None = None) -> dict:
    """Every forward + backward case against every peer, then the lag map and the spectrum.

    `only`: run just the cases whose name ("lstm B=32 T=100 H=32 float64", "lag map",
    "lyapunov") contains it.
    """
    results = {"fb": [], "lagmap": [], "lyapunov": []}
    peers = ["pytorch"] + (["jax"] if jax else [])

    def wanted(name):
        return only is None or only in name

    for cell, B, T, H, dt in FB_CASES:
        if not wanted(f"{cell} B={B} T={T} H={H} {dt}"):
            continue
        row = {"cell": cell, "B": B, "T": T, "H": H, "dtype": dt}
        for peer in peers:
            spec = {"kind": "fb", "cell": cell, "B": B, "T": T, "H": H, "dtype": dt, "peer": peer,
                    "budget": 2.0 if quick else 5.0, "max_repeats": 5 if quick else 11}
            row[peer] = _json_child([__file__, "--worker", json.dumps(spec)], env)
        log(_report.fb_line(row))
        results["fb"].append(row)
    if (HERE / "lagmap.py").exists() and wanted("lag map"):
        for dt in ("float64", "float32"):
            spec = {"kind": "lagmap", "dtype": dt, "repeats": 3 if quick else 5, "jax": jax}
            r = _json_child([__file__, "--worker", json.dumps(spec)], env)
            log(f"lag map {dt}: {r.get('seconds', r)}")
            results["lagmap"].append(r)
    T = 1000 if quick else 10_000
    for peer in ["pytorch"] if wanted("lyapunov") else []:
        spec = {"kind": "lyapunov", "H": 128, "T": T, "dtype": "float64", "peer": peer,
                "repeats": 1}
        r = _json_child([__file__, "--worker", json.dumps(spec)], env)
        r.update(H=128, T=T, dtype="float64")
        log(f"Lyapunov spectrum T={T}: { {k: v for k, v in r.items() if k in ('gradflow', 'pytorch', 'error')} }")
        results["lyapunov"].append(r)
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, Lyapunov T = 1000")
    p.add_argument("--out", default=None, help="write the Markdown report here (e.g. BENCHMARKS.md)")
    p.add_argument("--json", default=None, help="also write every measurement here")
    p.add_argument("--no-jax", action="store_true", help="leave JAX out even if installed")
    p.add_argument("--only", default=None, help='run only the comparisons whose name contains '
                   'this ("H=512", "float32", "lag map", "lyapunov")')
    p.add_argument("--no-startup", action="store_true", help="skip the whole-process timings")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker:
        print(json.dumps(_worker(json.loads(a.worker))))
        return 0

    def log(msg):
        print(msg, flush=True)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    as_is = _child_env(unset=False)
    machine = _json_child([str(HERE / "_machine.py"), "2048" if a.quick else "4096", "5"], as_is)
    have_jax = not a.no_jax and machine.get("jax") is not None
    log(_report.machine_text(machine))
    variants = [("as the environment stands", as_is, machine)]
    if any(machine.get("env", {}).get(k) for k in BLAS_ENV):
        unset = _child_env(unset=True)
        m2 = _json_child([str(HERE / "_machine.py"), "2048" if a.quick else "4096", "5"], unset)
        variants.append((f"with {' and '.join(BLAS_ENV)} unset", unset, m2))
    else:
        log(f"{' and '.join(BLAS_ENV)} are not set here: the run as the environment stands "
            "is also the run with both unset")
    results = {"started": started, "quick": a.quick, "machine": machine, "variants": [],
               "load_start": os.getloadavg()}
    for label, env, mach in variants:
        log(f"\n== {label}: GEMM peak {mach['peak']['float64']['median_gflops']:.0f} GFLOP/s "
            f"float64, {mach['peak']['float32']['median_gflops']:.0f} float32")
        res = comparisons(env, a.quick, have_jax, log, a.only)
        results["variants"].append({"label": label, "machine": mach, **res})
    if not a.no_startup:
        log("\n== start-up (whole processes)")
        results["startup"] = startup(as_is, a.quick)
        log(_report.startup_text(results["startup"]))
    results["load_end"] = os.getloadavg()
    text = _report.markdown(results, command="python benchmarks/run.py" + (" --quick" if a.quick else ""))
    print("\n" + text)
    if a.out:
        Path(a.out).write_text(text)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
