"""Hypothesis strategies for gradflow: catalogue cells, parameters, inputs and states.

Every option is keyword-only and validated when the strategy is built (not when it is
drawn), raising :class:`~gradflow.errors.InvalidArgumentError`.  Sizes and ranges are given as
an int or float (fixed) or a ``(low, high)`` pair (inclusive).

>>> import numpy as np
>>> from hypothesis import given
>>> from gradflow.testing import strategies as gst
>>> @given(gst.cell_inputs(cells=gst.cells(names=["lstm", "gru"], hidden_size=(1, 3))))
... def test_finite(case):
...     assert np.isfinite(case.cell.forward(case.x, case.state0).h).all()

Parameters come from :class:`gradflow.Cell`'s own initialisation with a drawn seed (so a
failing example shrinks to a small seed and small sizes), then scaled; inputs are drawn
elementwise by :func:`hypothesis.extra.numpy.arrays`.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # pragma: no cover - exercised only without hypothesis
    raise ImportError(
        "gradflow.testing.strategies needs the 'hypothesis' package; install it with "
        "`pip install hypothesis` (or `pip install gradflow-rnn[test]`)"
    ) from None

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["FAMILIES", "cell_names", "cells", "sequences", "states", "cell_inputs", "CellInput"]

#: families of catalogue cells, by the first part of their names.
FAMILIES = ("rnn", "lstm", "gru", "mgu")


def _catalogue():
    from .. import cells

    return cells.names()


def _int_range(name: str, value, minimum: int = 1) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        lo = hi = int(value)
    elif isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        lo, hi = int(value[0]), int(value[1])
    else:
        raise InvalidArgumentError(
            f"`{name}` must be an int or a (low, high) pair of ints; got {value!r}")
    if lo < minimum or hi < lo:
        raise InvalidArgumentError(
            f"`{name}` must satisfy {minimum} <= low <= high; got {value!r}")
    return lo, hi


def _float_range(name: str, value, minimum: float = -math.inf) -> tuple[float, float]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        lo = hi = float(value)
    elif isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        lo, hi = float(value[0]), float(value[1])
    else:
        raise InvalidArgumentError(
            f"`{name}` must be a number or a (low, high) pair of numbers; got {value!r}")
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo or lo < minimum:
        raise InvalidArgumentError(
            f"`{name}` must be finite with {minimum} <= low <= high; got {value!r}")
    return lo, hi


def _floats(lo, hi):
    return st.just(lo) if lo == hi else st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _dtypes(value) -> list:
    from .._validate import float_dtype

    values = value if isinstance(value, (tuple, list)) else (value,)
    if not values:
        raise InvalidArgumentError("`dtype` must name at least one dtype; got an empty sequence")
    try:
        return [float_dtype("dtype", v) for v in values]
    except Exception as exc:  # DTypeError -> the one exception type of this module
        raise InvalidArgumentError(str(exc)) from None


def cell_names(*, include=None, exclude=(), family: str | None = None) -> st.SearchStrategy[str]:
    """Names of catalogue cells.

    Parameters
    ----------
    include : sequence of str, optional
        Only these names (default: the whole catalogue, user-defined cells included).
    exclude : sequence of str
        Leave these out.
    family : {"rnn", "lstm", "gru", "mgu"}, optional
        Only the cells whose name starts with it.

    Examples
    --------
    >>> cell_names(family="gru").example()  # doctest: +SKIP
    'gru-cho'
    """
    known = _catalogue()
    pool = list(known if include is None else include)
    for name in [*pool, *exclude]:
        if name not in known:
            raise InvalidArgumentError(f"unknown cell {name!r}; expected one of {known}")
    if family is not None:
        if family not in FAMILIES:
            raise InvalidArgumentError(f"`family` must be one of {FAMILIES}; got {family!r}")
        pool = [n for n in pool if n.split("-")[0] == family]
    pool = [n for n in pool if n not in set(exclude)]
    if not pool:
        raise InvalidArgumentError(
            f"no cell left to draw (include={include!r}, exclude={exclude!r}, family={family!r})")
    return st.sampled_from(pool)


def cells(*, names=None, input_size=(1, 3), hidden_size=(1, 4), dtype=np.float64,
          scale=(0.5, 2.0), spectral_radius=None, forget_bias=None,
          zero_recurrence: bool = False) -> st.SearchStrategy:
    """:class:`gradflow.Cell` objects with drawn sizes and parameters.

    Parameters
    ----------
    names : sequence of str or SearchStrategy[str], optional
        Catalogue names (default: :func:`cell_names`).
    input_size, hidden_size : int or (int, int)
    dtype : dtype or sequence of dtypes
        ``numpy.float64`` and/or ``numpy.float32``.
    scale : float or (float, float)
        Every parameter of PyTorch's initialisation (uniform in ``±1/sqrt(H)``) is
        multiplied by it (``weight_hh`` not, when `spectral_radius` is given).
    spectral_radius : float or (float, float), optional
        Rescale each gate's block of ``weight_hh`` to this spectral radius.
    forget_bias : float or (float, float), optional
        The forget-gate bias, for cells that have one (ignored for the others).
    zero_recurrence : bool
        Set ``weight_hh = 0`` (conditions of some identities).

    Examples
    --------
    >>> cells(names=["lstm"], hidden_size=2, forget_bias=1.0).example()  # doctest: +SKIP
    Cell('lstm', input_size=3, hidden_size=2, dtype=float64)
    """
    if names is None:
        name_st = cell_names()
    elif isinstance(names, st.SearchStrategy):
        name_st = names
    else:
        name_st = cell_names(include=list(names))
    d_lo, d_hi = _int_range("input_size", input_size)
    h_lo, h_hi = _int_range("hidden_size", hidden_size)
    dts = _dtypes(dtype)
    s_lo, s_hi = _float_range("scale", scale, minimum=0.0)
    rho = None if spectral_radius is None else _float_range("spectral_radius", spectral_radius, 0.0)
    fb = None if forget_bias is None else _float_range("forget_bias", forget_bias)
    if not isinstance(zero_recurrence, bool):
        raise InvalidArgumentError(f"`zero_recurrence` must be True or False; got {zero_recurrence!r}")

    @st.composite
    def _cells(draw):
        from ..cell import Cell
        from ..cells import get

        spec = get(draw(name_st))
        D = draw(st.integers(d_lo, d_hi))
        H = draw(st.integers(h_lo, h_hi))
        seed = draw(st.integers(0, 2**32 - 1))
        r = None if rho is None else draw(_floats(*rho))
        cell = Cell(spec, D, H, seed=seed, spectral_radius=r)
        s = draw(_floats(s_lo, s_hi))
        for name, value in cell.params.items():
            if not (name == "weight_hh" and r is not None):
                value *= s
        if fb is not None and spec.forget_gate is not None:
            rows = cell.gate_slice(spec.forget_gate)
            cell.params["bias_ih"][rows] = draw(_floats(*fb))
            cell.params["bias_hh"][rows] = 0.0
        if zero_recurrence:
            cell.params["weight_hh"][:] = 0.0
        dt = draw(st.sampled_from(dts))
        return cell if dt == np.float64 else cell.astype(dt)

    return _cells()


def _elements(dtype, scale):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return st.floats(-scale, scale, width=width, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False)


def sequences(*, input_size, length=(1, 6), batch_size=(1, 2), dtype=np.float64,
              scale: float = 1.0) -> st.SearchStrategy[np.ndarray]:
    """Time-major input sequences, arrays of shape ``(T, B, D)``.

    Parameters
    ----------
    input_size : int
        D, the input size.
    length, batch_size : int or (int, int)
        T and B.
    dtype : numpy.float64 or numpy.float32
    scale : float
        Elements lie in ``[-scale, scale]``.

    Examples
    --------
    >>> sequences(input_size=2, length=3, batch_size=1).example()  # doctest: +SKIP
    array([[[ 0.5 , -1.  ]],
           [[ 0.  ,  0.25]],
           [[-0.75,  1.  ]]])
    """
    D = _int_range("input_size", input_size)[0] if not isinstance(input_size, tuple) else None
    if D is None:
        raise InvalidArgumentError(f"`input_size` must be an int; got {input_size!r}")
    t_lo, t_hi = _int_range("length", length)
    b_lo, b_hi = _int_range("batch_size", batch_size)
    (dt,) = _dtypes(dtype)
    sc = _float_range("scale", scale, minimum=0.0)[0]
    shapes = st.tuples(st.integers(t_lo, t_hi), st.integers(b_lo, b_hi), st.just(D))
    return hnp.arrays(dt, shapes, elements=_elements(dt, sc))


def states(cell, *, batch_size=1, scale: float = 1.0) -> st.SearchStrategy[tuple]:
    """Initial states of `cell`: tuples of ``(B, H)`` arrays in ``cell.spec.state`` order.

    Parameters
    ----------
    cell : gradflow.Cell
    batch_size : int
        B, the number of sequences.
    scale : float
        Elements lie in ``[-scale, scale]``.

    Examples
    --------
    >>> import gradflow
    >>> cell = gradflow.Cell("lstm", 2, 2)
    >>> states(cell, batch_size=1).example()  # doctest: +SKIP
    (array([[0.5, 0. ]]), array([[-1. ,  0.25]]))
    """
    from ..cell import as_cell

    as_cell(cell)
    B = _int_range("batch_size", batch_size)[0]
    sc = _float_range("scale", scale, minimum=0.0)[0]
    one = hnp.arrays(cell.dtype, (B, cell.hidden_size), elements=_elements(cell.dtype, sc))
    return st.tuples(*[one] * len(cell.spec.state))


class CellInput(NamedTuple):
    """A cell, an input sequence for it and an initial state."""

    cell: object
    x: np.ndarray
    state0: tuple


def cell_inputs(*, cells=None, length=(1, 6), batch_size=(1, 2), x_scale: float = 1.0,
                state_scale: float = 1.0) -> st.SearchStrategy[CellInput]:
    """A :class:`CellInput`: a cell, an input ``(T, B, D)`` and a state of its dtype.

    Parameters
    ----------
    cells : SearchStrategy[gradflow.Cell], optional
        Default :func:`cells` with its defaults.
    length, batch_size : int or (int, int)
    x_scale, state_scale : float
        Elements of the input and of the initial state lie in ``[-scale, scale]``.

    Examples
    --------
    >>> cell_inputs(cells=cells(names=["rnn"]), length=2).example()  # doctest: +SKIP
    CellInput(cell=Cell('rnn', input_size=1, hidden_size=3, dtype=float64),
              x=array([[[0.]], [[1.]]]), state0=(array([[0., 0.5, -1.]]),))
    """
    cell_st = cells if cells is not None else globals()["cells"]()
    if not isinstance(cell_st, st.SearchStrategy):
        raise InvalidArgumentError(f"`cells` must be a hypothesis strategy; got {type(cells).__name__}")
    t_range = _int_range("length", length)
    b_lo, b_hi = _int_range("batch_size", batch_size)
    xs = _float_range("x_scale", x_scale, 0.0)[0]
    ss = _float_range("state_scale", state_scale, 0.0)[0]

    @st.composite
    def _inputs(draw):
        cell = draw(cell_st)
        B = draw(st.integers(b_lo, b_hi))
        x = draw(sequences(input_size=cell.input_size, length=t_range, batch_size=B,
                           dtype=cell.dtype, scale=xs))
        s0 = draw(states(cell, batch_size=B, scale=ss))
        return CellInput(cell, x, s0)

    return _inputs()
