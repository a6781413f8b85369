"""Checks at the public boundary: one place, one style of message.

Each check names the argument, says what was given and what is expected, and raises a
subclass of :class:`~gradflow.errors.GradflowError`.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

import numpy as np

from .config import SUPPORTED_DTYPES
from .errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError

__all__ = ["lags", "loss_arrays", "lyapunov_options", "quantiles", "positive_int", "float_dtype",
           "real", "seed", "choice", "flag", "instance", "optional_name", "names", "path",
           "fits_in_memory", "array", "first_nonfinite", "raise_nonfinite"]


def positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """`value` as an int in [`minimum`, `maximum`]."""
    want = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentError(
            f"`{name}` must be an integer {want}; got {value!r:.60} ({type(value).__name__})"
        )
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidArgumentError(f"`{name}` must be an integer {want}; got {value}")
    return int(value)


def float_dtype(name: str, value) -> np.dtype:
    """`value` as float32 or float64 (``None`` is refused: NumPy would read it as float64)."""
    dt = None
    if value is not None:
        try:
            dt = np.dtype(value)
        except (TypeError, ValueError):
            dt = None
    if dt is None or not any(dt == d for d in SUPPORTED_DTYPES):
        raise DTypeError(
            f"`{name}` must be numpy.float64 or numpy.float32; got {value!r}"
        )
    return dt


def real(name: str, value, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """`value` as a finite float in [`minimum`, `maximum`] (bools and strings refused)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidArgumentError(
            f"`{name}` must be a real number; got {value!r} ({type(value).__name__})"
        )
    v = float(value)
    if not np.isfinite(v):
        raise InvalidArgumentError(f"`{name}` must be finite; got {value!r}")
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        raise InvalidArgumentError(f"`{name}` must lie in [{lo}, {hi}]; got {value!r}")
    return v


def seed(name: str, value):
    """A seed for :func:`numpy.random.default_rng`: None, an int >= 0, or a Generator."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 0:
        raise InvalidArgumentError(
            f"`{name}` must be None or an integer >= 0; got {value!r} ({type(value).__name__})"
        )
    return int(value)


def choice(name: str, value, choices) -> str:
    """`value` as one of the strings `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgumentError(f"`{name}` must be one of {list(choices)}; got {value!r:.80}")
    return value


def flag(name: str, value) -> bool:
    """`value` as a bool (True, False, or a NumPy bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(f"`{name}` must be True or False; got {value!r:.80}")
    return bool(value)


def instance(name: str, value, cls, hint: str = ""):
    """`value`, if it is an instance of `cls`."""
    if not isinstance(value, cls):
        raise InvalidArgumentError(
            f"`{name}` must be a {cls.__module__.split('.')[0]}.{cls.__name__}; got "
            f"{type(value).__name__}. {hint}".rstrip())
    return value


def optional_name(name: str, value, choices):
    """None, or one of the strings `choices`."""
    return None if value is None else choice(name, value, choices)


def names(name: str, value, *, allowed=None) -> tuple[str, ...]:
    """`value` (one string, or a sequence of strings) as a tuple of strings, each in
    `allowed` when that is given."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(
            f"`{name}` must be a string or a sequence of strings; got {value!r:.80}")
    if allowed is not None:
        bad = [v for v in value if v not in allowed]
        if bad:
            raise InvalidArgumentError(f"`{name}` must be some of {list(allowed)}; got {bad}")
    return tuple(value)


def path(name: str, value) -> Path:
    """`value` (a str or os.PathLike, not empty) as a Path."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)) or str(value) == "" \
            or "\x00" in str(value):
        raise InvalidArgumentError(
            f"`{name}` must be a non-empty path (str or pathlib.Path); got {value!r:.80}")
    return Path(value).expanduser()


def lags(value, T: int, name: str = "lags") -> np.ndarray:
    """`value` as sorted unique int64 lags in [0, T]; None means every lag 0..T."""
    if value is None:
        return np.arange(T + 1, dtype=np.int64)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value]
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`{name}` must be a sequence of integers; got {value!r:.60}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidArgumentError(
            f"`{name}` must be a non-empty 1-D sequence of integers; got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise InvalidArgumentError(
                f"`{name}` must hold integers; got dtype {arr.dtype}"
            )
    if arr.min() < 0 or arr.max() > T:
        raise InvalidArgumentError(
            f"`{name}` must lie in [0, T] = [0, {T}] for a sequence of T = {T} steps; "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return np.unique(arr.astype(np.int64))


def lyapunov_options(T: int, size: int, transient, n_exponents, window, tol):
    """The averaging options of a Lyapunov spectrum over T steps of a state of `size`
    numbers, defaults filled in: ``(transient, n_exponents, window, tol)``.

    `transient` in [0, T - 2] (default T // 10), `n_exponents` in [1, size] (default
    size), `window` in [1, N - 1] with N = T - transient (default N // 10), `tol` > 0."""
    if T < 2:
        raise InvalidArgumentError(f"`x` must have at least 2 steps; got T = {T}")
    if transient is not None:
        transient = positive_int("transient", transient, minimum=0, maximum=T - 2)
    transient = T // 10 if transient is None else transient
    p = size if n_exponents is None else positive_int("n_exponents", n_exponents, maximum=size)
    N = T - transient
    window = max(1, N // 10) if window is None else positive_int("window", window, maximum=N - 1)
    tol = real("tol", tol)
    if not tol > 0:
        raise InvalidArgumentError(f"`tol` must be a number > 0; got {tol!r}")
    return transient, p, window, tol


def quantiles(name: str, value) -> np.ndarray:
    """`value` as a non-empty 1-D float64 array of numbers in [0, 1]."""
    try:
        q = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        q = None
    if q is None or q.ndim != 1 or q.size == 0 or np.any(~((q >= 0) & (q <= 1))):
        raise InvalidArgumentError(
            f"`{name}` must be a non-empty sequence of numbers in [0, 1]; got {value!r:.80}")
    return q


def loss_arrays(out, y, mask):
    """Outputs `out` (T, B, K), targets `y` of the same shape and a boolean `mask` (T, B)
    selecting at least one step: ``(out, y, mask, number of masked steps)``."""
    out = np.asarray(out)
    if out.dtype.kind != "f":
        raise DTypeError(f"`out` must be a float array; got dtype {out.dtype}")
    if out.ndim != 3:
        raise ShapeError(f"`out` must have shape (T, B, K); got {out.shape}")
    y = array("y", y, dtype=out.dtype, shape=out.shape)
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biu":
        raise DTypeError(f"`mask` must be boolean; got dtype {mask.dtype}")
    if mask.shape != out.shape[:2]:
        raise ShapeError(f"`mask` must have shape (T, B) = {out.shape[:2]}; got {mask.shape}")
    mask = mask.astype(bool)
    n = int(mask.sum())
    if n == 0:
        raise InvalidArgumentError("`mask` selects no step: the loss would be empty")
    return out, y, mask, n


#: Share of the machine's memory one allocation may ask for before gradflow refuses it.
MEMORY_SHARE = 0.8


def _total_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: do not refuse
        return 1 << 62


def fits_in_memory(what: str, nbytes: int, sizes: str) -> None:
    """Refuse an allocation of `nbytes` that the machine cannot hold (clearly, instead of a
    MemoryError or swapping): `what` and `sizes` name it in the message."""
    total = _total_memory()
    if nbytes > MEMORY_SHARE * total:
        raise InvalidArgumentError(
            f"{what} would need {nbytes / 2**30:,.1f} GiB ({sizes}); this machine has "
            f"{total / 2**30:,.1f} GiB. Use smaller sizes."
        )


def array(name: str, value, *, dtype: np.dtype, shape: tuple, finite: bool = True,
          hint: str = "") -> np.ndarray:
    """`value` as a C-contiguous array of `dtype` and `shape` (None entries: any size >= 1).

    Floating arrays of another precision are an error (no silent casts); Python lists and
    integer arrays are converted.
    """
    if isinstance(value, np.ndarray):
        arr = value
        if arr.dtype.kind == "f" and arr.dtype != dtype:
            raise DTypeError(
                f"`{name}` has dtype {arr.dtype}; expected {dtype} (the cell's dtype). "
                f"Convert with {name}.astype(numpy.{dtype.name}) or build the cell with "
                f"dtype=numpy.{arr.dtype.name}"
            )
        if arr.dtype.kind not in "fiub":
            raise DTypeError(f"`{name}` has dtype {arr.dtype}; expected {dtype}")
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise DTypeError(f"`{name}` cannot be read as an array: {exc}") from None
        if arr.dtype.kind not in "fiub":
            raise DTypeError(f"`{name}` has dtype {arr.dtype}; expected {dtype}")
    if not (arr.flags.c_contiguous and arr.dtype == dtype):  # a copy is made: can it be?
        fits_in_memory(f"a copy of `{name}`", arr.size * dtype.itemsize, f"shape {arr.shape}")
    original = arr
    with np.errstate(over="ignore", invalid="ignore"):  # out of range: reported below
        arr = np.ascontiguousarray(arr, dtype=dtype)
    want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if arr.ndim != len(shape):
        raise ShapeError(
            f"`{name}` must have {len(shape)} dimensions {want}; got shape {arr.shape}. {hint}".rstrip()
        )
    for got, exp in zip(arr.shape, shape):
        if (exp is None and got < 1) or (exp is not None and got != exp):
            raise ShapeError(f"`{name}` must have shape {want}; got {arr.shape}. {hint}".rstrip())
    if finite and not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        given = original[where] if original.shape == arr.shape else arr[where]
        beyond = f", beyond the range of {dtype.name}" if np.isfinite(given) else ""
        raise NonFiniteError(
            f"`{name}` holds a non-finite value ({given}{beyond}) at index {where}; "
            "expected finite numbers"
        )
    return arr


def first_nonfinite(seq: np.ndarray, *, reverse: bool = False):
    """Index along axis 0 of the first (or, with `reverse`, last) slice of `seq` holding a
    non-finite value, or None when every value is finite."""
    bad = ~np.isfinite(seq.reshape(seq.shape[0], -1)).all(axis=1)
    if not bad.any():
        return None
    steps = np.flatnonzero(bad)
    return int(steps[-1] if reverse else steps[0])


def raise_nonfinite(what: str, step: int, component: str, hint: str = "") -> None:
    raise NonFiniteError(
        f"{what}: a non-finite value first appeared at step {step} in `{component}`. {hint}".rstrip(),
        step=step, component=component,
    )
