"""Module-level functions of one point, for the sweep tests (worker processes import them)."""

from __future__ import annotations

import os
import time

import numpy as np


def lag_point(point):
    """A small lag map whose cell and input come from the point's seed."""
    import gradflow

    rng = np.random.default_rng(point["seed"])
    cell = gradflow.Cell(point["cell"], 2, point["H"], seed=int(rng.integers(1 << 30)))
    x = rng.standard_normal((12, 1, 2))
    flow = gradflow.gradient_flow(cell, x, state=False)
    return {"end": float(flow.log10_h[-1, 0]), "draw": float(rng.standard_normal()),
            "curve": flow.log10_h[:, 0]}


def slow_point(point):
    """Sleeps, and leaves a line per call in point['log'] (to count how often a point ran)."""
    time.sleep(point.get("sleep", 0.2))
    with open(point["log"], "a") as fh:
        fh.write(f"{point['i']}\n")
    return {"i2": point["i"] * 2, "pid": os.getpid()}


def failing_point(point):
    if point["i"] == 3:
        raise ValueError("point three is broken")
    return {"i": point["i"]}


def tuple_point(point):
    return point["i"], [0.0, 1.0]


def number_point(point):
    return point["i"] / 2


def ragged_point(point):
    return {"ragged": [[0], [1, 2]]}


class _Count(__import__("logging").Handler):
    """Counts gradflow's "compiling kernels" messages in this process."""

    def __init__(self):
        super().__init__()
        self.compiled = []

    def emit(self, record):
        if record.getMessage().startswith("compiling kernels"):
            self.compiled.append(record.args[0])


_COUNT = _Count()
__import__("logging").getLogger("gradflow").addHandler(_COUNT)
__import__("logging").getLogger("gradflow").setLevel("INFO")


def compiling_point(point):
    """A forward and backward pass of a small cell; reports this process's compilations."""
    import gradflow

    cell = gradflow.Cell(point["cell"], 2, 3, seed=point["seed"] % 1000)
    trace = cell.forward(np.zeros((4, 1, 2)))
    cell.backward(trace, np.ones_like(trace.h))
    return {"pid": os.getpid(), "compiled": len(_COUNT.compiled)}
