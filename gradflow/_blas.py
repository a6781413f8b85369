"""The per-step matrix products of the scans, on a recurrent weight packed once per pass.

A forward or backward scan multiplies each step's rows by the same recurrent weight
(``h_{t-1} W_hh^T`` forward, ``d W_hh`` backward).  A plain GEMM call repacks the whole
weight into its internal layout at every step; for a block of 16 rows and H = 512 that
packing moves more memory than the multiplication itself.  Intel oneMKL can pack a matrix
once (``cblas_?gemm_pack``) and multiply by the packed copy at every step
(``cblas_?gemm_compute``).  When the ``mkl`` package is installed (``pip install
gradflow-rnn[mkl]``; x86-64), the scans do that; otherwise, and for sizes where a packed
product does not pay (tiny weights, one row), they call the BLAS that NumPy and SciPy
bring (OpenBLAS in the wheels).  Both give the same results within the dtype's rounding.

Which route a pass takes is decided here, automatically; :func:`describe` says which one
is active and why (``gradflow info`` prints it).

Environment variables
---------------------
``GRADFLOW_BLAS``
    ``auto`` (default): oneMKL's packed products where installed and worth it;
    ``openblas``: never load oneMKL (the products go through NumPy's and SciPy's BLAS).
    Any other value is reported with a GradflowWarning and treated as ``openblas``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = [
    "BLAS_ENV",
    "describe",
    "no_pack",
    "numpy_products",
    "own_library",
    "pack_weights",
    "packed_available",
    "use_packed",
]

#: The environment variable that chooses the per-step product route.
BLAS_ENV = "GRADFLOW_BLAS"

# CBLAS constants (mkl_cblas.h)
_ROW_MAJOR, _NO_TRANS, _TRANS, _B_MATRIX = 101, 111, 112, 162
_THREADING_SEQUENTIAL, _INTERFACE_LP64 = 1, 0

#: Fewest rows per block and fewest weight entries for which a packed product is used.
#: On the benchmark machine (AVX-512, 2 cores) packing made a 16-row product by a
#: 128 x 32 weight (an LSTM with H = 32) slower, by 512 x 128 (H = 128) and larger
#: faster; one row takes a matrix-vector product, which packs nothing.
MIN_ROWS = 4
MIN_ENTRIES = 64 * 256

_LOCK = threading.Lock()
_STATE: dict | None = None


def _find_library() -> Path | None:
    """libmkl_rt of the installed ``mkl`` distribution, or None."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution
    except ImportError:  # pragma: no cover
        return None
    try:
        dist = distribution("mkl")
    except PackageNotFoundError:
        return None
    for f in dist.files or ():
        name = Path(str(f)).name
        if name.startswith("libmkl_rt.so") or name in ("mkl_rt.2.dll", "libmkl_rt.dylib"):
            path = Path(dist.locate_file(f)).resolve()
            if path.is_file():
                return path
    # the wheel puts its libraries in <prefix>/lib
    for path in sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so*")):
        return path.resolve()
    return None


def _load() -> dict:
    """Load oneMKL once: {"lib", "path", "version", "reason"} (lib None when not used)."""
    choice = os.environ.get(BLAS_ENV, "auto").strip().lower() or "auto"
    state = {"lib": None, "path": None, "version": None, "reason": None, "choice": choice}
    if choice not in ("auto", "openblas"):
        state["reason"] = f"{BLAS_ENV}={choice!r} is not 'auto' or 'openblas'"
        import warnings

        from .errors import GradflowWarning

        warnings.warn(f"{state['reason']}; the per-step products go through NumPy's BLAS",
                      GradflowWarning, stacklevel=2)
        return state
    if choice == "openblas":
        state["reason"] = f"{BLAS_ENV}=openblas"
        return state
    path = _find_library()
    if path is None:
        state["reason"] = "the mkl package is not installed (pip install gradflow-rnn[mkl])"
        return state
    try:
        lib = ctypes.CDLL(str(path))
        # one thread per call (the scans run their own threads, one per block of rows) and
        # 32-bit integers; both must be set before oneMKL's first call, and oneMKL returns
        # the layer in force, which differs if someone else in the process set it first
        lib.MKL_Set_Threading_Layer.restype = ctypes.c_int
        lib.MKL_Set_Interface_Layer.restype = ctypes.c_int
        threading_layer = lib.MKL_Set_Threading_Layer(_THREADING_SEQUENTIAL)
        interface = lib.MKL_Set_Interface_Layer(_INTERFACE_LP64)
    except (OSError, AttributeError) as exc:
        state["reason"] = f"cannot load {path.name}: {exc}"
        return state
    if threading_layer != _THREADING_SEQUENTIAL or interface != _INTERFACE_LP64:
        state["reason"] = (f"{path.name} was already initialised in this process with another "
                           "threading or integer layer")
        return state
    buf = ctypes.create_string_buffer(200)
    try:
        lib.mkl_get_version_string(buf, 200)
        state["version"] = buf.value.decode(errors="replace").strip()
    except AttributeError:  # pragma: no cover
        pass
    for p in "sd":
        size = getattr(lib, f"cblas_{p}gemm_pack_get_size")
        size.restype = ctypes.c_size_t
        size.argtypes = [ctypes.c_int] * 4
        scalar = ctypes.c_double if p == "d" else ctypes.c_float
        pack = getattr(lib, f"cblas_{p}gemm_pack")
        pack.restype = None
        pack.argtypes = [ctypes.c_int] * 6 + [scalar, ctypes.c_void_p, ctypes.c_int,
                                              ctypes.c_void_p]
    state.update(lib=lib, path=str(path))
    return state


def _state() -> dict:
    global _STATE
    if _STATE is None:
        with _LOCK:
            if _STATE is None:
                _STATE = _load()
    return _STATE


def packed_available() -> bool:
    """Whether the per-step products may use oneMKL's packed GEMM in this process."""
    return _state()["lib"] is not None


@contextmanager
def numpy_products():
    """Inside: every per-step product through NumPy's BLAS, as without oneMKL (to compare
    the two routes in one process; not for use while other threads run passes)."""
    global _STATE
    saved = _state()
    _STATE = dict(saved, lib=None, reason="switched off in this process")
    try:
        yield
    finally:
        _STATE = saved


def own_library() -> str | None:
    """The path of the oneMKL library gradflow loaded (set to one thread), or None."""
    s = _state()
    return s["path"] if s["lib"] is not None else None


def describe() -> str:
    """One line: the route of the per-step products, and why."""
    s = _state()
    if s["lib"] is not None:
        version = f" ({s['version']})" if s["version"] else ""
        return (f"oneMKL packed GEMM{version}, {s['path']}: weights packed once per pass, "
                f"from {MIN_ROWS} rows per block and {MIN_ENTRIES} weight entries; "
                "smaller products through NumPy's BLAS")
    return f"NumPy's BLAS at every step ({s['reason']})"


def use_packed(rows: int, n: int, k: int) -> bool:
    """Whether a block of `rows` rows multiplies by an ``n x k`` weight through a packed copy."""
    return rows >= MIN_ROWS and n * k >= MIN_ENTRIES and packed_available()


def _function(dtype: np.dtype, name: str):
    return getattr(_state()["lib"], f"cblas_{'d' if dtype == np.float64 else 's'}gemm_{name}")


def no_pack(dtype) -> tuple:
    """Kernel arguments (fn, buffer) for products without a packed weight."""
    return 0, np.empty(0, dtype=dtype)


def pack_weights(w: np.ndarray, rows: int, transpose: bool) -> tuple:
    """Kernel arguments ``(fn, buffer)`` for products ``a (rows, k) @ op(w)`` at every step:
    op(w) = w.T (``transpose``, the forward scan's ``h W^T``) or w (the backward scan's
    ``d W``).

    `fn` is the address of ``cblas_?gemm_compute`` and `buffer` the packed copy of w, owned
    by the caller for the pass (oneMKL's packed layout must not move); ``(0, empty)`` when
    the product does not use a packed weight (see :func:`use_packed`), and the kernels then
    call NumPy's BLAS.
    """
    dtype = w.dtype
    n, k = (w.shape[0], w.shape[1]) if transpose else (w.shape[1], w.shape[0])
    if not use_packed(rows, n, k):
        return no_pack(dtype)
    w = np.ascontiguousarray(w)
    size = _function(dtype, "pack_get_size")(_B_MATRIX, rows, n, k)
    buf = np.empty(-(-size // dtype.itemsize), dtype=dtype)
    _function(dtype, "pack")(_ROW_MAJOR, _B_MATRIX, _TRANS if transpose else _NO_TRANS,
                             rows, n, k, 1.0, w.ctypes.data, w.shape[1], buf.ctypes.data)
    fn = ctypes.cast(_function(dtype, "compute"), ctypes.c_void_p).value
    return fn, buf
