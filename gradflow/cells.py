"""The cell catalogue: look cells up by name, or define your own.

>>> import gradflow
>>> "lstm" in gradflow.cells.names()
True
"""

from __future__ import annotations

from .errors import SpecError, UnknownCellError
from .symbolic.catalogue import CATALOGUE
from .symbolic.spec import CellSpec

__all__ = ["names", "get", "define_cell"]

_USER: dict[str, CellSpec] = {}


def names() -> list[str]:
    """Names of the catalogue cells and of the cells registered with
    :func:`~gradflow.define_cell`."""
    return [*CATALOGUE, *_USER]


def get(name) -> CellSpec:
    """The :class:`~gradflow.symbolic.CellSpec` called `name` (a spec is returned as is)."""
    if isinstance(name, CellSpec):
        return name
    if not isinstance(name, str):
        raise UnknownCellError(
            f"`cell` must be a catalogue name or a CellSpec; got {type(name).__name__}"
        )
    spec = CATALOGUE.get(name) or _USER.get(name)
    if spec is None:
        import difflib

        lower = {n.lower(): n for n in names()}
        close = [lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=3)]
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownCellError(
            f"unknown cell {name!r}; expected one of {names()}.{hint}"
        )
    return spec


def define_cell(name: str, *, gates, equations, register: bool = True, **options) -> CellSpec:
    """Define a cell from its per-unit equations; every derivative is derived by SymPy.

    Parameters
    ----------
    name : str
        The name to register it under (must not shadow a catalogue cell).
    gates, equations, **options
        As for :class:`~gradflow.symbolic.CellSpec` (``state``, ``params``, ``stage2``,
        ``recurrent_input``, ``forget_gate``, ``description``, ``latex_names``).
    register : bool, default True
        Make it available by name to :func:`~gradflow.cells.get` and
        ``gradflow.Cell(name, ...)``.

    Examples
    --------
    A minimal gated unit in a few lines:

    >>> import gradflow
    >>> spec = gradflow.define_cell(
    ...     "my-mgu", gates="f n", stage2="n", recurrent_input="u",
    ...     equations='''
    ...         f = sigmoid(ax_f + ah_f)
    ...         u = f*h_prev
    ...         n = tanh(ax_n + ah_n)
    ...         h = (1 - f)*h_prev + f*n
    ...     ''', register=False)
    >>> spec.jacobian()[("h", "h")].direct
    1 - sigmoid(ah_f + ax_f)
    """
    if isinstance(name, str) and name in CATALOGUE:
        raise SpecError(f"`name` {name!r} is a catalogue cell; choose another name")
    spec = CellSpec(name, gates=gates, equations=equations, **options)
    spec.partials()  # parse and differentiate now, so that a mistake is reported here
    if register:
        _USER[name] = spec
    return spec
