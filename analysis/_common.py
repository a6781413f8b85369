"""Helpers shared by the studies: inputs, lag grids, batch summaries and the grid executor."""

from __future__ import annotations

import sys

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


def grid(func, jobs: list[dict], config) -> list:
    """Run ``func(**job)`` for every job, over joblib's local processes when
    ``config.n_jobs > 1``, with a progress bar of the jobs when ``config.progress``.

    Results come back in the order of `jobs`, so the report does not depend on scheduling.
    Jobs naming a ``cell`` have its kernels compiled first, here (see :func:`warm`).
    """
    from tqdm.auto import tqdm

    n_jobs = config.n_jobs
    cells = [j.get("cell", j.get("cell_name")) for j in jobs]
    cells = [c for c in cells if isinstance(c, str)]
    if n_jobs > 1 and len(jobs) > 1 and cells:
        warm(cells)
    bar = tqdm(total=len(jobs), desc=f"  {config.label} runs", unit="run", leave=False,
               disable=not config.progress, file=sys.stderr, dynamic_ncols=True)
    try:
        if n_jobs <= 1 or len(jobs) <= 1:
            out = []
            for job in jobs:
                out.append(func(**job))
                bar.update()
            return out
        from joblib import delayed

        from gradflow._processes import parallel

        out = []
        runner = parallel(min(n_jobs, len(jobs)))
        runner.return_as = "generator"
        for result in runner(delayed(func)(**job) for job in jobs):
            out.append(result)
            bar.update()
        return out
    finally:
        bar.close()


def fmt(x: float, digits: int = 3) -> str:
    """A number for the text: fixed digits, no trailing noise."""
    if not np.isfinite(x):
        return "∞" if x > 0 else ("−∞" if x < 0 else "n/a")
    return f"{x:.{digits}g}"
