"""A user's model as a :class:`~gradflow.Network` and, optionally, its linear readout.

Accepted: a ``.keras`` file or a Keras model; a ``torch.save`` file of a state dict (read
without PyTorch, see :func:`gradflow.interop.read_state_dict`) or of a checkpoint dict
holding one; an ``.npz`` of a state dict; a PyTorch module or a state dict in memory; a
gradflow ``Network`` or ``Cell``.  A file holding a whole pickled module runs code when
loaded, so it is read only with ``trust_pickle=True`` (and PyTorch installed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _validate as check
from ..cell import Cell
from ..errors import InvalidArgumentError, MissingDependencyError, ShapeError
from ..network import Network

__all__ = ["LoadedModel", "load_model", "MODEL_SUFFIXES"]

#: the file types `load_model` reads
MODEL_SUFFIXES = (".keras", ".pt", ".pth", ".bin", ".ckpt", ".npz")


@dataclass(frozen=True)
class LoadedModel:
    """What :func:`load_model` read.

    Attributes
    ----------
    network : Network
        The recurrent layers.
    readout : tuple of (ndarray, ndarray) or None
        ``(weight (K, F), bias (K,))`` of the linear layer named by `readout`, applied to the
        network's output (F = directions x H of the last layer).
    source : str
        Where the model came from, in words.
    skipped : tuple of str
        Parts of the model that are not in `network` (Keras's non-recurrent layers, a state
        dict's other tensors).
    """

    network: Network
    readout: tuple | None
    source: str
    skipped: tuple = ()


def load_model(model, *, name: str | None = None, kind: str | None = None,
               batch_first: bool | None = None, readout: str | None = None,
               trust_pickle: bool = False) -> LoadedModel:
    """Read `model` (a path or an object; see the module documentation).

    Parameters
    ----------
    model : str, Path, Network, Cell, torch.nn.Module, keras.Model or dict
    name : str, optional
        Which recurrent module of a PyTorch model or state dict (its name or prefix), when
        there are several.
    kind : {"lstm", "gru", "rnn", "rnn-relu"}, optional
        The cell of a state dict (inferred from the gate count; ``rnn-relu`` must be said).
    batch_first : bool, optional
        Whether a state dict's module was batch-first (a state dict does not record it).
    readout : str, optional
        The linear layer after the recurrent part: its name in the PyTorch module or state
        dict (``"head"`` for ``head.weight``, ``head.bias``), or the Keras ``Dense`` layer's
        name.
    trust_pickle : bool
        Allow a ``torch.save`` file of a whole module (unpickling runs code named by the
        file; needs PyTorch).

    Returns
    -------
    LoadedModel

    Raises
    ------
    InvalidArgumentError
        For a missing file, an unknown file type, a file that is not a model, a pickled
        module without `trust_pickle`, a readout that is not there or not linear.
    """
    readout = None if readout is None else check.names("readout", [readout])[0]
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, Network):
        return LoadedModel(model, None, "a gradflow Network")
    if isinstance(model, Cell):
        return LoadedModel(Network.from_cells([(model,)], batch_first=bool(batch_first)), None,
                           "a gradflow Cell")
    if isinstance(model, (str, Path)) or hasattr(model, "__fspath__"):
        return _from_path(check.path("model", model), name, kind, batch_first, readout,
                          trust_pickle)
    if isinstance(model, dict):
        return _from_state(model, "a state dict", name, kind, batch_first, readout)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return _from_module(model, "a PyTorch module", name, readout)
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.layers.Layer):
        return _from_keras(model, "a Keras model", readout)
    raise InvalidArgumentError(
        f"`model` must be a file ({', '.join(MODEL_SUFFIXES)}), a PyTorch module, a Keras "
        f"model, a state dict or a gradflow Network; got {type(model).__name__}")


def _from_path(path: Path, name, kind, batch_first, readout, trust_pickle) -> LoadedModel:
    from ..interop import PickledObjectError, read_state_dict

    where = f"`model` {str(path)!r}"
    if not path.exists():
        raise InvalidArgumentError(f"{where} does not exist")
    if path.is_dir():
        raise InvalidArgumentError(f"{where} is a folder; expected a model file "
                                   f"({', '.join(MODEL_SUFFIXES)})")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise InvalidArgumentError(
            f"{where}: gradflow does not read {suffix or 'suffix-less'} files; expected a .keras "
            "file, a torch.save file (.pt, .pth, .bin, .ckpt) or an .npz of a state dict")
    if suffix == ".keras":
        return _from_keras(path, f"the Keras file {path.name}", readout)
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                state = {k: z[k] for k in z.files}
        except (ValueError, OSError) as exc:
            raise InvalidArgumentError(f"{where} is not a readable .npz archive of arrays "
                                       f"({type(exc).__name__}: {exc})") from None
        return _from_state(state, f"the state dict in {path.name}", name, kind, batch_first,
                           readout)
    try:
        state = read_state_dict(path)
    except PickledObjectError as exc:
        if not trust_pickle:
            raise InvalidArgumentError(
                f"{where} holds a pickled module ({exc.found}): loading it runs code named by "
                "the file.  Save model.state_dict() instead and give the architecture flags, "
                "or pass trust_pickle=True (--trust-pickle) for a file you trust") from None
        try:
            import torch
        except ImportError:
            raise MissingDependencyError(
                f"{where} holds a pickled module; reading it needs PyTorch "
                '(pip install "gradflow-rnn[torch]")') from None
        module = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(module, torch.nn.Module):
            raise InvalidArgumentError(f"{where} holds a {type(module).__name__}, not a "
                                       "torch.nn.Module or a state dict") from None
        return _from_module(module, f"the PyTorch module in {path.name}", name, readout)
    return _from_state(state, f"the state dict in {path.name}", name, kind, batch_first, readout)


def _linear(weight, bias, where: str, width: int) -> tuple:
    w = np.asarray(weight, dtype=np.float64)
    b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    if w.ndim != 2 or b.shape != (w.shape[0],):
        raise ShapeError(f"{where}: weight {w.shape} and bias {b.shape} are not a linear "
                         "layer's (K, F) and (K,)")
    if w.shape[1] != width:
        raise ShapeError(f"{where}: reads {w.shape[1]} features; the network's output has "
                         f"{width} (directions x H of its last layer)")
    if not (np.isfinite(w).all() and np.isfinite(b).all()):
        raise InvalidArgumentError(f"{where} holds NaN or infinite weights")
    return w, b


def _width(net: Network) -> int:
    return net.num_directions * net.hidden_sizes[-1]


def _from_state(state: dict, source: str, name, kind, batch_first, readout) -> LoadedModel:
    from ..interop import from_torch

    net = from_torch(state, name=name, kind=kind, batch_first=bool(batch_first), network=True)
    head = None
    if readout is not None:
        wkey, bkey = f"{readout}.weight", f"{readout}.bias"
        if wkey not in state:
            linear = sorted(k[:-7] for k in state if k.endswith(".weight") and np.ndim(state[k]) == 2
                            and "weight_" not in k.rsplit(".", 1)[-1])
            raise InvalidArgumentError(
                f"`readout` {readout!r}: {source} has no tensor {wkey!r}; linear layers there: "
                f"{linear or 'none'}")
        head = _linear(state[wkey], state.get(bkey), f"readout {readout!r}", _width(net))
    from ..interop._torch import recurrent_keys

    used = recurrent_keys(state, name)
    if readout is not None:
        used |= {f"{readout}.weight", f"{readout}.bias"}
    return LoadedModel(net, head, source, tuple(sorted(k for k in state if k not in used)))


def _from_module(module, source: str, name, readout) -> LoadedModel:
    from ..interop import from_torch

    net = from_torch(module, name=name, network=True)
    head = None
    if readout is not None:
        try:
            layer = module.get_submodule(readout)
        except AttributeError:
            linear = [n for n, m in module.named_modules() if type(m).__name__ == "Linear"]
            raise InvalidArgumentError(f"`readout` {readout!r}: the module has no submodule of "
                                       f"that name; its Linear layers: {linear or 'none'}") from None
        if type(layer).__name__ != "Linear":
            raise InvalidArgumentError(f"`readout` {readout!r} is a {type(layer).__name__}; "
                                       "expected a Linear layer")
        bias = None if layer.bias is None else layer.bias.detach().cpu().numpy()
        head = _linear(layer.weight.detach().cpu().numpy(), bias, f"readout {readout!r}",
                       _width(net))
    return LoadedModel(net, head, source)


def _from_keras(model, source: str, readout) -> LoadedModel:
    from ..interop import from_keras

    got = from_keras(model)
    head = None
    if readout is not None:
        dense = dict(got.dense)
        if readout not in dense:
            raise InvalidArgumentError(f"`readout` {readout!r}: the model has no Dense layer of "
                                       f"that name; its Dense layers: {sorted(dense) or 'none'}")
        kernel, bias, activation = dense[readout]
        if activation not in ("linear", "softmax", None):
            raise InvalidArgumentError(
                f"`readout` {readout!r} has activation {activation!r}; gradflow's losses read a "
                "linear layer (its logits: 'linear', or 'softmax' for cross-entropy)")
        head = _linear(np.asarray(kernel).T, bias, f"readout {readout!r}", _width(got.network))
    skipped = tuple(f"{n} ({c})" for n, c in got.skipped)
    return LoadedModel(got.network, head, source, skipped)
