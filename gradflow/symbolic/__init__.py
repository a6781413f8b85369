"""The symbolic layer: cells as SymPy equations, their partials and Jacobian blocks."""

from .spec import CellSpec as CellSpec
from .spec import Derivation as Derivation

__all__ = ["CellSpec", "Derivation"]
