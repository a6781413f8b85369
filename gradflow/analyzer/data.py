"""Input sequences and targets for :func:`gradflow.analyze`, from arrays or files.

Files: ``.npy`` (one array), ``.npz`` (the array named by `key`, or its only array) and
``.csv`` (one sequence: a row per time step, a column per input; a header row of names is
skipped).  Arrays are 3-D: time-major ``(T, B, D)`` or batch-first ``(B, T, D)`` as
`layout` says (by default the model's own layout); a 2-D array is one sequence ``(T, D)``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .. import _validate as check
from ..errors import InvalidArgumentError, NonFiniteError, ShapeError

__all__ = ["read_array", "inputs", "random_inputs", "LAYOUTS", "DATA_SUFFIXES"]

LAYOUTS = ("tbd", "btd")
DATA_SUFFIXES = (".npy", ".npz", ".csv")


def read_array(path, *, key: str | None = None, what: str = "data") -> np.ndarray:
    """The array in an ``.npy``, ``.npz`` or ``.csv`` file (see the module documentation)."""
    path = check.path(what, path)
    where = f"`{what}` {str(path)!r}"
    if not path.is_file():
        raise InvalidArgumentError(f"{where} does not exist or is not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                if key is None and len(z.files) != 1:
                    raise InvalidArgumentError(f"{where} holds the arrays {z.files}; name one "
                                               "(key=..., --data-key)")
                name = key if key is not None else z.files[0]
                if name not in z.files:
                    raise InvalidArgumentError(f"{where} has no array {name!r}; it holds {z.files}")
                return z[name]
        if suffix == ".csv":
            return _read_csv(path, where)
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, InvalidArgumentError):
            raise
        raise InvalidArgumentError(f"{where} cannot be read as {suffix}: "
                                   f"{type(exc).__name__}: {exc}") from None
    raise InvalidArgumentError(f"{where}: gradflow reads {', '.join(DATA_SUFFIXES)} files; "
                               f"got {suffix or 'a suffix-less file'}")


def _read_csv(path: Path, where: str) -> np.ndarray:
    rows = []
    with path.open(newline="") as fh:
        for k, row in enumerate(csv.reader(fh)):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                rows.append([float(c) for c in row])
            except ValueError:
                if k == 0 and not rows:  # a header
                    continue
                raise InvalidArgumentError(f"{where}: line {k + 1} holds a value that is not a "
                                           f"number: {row[:6]}") from None
    if not rows:
        raise InvalidArgumentError(f"{where} holds no numbers")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise ShapeError(f"{where}: rows have {sorted(widths)} columns; expected the same "
                         "number (one per input) in every row")
    return np.asarray(rows, dtype=np.float64)


def inputs(value, net, *, layout: str | None = None, what: str = "x") -> np.ndarray:
    """`value` as the network's input, in the network's own layout, checked.

    Raises
    ------
    ShapeError
        When the array is not (T, B, D) / (B, T, D) / (T, D) or D is not the model's.
    NonFiniteError
        For NaN or infinite values, naming the first one's position.
    """
    layout = ("btd" if net.batch_first else "tbd") if layout is None else \
        check.choice("layout", layout, LAYOUTS)
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"`{what}` holds {arr.dtype} values; expected numbers")
    if arr.ndim == 2:
        arr = arr[:, None, :] if layout == "tbd" else arr[None, :, :]
    D = net.input_size
    order = "(T, B, D)" if layout == "tbd" else "(B, T, D)"
    if arr.ndim != 3 or arr.shape[-1] != D or 0 in arr.shape:
        raise ShapeError(f"`{what}` has shape {arr.shape}; expected {order} with D = {D}, the "
                         f"model's input size ({layout} layout; a 2-D array is one sequence "
                         "(T, D))")
    arr = arr.astype(net.dtype)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteError(f"`{what}` holds {arr[where]} at index {where} of {order}; "
                             "expected finite numbers", component=what)
    want_batch_first = net.batch_first
    is_batch_first = layout == "btd"
    if want_batch_first != is_batch_first:
        arr = arr.swapaxes(0, 1)
    return np.ascontiguousarray(arr)


def random_inputs(net, *, length: int, batch: int, seed: int) -> np.ndarray:
    """Standard normal inputs of the model's input size, in its layout, from `seed`."""
    length = check.positive_int("length", length)
    batch = check.positive_int("batch", batch)
    x = np.random.default_rng(seed).standard_normal((length, batch, net.input_size))
    x = x.astype(net.dtype)
    return np.ascontiguousarray(x.swapaxes(0, 1)) if net.batch_first else x
