"""Configuration in one place: dtypes, tolerances, JIT flags and the kernel cache folder.

Environment variables
---------------------
``GRADFLOW_CACHE_DIR``
    Folder for generated kernel modules and Numba's compiled code.  Default:
    ``$XDG_CACHE_HOME/gradflow`` (``~/.cache/gradflow``).  Which folder is used when that
    one is not safe or not writable, and which files in it are loaded, is decided by
    :mod:`gradflow.codegen.cache`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SUPPORTED_DTYPES",
    "TOLERANCES",
    "JIT_OPTIONS",
    "LLVM_OPTIONS",
    "tolerance",
    "CACHE_ENV",
    "LYAPUNOV_QR",
    "lyapunov_qr",
]

#: The environment variable that names the kernel cache folder.
CACHE_ENV = "GRADFLOW_CACHE_DIR"

#: dtypes every kernel is compiled for.
SUPPORTED_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

#: Relative and absolute tolerances per dtype, for comparisons against independent
#: references.  ``"reference"``: the same quantity computed another way (PyTorch autograd,
#: a slow NumPy loop, SymPy ``.subs()``); ``"finite_difference"``: against central
#: differences, whose own truncation and rounding error dominates.
TOLERANCES = {
    np.dtype(np.float64): {
        "reference": {"rtol": 1e-10, "atol": 1e-12},
        "finite_difference": {"rtol": 1e-6, "atol": 1e-8},
    },
    np.dtype(np.float32): {
        "reference": {"rtol": 1e-4, "atol": 1e-5},
        "finite_difference": {"rtol": 2e-2, "atol": 2e-3},
    },
}

#: Flags for every ``njit`` in generated modules.  No ``fastmath``: NaN and inf must stay
#: visible; ``cache=True`` so that a second process loads compiled code from disk;
#: ``error_model="numpy"``: a division by zero gives inf or NaN (reported with its step by
#: the non-finite checks) instead of a Python exception, whose check in every iteration
#: would keep LLVM from vectorising the loops.
JIT_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

#: LLVM settings applied before the generated modules compile.  A unit function reads and
#: writes a dozen array rows; LLVM vectorises its loop only after checking at run time that
#: they do not overlap, and by default gives up beyond 8 such checks.
LLVM_OPTIONS = (
    "-runtime-memory-check-threshold=256",
    "-vectorize-memory-check-threshold=512",
)


#: How often :func:`gradflow.lyapunov_spectrum` re-orthonormalises its vectors when the
#: interval is chosen as it goes (Engelken, Wolf & Abbott 2020).  Between two QR
#: factorisations the condition number of the propagated vectors may grow to `condition`
#: (the smallest directions then carry a relative rounding error of about
#: eps * condition in that factorisation's log |R_ii|), the entries grow or shrink by at
#: most a factor `range`, and at most `max_interval` steps pass.
LYAPUNOV_QR = {
    np.dtype(np.float64): {"condition": 1e10, "range": 1e250, "max_interval": 64},
    np.dtype(np.float32): {"condition": 1e3, "range": 1e30, "max_interval": 64},
}


def lyapunov_qr(dtype) -> dict[str, float]:
    """``LYAPUNOV_QR`` for `dtype`: ``{"condition", "range", "max_interval"}``."""
    return dict(LYAPUNOV_QR[np.dtype(dtype)])


def tolerance(dtype, kind: str = "reference") -> dict[str, float]:
    """Return ``{"rtol": ..., "atol": ...}`` for `dtype` and the comparison `kind`."""
    return dict(TOLERANCES[np.dtype(dtype)][kind])
