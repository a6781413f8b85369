"""``Network``: stacked, optionally bidirectional recurrent layers built on gradflow's cells.

A network is a sequence of layers; a layer is one :class:`~gradflow.Cell` or, when
bidirectional, two: the forward direction reads the sequence from the first step to the
last, the reverse direction from the last to the first, and their outputs are
concatenated (forward first), as PyTorch does.  Layer ``l + 1`` reads the output of layer
``l``.  Forward and backward passes run every cell on its own generated kernels: nothing
is differentiated here but the plumbing between layers (a concatenation, a time reversal,
a sum).

Parameters are named as PyTorch names them (``weight_ih_l0``, ``weight_hh_l1_reverse``,
``bias_ih_l0`` ...), per-unit parameters likewise (``peephole_i_l0``), so a state dict
moves between the two without renaming.  Dropout between layers (PyTorch's ``dropout``)
is a training-time operation: it is recorded but not applied, so the analyses see the
network as it predicts.

>>> import numpy as np, gradflow
>>> net = gradflow.Network("lstm", input_size=3, hidden_size=5, num_layers=2,
...                        bidirectional=True, seed=0)
>>> trace = net.forward(np.zeros((7, 2, 3)))
>>> trace.output.shape          # (T, B, 2 * H)
(7, 2, 10)
>>> sorted(net.params)[:3]
['bias_hh_l0', 'bias_hh_l0_reverse', 'bias_hh_l1']
"""

from __future__ import annotations

import numbers

from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np

from . import _validate as check
from .cell import Cell, as_cell
from .errors import InvalidArgumentError, ShapeError

__all__ = ["Network", "NetworkTrace", "NetworkGrads"]

_CELL_PARAMS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_BIASES = ("bias_ih", "bias_hh")


def _suffix(layer: int, direction: int) -> str:
    return f"_l{layer}" + ("_reverse" if direction else "")


def _per_layer(name: str, value, n: int) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InvalidArgumentError(
                f"`{name}` must be one value or one per layer ({n}); got {len(value)} values")
        return list(value)
    return [value] * n


class _Params(MutableMapping):
    """The network's parameters by PyTorch's names: reads and writes go to the cells."""

    def __init__(self, net: "Network"):
        self._where = {}
        for layer, cells in enumerate(net.layers):
            for direction, cell in enumerate(cells):
                for p in (*_CELL_PARAMS, *cell.spec.params):
                    if p in _BIASES and not net.bias:
                        continue
                    self._where[p + _suffix(layer, direction)] = (cell, p)

    def __getitem__(self, name):
        try:
            cell, p = self._where[name]
        except (KeyError, TypeError):
            raise KeyError(name) from None
        return cell.params[p]

    def __setitem__(self, name, value):
        if name not in self._where:
            raise KeyError(f"{name!r} is not a parameter of this network")
        cell, p = self._where[name]
        cell.params[p] = value

    def __delitem__(self, name):
        raise TypeError("a network's parameters cannot be deleted")

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)

    def locate(self, name: str) -> tuple:
        """``(cell, cell parameter name)`` of the network parameter `name`."""
        return self._where[name]


class Network:
    """Stacked, optionally bidirectional recurrent layers.

    Parameters
    ----------
    cell : str, CellSpec, or a sequence of them (one per layer)
        The cell of every layer, or of each layer.
    input_size : int
        D, the size of the network's input.
    hidden_size : int or sequence of int (one per layer)
        H of every layer, or of each layer.
    num_layers : int
        How many layers (ignored when `cell` or `hidden_size` is a sequence, whose length
        it must then match).
    bidirectional : bool
        Every layer has a forward and a reverse direction.
    bias : bool
        With biases (PyTorch's ``bias``); without, the biases are zero and not parameters.
    batch_first : bool
        Inputs and outputs are ``(B, T, ...)`` instead of time-major ``(T, B, ...)``.
    dtype : numpy.float64 or numpy.float32
    seed : int, optional
        Seeds every cell's initialisation (one child seed per layer and direction).
    forget_bias, init, spectral_radius
        As for :class:`~gradflow.Cell`, for every cell.
    dropout : float
        PyTorch's dropout between layers: recorded, not applied (see the module docstring).

    Attributes
    ----------
    layers : tuple of tuple of Cell
        ``layers[l]`` holds the forward cell and, when bidirectional, the reverse one.
    params : mapping
        Every parameter by PyTorch's name; reading gives the cell's array, assigning sets it.
    """

    def __init__(self, cell, input_size: int, hidden_size, num_layers: int = 1, *,
                 bidirectional: bool = False, bias: bool = True, batch_first: bool = False,
                 dtype=np.float64, seed: int | None = None, forget_bias: float | None = None,
                 init: str = "pytorch", spectral_radius: float | None = None, dropout: float = 0.0):
        given = [len(v) for v in (cell, hidden_size) if isinstance(v, (list, tuple))]
        L = given[0] if given else check.positive_int("num_layers", num_layers)
        if given and num_layers not in (1, L):
            raise InvalidArgumentError(
                f"`num_layers` is {num_layers!r} but {L} layers were given per layer")
        if L < 1:
            raise InvalidArgumentError("a network needs at least one layer")
        # an impossible size is refused before anything is built: every layer holds at least
        # a recurrent weight, H x H
        h = hidden_size if isinstance(hidden_size, numbers.Integral) and hidden_size > 0 else 1
        check.fits_in_memory("the network's parameters", L * int(h) ** 2 * 4,
                             f"num_layers={L}, hidden_size={hidden_size!r}")
        cells = _per_layer("cell", cell, L)
        sizes = [check.positive_int("hidden_size", h) for h in _per_layer("hidden_size", hidden_size, L)]
        dirs = 2 if check.flag("bidirectional", bidirectional) else 1
        D = check.positive_int("input_size", input_size)
        seeds = np.random.SeedSequence(check.seed("seed", seed)).spawn(L * dirs) if seed is not None \
            else [None] * (L * dirs)
        layers = []
        for layer in range(L):
            d_in = D if layer == 0 else dirs * sizes[layer - 1]
            pair = []
            for direction in range(dirs):
                s = seeds[layer * dirs + direction]
                c = Cell(cells[layer], d_in, sizes[layer], dtype=dtype,
                         seed=None if s is None else int(s.generate_state(1)[0]),
                         forget_bias=forget_bias, init=init, spectral_radius=spectral_radius)
                pair.append(c)
            layers.append(tuple(pair))
        self._setup(layers, bias=bias, batch_first=batch_first, dropout=dropout)

    @classmethod
    def from_cells(cls, layers, *, bias: bool = True, batch_first: bool = False,
                   dropout: float = 0.0) -> "Network":
        """A network of the given cells: ``layers[l]`` is a Cell, or a pair (forward,
        reverse).  The cells are used as they are (not copied).

        Raises
        ------
        ShapeError
            If a layer's input size is not the size of the previous layer's output.
        """
        if not isinstance(layers, (list, tuple)) or not layers:
            raise InvalidArgumentError("`layers` must be a non-empty sequence of cells or pairs")
        net = object.__new__(cls)
        net._setup([tuple(x) if isinstance(x, (list, tuple)) else (x,) for x in layers],
                   bias=bias, batch_first=batch_first, dropout=dropout)
        return net

    def _setup(self, layers, *, bias, batch_first, dropout):
        dirs = len(layers[0])
        for layer, pair in enumerate(layers):
            if len(pair) != dirs or dirs not in (1, 2):
                raise InvalidArgumentError(
                    f"layer {layer} has {len(pair)} directions; every layer must have "
                    f"{dirs} (1, or 2 for a bidirectional network)")
            for c in pair:
                as_cell(c, f"layers[{layer}]")
            first = pair[0]
            for c in pair[1:]:
                if (c.input_size, c.hidden_size, c.dtype) != (first.input_size, first.hidden_size, first.dtype):
                    raise ShapeError(
                        f"layer {layer}: the reverse cell has input_size {c.input_size}, "
                        f"hidden_size {c.hidden_size}, dtype {c.dtype}; the forward cell "
                        f"{first.input_size}, {first.hidden_size}, {first.dtype}")
            if layer > 0:
                want = dirs * layers[layer - 1][0].hidden_size
                if first.input_size != want:
                    raise ShapeError(
                        f"layer {layer} reads {first.input_size} inputs; the layer below "
                        f"gives {want} ({dirs} x hidden_size {layers[layer - 1][0].hidden_size})")
            if first.dtype != layers[0][0].dtype:
                raise InvalidArgumentError(f"layer {layer} has dtype {first.dtype}; layer 0 has "
                                           f"{layers[0][0].dtype}: one dtype for the whole network")
        self.layers = tuple(tuple(p) for p in layers)
        self.bias = check.flag("bias", bias)
        self.batch_first = check.flag("batch_first", batch_first)
        self.dropout = check.real("dropout", dropout, minimum=0.0, maximum=1.0)
        if not self.bias:
            for pair in self.layers:
                for c in pair:
                    for b in _BIASES:
                        c.params[b] = np.zeros_like(c.params[b])
        self.params = _Params(self)

    # ------------------------------------------------------------------ description
    num_layers = property(lambda self: len(self.layers), doc="L, the number of layers.")
    num_directions = property(lambda self: len(self.layers[0]), doc="1, or 2 when bidirectional.")
    bidirectional = property(lambda self: len(self.layers[0]) == 2, doc="Whether layers read both ways.")
    dtype = property(lambda self: self.layers[0][0].dtype, doc="float64 or float32.")
    input_size = property(lambda self: self.layers[0][0].input_size,
                          doc="D, the size of the network's input.")
    hidden_sizes = property(lambda self: tuple(p[0].hidden_size for p in self.layers),
                            doc="H of each layer.")
    output_size = property(lambda self: self.num_directions * self.layers[-1][0].hidden_size,
                           doc="The size of the output: directions x H of the last layer.")

    def cell(self, layer: int, direction: int = 0) -> Cell:
        """The cell of `layer` (0 = forward, 1 = reverse direction)."""
        layer = check.positive_int("layer", layer, minimum=0, maximum=self.num_layers - 1)
        direction = check.positive_int("direction", direction, minimum=0,
                                       maximum=self.num_directions - 1)
        return self.layers[layer][direction]

    def param_shapes(self) -> dict:
        """The shape of every parameter, by name."""
        return {name: np.shape(self.params[name]) for name in self.params}

    @property
    def num_parameters(self) -> int:
        """The number of scalar parameters."""
        return int(sum(np.prod(s) for s in self.param_shapes().values()))

    def describe(self) -> list[dict]:
        """One row per layer and direction: cell, sizes, parameters."""
        rows = []
        for layer, pair in enumerate(self.layers):
            for direction, c in enumerate(pair):
                n = c.num_parameters - (0 if self.bias else 2 * c.spec.num_gates * c.hidden_size)
                rows.append({"layer": layer, "direction": "reverse" if direction else "forward",
                             "cell": c.spec.name, "input_size": c.input_size,
                             "hidden_size": c.hidden_size, "parameters": int(n)})
        return rows

    def copy(self) -> "Network":
        """A copy with its own cells and parameter arrays."""
        return Network.from_cells([tuple(c.copy() for c in p) for p in self.layers],
                                  bias=self.bias, batch_first=self.batch_first, dropout=self.dropout)

    def astype(self, dtype) -> "Network":
        """A copy in another precision."""
        return Network.from_cells([tuple(c.astype(dtype) for c in p) for p in self.layers],
                                  bias=self.bias, batch_first=self.batch_first, dropout=self.dropout)

    def __repr__(self) -> str:
        kinds = sorted({c.spec.name for p in self.layers for c in p})
        return (f"Network({'/'.join(kinds)}, layers={self.num_layers}, hidden_sizes="
                f"{list(self.hidden_sizes)}, input_size={self.input_size}, "
                f"bidirectional={self.bidirectional}, dtype={self.dtype.name})")

    # ------------------------------------------------------------------ layout
    def _time_major(self, name: str, value, width: int, hint: str) -> np.ndarray:
        shape = (None, None, width)
        arr = check.array(name, value, dtype=self.dtype, shape=shape, hint=hint)
        return np.ascontiguousarray(arr.swapaxes(0, 1)) if self.batch_first else arr

    def _user_layout(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.swapaxes(0, 1)) if self.batch_first else a

    def _states(self, name: str, value, batch: int) -> list:
        """Per (layer, direction), in PyTorch's order, a state for Cell.forward/backward.

        `value`: None; a list of one state per layer and direction (anything a Cell
        takes); or PyTorch's stacked form: an array ``(L*dirs, B, H)`` (one-component
        cells) or a tuple of such arrays in the state components' order (LSTM: (h, c))."""
        n = self.num_layers * self.num_directions
        cells = [c for p in self.layers for c in p]
        if value is None:
            return [None] * n
        if isinstance(value, list):
            if len(value) != n:
                raise ShapeError(f"`{name}` must hold {n} states (layers x directions); "
                                 f"got {len(value)}")
            return value
        arrays = value if isinstance(value, tuple) else (value,)
        comps = cells[0].spec.state
        if any(c.spec.state != comps for c in cells) or len(arrays) != len(comps):
            raise ShapeError(
                f"`{name}` in PyTorch's stacked form needs every layer to have the state "
                f"components {comps} and a tuple of {len(comps)} arrays; give a list of one "
                "state per layer and direction instead")
        out = []
        for k, c in enumerate(cells):
            parts = []
            for comp, a in zip(comps, arrays):
                a = np.asarray(a) if not isinstance(a, np.ndarray) else a
                if a.ndim != 3 or a.shape[0] != n:
                    raise ShapeError(f"`{name}` ({comp}) must have shape (layers x directions "
                                     f"= {n}, B, H); got {a.shape}")
                parts.append(a[k])
            out.append(tuple(parts) if len(parts) > 1 else parts[0])
        return out

    # ------------------------------------------------------------------ passes
    def forward(self, x, state0=None) -> "NetworkTrace":
        """Run the network over a sequence.

        Parameters
        ----------
        x : array_like, shape (T, B, D), or (B, T, D) when ``batch_first``
        state0 : optional
            Initial states: PyTorch's ``h0`` (an array ``(L*dirs, B, H)``) or ``(h0, c0)``,
            or a list of one state per layer and direction (layer 0 forward, layer 0
            reverse, layer 1 forward ...), each as :meth:`Cell.forward` takes it.

        Returns
        -------
        NetworkTrace
        """
        hint = ("x is batch-first (B, T, D)" if self.batch_first else
                "x is time-major (T, B, D); build the network with batch_first=True for (B, T, D)")
        inp = self._time_major("x", x, self.input_size, hint)
        T, B, _ = inp.shape
        states = self._states("state0", state0, B)
        traces, k = [], 0
        for pair in self.layers:
            out = []
            for direction, c in enumerate(pair):
                seq = inp if direction == 0 else np.ascontiguousarray(inp[::-1])
                out.append(c.forward(seq, states[k]))
                k += 1
            traces.append(tuple(out))
            inp = _layer_output(traces[-1])
        return NetworkTrace(self, tuple(traces), inp)

    def backward(self, trace: "NetworkTrace", doutput=None, dstate=None) -> "NetworkGrads":
        """Backpropagation through the stack and through time.

        Parameters
        ----------
        trace : NetworkTrace
            From :meth:`forward` of this network.
        doutput : array_like, optional
            dL/d(output) at every step, shaped like ``trace.output`` (zeros by default).
        dstate : optional
            dL/d(final states), in the forms :meth:`forward` takes `state0` in.

        Returns
        -------
        NetworkGrads
        """
        if not isinstance(trace, NetworkTrace) or trace.network is not self:
            raise InvalidArgumentError(
                "`trace` must be the NetworkTrace returned by this network's forward")
        T, B = trace.length, trace.batch_size
        if doutput is None:
            d_out = np.zeros((T, B, self.output_size), dtype=self.dtype)
        else:
            d_out = self._time_major("doutput", doutput, self.output_size,
                                     "doutput must be shaped like trace.output")
            if d_out.shape[:2] != (T, B):
                raise ShapeError(f"`doutput` must cover T = {T} steps and B = {B} sequences; "
                                 f"got {d_out.shape[:2]} (time-major)")
        ds = self._states("dstate", dstate, B)
        params, state0 = {}, [None] * len(ds)
        for layer in range(self.num_layers - 1, -1, -1):
            pair, traces = self.layers[layer], trace.traces[layer]
            H = pair[0].hidden_size
            d_in = None
            for direction, (c, tr) in enumerate(zip(pair, traces)):
                part = d_out[..., direction * H:(direction + 1) * H]
                dh = part if direction == 0 else part[::-1]
                k = layer * self.num_directions + direction
                g = c.backward(tr, np.ascontiguousarray(dh), ds[k])
                dx = g.x if direction == 0 else g.x[::-1]
                d_in = dx.copy() if d_in is None else d_in + dx
                state0[k] = g.state0
                for p, value in g.params.items():
                    if p in _BIASES and not self.bias:
                        continue
                    params[p + _suffix(layer, direction)] = value
            d_out = d_in
        ordered = {name: params[name] for name in self.params}
        return NetworkGrads(params=ordered, x=self._user_layout(d_out), state0=state0)


def _layer_output(traces) -> np.ndarray:
    """A layer's output (T, B, dirs*H): the directions' h concatenated, the reverse one put
    back in time order."""
    parts = [traces[0].h] + [tr.h[::-1] for tr in traces[1:]]
    return np.ascontiguousarray(np.concatenate(parts, axis=-1)) if len(parts) > 1 \
        else np.array(parts[0], copy=True)


@dataclass(eq=False)
class NetworkTrace:
    """What :meth:`Network.forward` computed.

    Attributes
    ----------
    network : Network
    traces : tuple of tuple of Trace
        ``traces[l][d]``: the trace of layer l's direction d.  The reverse direction's trace
        is in its own (reversed) time: its step k is the sequence's step T - 1 - k.
    """

    network: Network
    traces: tuple
    _output: np.ndarray

    @property
    def length(self) -> int:
        return self.traces[0][0].length

    @property
    def batch_size(self) -> int:
        return self.traces[0][0].batch_size

    @property
    def output(self) -> np.ndarray:
        """The last layer's output, (T, B, dirs*H) (or (B, T, dirs*H) when batch-first)."""
        return self.network._user_layout(self._output)

    def layer_output(self, layer: int) -> np.ndarray:
        """Layer `layer`'s output in time order, (T, B, dirs*H_l), time-major."""
        layer = check.positive_int("layer", layer, minimum=0, maximum=len(self.traces) - 1)
        return _layer_output(self.traces[layer])

    def layer_input(self, layer: int) -> np.ndarray:
        """What layer `layer` read, (T, B, D_l), time-major, in time order."""
        layer = check.positive_int("layer", layer, minimum=0, maximum=len(self.traces) - 1)
        return np.array(self.traces[layer][0].x, copy=True)

    def final(self) -> list:
        """The final state of every layer and direction, PyTorch's order: a list of
        ``{component: (B, H)}`` (for the reverse direction, its state after reading the
        first step)."""
        return [tr.final for pair in self.traces for tr in pair]

    def __repr__(self) -> str:
        return (f"NetworkTrace(T={self.length}, B={self.batch_size}, layers={len(self.traces)}, "
                f"directions={len(self.traces[0])})")


@dataclass(eq=False)
class NetworkGrads:
    """Gradients from :meth:`Network.backward`.

    Attributes
    ----------
    params : dict of ndarray
        By PyTorch's names, in the order of ``network.params``.
    x : ndarray
        dL/dx, shaped like the input.
    state0 : list of dict
        dL/d(initial state) per layer and direction (PyTorch's order), ``{component: (B, H)}``.
    """

    params: dict
    x: np.ndarray
    state0: list

    def stacked(self, component: str = "h") -> np.ndarray:
        """dL/d(initial state) of `component` as PyTorch stacks it, (L*dirs, B, H)."""
        try:
            return np.stack([s[component] for s in self.state0])
        except (KeyError, ValueError):
            raise InvalidArgumentError(
                f"`component` {component!r}: not every layer has it, or the layers differ "
                "in size; read state0 layer by layer instead") from None
