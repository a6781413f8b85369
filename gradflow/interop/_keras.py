"""Keras in: the ``LSTM``, ``GRU``, ``SimpleRNN``, ``RNN(cell)`` and ``Bidirectional``
layers of a Keras 3 model, from a ``.keras`` file or from the model or layer object.

A ``.keras`` file is a zip archive of ``config.json`` (the model's configuration),
``metadata.json`` and ``model.weights.h5``; it is read with :mod:`zipfile`, :mod:`json`
and h5py, without importing Keras.  Keras stores a layer's variables in the order it
created them (kernel, recurrent kernel, bias) under ``layers/<class in snake case>[_k]/``,
``k`` counting the earlier layers of the same class (``layers/lstm_1/cell/vars/0``); a
``Bidirectional`` layer keeps its two layers under ``forward_layer/`` and
``backward_layer/``.

Keras's layouts are transposed from gradflow's (and PyTorch's): ``kernel (D, G*H)``,
``recurrent_kernel (H, G*H)``, one ``bias (G*H,)``, or ``(2, G*H)`` for a GRU with
``reset_after=True`` (input bias in row 0, recurrent bias in row 1).  Keras's LSTM gates
i, f, c, o are gradflow's i, f, g, o; its GRU gates z, r, h are reordered to gradflow's
r, z, n.  A single Keras bias becomes ``bias_ih``, with ``bias_hh = 0``.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .. import _validate as check
from ..cell import Cell
from ..cells import define_cell
from ..errors import DTypeError, GradflowError, InvalidArgumentError, NonFiniteError, ShapeError
from ..network import Network

__all__ = ["from_keras", "KerasImport"]

#: the recurrent layer classes read, with the stem of their group in model.weights.h5
_STEMS = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn", "RNN": "rnn",
          "Bidirectional": "bidirectional"}
#: the cells a generic ``RNN`` layer may hold, as the layer they are the cell of
_CELLS = {"LSTMCell": "LSTM", "GRUCell": "GRU", "SimpleRNNCell": "SimpleRNN"}
_RECURRENT = {*_STEMS, *_CELLS, "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "StackedRNNCells",
              "CuDNNLSTM", "CuDNNGRU"}
#: non-recurrent layers that are the identity when the model predicts (Masking: see from_keras)
_PASS_THROUGH = {"InputLayer", "Dropout", "SpatialDropout1D", "GaussianDropout", "GaussianNoise",
                 "AlphaDropout", "ActivityRegularization", "Masking"}
#: gates per family, and gradflow's gate order as indices of Keras's gate blocks
_FAMILIES = {"LSTM": (4, (0, 1, 2, 3)), "GRU": (3, (1, 0, 2)), "SimpleRNN": (1, (0,))}
#: Keras activations gradflow's equations express exactly; Keras 3's hard_sigmoid is
#: relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1)
_ACTIVATIONS = {
    "tanh": "tanh({0})", "sigmoid": "sigmoid({0})", "relu": "relu({0})", "linear": "({0})",
    "hard_sigmoid": "(relu(({0})/6 + 1/2) - relu(({0})/6 - 1/2))",
}
#: (family, activation, recurrent activation, reset_after) of the catalogue's cells
_CATALOGUE = {("LSTM", "tanh", "sigmoid", False): "lstm",
              ("GRU", "tanh", "sigmoid", True): "gru", ("GRU", "tanh", "sigmoid", False): "gru-cho",
              ("SimpleRNN", "tanh", None, False): "rnn",
              ("SimpleRNN", "relu", None, False): "rnn-relu",
              ("SimpleRNN", "linear", None, False): "rnn-linear"}
_WEIGHTS = "model.weights.h5"


@dataclass(frozen=True)
class KerasImport:
    """What :func:`from_keras` read.

    Attributes
    ----------
    network : Network
        The recurrent layers, batch-first like Keras: ``network.forward(x)`` takes the
        ``(B, T, D)`` input of the first recurrent layer.
    layers : tuple of (str, str)
        Name and class of the Keras layer behind each layer of `network`, in order.
    skipped : tuple of (str, str)
        Name and class of every layer that is not recurrent, in the model's order.
    dense : tuple of (str, (ndarray, ndarray or None, str))
        Every ``Dense`` layer of the model: its name, and its kernel ``(F, K)``, bias
        ``(K,)`` (None without) and activation, as Keras stores them (a readout for
        :func:`gradflow.analyze`).
    """

    network: Network
    layers: tuple
    skipped: tuple
    dense: tuple = ()


@dataclass(frozen=True)
class _Direction:
    """One recurrent layer (or one direction of a Bidirectional): what its config says."""

    name: str
    family: str  # LSTM, GRU or SimpleRNN
    units: int
    activation: str
    recurrent_activation: str | None
    reset_after: bool
    use_bias: bool
    where: tuple  # (layer name, h5 group stem or None, "" or the Bidirectional attribute)

    @property
    def label(self) -> str:
        return _label(self.name, self.where)


def _label(name: str, where: tuple) -> str:
    """How messages name a layer: 'lstm', or 'bidirectional' (forward_layer 'forward_lstm')."""
    return repr(where[0]) + (f" ({where[2]} {name!r})" if where[2] else "")


def _fail(label: str, message: str, cls=InvalidArgumentError):
    raise cls(f"Keras layer {label}: {message}")


def _activation(who, which: str, value) -> str:
    if isinstance(value, dict) and isinstance(value.get("config"), str) \
            and str(value.get("module", "")).split(".")[0] == "keras":
        value = value["config"]
    if value is None:
        value = "linear"
    if not isinstance(value, str) or value not in _ACTIVATIONS:
        _fail(who, f"{which} {value!r:.80} cannot be expressed with gradflow's equations; "
                     f"expected one of {sorted(_ACTIVATIONS)}")
    return value


def _direction(entry: dict, where: tuple) -> _Direction:
    """A recurrent layer's config entry ``{"class_name": ..., "config": ...}`` read."""
    cls, cfg = entry.get("class_name"), entry.get("config")
    if not isinstance(cfg, dict):
        _fail(repr(where[0]), f"the configuration of its {cls} layer is {cfg!r:.60}; "
                              "expected a dict")
    name = str(cfg.get("name", where[0]))
    who = _label(name, where)
    if cfg.get("go_backwards", False) and not where[2]:
        _fail(who, "go_backwards=True reads the sequence from its end and returns the outputs "
                   "reversed; gradflow reads a lone layer forwards only (a Bidirectional "
                   "layer's backward direction is read)")
    family, cell_cfg = cls, cfg
    if cls == "RNN":
        inner = cfg.get("cell")
        inner_cls = inner.get("class_name") if isinstance(inner, dict) else type(inner).__name__
        if inner_cls not in _CELLS or not isinstance(inner.get("config"), dict):
            _fail(who, f"an RNN layer around a {inner_cls} cell; gradflow reads LSTMCell, "
                       "GRUCell and SimpleRNNCell")
        family, cell_cfg = _CELLS[inner_cls], inner["config"]
    units = cell_cfg.get("units")
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        _fail(who, f"units is {units!r:.40}; expected a positive integer")
    recurrent = None if family == "SimpleRNN" else _activation(
        who, "recurrent_activation", cell_cfg.get("recurrent_activation", "sigmoid"))
    activation = _activation(who, "activation", cell_cfg.get("activation", "tanh"))
    reset_after = family == "GRU" and bool(cell_cfg.get("reset_after", True))
    return _Direction(name, family, units, activation, recurrent, reset_after,
                      bool(cell_cfg.get("use_bias", True)), where)


def _directions(entry: dict, stem: str | None) -> tuple:
    """The directions of a recurrent layer: one, or (forward, backward) for Bidirectional."""
    cls, cfg, name = entry["class_name"], entry["config"], _name(entry)
    if cls != "Bidirectional":
        return (_direction(entry, (name, stem, "")),)
    if cfg.get("merge_mode", "concat") != "concat":
        _fail(repr(name), f"merge_mode={cfg.get('merge_mode')!r}; gradflow's bidirectional "
                          "layers concatenate their directions (merge_mode='concat')")
    pair = []
    for attr, key, backwards in (("forward_layer", "layer", False),
                                 ("backward_layer", "backward_layer", True)):
        sub = cfg.get(key) or (cfg.get("layer") if backwards else None)
        if not isinstance(sub, dict) or not isinstance(sub.get("config"), dict) \
                or sub.get("class_name") not in ("LSTM", "GRU", "SimpleRNN", "RNN"):
            got = sub.get("class_name") if isinstance(sub, dict) else sub
            _fail(repr(name), f"its {attr} is {got!r:.60}; expected an LSTM, GRU, SimpleRNN "
                              "or RNN layer")
        if bool(sub["config"].get("go_backwards", False)) != backwards:
            _fail(repr(name), f"its {attr} has go_backwards={not backwards}; expected the "
                              "forward layer to read forwards and the backward layer backwards")
        pair.append(_direction(sub, (name, stem, attr)))
    if pair[0].units != pair[1].units:
        _fail(repr(name), f"its forward layer has {pair[0].units} units and its backward layer "
                          f"{pair[1].units}; gradflow's bidirectional layers have one size",
              ShapeError)
    return tuple(pair)


def _name(entry: dict) -> str:
    cfg = entry.get("config")
    name = entry.get("name") or (cfg.get("name") if isinstance(cfg, dict) else None)
    return str(name) if name is not None else f"<{entry.get('class_name')}>"


def _mentions_recurrent(value) -> bool:
    if isinstance(value, dict):
        return value.get("class_name") in _RECURRENT or \
            any(map(_mentions_recurrent, value.values()))
    return isinstance(value, list) and any(map(_mentions_recurrent, value))


def _tensor_sources(value) -> list:
    """The layer names in the serialized Keras tensors inside a node's arguments."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [str((value.get("config") or {}).get("keras_history", ["?"])[0])]
        return [s for v in value.values() for s in _tensor_sources(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _tensor_sources(v)]
    return []


def _ends(value, which: str) -> list:
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, list) and v for v in value):
        raise InvalidArgumentError(f"the model's {which} are {value!r:.80}; expected a list of "
                                   "[layer name, node, tensor]")
    return [str(v[0]) for v in value]


def _chain(cfg: dict) -> list:
    """The layers of a functional model in order, if they form one chain from input to
    output."""
    by_name = {_name(e): e for e in cfg["layers"]}
    inputs = _ends(cfg.get("input_layers"), "inputs")
    outputs = _ends(cfg.get("output_layers"), "outputs")
    if len(inputs) != 1 or len(outputs) != 1:
        raise InvalidArgumentError(f"the model has inputs {inputs} and outputs {outputs}; "
                                   "gradflow reads models with one input and one output")
    parent = {}
    for name, e in by_name.items():
        nodes = e.get("inbound_nodes") or []
        sources = _tensor_sources(nodes)
        if len(nodes) > 1 or len(sources) > 1:
            why = f"it is called {len(nodes)} times" if len(nodes) > 1 else \
                f"it reads the outputs of {sources}"
            _fail(repr(name), f"{why}; gradflow reads models whose layers form one chain, each "
                              "called once on the output of the one before")
        parent[name] = sources[0] if sources else None
    order, name = [], outputs[0]
    while name is not None and name not in order:
        if name not in by_name:
            raise InvalidArgumentError(f"the model refers to a layer {name!r} it does not have")
        order.append(name)
        name = parent[name]
    off = sorted(set(by_name) - set(order))
    if order[-1] != inputs[0] or name is not None or off:
        raise InvalidArgumentError(
            f"the model's layers do not form one chain from {inputs[0]!r} to {outputs[0]!r}"
            + (f"; not on it: {off}" if off else ""))
    return [by_name[n] for n in reversed(order)]


def _layers(config) -> list:
    """The layer entries of a model's config in the order data flows through them."""
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        raise InvalidArgumentError(f"the model configuration is {str(config)[:80]!r}; expected a "
                                   "dict with 'class_name' and 'config', as Keras writes it")
    cls, cfg = config.get("class_name"), config["config"]
    if cls in _RECURRENT:
        return [config]
    layers = cfg.get("layers")
    if cls not in ("Sequential", "Functional", "Model") or not isinstance(layers, list) or \
            not all(isinstance(e, dict) and isinstance(e.get("config"), dict) for e in layers):
        raise InvalidArgumentError(
            f"the model is a {cls!r} without a list of layers; gradflow reads Sequential "
            "models, functional models whose layers form a chain, and recurrent layers")
    return layers if cls == "Sequential" else _chain(cfg)


def _plan(config) -> tuple:
    """The recurrent layers as (name, class, directions) and the skipped layers as (name,
    class), in the model's order; the layers between recurrent ones checked."""
    entries = _layers(config)
    stems, counts = {}, {}
    # Keras names a layer's group in model.weights.h5 by its class, numbered in the order
    # of the config's list (for a functional model too, whatever the chain's order)
    for e in config["config"]["layers"] if entries[0] is not config else ():
        cls = e.get("class_name")
        if cls in _STEMS:
            k = counts[cls] = counts.get(cls, -1) + 1
            stems[id(e)] = _STEMS[cls] + (f"_{k}" if k else "")
    recurrent, skipped, between = [], [], []
    for e in entries:
        cls, name = str(e.get("class_name")), _name(e)
        custom = str(e.get("module", "keras")).split(".")[0] != "keras" \
            or ">" in str(e.get("registered_name") or "")
        if cls in _STEMS and not custom:
            if between:
                raise InvalidArgumentError(
                    f"the layers {between} stand between the recurrent layers "
                    f"{recurrent[-1][0]!r} and {name!r}; gradflow's Network is a contiguous "
                    "stack of recurrent layers (only dropout, noise and masking may come between)")
            if recurrent and not _returns_sequences(recurrent[-1][3]):
                _fail(repr(recurrent[-1][0]), "return_sequences=False: it passes on its last "
                                              f"step only, but the recurrent layer {name!r} "
                                              "reads it")
            recurrent.append((name, cls, _directions(e, stems.get(id(e))), e))
            continue
        if cls in _RECURRENT or custom or _mentions_recurrent(e.get("config")):
            origin = e.get("registered_name") or e.get("module")
            _fail(repr(name), f"class {cls!r} ({origin}) is not one gradflow reads; it reads "
                              "LSTM, GRU, SimpleRNN, RNN (of those cells) and Bidirectional, "
                              "and skips Keras's own non-recurrent layers")
        skipped.append((name, cls))
        if recurrent and cls not in _PASS_THROUGH:
            between.append(name)
    if not recurrent:
        raise InvalidArgumentError(f"the model has no recurrent layer (its layers: "
                                   f"{[n for n, _ in skipped]}); expected LSTM, GRU, SimpleRNN, "
                                   "RNN or Bidirectional")
    ways = {len(r[2]) for r in recurrent}
    if len(ways) > 1:
        one, two = ([n for n, _, dirs, _ in recurrent if len(dirs) == k] for k in (1, 2))
        raise InvalidArgumentError(
            f"the recurrent layers {one} read one way and {two} both ways; gradflow's Network "
            "has the same number of directions in every layer (as PyTorch's modules do)")
    return [r[:3] for r in recurrent], skipped


def _returns_sequences(entry: dict) -> bool:
    cfg = entry["config"]
    if entry["class_name"] == "Bidirectional":
        cfg = (cfg.get("layer") or {}).get("config") or {}
    return bool(cfg.get("return_sequences", False))


@lru_cache(maxsize=None)
def _spec(family: str, activation: str, recurrent: str | None, reset_after: bool):
    """A catalogue name, or a cell defined by Keras's equations with these activations."""
    key = (family, activation, recurrent, reset_after)
    if key in _CATALOGUE:
        return _CATALOGUE[key]
    def A(x):
        return _ACTIVATIONS[activation].format(x)

    def R(x):
        return _ACTIVATIONS[recurrent or "linear"].format(x)

    cho = "-cho" if family == "GRU" and not reset_after else ""
    name = f"keras-{family.lower()}{cho}-{activation}" + (f"-{recurrent}" if recurrent else "")
    if family == "LSTM":  # Keras's i, f, c, o are gradflow's i, f, g, o
        opts = dict(gates="i f g o", state="h c", forget_gate="f")
        equations = [f"i = {R('ax_i + ah_i')}", f"f = {R('ax_f + ah_f')}",
                     f"g = {A('ax_g + ah_g')}", f"o = {R('ax_o + ah_o')}",
                     "c = f*c_prev + i*g", f"h = o*{A('c')}"]
    elif family == "GRU":  # Keras's gates z, r, h are gradflow's z, r, n (in order r z n)
        opts = dict(gates="r z n", forget_gate="z")
        equations = [f"r = {R('ax_r + ah_r')}", f"z = {R('ax_z + ah_z')}"]
        if reset_after:
            equations.append(f"n = {A('ax_n + r*ah_n')}")
        else:  # the reset gate scales h before the matmul
            opts.update(stage2="n", recurrent_input="u")
            equations += ["u = r*h_prev", f"n = {A('ax_n + ah_n')}"]
        equations.append("h = (1 - z)*n + z*h_prev")
    else:
        opts = dict(gates="a")
        equations = [f"h = {A('ax_a + ah_a')}"]
    return define_cell(name, register=False, equations="\n".join(equations),
                       description=f"Keras {family} ({activation}, recurrent {recurrent})",
                       **opts)


# ---------------------------------------------------------------------- weights
def _array(d: _Direction, what: str, where: str, value) -> np.ndarray:
    """A weight array checked: floating point, finite."""
    arr = np.asarray(value)
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in (2, 4, 8):
        _fail(d.label, f"its {what} ({where}) has dtype {arr.dtype}; expected float32 or "
                       "float64", DTypeError)
    if not np.isfinite(arr).all():
        at = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise NonFiniteError(f"Keras layer {d.label}: its {what} ({where}) holds a non-finite "
                             f"value ({arr[at]}) at index {at}; expected finite weights",
                             component=where)
    return arr


def _params(d: _Direction, arrays: list, d_in: int | None, below: str | None, dtype) -> dict:
    """gradflow's parameters (PyTorch's names and gate order) from Keras's ``kernel (D, G*H)``,
    ``recurrent_kernel (H, G*H)`` and bias ``(G*H,)`` or ``(2, G*H)``."""
    G, order = _FAMILIES[d.family]
    H = d.units
    want = ["kernel", "recurrent_kernel"] + (["bias"] if d.use_bias else [])
    if len(arrays) != len(want):
        _fail(d.label, f"{len(arrays)} weight arrays {[w for w, _ in arrays]}; expected "
                       f"{len(want)}: {', '.join(want)}", ShapeError)
    bias_shape = (2, G * H) if d.family == "GRU" and d.reset_after else (G * H,)
    shapes = {"kernel": (d_in if d_in else "D", G * H), "recurrent_kernel": (H, G * H),
              "bias": bias_shape}
    got = {}
    for what, (where, value) in zip(want, arrays):
        a = _array(d, what, where, value)
        shape = shapes[what]
        if a.ndim != len(shape) or any(s != w for s, w in zip(a.shape, shape) if w != "D"):
            reads = f", reading the {d_in} outputs of {below!r}" if below else ""
            _fail(d.label, f"its {what} ({where}) has shape {a.shape}; expected "
                           f"{tuple(shape)} ({d.family}, {H} units{reads})", ShapeError)
        got[what] = a
    rows = np.concatenate([np.arange(k * H, (k + 1) * H) for k in order])
    zeros = np.zeros(G * H)
    b = got.get("bias")
    b_ih, b_hh = (zeros, zeros) if b is None else (b[0], b[1]) if b.ndim == 2 else (b, zeros)
    params = {"weight_ih": got["kernel"].T[rows], "weight_hh": got["recurrent_kernel"].T[rows],
              "bias_ih": b_ih[rows], "bias_hh": b_hh[rows]}
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - exercised only without h5py
        raise ImportError('gradflow reads .keras files with h5py; install it with `pip install '
                          '"gradflow-rnn[keras]"` or `pip install h5py`') from None
    return h5py


def _unzip(path) -> tuple:
    """``(config, weights file's bytes)`` of a .keras archive, every failure a gradflow error."""
    p = check.path("path_or_model", path)
    where = f"`path_or_model` {str(p)!r}"
    if not p.exists():
        raise InvalidArgumentError(f"{where} does not exist; expected a .keras file written by "
                                   "model.save(...)")
    if p.is_dir():
        raise InvalidArgumentError(f"{where} is a folder; expected a .keras file")
    head = b""
    try:
        with open(p, "rb") as fh:
            head = fh.read(8)
        with zipfile.ZipFile(p) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            for member in ("config.json", _WEIGHTS):
                if member in infos:
                    check.fits_in_memory(f"{member} of {p.name}", infos[member].file_size,
                                         f"{infos[member].file_size} bytes unpacked")
            members = {m: zf.read(m) for m in ("config.json", _WEIGHTS) if m in infos}
    except GradflowError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError,
            NotImplementedError) as exc:
        if head.startswith(b"\x89HDF"):
            raise InvalidArgumentError(
                f"{where} is an HDF5 file (a legacy Keras .h5 model or a .weights.h5 file), "
                "not a .keras archive; save the model with model.save('model.keras')") from None
        what = "a truncated or corrupted zip archive" if head.startswith(b"PK") \
            else "not a zip archive"
        raise InvalidArgumentError(f"{where} is {what} ({type(exc).__name__}: {exc}); expected a "
                                   ".keras file written by model.save(...)") from None
    missing = [m for m in ("config.json", _WEIGHTS) if m not in members]
    if missing:
        extra = " (weights saved as .npz are not read; save with the default .h5 weights)" \
            if "model.weights.npz" in infos else ""
        raise InvalidArgumentError(f"{where} is a zip archive without {' and '.join(missing)}, so "
                                   f"not a .keras file; it holds {sorted(infos)[:10]}{extra}")
    try:
        config = json.loads(members["config.json"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidArgumentError(f"{where}: config.json is not valid JSON ({exc})") from None
    return config, members[_WEIGHTS], where


def _read_h5(weights: bytes, where: str, dirs: list) -> list:
    """Per direction, the ``(path, array)`` of its variables in model.weights.h5."""
    h5py = _h5py()
    out = []
    try:
        with h5py.File(io.BytesIO(weights), "r") as f:
            for d in dirs:
                _, stem, attr = d.where
                base = f"layers/{stem}" + (f"/{attr}" if attr else "")
                named = f.get(base + "/vars")  # Keras records the layer's name there
                saved = named.attrs.get("name") if isinstance(named, h5py.Group) else None
                saved = saved.decode("utf-8", "replace") if isinstance(saved, bytes) else saved
                if saved is not None and str(saved) != d.name:
                    _fail(d.label, f"{_WEIGHTS} holds the weights of a layer {str(saved)!r} "
                                   f"at {base}; expected this layer's", ShapeError)
                group = f.get(base + "/cell/vars")
                if not isinstance(group, h5py.Group):
                    _fail(d.label, f"{_WEIGHTS} has no group {base}/cell/vars; expected the "
                                   "layer's kernel, recurrent kernel and bias there", ShapeError)
                keys = [str(i) for i in range(len(group))]
                if sorted(group) != sorted(keys) or \
                        not all(isinstance(group[k], h5py.Dataset) for k in keys):
                    _fail(d.label, f"{base}/cell/vars holds {sorted(group)}; expected the "
                                   "arrays 0, 1 (, 2)", ShapeError)
                out.append([(f"{base}/cell/vars/{k}", group[k][()]) for k in keys])
    except GradflowError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise InvalidArgumentError(f"{where}: {_WEIGHTS} cannot be read; it is truncated or "
                                   f"corrupted ({type(exc).__name__}: {exc})") from None
    return out


def _read_objects(model, keras, dirs: list) -> list:
    """Per direction, the ``(path, array)`` of its variables, from the live Keras layers."""
    out = []
    for d in dirs:
        name, _, attr = d.where
        layer = model.get_layer(name) if isinstance(model, keras.Model) else model
        layer = getattr(layer, attr) if attr else layer
        if not layer.weights:
            _fail(d.label, "it has no weights: the model was never built; call it on data or "
                          "build it first")
        out.append([(w.path, _to_numpy(w, keras)) for w in layer.weights])
    return out


def _to_numpy(variable, keras):
    value = getattr(variable, "value", variable)
    if hasattr(value, "detach"):  # torch backend: np.array(tensor) warns under NumPy 2
        return value.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(value)


def from_keras(path_or_model) -> KerasImport:
    """The recurrent layers of a Keras 3 model as a :class:`~gradflow.Network`.

    Parameters
    ----------
    path_or_model : str, pathlib.Path, or a Keras model or layer
        A ``.keras`` file (read without Keras), or a built Keras 3 model or recurrent layer
        (read through its config and its variables).  The model is Sequential, or
        functional with its layers in one chain.  Its recurrent layers are ``LSTM``,
        ``GRU`` (``reset_after=True`` gives gradflow's ``gru``, ``reset_after=False``
        ``gru-cho``), ``SimpleRNN`` (tanh: ``rnn``, relu: ``rnn-relu``, linear:
        ``rnn-linear``), ``RNN`` around one of their cells, and ``Bidirectional``
        (``merge_mode="concat"``), stacked with ``return_sequences=True``.

    Returns
    -------
    KerasImport
        ``.network``: always a :class:`~gradflow.Network` (even for one layer), batch-first
        like Keras: it reads ``(B, T, D)``, the input of the first recurrent layer (the
        output of the layers before it), and ``forward(x).output`` is ``(B, T, dirs*H)``,
        every step's output of the last recurrent layer (what Keras returns with
        ``return_sequences=True``; without, Keras returns its last step).
        ``.layers``: (name, class) of the Keras layer behind each network layer.
        ``.skipped``: (name, class) of every non-recurrent layer (InputLayer, Embedding,
        Dense, Dropout ...), which the network does not contain.

    Notes
    -----
    Activations other than Keras's defaults (``tanh``, recurrent ``sigmoid``) give a cell
    defined by Keras's equations (:func:`gradflow.define_cell`, not registered): ``relu``,
    ``linear``, ``sigmoid`` and ``hard_sigmoid`` (Keras 3's ``relu6(x + 3) / 6``) are read.
    Dropout (``dropout``, ``recurrent_dropout``, Dropout layers) is ignored: the network
    is the model as it predicts.  Masks are not applied: gradflow runs every step (Keras
    carries the state over masked steps).  Biases a layer does not have are zero.

    Raises
    ------
    InvalidArgumentError
        A missing path; a file that is not a ``.keras`` archive, or a truncated or corrupted
        one; a layer gradflow does not read (naming it), a merge mode other than concat, a
        lone layer with ``go_backwards=True``, non-recurrent layers between recurrent ones,
        a model that is not a chain.
    ShapeError, DTypeError, NonFiniteError
        A missing or misshapen weight array, one of another dtype, or NaN weights, naming
        the layer and the array.
    """
    keras = None
    if not isinstance(path_or_model, (str, bytes)) and not hasattr(path_or_model, "__fspath__"):
        keras = sys.modules.get("keras")  # a Keras object means Keras is imported
        if keras is None or not isinstance(path_or_model, keras.layers.Layer):
            raise InvalidArgumentError(
                "`path_or_model` must be the path of a .keras file, or a Keras 3 model or "
                f"recurrent layer; got {type(path_or_model).__name__}")
        config = keras.saving.serialize_keras_object(path_or_model)
    else:
        config, weights, where = _unzip(path_or_model)
    try:
        recurrent, skipped = _plan(config)
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise InvalidArgumentError(f"the model configuration is not one Keras writes: "
                                   f"{type(exc).__name__}: {exc}") from None
    dirs = [d for _, _, pair in recurrent for d in pair]
    read = _read_objects(path_or_model, keras, dirs) if keras is not None \
        else _read_h5(weights, where, dirs)
    arrays = dict(zip(dirs, read))
    wide = any(np.asarray(a).dtype == np.float64 for r in read for _, a in r)
    dtype = np.float64 if wide else np.float32
    layers, d_in, below = [], None, None
    for name, _, pair in recurrent:
        cells = []
        for d in pair:
            params = _params(d, arrays[d], d_in, below, dtype)
            cell = Cell(_spec(d.family, d.activation, d.recurrent_activation, d.reset_after),
                        params["weight_ih"].shape[1], d.units, dtype=dtype)
            cell.params = params
            cells.append(cell)
        layers.append(tuple(cells))
        d_in, below = len(pair) * pair[0].units, name
    net = Network.from_cells(layers, bias=any(d.use_bias for d in dirs), batch_first=True)
    dense = _dense(config, path_or_model, keras, None if keras is not None else weights,
                   None if keras is not None else where)
    return KerasImport(network=net, layers=tuple((n, c) for n, c, _ in recurrent),
                       skipped=tuple(skipped), dense=dense)


def _dense(config, model, keras, weights, where) -> tuple:
    """The Dense layers' (name, (kernel, bias, activation)), from the live model or from
    model.weights.h5 (groups ``layers/dense``, ``layers/dense_1`` ... in config order)."""
    entries = config.get("config", {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(entries, list):
        return ()
    out, k = [], -1
    for e in entries:
        if not isinstance(e, dict) or e.get("class_name") != "Dense":
            continue
        k += 1
        cfg = e.get("config") or {}
        name, activation = _name(e), cfg.get("activation", "linear")
        activation = activation if isinstance(activation, str) else str(activation)
        if keras is not None:
            values = [_to_numpy(w, keras) for w in model.get_layer(name).weights]
        else:
            h5py = _h5py()
            stem = "dense" + (f"_{k}" if k else "")
            try:
                with h5py.File(io.BytesIO(weights), "r") as f:
                    group = f.get(f"layers/{stem}/vars")
                    if not isinstance(group, h5py.Group):
                        continue
                    values = [group[str(i)][()] for i in range(len(group))]
            except (OSError, RuntimeError, KeyError, ValueError) as exc:
                raise InvalidArgumentError(f"{where}: the Dense layer {name!r} cannot be read "
                                           f"({type(exc).__name__}: {exc})") from None
        if not values:
            continue
        out.append((name, (np.asarray(values[0]), np.asarray(values[1]) if len(values) > 1
                           else None, activation)))
    return tuple(out)
