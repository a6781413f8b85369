"""Move cells between gradflow and PyTorch (``torch`` is optional: imported when called)."""

from ._torch import from_torch as from_torch
from ._torch import to_torch as to_torch

__all__ = ["from_torch", "to_torch"]
