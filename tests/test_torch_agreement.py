"""rnn, rnn-relu, lstm and gru against PyTorch autograd, and the interop round trip.

PyTorch float64 is an independent implementation: forward states and every gradient must
agree to 1e-10 relative (float64) and 1e-4 (float32), for random sizes and seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow.interop import from_torch, to_torch

from .conftest import rel_error

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

KINDS = ["rnn", "rnn-relu", "lstm", "gru"]
REL = {np.float64: 1e-10, np.float32: 1e-4}


def torch_run(module, x, state0, dh, dstate):
    """Forward and backward in PyTorch; returns h, final states and gradients."""
    xt = torch.tensor(x, requires_grad=True)
    st0 = [torch.tensor(s[None], requires_grad=True) for s in state0]
    out, final = module(xt, tuple(st0) if len(st0) == 2 else st0[0])
    final = final if isinstance(final, tuple) else (final,)
    loss = (out * torch.tensor(dh)).sum()
    for f, d in zip(final, dstate):
        loss = loss + (f[0] * torch.tensor(d)).sum()
    loss.backward()
    grads = {name: getattr(module, f"{name}_l0").grad.numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    return out.detach().numpy(), [f[0].detach().numpy() for f in final], grads, xt.grad.numpy(), [s.grad.numpy()[0] for s in st0]


def compare(cell, x, state0, dh, dstate, dtype):
    module = to_torch(cell)
    h_t, final_t, g_t, dx_t, ds_t = torch_run(module, x, state0, dh, dstate)
    trace = cell.forward(x, state0)
    grads = cell.backward(trace, dh, dstate)
    tol = REL[dtype]
    assert rel_error(trace.h, h_t) <= tol
    for k, s in enumerate(cell.spec.state):
        assert rel_error(trace.final[s], final_t[k]) <= tol
        assert rel_error(grads.state0[s], ds_t[k]) <= tol, f"state0 {s}"
    for name, g in g_t.items():
        assert rel_error(grads.params[name], g) <= tol, name
    assert rel_error(grads.x, dx_t) <= tol


@settings(max_examples=12)
@given(
    kind=st.sampled_from(KINDS),
    dtype=st.sampled_from([np.float64, np.float32]),
    T=st.integers(1, 12), B=st.integers(1, 5), D=st.integers(1, 9), H=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_agrees_with_pytorch(kind, dtype, T, B, D, H, seed):
    cell = gradflow.Cell(kind, D, H, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    state0 = [rng.standard_normal((B, H)).astype(dtype) for _ in cell.spec.state]
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    dstate = [rng.standard_normal((B, H)).astype(dtype) for _ in cell.spec.state]
    compare(cell, x, state0, dh, dstate, dtype)


@pytest.mark.parametrize("module_factory", [
    lambda: torch.nn.RNN(5, 7), lambda: torch.nn.RNN(5, 7, nonlinearity="relu"),
    lambda: torch.nn.LSTM(5, 7), lambda: torch.nn.GRU(5, 7)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_from_torch_keeps_pytorch_initialisation(module_factory, dtype):
    torch.manual_seed(0)
    module = module_factory().to(torch.float64 if dtype == np.float64 else torch.float32)
    cell = from_torch(module)
    assert cell.dtype == dtype
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 3, 5)).astype(dtype)
    state0 = [rng.standard_normal((3, 7)).astype(dtype) for _ in cell.spec.state]
    dh = rng.standard_normal((9, 3, 7)).astype(dtype)
    dstate = [np.zeros((3, 7), dtype=dtype) for _ in cell.spec.state]
    h_t, _, g_t, dx_t, _ = torch_run(module, x, state0, dh, dstate)
    trace = cell.forward(x, state0)
    grads = cell.backward(trace, dh)
    assert rel_error(trace.h, h_t) <= REL[dtype]
    for name, g in g_t.items():
        assert rel_error(grads.params[name], g) <= REL[dtype], name
    assert rel_error(grads.x, dx_t) <= REL[dtype]


def test_round_trip_copies_parameters():
    cell = gradflow.Cell("lstm", 3, 4, seed=2)
    back = from_torch(to_torch(cell))
    for k, v in cell.params.items():
        np.testing.assert_array_equal(back.params[k], v)


def test_interop_rejects_what_it_cannot_convert():
    assert isinstance(from_torch(torch.nn.LSTM(3, 4, num_layers=2)), gradflow.Network)
    with pytest.raises(gradflow.InvalidArgumentError, match="proj_size"):
        from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(gradflow.InvalidArgumentError, match="contains no nn.RNN, nn.LSTM or nn.GRU"):
        from_torch(torch.nn.Linear(3, 4))
    with pytest.raises(gradflow.InvalidArgumentError, match="PyTorch does not have"):
        to_torch(gradflow.Cell("mgu", 3, 4))


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_against_pytorch_where_products_use_a_packed_weight(kind, dtype):
    """Sizes whose per-step products go through a weight packed once per pass (when oneMKL
    is installed; else the same sizes through NumPy's BLAS): 16 rows, H = 128."""
    from gradflow import _blas

    cell = gradflow.Cell(kind, input_size=5, hidden_size=128, dtype=dtype, seed=3)
    G = cell.spec.num_gates
    assert _blas.use_packed(16, G * 128, 128) == _blas.packed_available()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 16, 5)).astype(dtype)
    state0 = [0.5 * rng.standard_normal((16, 128)).astype(dtype) for _ in cell.spec.state]
    dh = rng.standard_normal((6, 16, 128)).astype(dtype)
    dstate = [rng.standard_normal((16, 128)).astype(dtype) for _ in cell.spec.state]
    compare(cell, x, state0, dh, dstate, dtype)
