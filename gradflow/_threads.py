"""Blocks of batch rows run on several threads by the compiled scans.

The sequences of a batch are independent, so the forward and backward scans split the
batch into blocks of rows, one per thread, each running every time step on its own rows.
Each block's per-step matrix products then go to a single-threaded BLAS call in its own
thread: the elementwise work is shared between the cores as well as the products, and no
thread waits at a barrier between steps.

The number of threads follows the BLAS: as many as every loaded BLAS may use at the time of
the call (all cores by default, one inside ``threadpoolctl.threadpool_limits(1)``), so that
whoever limits BLAS threads limits these as well.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

__all__ = ["row_blocks", "run_blocks", "single_threaded_blas", "matmul", "cores"]

#: Fewest batch rows a thread is given: below this, splitting costs more than it saves
#: (a thread hand-off costs microseconds; a row-step of a small cell, nanoseconds).
MIN_ROWS = 4
#: Fewest unit-steps (rows x hidden units x steps) a thread is given, for the same reason.
MIN_WORK = 50_000

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_BLAS = None          # threadpoolctl's controllers of the loaded BLAS libraries, once found
_SINGLE = 0           # threads now inside single_threaded_blas
_SAVED: list[int] = []


def _blas():
    """The loaded BLAS libraries' controllers (threadpoolctl), looked up once."""
    global _BLAS
    if _BLAS is None:
        from scipy.linalg import cython_blas  # noqa: F401  (the BLAS the kernels call)
        from threadpoolctl import ThreadpoolController

        from ._blas import own_library

        # oneMKL, when gradflow loads it for the per-step products, runs single-threaded
        # by gradflow's choice, not the user's: it does not limit the blocks
        own = own_library()
        _BLAS = [lib for lib in ThreadpoolController().select(user_api="blas").lib_controllers
                 if own is None or os.path.realpath(lib.filepath) != own]
    return _BLAS


def cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def blas_threads() -> int:
    """How many threads the BLAS may use now (the fewest over the loaded BLAS libraries)."""
    if _SINGLE:  # another thread is running blocks: its BLAS limit is not the user's
        return 1
    counts = [lib.num_threads for lib in _blas()]
    return max(1, min(counts)) if counts else 1


def row_blocks(batch: int, work_per_row: int, min_rows: int | None = None) -> list[tuple[int, int]]:
    """Split `batch` rows into blocks ``(lo, hi)``, one per thread that pays for itself.

    `work_per_row` is the number of unit-steps of one row (hidden units x steps); a block
    gets at least `min_rows` rows (default :data:`MIN_ROWS`).  The number of blocks is at
    most the number of threads the BLAS may use now and the number of cores this process
    may run on.
    """
    min_rows = MIN_ROWS if min_rows is None else min_rows
    n = min(batch // min_rows, batch * work_per_row // MIN_WORK)
    if n > 1:  # asking the BLAS how many threads it may use costs microseconds
        n = min(n, blas_threads(), cores())
    return _split(batch, max(1, n))


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    edges = [n * k // parts for k in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


@contextmanager
def single_threaded_blas(active: bool = True):
    """Inside (when `active`): every loaded BLAS limited to one thread, restored when the
    last thread that entered leaves.

    Row blocks and :func:`matmul` then share the cores between them alone: a BLAS thread
    pool left running would be busy-waiting for work on the cores the blocks need
    (OpenBLAS's idle threads spin for a while after each call).  Small LAPACK
    factorisations are also faster on one thread.
    """
    global _SINGLE
    if not active:
        yield
        return
    with _LOCK:
        if _SINGLE == 0:
            _SAVED[:] = [lib.num_threads for lib in _blas()]
            for lib in _blas():
                lib.set_num_threads(1)
        _SINGLE += 1
    try:
        yield
    finally:
        with _LOCK:
            _SINGLE -= 1
            if _SINGLE == 0:
                for lib, n in zip(_blas(), _SAVED):
                    lib.set_num_threads(n)


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=max(1, cores() - 1),
                                       thread_name_prefix="gradflow-rows")
        return _POOL


def run_blocks(fn, blocks: list[tuple[int, int]]) -> None:
    """Call ``fn(lo, hi)`` for every block: the first in this thread, the rest in a pool.

    `fn` must release the GIL (the kernels are compiled with ``nogil``; NumPy's matmul
    releases it).  With one block it is a plain call; with more, call it inside
    :func:`single_threaded_blas`.  An exception in any block is raised here, after all blocks
    have finished.
    """
    if len(blocks) == 1:
        fn(*blocks[0])
        return
    futures = [_pool().submit(fn, lo, hi) for lo, hi in blocks[1:]]
    try:
        fn(*blocks[0])
    finally:
        errors = [f.exception() for f in futures]
    for e in errors:
        if e is not None:
            raise e


def matmul(a: np.ndarray, b: np.ndarray, threads: int) -> np.ndarray:
    """``a @ b`` (2-D, C-contiguous result), the rows of the result split over `threads`
    threads, each one single-threaded BLAS call (inside :func:`single_threaded_blas`)."""
    m = a.shape[0]
    if threads <= 1 or m < 2 * threads:
        with np.errstate(all="ignore"):
            return np.ascontiguousarray(a @ b)
    out = np.empty((m, b.shape[1]), dtype=np.result_type(a, b))

    def rows(lo, hi):
        # like SciPy's BLAS in the one-thread path: an overflow gives inf, without a
        # warning (callers check for non-finite results and say at which step)
        with np.errstate(all="ignore"):
            np.matmul(a[lo:hi], b, out=out[lo:hi])

    run_blocks(rows, _split(m, threads))
    return out
