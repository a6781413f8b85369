"""Checks at the public boundary: one place, one style of message.

Each check names the argument, says what was given and what is expected, and raises a
subclass of :class:`~gradflow.errors.GradflowError`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .config import SUPPORTED_DTYPES
from .errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError

__all__ = ["positive_int", "float_dtype", "array", "first_nonfinite", "raise_nonfinite"]


def positive_int(name: str, value, *, minimum: int = 1) -> int:
    """`value` as an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentError(
            f"`{name}` must be an integer >= {minimum}; got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {minimum}; got {value}")
    return int(value)


def float_dtype(name: str, value) -> np.dtype:
    """`value` as float32 or float64."""
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt not in SUPPORTED_DTYPES:
        raise DTypeError(
            f"`{name}` must be numpy.float64 or numpy.float32; got {value!r}"
        )
    return dt


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
        where = np.argwhere(~np.isfinite(arr))[0]
        raise NonFiniteError(
            f"`{name}` holds a non-finite value ({arr[tuple(where)]}) at index {tuple(int(i) for i in where)}; "
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
