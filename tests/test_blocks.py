"""The 1997 network (gradflow.train.BlockNet) and its output layer: memory cell blocks that
share gates, against a slow loop over blocks written here from the paper; the paper's
fully connected hidden layer (gate activations fed back) against the paper's numbers of
weights and a slow loop of its forward pass and truncated gradient (appendix A.1); the
gradient of a shared gate against finite differences; the squared error of logistic
output units."""

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


# ------------------------------------------- the paper's fully connected hidden layer
def _fc_weights(net):
    """The net's weights in the paper's terms.  Sources of every hidden unit's net input:
    the inputs x(t), every memory cell's output y_c(t-1), every block's y_in(t-1) and
    y_out(t-1), the bias.  Receivers: per block its input gate, its output gate, and the
    cell input of each of its cells.  Returns (W_in (blocks, n), W_out (blocks, n),
    W_c (cells, n), readout (K, cells), readout bias (K,))."""
    p, c = net.params, net.cell
    S, U, nb = net.block_size, net.units, net.blocks
    cells = [b * U + v for b in range(nb) for v in range(S)]
    senders = cells + [b * U + S for b in range(nb)] + [b * U + S + 1 for b in range(nb)]

    def row(gate, unit):
        k = c.gate_slice(gate).start + unit
        return np.concatenate([p["weight_ih"][k], p["weight_hh"][k][senders],
                               [p["bias_ih"][k] + p["bias_hh"][k]]])

    W_in = np.array([row("i", b * U) for b in range(nb)])
    W_out = np.array([row("o", b * U) for b in range(nb)])
    W_c = np.array([row("g", u) for u in cells])
    return W_in, W_out, W_c, p["readout.weight"][:, cells], p["readout.bias"].copy()


def _fc_paper(net, x, dout):
    """The fully connected 1997 net of the paper, written as its section 4 and appendix
    A.1 do it, for one sequence x (T, D): the outputs' net inputs (T, K), and the
    truncated gradient of L = Σ_t <dout_t, net_k(t)> carried forward in time (∂s_c/∂w of
    the input gates' and cell inputs' weights, eqs. 25 and 27; output gates by eq. 22;
    no error through any recurrent connection).  Gradients in the shapes of
    _fc_weights."""
    W_in, W_out, W_c, R, rb = _fc_weights(net)
    S, nb = net.block_size, net.blocks
    n_cells = S * nb
    block = np.repeat(np.arange(nb), S)
    f = _sig
    y_c, y_in, y_out = np.zeros(n_cells), np.zeros(nb), np.zeros(nb)
    s = np.zeros(n_cells)
    ds_in = np.zeros((n_cells, W_in.shape[1]))     # ∂s_cv / ∂w_{in_b, m}, b the cell's block
    ds_c = np.zeros((n_cells, W_c.shape[1]))       # ∂s_cv / ∂w_{c_v, m}
    g_in, g_out, g_c = np.zeros_like(W_in), np.zeros_like(W_out), np.zeros_like(W_c)
    g_R, g_rb = np.zeros_like(R), np.zeros_like(rb)
    outs = []
    for t in range(x.shape[0]):
        src = np.concatenate([x[t], y_c, y_in, y_out, [1.0]])
        y_in, y_out = f(W_in @ src), f(W_out @ src)
        net_c = W_c @ src
        g = 4 * f(net_c) - 2
        s = s + y_in[block] * g
        ds_in += (g * (y_in * (1 - y_in))[block])[:, None] * src
        ds_c += (y_in[block] * 4 * f(net_c) * (1 - f(net_c)))[:, None] * src
        hs = 2 * f(s) - 1
        y_c = y_out[block] * hs
        outs.append(R @ y_c + rb)
        d = dout[t]
        g_R += np.outer(d, y_c)
        g_rb += d
        e_y = R.T @ d                                      # error at the cell outputs
        e_s = y_out[block] * 2 * f(s) * (1 - f(s)) * e_y   # eq. 23
        e_out = y_out * (1 - y_out) * np.bincount(block, hs * e_y, nb)      # eq. 21
        g_out += np.outer(e_out, src)                      # eq. 22
        np.add.at(g_in, block, e_s[:, None] * ds_in)      # eq. 26, summed over the block
        g_c += e_s[:, None] * ds_c                         # eq. 28
    return np.array(outs), (g_in, g_out, g_c, g_R, g_rb)


def _fc_net(blocks, size, seed):
    return BlockNet(3, 2, blocks=blocks, block_size=size, init_range=0.8, gate_feedback=True,
                    input_gate_bias=-1.0, output_gate_bias=[-1.0 - b for b in range(blocks)],
                    seed=seed)


@pytest.mark.parametrize("blocks, size", [(2, 2), (3, 1), (1, 3)])
def test_fully_connected_net_is_the_papers_forward_pass_and_truncated_gradient(blocks, size):
    net = _fc_net(blocks, size, seed=5)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 1, 3))
    dout = rng.standard_normal((12, 1, 2))
    out_ref, grads_ref = _fc_paper(net, x[:, 0], dout[:, 0])
    trace, out = net.forward(x)
    assert_close(out[:, 0], out_ref)
    grads = net.gradients(trace, dout, truncate=True)
    # the gradients in the paper's terms: read them out as _fc_weights reads weights (the
    # bias of a net input is one weight: bias_hh is frozen, its gradient 0)
    saved = {k: v.copy() for k, v in net.params.items()}
    for k, v in grads.items():
        net.params[k][...] = v
    got = _fc_weights(net)
    for k, v in saved.items():
        net.params[k][...] = v
    for name, a, b in zip(("input gates", "output gates", "cell inputs", "output units",
                           "output biases"), got, grads_ref):
        assert_close(a, b, err_msg=name)


def test_fully_connected_net_feeds_the_gates_back_and_nothing_else_changes():
    """The units that send a gate's activation on: their value is the block's gate, their
    cell input is frozen at zero, and no output unit reads them."""
    net = _fc_net(2, 2, seed=2)
    c, U, S = net.cell, net.units, net.block_size
    assert U == 4 and list(net.memory_cells) == [0, 1, 4, 5]
    x = np.random.default_rng(0).standard_normal((6, 1, 3))
    trace, _ = net.forward(x)
    for b in range(2):
        assert_close(trace.h[:, 0, b * U + S], trace.intermediate("i")[:, 0, b * U])
        assert_close(trace.h[:, 0, b * U + S + 1], trace.intermediate("o")[:, 0, b * U])
    reporters = [2, 3, 6, 7]
    rows = c.gate_slice("g").start + np.array(reporters)
    assert not c.params["weight_ih"][rows].any() and not c.params["weight_hh"][rows].any()
    assert not net.params["readout.weight"][:, reporters].any()
    grads = net.gradients(trace, np.ones((6, 1, 2)))
    assert not grads["weight_hh"][rows].any() and not grads["readout.weight"][:, reporters].any()
    for name in ("send_h", "send_i", "send_o"):
        assert not grads[name].any()


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


@pytest.mark.parametrize("gate_feedback", [False, True])
def test_gradient_of_a_shared_gate_is_its_finite_difference(gate_feedback):
    """Each tied row gets the derivative with respect to the one shared parameter: moving
    the block's gate (every row of it at once) by ε.  Frozen entries get zero.  With
    gate feedback the full gradient also flows back through the fed-back activations."""
    net = BlockNet(2, 2, blocks=2, block_size=2, init_range=0.6, biases="gates",
                   shortcut=True, gate_feedback=gate_feedback, seed=3)
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
    S = net.units                                         # rows per block that share a gate
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
    with pytest.raises(InvalidArgumentError, match="`gate_feedback`"):
        BlockNet(2, 1, blocks=1, gate_feedback="yes")
    with pytest.raises(InvalidArgumentError, match="'mgu' is two-stage"):
        BlockNet(2, 1, blocks=1, cell="mgu", shared=["f"], gate_feedback=True)
    with pytest.raises(InvalidArgumentError, match="`shared`"):
        BlockNet(2, 1, blocks=1, shared=["q"], gate_feedback=True)
    with pytest.raises(InvalidArgumentError, match="output"):
        train.Model(BlockNet(2, 1, blocks=1).cell, 1, output="softmax")


def test_train_refuses_the_truncated_gradient_for_two_stage_cells_before_training():
    import gradflow
    from gradflow.errors import SpecError

    task = train.tasks.get("adding", length=20)
    with pytest.raises(SpecError, match="'mgu' is a two-stage cell"):
        train.train(gradflow.Cell("mgu", 2, 3, seed=0), task, truncate=True, max_sequences=32,
                    verbose=False)
