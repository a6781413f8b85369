"""``BlockNet``: the network of Hochreiter & Schmidhuber (1997) -- memory cell blocks,
logistic output units, the paper's biases and initialisation.

gradflow's cells are per-unit maps: every unit has its own row of each gate in the weight
matrices (``G*H`` rows, PyTorch's layout).  A *memory cell block of size S* -- S cells
that share one input gate and one output gate -- is therefore S consecutive units whose
rows of the shared gates are *tied*: equal at initialisation, and updated with the
gradient of the shared gate, which is the sum of the S rows' gradients.  The forward pass
is exactly that of a block (each unit computes the same gate value); the gradient of each
tied row is the gradient with respect to the one shared parameter.  The cell inputs
(``g``) keep one row per cell.

Entries that the paper's nets do not have are *frozen* at zero: ``bias_hh`` (gradflow has
PyTorch's two bias vectors; a 1997 unit has one bias weight, ``bias_ih``), the biases of
units that the experiment leaves unbiased, and the weights from the output layer of
cells that are not there.

>>> import numpy as np
>>> from gradflow.train import BlockNet
>>> net = BlockNet(2, 1, blocks=2, block_size=2, input_gate_bias=(-3.0, -6.0), seed=0)
>>> net.cell.params["bias_ih"][:4]            # the input gates of blocks 1 and 2
array([-3., -3., -6., -6.])
>>> net.num_weights, net.cell.hidden_size
(61, 4)

The paper's hidden layer is fully connected: the gates' activations are fed back to every
gate and cell input, as the cells' outputs are.  With ``gate_feedback=True`` each block
also has one unit per shared gate that sends that gate's activation on (see
:func:`~gradflow.train.blocks.feedback_spec`); the nets then have exactly the paper's
numbers of weights (93 for the adding problem):

>>> BlockNet(2, 1, blocks=2, block_size=2, gate_feedback=True, seed=0).num_weights
93
"""

from __future__ import annotations

import numpy as np

from .. import _validate as check
from ..cell import Cell
from ..errors import InvalidArgumentError
from .loop import Model

__all__ = ["BlockNet", "BIASES", "feedback_spec"]

#: which units have bias weights, as the paper's Table 10 says it: "ga" only gate units,
#: "b1" all hidden units, "all" all non-input units (hidden and output), "none"
BIASES = {"gates": "only the gate units", "hidden": "all hidden units (gates and cell inputs)",
          "all": "all non-input units (hidden and output units)", "none": "no unit"}


def _per_block(name: str, value, blocks: int):
    """A gate bias per block: None, a number for every block, or one number per block."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        values = [check.real(name, v) for v in value]
        if len(values) != blocks:
            raise InvalidArgumentError(
                f"`{name}` must give one bias per block ({blocks}); got {len(values)}: {value!r}")
        return values
    return [check.real(name, value)] * blocks


def feedback_spec(cell, shared=None):
    """The memory cell as a unit of the paper's fully connected hidden layer.

    The 1997 nets feed back the activations of the gate units as well as the cells'
    outputs.  gradflow's cells send one value per unit on through ``W_hh``, so the cell is
    rewritten with one per-unit parameter per value a unit may send, ``send_h`` (its
    output) and ``send_<gate>`` for each shared gate:
    ``h = send_h * (the cell's output) + send_i * i + send_o * o``.  A block's memory
    cells have ``send_h = 1``; each of its gates is reported by a unit of its own whose
    gate rows are tied to the block's (:class:`BlockNet`, ``gate_feedback=True``).  The
    equations are otherwise the cell's, and so are its derivation and truncation: with
    the truncated gradient no error reaches a gate through the fed-back activations.

    Parameters
    ----------
    cell : str or CellSpec
        A one-stage cell whose shared gates are named by its equations (``"lstm1997"``).
    shared : sequence of str, optional
        The gates a block shares (default: every gate but the cell input ``g``).

    Examples
    --------
    >>> feedback_spec("lstm1997").equations[-1]
    ('h', 'send_h*(o*(2*sigmoid(c) - 1)) + send_i*i + send_o*o')
    """
    from ..symbolic.spec import CellSpec
    from .. import cells

    spec = cell if isinstance(cell, CellSpec) else cells.get(cell)
    gates = spec.gates
    shared = tuple(g for g in gates if g != "g") if shared is None else check.names(
        "shared", shared, allowed=gates)
    lhs = dict(spec.equations)
    missing = [g for g in shared if g not in lhs]
    if spec.stage2 or missing:
        raise InvalidArgumentError(
            f"`gate_feedback` needs a one-stage cell whose equations name each shared gate "
            f"{list(shared)}; cell {spec.name!r} "
            + ("is two-stage" if spec.stage2 else f"does not assign {missing}"))
    sends = ("send_h",) + tuple(f"send_{g}" for g in shared)
    h = " + ".join([f"send_h*({lhs['h']})"] + [f"send_{g}*{g}" for g in shared])
    equations = "\n".join(f"{n} = {h if n == 'h' else e}" for n, e in spec.equations)
    latex = dict(spec.latex_names)
    latex.update({"send_h": r"\sigma_{h}"}, **{f"send_{g}": rf"\sigma_{{{g}}}" for g in shared})
    return CellSpec(
        f"{spec.name}-fb", gates=gates, state=spec.state, params=spec.params + sends,
        forget_gate=spec.forget_gate, latex_names=latex, equations=equations,
        description=f"{spec.name} as a unit of a fully connected hidden layer: it sends on "
                    f"its output or one of its gates {list(shared)} (send_* 0 or 1)")


class BlockNet(Model):
    """Memory cell blocks with logistic output units: the 1997 LSTM network.

    Parameters
    ----------
    input_size, output_size : int
        Input and output units.
    blocks : int
        Memory cell blocks.
    block_size : int
        Cells per block (S): the hidden size is ``blocks * block_size``.
    cell : str or CellSpec
        The memory cell (default ``"lstm1997"``; ``"lstm1997-nog"`` for Exp. 2a/2b).
    shared : sequence of str, optional
        The gates a block shares (default: every gate but the cell input ``g``).
    biases : {"gates", "hidden", "all", "none"}
        Which units have bias weights (``BIASES``).
    init_range : float
        Every weight and bias starts uniform in ``[-init_range, init_range]`` (0.2 in the
        paper's Exp. 1 and 2, 0.1 elsewhere) ...
    input_gate_bias, output_gate_bias : float or sequence of float, optional
        ... except these: the initial bias of each block's input or output gate (one
        number for all blocks, or one per block: the paper's -1, -2, -3 ...).
    shortcut : bool
        The output units also read the input units (the paper's connectivity "B" of
        Exp. 2a/2b); otherwise they read the memory cells only.
    gate_feedback : bool
        The paper's fully connected hidden layer: the shared gates' activations are fed
        back to every gate and cell input, like the cells' outputs.  Each block then has
        ``block_size`` memory cells followed by one unit per shared gate (its cell is
        :func:`~gradflow.train.blocks.feedback_spec`: the unit sends the gate's
        activation, and its own cell input is frozen at zero); the output units read the
        memory cells only.
    recurrent : bool
        False: no recurrent connections (``weight_hh`` frozen at zero), the paper's nets of
        Exp. 2a/2b, whose cells remember through their carousel alone.
    seed : int, optional
    dtype : numpy.float64 or numpy.float32

    Attributes
    ----------
    cell : Cell
        The cell with ``hidden_size = blocks * units``, its shared rows tied.
    units : int
        Hidden units per block: ``block_size``, and one per shared gate with
        `gate_feedback`.
    memory_cells : ndarray of int
        The hidden units that are memory cells (all of them without `gate_feedback`).
    frozen : dict of ndarray
        Per parameter (keys of ``params``), True where the entry is not trained.
    num_weights : int
        The weights the net trains: free entries, a tied row counted once per block.

    Notes
    -----
    The recurrent connections of gradflow's cells come from the units' outputs
    (``h_{t-1} W_hh^T``).  Without `gate_feedback` these are the cell outputs only, and
    the nets are smaller than the paper's (61 weights instead of 93 for the adding
    problem's two blocks of two cells).  With the truncated gradient no error flows
    through any recurrent connection, so the difference is in what the gates can see of
    the previous step, not in the learning rule.
    """

    def __init__(self, input_size: int, output_size: int, *, blocks: int, block_size: int = 1,
                 cell="lstm1997", shared=None, biases: str = "all", init_range: float = 0.1,
                 input_gate_bias=None, output_gate_bias=None, shortcut: bool = False,
                 gate_feedback: bool = False, recurrent: bool = True, seed=None,
                 dtype=np.float64):
        blocks = check.positive_int("blocks", blocks)
        S = check.positive_int("block_size", block_size)
        self.blocks, self.block_size = blocks, S
        self.biases = check.choice("biases", biases, tuple(BIASES))
        r = check.real("init_range", init_range, minimum=0.0)
        self.gate_feedback = check.flag("gate_feedback", gate_feedback)
        self.recurrent = check.flag("recurrent", recurrent)
        seed = check.seed("seed", seed)
        rng = np.random.default_rng(seed)
        if self.gate_feedback:
            spec = feedback_spec(cell, shared)
            shared = tuple(p[len("send_"):] for p in spec.params if p.startswith("send_"))[1:]
        else:
            spec = cell
        U = S + (len(shared) if self.gate_feedback else 0)
        self.units = U
        c = Cell(spec, input_size, blocks * U, dtype=dtype, seed=seed)
        spec = c.spec
        gates = spec.gates
        if shared is None:
            shared = tuple(g for g in gates if g != "g")
        shared = check.names("shared", shared, allowed=gates)
        self.shared = shared
        unit = np.arange(blocks * U) % U
        self.memory_cells = np.flatnonzero(unit < S)
        in_bias = _per_block("input_gate_bias", input_gate_bias, blocks)
        out_bias = _per_block("output_gate_bias", output_gate_bias, blocks)
        for name, gate, value in (("input_gate_bias", "i", in_bias), ("output_gate_bias", "o", out_bias)):
            if value is not None and gate not in gates:
                raise InvalidArgumentError(
                    f"`{name}` was given, but cell {spec.name!r} has no gate {gate!r} "
                    f"(its gates are {list(gates)})")
        super().__init__(c, output_size, seed=rng, output="sigmoid", shortcut=shortcut)
        H = c.hidden_size
        # ---- initial values: uniform in [-r, r], one draw per block for the shared rows
        for name, a in self.params.items():
            a[...] = rng.uniform(-r, r, size=a.shape)
        for gate in shared:
            rows = c.gate_slice(gate)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                block = c.params[name][rows]
                block[...] = np.repeat(block[::U], U, axis=0)
        for gate, value in (("i", in_bias), ("o", out_bias)):
            if value is not None:
                c.params["bias_ih"][c.gate_slice(gate)] = np.repeat(value, U)
        # ---- frozen entries
        frozen = {name: np.zeros(a.shape, dtype=bool) for name, a in self.params.items()}
        frozen["bias_hh"][:] = True
        if not self.recurrent:
            frozen["weight_hh"][:] = True
        biased = {"gates": [g for g in gates if g != "g"], "hidden": list(gates),
                  "all": list(gates), "none": []}[self.biases]
        for gate in gates:
            if gate not in biased:
                frozen["bias_ih"][c.gate_slice(gate)] = True
        if self.biases != "all":
            frozen["readout.bias"][:] = True
        if self.gate_feedback:
            sends = [p for p in spec.params if p.startswith("send_")]
            for name in sends:
                frozen[name][:] = True
            reporters = unit >= S
            for gate in gates:
                if gate not in shared:
                    rows = np.flatnonzero(reporters) + c.gate_slice(gate).start
                    for name in ("weight_ih", "weight_hh", "bias_ih"):
                        frozen[name][rows] = True
            frozen["readout.weight"][:, reporters] = True
        self.frozen = frozen
        for name, mask in frozen.items():
            self.params[name][mask] = 0.0
        if self.gate_feedback:
            # what each unit sends on: its cell output (send_h), or the k-th shared gate
            for k, name in enumerate(sends):
                c.params[name][:] = (unit < S) if k == 0 else (unit == S + k - 1)
        self._rows = [c.gate_slice(g) for g in shared]
        self._masks = [(name, mask) for name, mask in frozen.items() if mask.any()]
        free = sum(int((~m).sum()) for m in frozen.values())
        tied = 0
        for rows in self._rows:
            for name in ("weight_ih", "weight_hh", "bias_ih"):
                tied += int((~frozen[name][rows]).sum()) * (U - 1) // U
        self.num_weights = free - tied
        del H

    def constrain(self, grads: dict) -> dict:
        """Turn per-row gradients into those of the net's own parameters, in place: each
        tied row gets the sum over its block (the gradient of the shared gate), frozen
        entries get zero.  Returns `grads`."""
        U = self.units
        if U > 1:
            for rows in self._rows:
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    g = grads[name][rows]
                    g = g.reshape((self.blocks, U) + g.shape[1:])
                    g[...] = g.sum(axis=1, keepdims=True)
        for name, mask in self._masks:
            grads[name][mask] = 0.0
        return grads

    def gradients(self, trace, dout: np.ndarray, *, truncate: bool = False) -> dict:
        """Gradients of the net's parameters (see :meth:`constrain`)."""
        return self.constrain(super().gradients(trace, dout, truncate=truncate))

    def __repr__(self) -> str:
        fb = ", gate feedback" if self.gate_feedback else ""
        return (f"BlockNet({self.cell.spec.name!r}, {self.blocks} blocks of {self.block_size}{fb}, "
                f"{self.cell.input_size} inputs, {self.readout.params['weight'].shape[0]} "
                f"outputs, biases={self.biases!r}, {self.num_weights} weights)")
