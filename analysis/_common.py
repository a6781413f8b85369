"""Helpers shared by the studies: inputs, lag grids, batch summaries and their grids of runs."""

from __future__ import annotations

import numpy as np

__all__ = ["inputs", "lag_grid", "grid", "warm", "seed_of", "fmt"]


def seed_of(base: int, *parts) -> int:
    """A seed derived deterministically from the base seed and labels (cell, bias ...)."""
    seq = np.random.SeedSequence([int(base)] + [sum((k + 1) * ord(c) for k, c in enumerate(str(p)))
                                                  for p in parts])
    return int(seq.generate_state(1)[0])


def inputs(seed: int, T: int, B: int, D: int, scale: float = 1.0) -> np.ndarray:
    """Standard normal inputs times `scale`, shape (T, B, D), float64."""
    return scale * np.random.default_rng(seed).standard_normal((T, B, D))


def lag_grid(T: int, dense: int = 40, total: int = 120) -> np.ndarray:
    """Lags 0 .. T: every lag up to `dense`, then geometrically spaced (int64, sorted, unique)."""
    dense = min(dense, T)
    rest = np.geomspace(max(dense, 1), T, max(total - dense, 2)).round().astype(np.int64)
    return np.unique(np.r_[np.arange(dense + 1), rest, T]).astype(np.int64)


def warm(cells, dtype="float64") -> None:
    """Compile (or load) the kernels of `cells` in this process, before worker processes
    need them: they then load the compiled code from disk instead of compiling it each,
    and the compilation is said once ("compiling kernels for ...")."""
    import gradflow

    for name in dict.fromkeys(cells):
        cell = gradflow.Cell(name, 1, 1, dtype=dtype, seed=0)
        x = np.zeros((3, 1, 1), dtype=dtype)
        trace = cell.forward(x)
        cell.backward(trace, np.ones_like(trace.h))
        gradflow.gradient_flow(cell, x, dh=np.ones_like(trace.h))
        gradflow.jacobian_singular_values(cell, x, [1])
        gradflow.lyapunov_spectrum(cell, x, transient=0)


class _Job:
    """``func(**point["job"])``: a study's function as a sweep's function of one point."""

    def __init__(self, func):
        self.func = func

    def __call__(self, point):
        return self.func(**point["job"])


def grid(func, jobs: list[dict], config) -> list:
    """Run ``func(**job)`` for every job with :func:`gradflow.sweep`: serially, on
    ``config.n_jobs`` local processes, or on the Dask cluster of ``config.scheduler``;
    with a progress bar of the jobs when ``config.progress``.

    Results come back in the order of `jobs` and each job carries its own seed, so the
    report does not depend on where or in which order the jobs ran.  Jobs naming a ``cell``
    have its kernels compiled first, here (see :func:`warm`).  A job that raises stops the
    study with :class:`gradflow.errors.PointError`.
    """
    import gradflow

    scheduler = getattr(config, "scheduler", None)
    if scheduler is not None:
        executor = scheduler
    elif config.n_jobs > 1 and len(jobs) > 1:
        executor = "joblib"
    else:
        executor = "serial"
    cells = [j.get("cell", j.get("cell_name")) for j in jobs]
    cells = [c for c in cells if isinstance(c, str)]
    if executor != "serial" and cells:
        warm(cells)
    res = gradflow.sweep(_Job(func), [{"job": job} for job in jobs], executor=executor,
                         n_jobs=config.n_jobs, progress=config.progress, stop_on_error=True,
                         tables=False, desc=f"  {config.label} runs")
    return res.results


def fmt(x: float, digits: int = 3) -> str:
    """A number for the text: fixed digits, no trailing noise."""
    if not np.isfinite(x):
        return "∞" if x > 0 else ("−∞" if x < 0 else "n/a")
    return f"{x:.{digits}g}"
