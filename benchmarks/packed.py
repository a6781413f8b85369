"""gradflow's forward + backward pass with its per-step products on a weight packed once
per pass (oneMKL, ``pip install gradflow-rnn[mkl]``) against the same pass through NumPy's
BLAS at every step (OpenBLAS), in one process, alternating.

    python benchmarks/packed.py [--repeats 9] [--out packed.md]

Needs the ``mkl`` package; the route is switched in-process (``gradflow._blas``), so the
two columns share the cell, the inputs and the threads.  Also prints the per-step product
alone (one block of rows, one thread), which is what the packing changes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gradflow
from gradflow import _blas, _threads

CASES = [("lstm", B, T, H) for (B, T, H) in [(32, 100, 32), (32, 100, 128), (32, 100, 512),
                                             (256, 50, 256)]] + [
    ("gru", 32, 100, 128), ("rnn", 32, 100, 128)]


def _routes():
    if not _blas.packed_available():
        raise SystemExit(f"benchmarks/packed.py needs oneMKL: {_blas.describe()}")
    return {"packed": contextlib.nullcontext, "openblas": _blas.numpy_products}


def whole_pass(repeats: int) -> list[dict]:
    routes = _routes()
    rows = []
    for name, B, T, H in CASES:
        for dt in ("float64", "float32"):
            cell = gradflow.Cell(name, input_size=H, hidden_size=H, dtype=dt, seed=0)
            x = np.random.default_rng(1).standard_normal((T, B, H)).astype(dt)
            dh = np.ones((T, B, H), dtype=dt)
            lo, hi = _threads.row_blocks(B, T * H)[0]
            rows_per_block = hi - lo
            times = {k: [] for k in routes}
            for rep in range(repeats + 1):
                for k, route in routes.items():
                    with route():
                        t = time.perf_counter()
                        cell.backward(cell.forward(x), dh)
                        if rep:  # the first round is the warm-up
                            times[k].append(time.perf_counter() - t)
            med = {k: float(np.median(v)) for k, v in times.items()}
            rows.append({"cell": name, "B": B, "T": T, "H": H, "dtype": dt,
                         "packed_ms": 1e3 * med["packed"], "openblas_ms": 1e3 * med["openblas"],
                         "ratio": med["openblas"] / med["packed"],
                         "packed_used": _blas.use_packed(rows_per_block, cell.spec.num_gates * H, H)})
            print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict], repeats: int) -> str:
    lines = [(f"Medians of {repeats} alternating runs (after one warm-up of each); ratio = "
              "OpenBLAS route / packed route (above 1: packing is faster)."),
             "",
             "| cell | B | T | D=H | dtype | packed ms | OpenBLAS ms | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        note = "" if r["packed_used"] else " (too small: not packed)"
        lines.append(f"| {r['cell']} | {r['B']} | {r['T']} | {r['H']} | {r['dtype']} | "
                     f"{r['packed_ms']:.1f} | {r['openblas_ms']:.1f} | "
                     f"**{r['ratio']:.2f}×**{note} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--out", default=None, help="write the Markdown table here")
    a = p.parse_args(argv)
    print(_blas.describe(), flush=True)
    text = markdown(whole_pass(a.repeats), a.repeats)
    print(text)
    if a.out:
        Path(a.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
