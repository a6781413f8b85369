"""Networks: stacked and bidirectional layers against PyTorch autograd, through from_torch
and to_torch, and the conversions of models and state dicts with their errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow.errors import InvalidArgumentError, NonFiniteError, ShapeError
from gradflow.interop import from_torch, to_torch

from . import naive
from .conftest import rel_error

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

REL = {np.float64: 1e-10, np.float32: 1e-4}
MODULES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}


def torch_run(module, x, h0, dout, dfinal):
    """Output, final states and every gradient of sum(out * dout) + sum(final * dfinal)."""
    xt = torch.tensor(x, requires_grad=True)
    st0 = [torch.tensor(s, requires_grad=True) for s in h0]
    out, final = module(xt, tuple(st0) if len(st0) == 2 else st0[0])
    final = final if isinstance(final, tuple) else (final,)
    loss = (out * torch.tensor(dout)).sum()
    for f, d in zip(final, dfinal):
        loss = loss + (f * torch.tensor(d)).sum()
    loss.backward()
    grads = {n: p.grad.numpy() for n, p in module.named_parameters()}
    return (out.detach().numpy(), [f.detach().numpy() for f in final], grads, xt.grad.numpy(),
            [s.grad.numpy() for s in st0])


def compare(net, module, x, h0, dout, dfinal, tol):
    out_t, final_t, g_t, dx_t, ds_t = torch_run(module, x, h0, dout, dfinal)
    trace = net.forward(x, tuple(h0) if len(h0) > 1 else h0[0])
    grads = net.backward(trace, dout, tuple(dfinal) if len(dfinal) > 1 else dfinal[0])
    assert rel_error(trace.output, out_t) <= tol
    comps = net.layers[0][0].spec.state
    for k, comp in enumerate(comps):
        final = np.stack([f[comp] for f in trace.final()])
        assert rel_error(final, final_t[k]) <= tol, f"final {comp}"
        assert rel_error(grads.stacked(comp), ds_t[k]) <= tol, f"dL/d{comp}0"
    assert set(grads.params) == set(g_t)
    for name, g in g_t.items():
        assert rel_error(grads.params[name], g) <= tol, name
    assert rel_error(grads.x, dx_t) <= tol


@settings(max_examples=20)
@given(kind=st.sampled_from(["lstm", "gru", "rnn", "rnn-relu"]),
       dtype=st.sampled_from([np.float64, np.float32]),
       layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       bias=st.booleans(), T=st.integers(1, 7), B=st.integers(1, 4), D=st.integers(1, 5),
       H=st.integers(1, 6), seed=st.integers(0, 2 ** 31 - 1), through=st.sampled_from(["from", "to"]))
def test_stacks_agree_with_pytorch(kind, dtype, layers, bidirectional, batch_first, bias, T, B, D,
                                   H, seed, through):
    torch.manual_seed(seed % 1000)
    rng = np.random.default_rng(seed)
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    opts = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias)
    if through == "from":
        extra = {"nonlinearity": "relu"} if kind == "rnn-relu" else {}
        module = MODULES[kind.split("-")[0]](D, H, **opts, **extra).to(tdtype)
        net = from_torch(module, network=True)
    else:
        net = gradflow.Network(kind, D, H, dtype=dtype, seed=seed % 1000, **opts)
        module = to_torch(net)
    dirs = 2 if bidirectional else 1
    shape = (B, T, D) if batch_first else (T, B, D)
    x = rng.standard_normal(shape).astype(dtype)
    S = 2 if kind == "lstm" else 1
    h0 = [0.5 * rng.standard_normal((layers * dirs, B, H)).astype(dtype) for _ in range(S)]
    out_shape = (B, T, dirs * H) if batch_first else (T, B, dirs * H)
    dout = rng.standard_normal(out_shape).astype(dtype)
    dfinal = [rng.standard_normal((layers * dirs, B, H)).astype(dtype) for _ in range(S)]
    compare(net, module, x, h0, dout, dfinal, REL[dtype])


def test_a_one_layer_network_is_its_cell():
    net = gradflow.Network("gru", 3, 4, seed=1)
    cell = net.layers[0][0]
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    dh = np.random.default_rng(1).standard_normal((6, 2, 4))
    a, b = net.forward(x), cell.forward(x)
    np.testing.assert_array_equal(a.output, b.h)
    ga, gb = net.backward(a, dh), cell.backward(b, dh)
    for name in cell.params:
        np.testing.assert_array_equal(ga.params[f"{name}_l0"], gb.params[name])
    np.testing.assert_array_equal(ga.x, gb.x)


def test_cells_and_sizes_per_layer_against_a_numpy_loop():
    """An LSTM layer under a GRU layer under an MGU layer, of three sizes, against the slow
    NumPy cells of tests/naive.py composed by hand."""
    net = gradflow.Network(["lstm", "gru", "mgu"], 3, [5, 4, 2], seed=3)
    x = np.random.default_rng(2).standard_normal((6, 2, 3))
    trace = net.forward(x)
    inp = x
    for layer, name in enumerate(["lstm", "gru", "mgu"]):
        cell = net.cell(layer)
        S = len(cell.spec.state)
        states = naive.forward(name, cell.params, inp, [np.zeros((2, cell.hidden_size))] * S)
        inp = states[0, 1:]
    np.testing.assert_allclose(trace.output, inp, rtol=1e-12)
    assert net.hidden_sizes == (5, 4, 2) and net.output_size == 2


def test_params_are_named_as_pytorch_names_them_and_write_through():
    net = gradflow.Network("lstm-peephole", 2, 3, 2, bidirectional=True, seed=0)
    assert "peephole_i_l1_reverse" in net.params and "weight_hh_l1_reverse" in net.params
    new = np.ones((12, 3))
    net.params["weight_hh_l0_reverse"] = new
    assert net.cell(0, 1).params["weight_hh"] is new
    with pytest.raises(KeyError):
        net.params["weight_hh_l2"] = new
    plain = gradflow.Network("gru", 2, 3, bias=False)
    assert not any(k.startswith("bias") for k in plain.params)
    assert plain.num_parameters == 3 * 3 * (2 + 3)


def test_models_and_state_dicts():
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Linear(4, 3)
            self.encoder = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True)
            self.head = torch.nn.Linear(10, 1)

    model = Model().double()
    net = from_torch(model)
    assert isinstance(net, gradflow.Network) and net.num_layers == 2 and net.bidirectional
    np.testing.assert_array_equal(net.params["weight_hh_l1_reverse"],
                                  model.encoder.weight_hh_l1_reverse.detach().numpy())
    from_dict = from_torch(model.state_dict())
    for name, value in net.params.items():
        np.testing.assert_array_equal(from_dict.params[name], value)
    assert from_dict.dtype == np.float64

    class Two(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.LSTM(2, 3)
            self.b = torch.nn.RNN(3, 4)

    two = Two()
    with pytest.raises(InvalidArgumentError, match=r"2 recurrent modules \['a', 'b'\].*name="):
        from_torch(two)
    assert isinstance(from_torch(two, name="b"), gradflow.Cell)
    assert from_torch(two.state_dict(), name="a").spec.name == "lstm"
    with pytest.raises(InvalidArgumentError, match="`name` 'c'"):
        from_torch(two, name="c")
    with pytest.raises(InvalidArgumentError, match="contains no nn.RNN"):
        from_torch(torch.nn.Linear(2, 3))
    relu = from_torch(torch.nn.RNN(2, 3, nonlinearity="relu").state_dict(), kind="rnn-relu")
    assert relu.spec.name == "rnn-relu"


def test_state_dicts_with_missing_misshapen_or_nan_tensors():
    state = dict(torch.nn.LSTM(3, 4, num_layers=2).state_dict())
    broken = {k: v for k, v in state.items() if k != "weight_hh_l1"}
    with pytest.raises(ShapeError, match="'weight_hh_l1' is missing; expected shape \\(16, 4\\)"):
        from_torch(broken)
    bad = dict(state, bias_ih_l1=torch.zeros(15))
    with pytest.raises(ShapeError, match="'bias_ih_l1' has shape \\(15,\\); expected \\(16,\\)"):
        from_torch(bad)
    nan = dict(state)
    nan["weight_ih_l0"] = state["weight_ih_l0"].clone()
    nan["weight_ih_l0"][2, 1] = float("nan")
    with pytest.raises(NonFiniteError, match="weight_ih_l0.*index \\(2, 1\\)"):
        from_torch(nan)
    with pytest.raises(InvalidArgumentError, match="proj_size"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(InvalidArgumentError, match="proj_size"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2).state_dict())
    with pytest.raises(InvalidArgumentError, match="`kind` 'gru' does not fit 4 gates"):
        from_torch(state, kind="gru")


def test_to_torch_refuses_what_pytorch_has_not():
    with pytest.raises(InvalidArgumentError, match="mixes cells"):
        to_torch(gradflow.Network(["lstm", "gru"], 2, 3))
    with pytest.raises(InvalidArgumentError, match="mixes cells .* or hidden sizes"):
        to_torch(gradflow.Network("lstm", 2, [3, 4]))
    with pytest.raises(InvalidArgumentError, match="PyTorch does not have"):
        to_torch(gradflow.Network("mgu", 2, 3))


def test_network_arguments():
    with pytest.raises(InvalidArgumentError, match="num_layers"):
        gradflow.Network("lstm", 2, [3, 4], num_layers=3)
    with pytest.raises(InvalidArgumentError, match="one per layer"):
        gradflow.Network(["lstm", "gru"], 2, [3, 4, 5])
    net = gradflow.Network("lstm", 2, 3, 2, batch_first=True)
    with pytest.raises(ShapeError, match="batch-first"):
        net.forward(np.zeros((4, 5, 3)))
    trace = net.forward(np.zeros((4, 5, 2)))
    assert trace.output.shape == (4, 5, 3) and trace.length == 5
    with pytest.raises(ShapeError, match="layers x directions"):
        net.forward(np.zeros((4, 5, 2)), (np.zeros((1, 4, 3)), np.zeros((1, 4, 3))))
    with pytest.raises(InvalidArgumentError, match="NetworkTrace"):
        gradflow.Network("lstm", 2, 3).backward(trace)
    a, b = gradflow.Cell("lstm", 2, 3), gradflow.Cell("lstm", 4, 3)
    with pytest.raises(ShapeError, match="layer 1 reads 4 inputs; the layer below gives 3"):
        gradflow.Network.from_cells([a, b])
