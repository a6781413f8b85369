"""Read the tensors of a ``torch.save`` file without PyTorch, and without running code
from the file.

A ``torch.save`` file is a zip archive: ``<name>/data.pkl`` (a pickle of the saved object,
whose tensors refer to storages by key) and ``<name>/data/<key>`` (each storage's raw
bytes).  The pickle is read by an unpickler that knows a handful of names — an ordered
dict, PyTorch's tensor and parameter rebuilders, its storage types — and refuses every
other: a pickled module (``torch.save(model)``) names its classes, and unpickling it would
import and run them.  Such a file is refused with a message that says how to save the
weights instead.

>>> import numpy as np, tempfile, os
>>> from gradflow.interop import read_state_dict
>>> torch = __import__("pytest").importorskip("torch")
>>> path = os.path.join(tempfile.mkdtemp(), "gru.pt")
>>> torch.save(torch.nn.GRU(3, 4).state_dict(), path)
>>> {k: v.shape for k, v in read_state_dict(path).items()}
{'weight_ih_l0': (12, 3), 'weight_hh_l0': (12, 4), 'bias_ih_l0': (12,), 'bias_hh_l0': (12,)}
"""

from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np

from .. import _validate as check
from ..errors import GradflowError, InvalidArgumentError

__all__ = ["read_state_dict", "PickledObjectError"]

#: PyTorch's storage types and the NumPy dtype of their elements
_STORAGES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class PickledObjectError(InvalidArgumentError):
    """The file holds pickled Python objects other than tensors (a whole module): reading
    it would run code from the file.

    Attributes
    ----------
    found : str
        The first class or function the pickle names (``"torch.nn.modules.rnn.LSTM"``).
    """

    def __init__(self, message: str, found: str):
        super().__init__(message)
        self.found = found


class _Storage:
    def __init__(self, dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, *_ignored):
    """A tensor as a NumPy array (a copy) of its storage's elements."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if not size:
        return storage[offset].copy()
    if any(s == 0 for s in size):
        return np.zeros(size, dtype=storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= storage.shape[0] or min(stride) < 0:
        raise InvalidArgumentError(
            f"a tensor of shape {size} (offset {offset}, strides {stride}) reaches beyond its "
            f"storage of {storage.shape[0]} elements: the file is corrupt")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * storage.itemsize for s in stride),
        writeable=False)
    return np.array(view)


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    """Knows tensors, storages and ordered dicts; refuses every other name."""

    def __init__(self, fh, archive: zipfile.ZipFile, prefix: str, order: str, where: str):
        super().__init__(fh)
        self.archive, self.prefix, self.order, self.where = archive, prefix, order, where
        self.storages: dict = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGES:
            return _Storage(_STORAGES[name])
        raise PickledObjectError(
            f"{self.where} holds a pickled {module}.{name}, not only tensors: reading it "
            "would import and run code named by the file.  Save the weights instead "
            "(torch.save(model.state_dict(), path)), or, for a file you trust, load it "
            "with PyTorch yourself and pass the module.",
            found=f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise InvalidArgumentError(f"{self.where}: an unknown persistent id {pid!r:.80}")
        _, kind, key, _location, numel = pid
        if key in self.storages:
            return self.storages[key]
        if not isinstance(kind, _Storage):
            raise InvalidArgumentError(f"{self.where}: a storage of unknown type {kind!r:.60}")
        member = f"{self.prefix}data/{key}"
        try:
            raw = self.archive.read(member)
        except KeyError:
            raise InvalidArgumentError(
                f"{self.where}: the storage {member!r} is missing: the file is truncated or "
                "corrupt") from None
        if kind.dtype == "bfloat16":  # the upper half of a float32
            bits = np.frombuffer(raw, dtype=self.order + "u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            dtype = np.dtype(kind.dtype).newbyteorder(self.order)
            if len(raw) % dtype.itemsize:
                raise InvalidArgumentError(f"{self.where}: the storage {member!r} has {len(raw)} "
                                           f"bytes, not a whole number of {dtype} elements")
            arr = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        if arr.shape[0] < int(numel):
            raise InvalidArgumentError(
                f"{self.where}: the storage {member!r} holds {arr.shape[0]} elements; its "
                f"record says {numel}: the file is truncated or corrupt")
        self.storages[key] = arr
        return arr


def read_state_dict(path) -> dict:
    """The tensors of a ``torch.save`` file of a state dict, as NumPy arrays, by key.

    Reads the zip format of ``torch.save`` (PyTorch >= 1.6) with the standard library and
    NumPy only: PyTorch need not be installed, and no code named in the file runs.  Nested
    dicts (a checkpoint ``{"model": state_dict, ...}``) are flattened with dotted keys.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    dict of str to ndarray
        Copies, in the file's order; float32, float64 and float16 stay as they are,
        bfloat16 becomes float32.

    Raises
    ------
    PickledObjectError
        When the file holds other pickled objects (a whole module).
    InvalidArgumentError
        For a file that is missing, not a ``torch.save`` zip (the old format included),
        truncated or corrupt.
    """
    path = check.path("path", path)
    where = f"the file {str(path)!r}"
    if not path.is_file():
        raise InvalidArgumentError(f"`path`: {where} does not exist or is not a file")
    if not zipfile.is_zipfile(path):
        raise InvalidArgumentError(
            f"{where} is not a torch.save zip archive (a file of PyTorch < 1.6, or "
            "_use_new_zipfile_serialization=False, or not PyTorch's at all): load it with "
            "PyTorch and save it again with torch.save")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
            if len(pkl) != 1:
                raise InvalidArgumentError(f"{where} has no data.pkl record: it is not a "
                                           "torch.save file")
            prefix = pkl[0][: -len("data.pkl")]
            order = "<"
            if f"{prefix}byteorder" in names:
                order = ">" if archive.read(f"{prefix}byteorder").strip() == b"big" else "<"
            with archive.open(pkl[0]) as fh:
                obj = _Unpickler(fh, archive, prefix, order, where).load()
    except GradflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to parse a damaged file says so
        raise InvalidArgumentError(f"{where} cannot be read: {type(exc).__name__}: {exc}; "
                                   "the file is truncated or corrupt") from None
    out: dict = {}
    _flatten(obj, "", out, where)
    if not out:
        raise InvalidArgumentError(f"{where} holds no tensors")
    return out


def _flatten(obj, prefix: str, out: dict, where: str) -> None:
    if isinstance(obj, np.ndarray):
        out[prefix.rstrip(".")] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(value, f"{prefix}{key}.", out, where)
    elif isinstance(obj, (list, tuple)):
        for k, value in enumerate(obj):
            _flatten(value, f"{prefix}{k}.", out, where)
    # numbers and strings of a checkpoint (epoch, names) are not tensors: left out
