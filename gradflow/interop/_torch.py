"""PyTorch in and out: ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` in every configuration, a
model that contains one, or a state dict.

gradflow's ``rnn``, ``rnn-relu``, ``lstm`` and ``gru`` have PyTorch's parameter names,
shapes and gate orders, and :class:`~gradflow.Network` names its parameters as PyTorch
does (``weight_ih_l1_reverse`` ...), so conversion is a copy of arrays.  LSTMs with
``proj_size`` (``h = W_hr (o * tanh c)``) are refused: their hidden state is not the
cell's, and gradflow has no such cell.
"""

from __future__ import annotations

import re

import numpy as np

from .. import _validate as check
from ..cell import Cell
from ..errors import DTypeError, InvalidArgumentError, NonFiniteError, ShapeError
from ..network import Network

__all__ = ["from_torch", "to_torch"]

_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_KEY = re.compile(r"^(?P<prefix>(.*\.)?)(?P<param>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                  r"_l(?P<layer>\d+)(?P<reverse>_reverse)?$")
#: gates per kind, and the kind of each gate count
_GATES = {"lstm": 4, "gru": 3, "rnn": 1, "rnn-relu": 1}


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "gradflow.interop's PyTorch conversions need PyTorch; install it with "
            '`pip install "gradflow-rnn[torch]"` or `pip install torch`'
        ) from None
    return torch


def _recurrent_types(torch):
    nn = torch.nn
    return (nn.LSTM, nn.GRU, nn.RNN)


def _kind_of(module, torch) -> str:
    nn = torch.nn
    if isinstance(module, nn.LSTM):
        if module.proj_size:
            raise InvalidArgumentError(
                f"`module` is an LSTM with proj_size={module.proj_size} (h = W_hr (o * tanh c)); "
                "gradflow has no projected LSTM cell: its hidden state is not the cell's"
            )
        return "lstm"
    if isinstance(module, nn.GRU):
        return "gru"
    if isinstance(module, nn.RNN):
        return {"tanh": "rnn", "relu": "rnn-relu"}[module.nonlinearity]
    raise InvalidArgumentError(
        f"`module` must be a torch.nn.RNN, LSTM or GRU, or contain one; got {type(module).__name__}"
    )


def _find(module, name, torch):
    """The recurrent module itself, the one called `name` inside it, or its only one."""
    if isinstance(module, _recurrent_types(torch)):
        if name is not None:
            raise InvalidArgumentError("`name` was given, but `module` is itself the recurrent module")
        return module
    if not isinstance(module, torch.nn.Module):
        raise InvalidArgumentError(
            f"`module` must be a torch.nn.Module or a state dict; got {type(module).__name__}")
    found = {n: m for n, m in module.named_modules() if isinstance(m, _recurrent_types(torch))}
    if name is not None:
        if name not in found:
            raise InvalidArgumentError(
                f"`name` {name!r} is not a recurrent module of `module`; its recurrent modules "
                f"are {sorted(found) or 'none'}")
        return found[name]
    if len(found) != 1:
        raise InvalidArgumentError(
            f"`module` ({type(module).__name__}) contains {len(found)} recurrent modules "
            f"{sorted(found)}; pick one with name=" if found else
            f"`module` ({type(module).__name__}) contains no nn.RNN, nn.LSTM or nn.GRU")
    return next(iter(found.values()))


def _array(value, key: str, np_dtype) -> np.ndarray:
    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if arr.dtype.kind != "f":
        raise DTypeError(f"tensor {key!r} has dtype {arr.dtype}; expected float32 or float64")
    arr = arr.astype(np_dtype, copy=True)
    if not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise NonFiniteError(f"tensor {key!r} holds a non-finite value ({arr[where]}) at index "
                             f"{where}; expected finite weights", component=key)
    return arr


def _build(kind, tensors: dict, *, num_layers, bidirectional, bias, batch_first, input_size,
           hidden_size, np_dtype, network: bool, where: str):
    """Cells (or a Network) from tensors keyed ``weight_ih_l0`` ..., every one checked."""
    G = _GATES[kind]
    dirs = 2 if bidirectional else 1
    layers = []
    for layer in range(num_layers):
        d_in = input_size if layer == 0 else dirs * hidden_size
        pair = []
        for direction in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if direction else "")
            shapes = {"weight_ih": (G * hidden_size, d_in), "weight_hh": (G * hidden_size, hidden_size),
                      "bias_ih": (G * hidden_size,), "bias_hh": (G * hidden_size,)}
            params = {}
            for p, shape in shapes.items():
                key = p + sfx
                if p.startswith("bias") and not bias:
                    params[p] = np.zeros(shape, dtype=np_dtype)
                    continue
                if key not in tensors:
                    raise ShapeError(f"{where}: the tensor {key!r} is missing; expected shape {shape}")
                arr = _array(tensors[key], key, np_dtype)
                if arr.shape != shape:
                    raise ShapeError(f"{where}: the tensor {key!r} has shape {arr.shape}; expected "
                                     f"{shape} ({kind}, layer {layer}, hidden size {hidden_size})")
                params[p] = arr
            cell = Cell(kind, d_in, hidden_size, dtype=np_dtype)
            cell.params = params
            pair.append(cell)
        layers.append(tuple(pair))
    if not network and num_layers == 1 and dirs == 1 and bias and not batch_first:
        return layers[0][0]
    return Network.from_cells(layers, bias=bias, batch_first=batch_first)


def recurrent_keys(state: dict, name: str | None = None) -> set:
    """The keys of `state` that hold a recurrent module's tensors (``weight_ih_l0`` ...), of
    the module `name` (its prefix) when given."""
    out = set()
    for key in state:
        m = _KEY.match(str(key))
        if m is not None and (name is None or m.group("prefix") == name + "."):
            out.add(key)
    return out


def _from_state_dict(state: dict, name, kind, batch_first, network):
    groups = {}
    for key, value in state.items():
        m = _KEY.match(str(key))
        if m:
            groups.setdefault(m.group("prefix"), {})[key[len(m.group("prefix")):]] = value
    if name is not None:
        prefix = name if name.endswith(".") or name == "" else name + "."
        if prefix not in groups:
            raise InvalidArgumentError(
                f"`name` {name!r}: the state dict has no recurrent weights under that prefix; it "
                f"has them under {sorted(p.rstrip('.') or '(none)' for p in groups) or 'none'}")
    else:
        if len(groups) != 1:
            raise InvalidArgumentError(
                f"the state dict holds {len(groups)} recurrent modules "
                f"{sorted(p.rstrip('.') or '(top level)' for p in groups)}; pick one with name="
                if groups else "the state dict holds no recurrent weights (weight_ih_l0 ...)")
        prefix = next(iter(groups))
    tensors = groups[prefix]
    where = f"state dict entry {prefix.rstrip('.') or '(top level)'}"
    if any(k.startswith("weight_hr") for k in tensors):
        raise InvalidArgumentError(f"{where}: an LSTM with proj_size (weight_hr_l*): gradflow "
                                   "has no projected LSTM cell")
    if "weight_ih_l0" not in tensors or "weight_hh_l0" not in tensors:
        raise ShapeError(f"{where}: weight_ih_l0 and weight_hh_l0 are needed")
    w_ih, w_hh = np.shape(tensors["weight_ih_l0"]), np.shape(tensors["weight_hh_l0"])
    if len(w_ih) != 2 or len(w_hh) != 2 or w_hh[0] % w_hh[1]:
        raise ShapeError(f"{where}: weight_ih_l0 {w_ih} and weight_hh_l0 {w_hh} are not "
                         "(G*H, D) and (G*H, H)")
    H = w_hh[1]
    G = w_hh[0] // H
    kinds = {4: "lstm", 3: "gru", 1: "rnn"}
    if kind is None:
        if G not in kinds:
            raise ShapeError(f"{where}: {G} gates per unit is not an RNN (1), GRU (3) or LSTM (4)")
        kind = kinds[G]
    elif kind not in _GATES or _GATES[kind] != G:
        raise InvalidArgumentError(f"`kind` {kind!r} does not fit {G} gates per unit; expected "
                                   f"one of {sorted(k for k, g in _GATES.items() if g == G)}")
    layers = 1 + max(int(m.group("layer")) for k in tensors if (m := _KEY.match(k)))
    bidirectional = any(k.endswith("_reverse") for k in tensors)
    bias = "bias_ih_l0" in tensors
    dtypes = {str(getattr(v, "dtype", np.asarray(v).dtype)) for v in tensors.values()}
    np_dtype = np.float64 if any("64" in d for d in dtypes) else np.float32
    return _build(kind, tensors, num_layers=layers, bidirectional=bidirectional, bias=bias,
                  batch_first=batch_first, input_size=w_ih[1], hidden_size=H, np_dtype=np_dtype,
                  network=network, where=where)


def from_torch(module, *, name: str | None = None, kind: str | None = None,
               batch_first: bool | None = None, network: bool = False):
    """A :class:`~gradflow.Cell` or :class:`~gradflow.Network` with the parameters of a
    PyTorch recurrent module.

    Parameters
    ----------
    module : torch.nn.Module or dict
        An ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` (any ``num_layers``, ``bidirectional``,
        ``batch_first``, ``bias``; float32 or float64); a model that contains one; or a
        state dict (``model.state_dict()``, or what ``torch.load`` returns for one).
    name : str, optional
        Which recurrent module of a model (its name in ``named_modules()``) or which prefix
        of a state dict (``"encoder.rnn"``); needed only when there are several.
    kind : {"lstm", "gru", "rnn", "rnn-relu"}, optional
        For a state dict: the cell (inferred from the gate count; ``rnn-relu`` must be said,
        since its tensors look like ``rnn``'s).
    batch_first : bool, optional
        For a state dict (which does not record it); default False.
    network : bool
        Always return a Network (by default a single-layer, unidirectional, time-major
        module with biases becomes a Cell).

    Returns
    -------
    Cell or Network
        Copies of the weights: the PyTorch module is not shared.

    Raises
    ------
    InvalidArgumentError, ShapeError, DTypeError, NonFiniteError
        For what cannot be converted, naming the module, tensor or shape: a projected LSTM,
        a missing or misshapen tensor, NaN weights, several candidate modules.

    Examples
    --------
    >>> import torch
    >>> from gradflow.interop import from_torch
    >>> from_torch(torch.nn.GRU(3, 4))
    Cell('gru', input_size=3, hidden_size=4, dtype=float32)
    >>> from_torch(torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True))
    Network(lstm, layers=2, hidden_sizes=[4, 4], input_size=3, bidirectional=True, dtype=float32)
    """
    network = check.flag("network", network)
    if isinstance(module, dict):
        bf = False if batch_first is None else check.flag("batch_first", batch_first)
        return _from_state_dict(module, name, kind, bf, network)
    torch = _torch()
    if kind is not None:
        raise InvalidArgumentError("`kind` is for state dicts; a module says what it is")
    mod = _find(module, name, torch)
    kind = _kind_of(mod, torch)
    dtype = mod.weight_ih_l0.dtype
    if dtype not in (torch.float32, torch.float64):
        raise DTypeError(f"`module` has dtype {dtype}; expected torch.float32 or torch.float64")
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    tensors = dict(mod.named_parameters())
    bf = mod.batch_first if batch_first is None else check.flag("batch_first", batch_first)
    return _build(kind, tensors, num_layers=mod.num_layers, bidirectional=mod.bidirectional,
                  bias=mod.bias, batch_first=bf, input_size=mod.input_size,
                  hidden_size=mod.hidden_size, np_dtype=np_dtype, network=network,
                  where=f"module {type(mod).__name__}")


def to_torch(model):
    """A PyTorch module with the parameters of a :class:`~gradflow.Cell` or a
    :class:`~gradflow.Network`.

    Only what PyTorch has: every layer and direction the same cell, one of ``rnn``,
    ``rnn-relu`` (``nn.RNN``), ``lstm`` (``nn.LSTM``) and ``gru`` (``nn.GRU``), and one
    hidden size.  A Cell gives a time-major single-layer module; a Network keeps its
    ``num_layers``, ``bidirectional``, ``bias`` and ``batch_first``.

    Examples
    --------
    >>> import numpy as np, torch, gradflow
    >>> from gradflow.interop import to_torch
    >>> cell = gradflow.Cell("lstm", input_size=3, hidden_size=4, seed=0)
    >>> module = to_torch(cell)
    >>> module, module.weight_hh_l0.dtype
    (LSTM(3, 4), torch.float64)
    >>> x = np.random.default_rng(0).standard_normal((5, 2, 3))
    >>> out, _ = module(torch.from_numpy(x))
    >>> np.allclose(out.detach().numpy(), cell.forward(x).h)
    True
    """
    if isinstance(model, Cell):
        net = Network.from_cells([model])
    elif isinstance(model, Network):
        net = model
    else:
        raise InvalidArgumentError(
            f"`model` must be a gradflow.Cell or gradflow.Network; got {type(model).__name__}")
    torch = _torch()
    names = {c.spec.name for p in net.layers for c in p}
    sizes = set(net.hidden_sizes)
    if len(names) != 1 or len(sizes) != 1:
        raise InvalidArgumentError(
            f"`model` mixes cells {sorted(names)} or hidden sizes {sorted(sizes)}; a PyTorch "
            "recurrent module has one cell and one hidden size")
    name = names.pop()
    nn = torch.nn
    kwargs = dict(num_layers=net.num_layers, bias=net.bias, batch_first=net.batch_first,
                  bidirectional=net.bidirectional)
    D, H = net.input_size, sizes.pop()
    if name in ("rnn", "rnn-relu"):
        module = nn.RNN(D, H, nonlinearity="tanh" if name == "rnn" else "relu", **kwargs)
    elif name == "lstm":
        module = nn.LSTM(D, H, **kwargs)
    elif name == "gru":
        module = nn.GRU(D, H, **kwargs)
    else:
        raise InvalidArgumentError(
            f"`model` is made of {name!r}, which PyTorch does not have; to_torch takes rnn, "
            "rnn-relu, lstm, gru")
    module = module.to(torch.float64 if net.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        for key, param in module.named_parameters():
            param.copy_(torch.from_numpy(np.ascontiguousarray(net.params[key])))
    return module
