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
"""

from __future__ import annotations

import numpy as np

from .. import _validate as check
from ..cell import Cell
from ..errors import InvalidArgumentError
from .loop import Model

__all__ = ["BlockNet", "BIASES"]

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
    seed : int, optional
    dtype : numpy.float64 or numpy.float32

    Attributes
    ----------
    cell : Cell
        The cell with ``hidden_size = blocks * block_size``, its shared rows tied.
    frozen : dict of ndarray
        Per parameter (keys of ``params``), True where the entry is not trained.
    num_weights : int
        The weights the net trains: free entries, a tied row counted once per block.

    Notes
    -----
    The recurrent connections of gradflow's cells come from the cell outputs
    (``h_{t-1} W_hh^T``); the paper's nets also fed the gate units' activations back to
    every gate and cell.  With the truncated gradient no error flows through any recurrent
    connection, so the difference is in what the gates can see of the previous step, not
    in the learning rule; it makes the nets smaller than the paper's (61 weights instead of
    93 for the adding problem's two blocks of two cells).
    """

    def __init__(self, input_size: int, output_size: int, *, blocks: int, block_size: int = 1,
                 cell="lstm1997", shared=None, biases: str = "all", init_range: float = 0.1,
                 input_gate_bias=None, output_gate_bias=None, shortcut: bool = False,
                 seed=None, dtype=np.float64):
        blocks = check.positive_int("blocks", blocks)
        S = check.positive_int("block_size", block_size)
        self.blocks, self.block_size = blocks, S
        self.biases = check.choice("biases", biases, tuple(BIASES))
        r = check.real("init_range", init_range, minimum=0.0)
        seed = check.seed("seed", seed)
        rng = np.random.default_rng(seed)
        c = Cell(cell, input_size, blocks * S, dtype=dtype, seed=seed)
        spec = c.spec
        gates = spec.gates
        if shared is None:
            shared = tuple(g for g in gates if g != "g")
        shared = check.names("shared", shared, allowed=gates)
        self.shared = shared
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
                block[...] = np.repeat(block[::S], S, axis=0)
        for gate, value in (("i", in_bias), ("o", out_bias)):
            if value is not None:
                c.params["bias_ih"][c.gate_slice(gate)] = np.repeat(value, S)
        # ---- frozen entries
        frozen = {name: np.zeros(a.shape, dtype=bool) for name, a in self.params.items()}
        frozen["bias_hh"][:] = True
        biased = {"gates": [g for g in gates if g != "g"], "hidden": list(gates),
                  "all": list(gates), "none": []}[self.biases]
        for gate in gates:
            if gate not in biased:
                frozen["bias_ih"][c.gate_slice(gate)] = True
        if self.biases != "all":
            frozen["readout.bias"][:] = True
        self.frozen = frozen
        for name, mask in frozen.items():
            self.params[name][mask] = 0.0
        self._rows = [c.gate_slice(g) for g in shared]
        self._masks = [(name, mask) for name, mask in frozen.items() if mask.any()]
        free = sum(int((~m).sum()) for m in frozen.values())
        tied = 0
        for rows in self._rows:
            for name in ("weight_ih", "weight_hh", "bias_ih"):
                tied += int((~frozen[name][rows]).sum()) * (S - 1) // S
        self.num_weights = free - tied
        del H

    def constrain(self, grads: dict) -> dict:
        """Turn per-row gradients into those of the net's own parameters, in place: each
        tied row gets the sum over its block (the gradient of the shared gate), frozen
        entries get zero.  Returns `grads`."""
        S = self.block_size
        if S > 1:
            for rows in self._rows:
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    g = grads[name][rows]
                    g = g.reshape((self.blocks, S) + g.shape[1:])
                    g[...] = g.sum(axis=1, keepdims=True)
        for name, mask in self._masks:
            grads[name][mask] = 0.0
        return grads

    def gradients(self, trace, dout: np.ndarray, *, truncate: bool = False) -> dict:
        """Gradients of the net's parameters (see :meth:`constrain`)."""
        return self.constrain(super().gradients(trace, dout, truncate=truncate))

    def __repr__(self) -> str:
        return (f"BlockNet({self.cell.spec.name!r}, {self.blocks} blocks of {self.block_size}, "
                f"{self.cell.input_size} inputs, {self.readout.params['weight'].shape[0]} "
                f"outputs, biases={self.biases!r}, {self.num_weights} weights)")
