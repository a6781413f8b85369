"""The one exception family gradflow raises.

Every error raised at the boundary derives from :class:`GradflowError` and also from
the built-in exception a caller would expect (``ValueError``, ``TypeError``), so that
``except ValueError`` keeps working.  Messages name the argument, what was given, what
was expected and, where it helps, how to fix it.

>>> import gradflow
>>> try:
...     gradflow.Cell("lstm", input_size=0, hidden_size=4)
... except ValueError as exc:
...     print(type(exc).__name__, isinstance(exc, gradflow.GradflowError))
...     print(exc)
InvalidArgumentError True
`input_size` must be an integer >= 1; got 0
"""

from __future__ import annotations

__all__ = [
    "GradflowError",
    "ShapeError",
    "DTypeError",
    "NonFiniteError",
    "UnknownCellError",
    "InvalidArgumentError",
    "SpecError",
    "CodegenError",
    "MissingDependencyError",
    "PointError",
    "GradflowWarning",
    "CacheWarning",
]


class GradflowError(Exception):
    """Base class of every exception raised by gradflow."""


class ShapeError(GradflowError, ValueError):
    """An array argument has the wrong number of dimensions or the wrong sizes."""


class DTypeError(GradflowError, TypeError):
    """An array argument has the wrong dtype."""


class NonFiniteError(GradflowError, ValueError):
    """A NaN or an infinity was given, or appeared inside a computation.

    Attributes
    ----------
    step : int or None
        The time step at which the first non-finite value appeared (``None`` for inputs
        checked as a whole).
    component : str or None
        The state component or array in which it appeared.
    """

    def __init__(self, message: str, *, step: int | None = None, component: str | None = None):
        super().__init__(message)
        self.step = step
        self.component = component


class UnknownCellError(GradflowError, ValueError):
    """A cell name that is not in the catalogue."""


class InvalidArgumentError(GradflowError, ValueError):
    """An argument has an impossible value (a non-positive size, an unknown option...)."""


class SpecError(GradflowError, ValueError):
    """A cell specification is malformed (unknown symbol, missing state update...)."""


class CodegenError(GradflowError, ValueError):
    """An expression cannot be turned into kernel source (unsupported function...)."""


class MissingDependencyError(GradflowError, ImportError):
    """An optional dependency that this call needs is not installed; the message says
    which extra to install."""


class PointError(GradflowError, RuntimeError):
    """A point of a sweep raised (with ``stop_on_error=True``).

    Attributes
    ----------
    point : dict
        The point's parameters.
    index : int
        Its index in the grid.
    remote_traceback : str
        The traceback where it ran (perhaps another process or machine).
    """

    def __init__(self, message: str, *, point: dict, index: int, remote_traceback: str = ""):
        super().__init__(message)
        self.point = point
        self.index = index
        self.remote_traceback = remote_traceback


class GradflowWarning(UserWarning):
    """Base class of every warning gradflow issues."""


class CacheWarning(GradflowWarning, RuntimeWarning):
    """The kernel cache could not be used as asked (a folder not writable or not safe, a
    corrupt file): gradflow went on another way, and says where and why."""
