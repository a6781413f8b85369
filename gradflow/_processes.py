"""Worker processes that do not outlive the process that started them.

joblib's worker processes (loky) are kept for reuse and stay idle for minutes after their
last task, also after the process that started them was killed.  Workers started through
:func:`parallel` ask the kernel to end them when their parent ends (Linux
``PR_SET_PDEATHSIG``), and :func:`shutdown_workers` ends idle ones at once.
"""

from __future__ import annotations

import os
import signal

__all__ = ["die_with_parent", "parallel", "shutdown_workers"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """In a worker: be sent SIGTERM when the parent process ends (Linux; elsewhere a no-op).

    `parent`: the expected parent's pid; if it has already gone, exit now."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        return
    if parent is not None and os.getppid() != parent:
        os._exit(1)


def parallel(n_jobs: int):
    """A ``joblib.Parallel`` over local processes whose workers end with this process."""
    from joblib import Parallel, parallel_config

    with parallel_config(backend="loky", initializer=die_with_parent, initargs=(os.getpid(),)):
        return Parallel(n_jobs=n_jobs)


def shutdown_workers() -> None:
    """End joblib's idle reusable workers now (instead of after their idle timeout)."""
    try:
        from joblib.externals.loky import reusable_executor
    except ImportError:  # pragma: no cover - joblib is a dependency
        return
    # loky keeps the executor in a module global (None when no worker was started);
    # get_reusable_executor() would start one just to shut it down
    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=True)
