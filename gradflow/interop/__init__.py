"""Move cells between gradflow and PyTorch, and read Keras models and ``torch.save`` files
(``torch``, ``keras`` and ``h5py`` are optional: imported when called; ``torch.save``
state dicts are read without PyTorch)."""

from ._keras import KerasImport as KerasImport
from ._keras import from_keras as from_keras
from ._torch import from_torch as from_torch
from ._torch import to_torch as to_torch
from ._torchfile import PickledObjectError as PickledObjectError
from ._torchfile import read_state_dict as read_state_dict

__all__ = ["from_torch", "to_torch", "from_keras", "KerasImport", "read_state_dict",
           "PickledObjectError"]
