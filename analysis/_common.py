"""Helpers shared by the studies: inputs, lag grids, batch summaries and the grid executor."""

from __future__ import annotations

import numpy as np

__all__ = ["inputs", "lag_grid", "grid", "seed_of", "fmt"]


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


def grid(func, jobs: list[dict], n_jobs: int = 1) -> list:
    """Run ``func(**job)`` for every job, over joblib's local processes when ``n_jobs > 1``.

    Results come back in the order of `jobs`, so the report does not depend on scheduling.
    """
    if n_jobs <= 1 or len(jobs) <= 1:
        return [func(**job) for job in jobs]
    from joblib import delayed

    from gradflow._processes import parallel

    return parallel(min(n_jobs, len(jobs)))(delayed(func)(**job) for job in jobs)


def fmt(x: float, digits: int = 3) -> str:
    """A number for the text: fixed digits, no trailing noise."""
    if not np.isfinite(x):
        return "∞" if x > 0 else ("−∞" if x < 0 else "n/a")
    return f"{x:.{digits}g}"
