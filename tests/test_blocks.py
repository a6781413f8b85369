"""The 1997 network (gradflow.train.BlockNet) and its output layer: memory cell blocks that
share gates, against a slow loop over blocks written here from the paper; the gradient of
a shared gate against finite differences; the squared error of logistic output units."""

from __future__ import annotations

import numpy as np
import pytest

from gradflow import train
from gradflow.errors import InvalidArgumentError
from gradflow.train import BlockNet

from .conftest import assert_close
from .naive import central_differences


def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def _blocks_forward(net, x):
    """The paper's net, block by block: one input and one output gate per block (read from
    the block's first row), one cell input per cell, logistic outputs reading the cells
    (and the input, with the shortcut).  x (T, D) -> outputs (T, K)."""
    p = {k: v.copy() for k, v in net.params.items()}
    S, nb = net.block_size, net.blocks
    H = S * nb
    T = x.shape[0]
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("igo")}
    y = np.zeros(H)
    s = np.zeros(H)
    outs = []
    for t in range(T):
        y_new = np.empty(H)
        for b in range(nb):
            first = b * S

            def net_in(g, r):
                k = rows[g].start + r
                return (p["weight_ih"][k] @ x[t] + p["weight_hh"][k] @ y + p["bias_ih"][k]
                        + p["bias_hh"][k])

            y_in = _sig(net_in("i", first))
            y_out = _sig(net_in("o", first))
            for c in range(first, first + S):
                s[c] = s[c] + y_in * (4 * _sig(net_in("g", c)) - 2)
                y_new[c] = y_out * (2 * _sig(s[c]) - 1)
        y = y_new
        out = p["readout.weight"] @ y + p["readout.bias"]
        if "readout.input" in p:
            out = out + p["readout.input"] @ x[t]
        outs.append(_sig(out))
    return np.array(outs)


@pytest.mark.parametrize("blocks, size, shortcut", [(2, 2, False), (3, 1, True), (1, 3, False)])
def test_forward_is_blocks_sharing_their_gates(blocks, size, shortcut):
    net = BlockNet(3, 2, blocks=blocks, block_size=size, init_range=0.8, shortcut=shortcut,
                   input_gate_bias=-1.0, output_gate_bias=[-1.0 - b for b in range(blocks)],
                   seed=5)
    x = np.random.default_rng(1).standard_normal((12, 1, 3))
    _, out = net.forward(x)
    assert_close(net.predictions(out)[:, 0], _blocks_forward(net, x[:, 0]))


def test_initial_values_biases_and_weight_count():
    """The adding problem's net (Exp. 4): 2 blocks of 2 cells, 2 inputs, 1 output.  Counted
    by hand: weight_ih 2*2 (in) + 4*2 (cell inputs) + 2*2 (out) = 16, weight_hh
    2*4 + 4*4 + 2*4 = 32, biases 2 + 4 + 2 = 8, output unit 4 + 1 = 5: 61."""
    net = BlockNet(2, 1, blocks=2, block_size=2, init_range=0.1, input_gate_bias=(-3.0, -6.0),
                   seed=0)
    c = net.cell
    assert net.num_weights == 61
    np.testing.assert_array_equal(c.params["bias_ih"][c.gate_slice("i")], [-3, -3, -6, -6])
    assert not c.params["bias_hh"].any()
    for name in ("weight_ih", "weight_hh"):
        w = c.params[name]
        assert np.abs(w).max() <= 0.1
        for g in "io":
            rows = w[c.gate_slice(g)]
            np.testing.assert_array_equal(rows[0], rows[1])       # one block's shared gate
            assert not np.array_equal(rows[1], rows[2])
        cells = w[c.gate_slice("g")]
        assert not np.array_equal(cells[0], cells[1])             # a cell input per cell
    bare = BlockNet(2, 1, blocks=2, block_size=2, biases="none", seed=0)
    assert not bare.cell.params["bias_ih"].any() and not bare.params["readout.bias"].any()
    assert bare.num_weights == 61 - 8 - 1


def test_gradient_of_a_shared_gate_is_its_finite_difference():
    """Each tied row gets the derivative with respect to the one shared parameter: moving
    the block's gate (every row of it at once) by ε.  Frozen entries get zero."""
    net = BlockNet(2, 2, blocks=2, block_size=2, init_range=0.6, biases="gates",
                   shortcut=True, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 1, 2))
    y = rng.random((7, 1, 2))

    def loss():
        _, out = net.forward(x)
        return 0.5 * float(np.sum((_sig(out) - y) ** 2))

    trace, out = net.forward(x)
    dout = (_sig(out) - y) * _sig(out) * (1 - _sig(out))
    grads = net.gradients(trace, dout)
    c = net.cell
    S = net.block_size
    eps = 1e-6
    for g in "io":
        rows = c.gate_slice(g)
        for name in ("weight_ih", "weight_hh", "bias_ih"):
            a = c.params[name][rows]                      # a view: (H, ...) rows of the gate
            got = grads[name][rows]
            for b in range(net.blocks):
                block = a[b * S:(b + 1) * S]
                for e in np.ndindex(block.shape[1:]):
                    old = block[(slice(None),) + e].copy()
                    block[(slice(None),) + e] = old + eps
                    up = loss()
                    block[(slice(None),) + e] = old - eps
                    down = loss()
                    block[(slice(None),) + e] = old
                    fd = (up - down) / (2 * eps)
                    for k in range(S):
                        assert_close(got[(b * S + k,) + e], fd, kind="finite_difference",
                                     err_msg=f"{g} {name} block {b} entry {e}")
    # the cell inputs are not shared: a plain derivative per row
    rows = c.gate_slice("g")
    fd = central_differences(loss, c.params["weight_ih"][rows])
    assert_close(grads["weight_ih"][rows], fd, kind="finite_difference")
    assert_close(grads["readout.input"], central_differences(loss, net.params["readout.input"]),
                 kind="finite_difference")
    assert not grads["bias_hh"].any()
    assert not grads["bias_ih"][rows].any()          # biases="gates": the cell inputs have none
    assert not grads["readout.bias"].any()


def test_sse_loss_against_finite_differences():
    rng = np.random.default_rng(0)
    out = rng.standard_normal((4, 3, 2))
    y = rng.random((4, 3, 2))
    mask = rng.random((4, 3)) < 0.6
    mask[0, 0] = True
    loss, dout = train.sse_loss(out, y, mask)
    p = _sig(out)
    assert loss == pytest.approx(0.5 * np.sum(((p - y) * mask[..., None]) ** 2) / 3)
    fd = central_differences(lambda: train.sse_loss(out, y, mask)[0], out)
    assert_close(dout, fd, kind="finite_difference")


def test_bad_arguments_name_themselves():
    with pytest.raises(InvalidArgumentError, match="`input_gate_bias` must give one bias per block"):
        BlockNet(2, 1, blocks=2, input_gate_bias=(-1.0, -2.0, -3.0))
    with pytest.raises(InvalidArgumentError, match="has no gate 'o'"):
        BlockNet(2, 1, blocks=1, cell="lstm1997-nog", output_gate_bias=-1.0)
    with pytest.raises(InvalidArgumentError, match="biases"):
        BlockNet(2, 1, blocks=1, biases="some")
    with pytest.raises(InvalidArgumentError, match="output"):
        train.Model(BlockNet(2, 1, blocks=1).cell, 1, output="softmax")


def test_train_refuses_the_truncated_gradient_for_two_stage_cells_before_training():
    import gradflow
    from gradflow.errors import SpecError

    task = train.tasks.get("adding", length=20)
    with pytest.raises(SpecError, match="'mgu' is a two-stage cell"):
        train.train(gradflow.Cell("mgu", 2, 3, seed=0), task, truncate=True, max_sequences=32,
                    verbose=False)
