"""Move cells between gradflow and PyTorch, and read Keras models (``torch``, ``keras`` and
``h5py`` are optional: imported when called)."""

from ._keras import KerasImport as KerasImport
from ._keras import from_keras as from_keras
from ._torch import from_torch as from_torch
from ._torch import to_torch as to_torch

__all__ = ["from_torch", "to_torch", "from_keras", "KerasImport"]
