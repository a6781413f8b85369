"""Peak memory of gradflow's forward + backward pass, against the states and gates.

    python benchmarks/memory.py [--checkpoint] [--cases lstm:32:100:128 ...]

The peak is measured with ``tracemalloc`` (NumPy reports its allocations to it) around
``cell.backward(cell.forward(x), dh)``, after a warm-up, with x and dh allocated before:
it counts the trace, the backward pass's buffers, the gradients and dx.  The reference is
the states and gate values of the pass, (S + G) numbers per unit, step and sequence
(an LSTM's h, c, i, f, g, o), the least a pass that keeps them for the backward pass holds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

CELLS = {"lstm": ("lstm", 2, 4), "gru": ("gru", 1, 3), "rnn": ("rnn", 1, 1)}


def states_and_gates(cell: str, B: int, T: int, H: int, itemsize: int) -> int:
    """Bytes of the states and gate values of a pass: (S + G) T B H numbers."""
    _, S, G = CELLS[cell]
    return (S + G) * T * B * H * itemsize


def peak(cell, x, dh, checkpoint=None) -> dict:
    """Peak bytes of one forward + backward pass (after a warm-up), and the trace's own."""

    def run():
        trace = cell.forward(x, checkpoint=checkpoint) if checkpoint else cell.forward(x)
        held = trace.nbytes if hasattr(trace, "nbytes") else None
        cell.backward(trace, dh)
        return held

    run()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        held = run()
        top = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"peak": top, "trace": held}


def measure(name: str, B: int, T: int, H: int, dtype: str, checkpoint=None) -> dict:
    import _workloads as w

    cell, x, dh = w.problem(name, B, T, H, H, dtype)
    out = peak(cell, x, dh, checkpoint)
    ref = states_and_gates(name, B, T, H, x.dtype.itemsize)
    out.update(cell=name, B=B, T=T, H=H, dtype=dtype, checkpoint=checkpoint,
               states_and_gates=ref, ratio=out["peak"] / ref)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="*", default=["lstm:32:100:128:float64",
                                                  "lstm:256:100:256:float64"],
                   help="cell:B:T:H:dtype")
    p.add_argument("--checkpoint", action="store_true", help="also the checkpointed mode")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    rows = []
    for case in a.cases:
        name, B, T, H, dtype = case.split(":")
        for ck in ([None, True] if a.checkpoint else [None]):
            rows.append(measure(name, int(B), int(T), int(H), dtype, ck))
    if a.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        held = "–" if r["trace"] is None else f"{r['trace'] / 2 ** 20:.1f}"
        print(f"{r['cell']} B={r['B']} T={r['T']} H={r['H']} {r['dtype']}"
              f"{' checkpointed' if r['checkpoint'] else ''}: peak {r['peak'] / 2 ** 20:.1f} MiB, "
              f"trace {held} MiB, states + gates {r['states_and_gates'] / 2 ** 20:.1f} MiB, "
              f"peak / (states + gates) = {r['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
