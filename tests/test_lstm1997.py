"""The 1997 memory cell and the truncated gradient, against independent references.

* forward: the slow NumPy loop of tests/naive.py, written from the paper's section 4 and
  appendix A.1 (also run for every catalogue cell by tests/test_cell.py);
* truncated gradient: the paper's own algorithm (appendix A.1: derivatives of the internal
  state carried forward in time, RTRL-like), PyTorch float64 autograd with the net inputs
  reading a detached ``h_{t-1}``, and the explicit SymPy Jacobian of the truncated step
  evaluated with ``.subs()``;
* the carousel: with truncation, error in a cell's state reaches every earlier step
  unchanged, bit for bit, for any weights and any number of steps;
* full gradient: central finite differences (tests/test_cell.py) and PyTorch autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow import cells
from gradflow.errors import InvalidArgumentError, SpecError

from . import naive
from .conftest import assert_close, rel_error
from .test_symbolic import D, N, _block_value, _evaluate, _point, _subs

ONE_STAGE = [n for n in cells.names() if not cells.get(n).stage2]


def _cell(name, D_, H, seed, scale=1.0):
    cell = gradflow.Cell(name, D_, H, seed=seed)
    for v in cell.params.values():
        v *= scale
    return cell


# ---------------------------------------------------------------- forward
@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(["lstm1997", "lstm1997-nog"]), T=st.integers(1, 40),
       B=st.integers(1, 3), D_=st.integers(1, 4), H=st.integers(1, 5),
       scale=st.sampled_from([0.1, 1.0, 5.0]), seed=st.integers(0, 2**31 - 1))
def test_forward_is_the_papers_equations(name, T, B, D_, H, scale, seed):
    """Every state equals the slow loop of tests/naive.py, written from section 4 and
    appendix A.1 (s_c(t) = s_c(t-1) + y_in g(net_c), y_c = y_out h(s_c)), for any weights."""
    cell = _cell(name, D_, H, seed % 1000, scale)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D_))
    state0 = tuple(rng.standard_normal((B, H)) for _ in range(2))
    trace = cell.forward(x, state0)
    assert_close(trace.states, naive.forward(name, cell.params, x, state0))


def test_squashing_functions_have_the_papers_ranges():
    """g = 4σ - 2 spans [-2, 2] and h = 2σ - 1 spans [-1, 1]: a saturated unit (pre-activations
    of ±50) puts ±2 into the state at each step and shows ±1 at the output."""
    cell = gradflow.Cell("lstm1997", 1, 1, seed=0)
    for k in cell.params:
        cell.params[k][...] = 0.0
    cell.params["bias_ih"][:] = [50.0, 50.0, 50.0]            # i = 1, g = 2, o = 1
    trace = cell.forward(np.zeros((3, 1, 1)))
    assert_close(trace.component("c")[:, 0, 0], [2.0, 4.0, 6.0])
    assert_close(trace.h[:, 0, 0], 2.0 / (1.0 + np.exp(-np.array([2.0, 4.0, 6.0]))) - 1.0)
    cell.params["bias_ih"][:] = [50.0, -50.0, 50.0]           # g = -2
    assert_close(cell.forward(np.zeros((2, 1, 1))).component("c")[:, 0, 0], [-2.0, -4.0])


# ---------------------------------------------------------------- full gradient
def _naive_loss(name, params, x, state0, dh, dsT):
    ref = naive.forward(name, params, x, state0)
    return float(np.sum(ref[0, 1:] * dh) + sum(np.sum(ref[k, -1] * dsT[k]) for k in range(2)))


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(["lstm1997", "lstm1997-nog"]), T=st.integers(1, 8),
       B=st.integers(1, 2), D_=st.integers(1, 3), H=st.integers(1, 3),
       seed=st.integers(0, 2**31 - 1))
def test_full_gradient_equals_finite_differences_of_the_papers_equations(name, T, B, D_, H, seed):
    """Without truncation, every gradient is the central difference of a loss computed by
    the slow loop of tests/naive.py (not by the kernels)."""
    cell = _cell(name, D_, H, seed % 1000, 1.5)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D_))
    state0 = [0.5 * rng.standard_normal((B, H)) for _ in range(2)]
    dh = rng.standard_normal((T, B, H))
    dsT = [rng.standard_normal((B, H)) for _ in range(2)]
    grads = cell.backward(cell.forward(x, state0), dh, dsT)
    params = {k: v.copy() for k, v in cell.params.items()}

    def loss():
        return _naive_loss(name, params, x, state0, dh, dsT)

    for pname, value in params.items():
        assert_close(grads.params[pname], naive.central_differences(loss, value),
                     kind="finite_difference", err_msg=pname)
    assert_close(grads.x, naive.central_differences(loss, x), kind="finite_difference")
    for k, s in enumerate(("h", "c")):
        assert_close(grads.state0[s], naive.central_differences(loss, state0[k]),
                     kind="finite_difference", err_msg=s)


# ---------------------------------------------------------------- the carousel
@settings(max_examples=30, deadline=None)
@given(T=st.integers(1, 300), B=st.integers(1, 3), H=st.integers(1, 6),
       scale=st.sampled_from([0.1, 1.0, 10.0, 100.0]), seed=st.integers(0, 2**31 - 1))
def test_truncated_error_in_the_carousel_is_exactly_constant(T, B, H, scale, seed):
    """Error put into c_T comes out at c_0, and at every c_k on the way, unchanged bit for
    bit: each step multiplies it by exactly 1 and adds exactly 0."""
    cell = _cell("lstm1997", 2, H, seed % 1000, scale)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, 2))
    trace = cell.forward(x)
    dc = rng.standard_normal((B, H))
    grads = cell.backward(trace, dstate={"c": dc}, truncate=True)
    np.testing.assert_array_equal(grads.state0["c"], dc)
    np.testing.assert_array_equal(grads.state0["h"], np.zeros((B, H)))
    k = int(rng.integers(0, T))
    part = cell.backward(trace.slice(k, T), dstate={"c": dc}, truncate=True)
    np.testing.assert_array_equal(part.state0["c"], dc)


@settings(max_examples=20, deadline=None)
@given(T=st.integers(2, 200), H=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_truncated_error_from_the_last_output_is_the_closed_form_at_every_step(T, H, seed):
    """dL/dh_T enters the state once, scaled by o_T h'(s_T) = o_T 2σ(s_T)(1 - σ(s_T)), and
    then stays: dL/ds_k is that number for every k < T."""
    cell = _cell("lstm1997", 3, H, seed % 1000, 3.0)
    rng = np.random.default_rng(seed)
    trace = cell.forward(rng.standard_normal((T, 1, 3)))
    dh = np.zeros((T, 1, H))
    dh[-1] = rng.standard_normal((1, H))
    o = trace.intermediate("o")[-1]
    s = trace.component("c")[-1]
    sig = 1.0 / (1.0 + np.exp(-s))
    closed = o * 2.0 * sig * (1.0 - sig) * dh[-1]
    at_zero = cell.backward(trace, dh, truncate=True).state0["c"]
    assert_close(at_zero, closed)
    k = int(rng.integers(0, T - 1))
    part = cell.backward(trace.slice(k, T), dh[k:], truncate=True).state0["c"]
    np.testing.assert_array_equal(part, at_zero)


def test_full_gradient_does_not_keep_the_error_constant():
    """Without truncation the error also leaves through h and the gates and comes back."""
    cell = _cell("lstm1997", 2, 3, 0, 3.0)
    trace = cell.forward(np.random.default_rng(1).standard_normal((30, 1, 2)))
    dc = np.ones((1, 3))
    full = cell.backward(trace, dstate={"c": dc})
    assert rel_error(full.state0["c"], dc) > 1e-3
    assert np.abs(full.state0["h"]).max() > 1e-6


# ---------------------------------------------------------------- the truncated gradient
@pytest.mark.parametrize("T, H, seed", [(1, 1, 0), (7, 3, 1), (25, 4, 2), (60, 2, 3)])
def test_truncated_gradient_is_the_papers_forward_algorithm(T, H, seed):
    """Reverse mode on the generated kernels equals the paper's appendix A.1, which carries
    ∂s_c/∂w forward in time: two algorithms for one gradient."""
    D_ = 3
    cell = _cell("lstm1997", D_, H, seed, 2.0)
    rng = np.random.default_rng(seed + 10)
    x = rng.standard_normal((T, 1, D_))
    dh = rng.standard_normal((T, 1, H))
    ds = rng.standard_normal((1, H))
    grads = cell.backward(cell.forward(x), dh, dstate={"c": ds}, truncate=True)
    ref = naive.truncated_gradient_1997(cell.params, x[:, 0], dh[:, 0], ds[0])
    for name, value in ref.items():
        assert_close(grads.params[name], value, err_msg=name)


def _torch_lstm1997(torch, params, x, state0, truncate):
    """The 1997 cell in PyTorch float64; with `truncate`, the net inputs read a detached
    h_{t-1}: ∂net(t)/∂y(t-1) = 0, the paper's truncation."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    xt = torch.tensor(x, requires_grad=True)
    h, s = (torch.tensor(v, requires_grad=True) for v in state0)
    h0, s0 = h, s
    H = h.shape[1]
    hs, ss = [], []
    for t in range(x.shape[0]):
        h_in = h.detach() if truncate else h
        net = xt[t] @ p["weight_ih"].T + p["bias_ih"] + h_in @ p["weight_hh"].T + p["bias_hh"]
        i = torch.sigmoid(net[:, :H])
        g = 4 * torch.sigmoid(net[:, H:2 * H]) - 2
        o = torch.sigmoid(net[:, 2 * H:])
        s = s + i * g
        h = o * (2 * torch.sigmoid(s) - 1)
        hs.append(h)
        ss.append(s)
    return p, xt, (h0, s0), torch.stack(hs), s


@pytest.mark.torch
@pytest.mark.parametrize("truncate", [True, False])
@settings(max_examples=15, deadline=None)
@given(T=st.integers(1, 15), B=st.integers(1, 3), D_=st.integers(1, 4), H=st.integers(1, 5),
       seed=st.integers(0, 2**31 - 1))
def test_gradients_equal_pytorch_autograd(torch, truncate, T, B, D_, H, seed):
    cell = _cell("lstm1997", D_, H, seed % 1000, 2.0)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D_))
    state0 = tuple(0.5 * rng.standard_normal((B, H)) for _ in range(2))
    dh = rng.standard_normal((T, B, H))
    dsT = [rng.standard_normal((B, H)) for _ in range(2)]
    trace = cell.forward(x, state0)
    grads = cell.backward(trace, dh, dsT, truncate=truncate)
    p, xt, (h0, s0), hs, sT = _torch_lstm1997(torch, cell.params, x, state0, truncate)
    loss = (hs * torch.tensor(dh)).sum() + (hs[-1] * torch.tensor(dsT[0])).sum() \
        + (sT * torch.tensor(dsT[1])).sum()
    loss.backward()
    assert rel_error(trace.h, hs.detach().numpy()) <= 1e-12
    for name, v in p.items():
        assert rel_error(grads.params[name], v.grad.numpy()) <= 1e-10, name
    assert rel_error(grads.x, xt.grad.numpy()) <= 1e-10
    assert rel_error(grads.state0["c"], s0.grad.numpy()) <= 1e-10
    want_h = np.zeros((B, H)) if h0.grad is None else h0.grad.numpy()
    assert_close(grads.state0["h"], want_h)


# ---------------------------------------------------------------- symbolic
def test_truncated_jacobian_of_the_1997_cell_is_the_carousel_exactly():
    """SymPy, exactly (no numbers): ∂s_t/∂s_{t-1} = I, nothing through h_{t-1}."""
    for n in (1, 2, 3):
        J = cells.get("lstm1997").jacobian(n, input_size=2, truncate=True)
        assert J[n:, n:] == sympy.eye(n)
        assert J[:, :n] == sympy.zeros(2 * n, n)
    blocks = cells.get("lstm1997").jacobian(truncate=True)
    assert blocks[("c", "c")].terms == ((blocks[("c", "c")].terms[0][0],),)
    assert blocks[("c", "c")].direct == 1
    assert blocks[("c", "h")].is_zero and blocks[("h", "h")].is_zero
    assert r"\frac{\partial c_{t}}{\partial c_{t-1}} &= I" in blocks.latex()


def _truncated_step_vjp(cell, x, state0):
    """The kernels' truncated one-step Jacobian, row by row: backward of a one-step trace
    with a unit vector as the gradient of the new state."""
    S = len(cell.spec.state)
    trace = cell.forward(x, state0)
    rows = []
    for a in range(S):
        for j in range(N):
            ds = [np.zeros((1, N)) for _ in range(S)]
            ds[a][0, j] = 1.0
            g = cell.backward(trace, dstate=ds, truncate=True)
            rows.append(np.concatenate([g.state0[s][0] for s in cell.spec.state]))
    return np.array(rows)


@pytest.mark.parametrize("name", ONE_STAGE)
def test_kernels_truncated_step_equals_sympy_subs(name):
    cell, x, state0 = _point(name, seed=21)
    J = _evaluate(cell.spec.jacobian(hidden_size=N, input_size=D, truncate=True),
                  _subs(cell, x, state0))
    assert_close(_truncated_step_vjp(cell, x, state0), J)


@pytest.mark.parametrize("name", ONE_STAGE)
def test_truncated_symbolic_blocks_equal_the_explicit_jacobian(name):
    cell, x, state0 = _point(name, seed=22)
    trace = cell.forward(x, state0)
    J = _evaluate(cell.spec.jacobian(hidden_size=N, input_size=D, truncate=True),
                  _subs(cell, x, state0))
    blocks = cell.spec.jacobian(truncate=True)
    for a, s in enumerate(cell.spec.state):
        for c, s2 in enumerate(cell.spec.state):
            got = _block_value(blocks[(s, s2)], cell, trace)
            assert_close(got, J[a * N:(a + 1) * N, c * N:(c + 1) * N], err_msg=f"d{s}/d{s2}")


def test_truncation_of_other_cells_keeps_their_self_connections():
    """The rule is the paper's, applied to any one-stage cell: the LSTM keeps diag(f) on
    its cell state (Gers et al. 2000 trained it so), the GRU its leak diag(z), the tanh RNN
    nothing; a peephole's error is stopped with the gate's."""
    lstm = cells.get("lstm")
    f = lstm.derivation.full["f"]
    assert sympy.simplify(lstm.partials(truncate=True)[("c", "c_prev")] - f) == 0
    peep = cells.get("lstm-peephole")
    assert sympy.simplify(peep.partials(truncate=True)[("c", "c_prev")]
                          - peep.derivation.full["f"]) == 0
    assert sympy.simplify(peep.partials()[("c", "c_prev")] - peep.derivation.full["f"]) != 0
    gru = cells.get("gru")
    assert sympy.simplify(gru.partials(truncate=True)[("h", "h_prev")]
                          - gru.derivation.full["z"]) == 0
    assert cells.get("rnn").partials(truncate=True)[("h", "h_prev")] == 0


# ---------------------------------------------------------------- errors
def test_truncation_refuses_two_stage_cells_and_non_flags():
    cell = gradflow.Cell("mgu", 2, 3, seed=0)
    trace = cell.forward(np.zeros((2, 1, 2)))
    with pytest.raises(SpecError, match="'mgu' is a two-stage cell"):
        cell.backward(trace, truncate=True)
    with pytest.raises(SpecError, match="two-stage"):
        cells.get("gru-cho").jacobian(truncate=True)
    cell = gradflow.Cell("lstm1997", 2, 3, seed=0)
    trace = cell.forward(np.zeros((2, 1, 2)))
    with pytest.raises(InvalidArgumentError, match="`truncate` must be True or False; got 'yes'"):
        cell.backward(trace, truncate="yes")
    with pytest.raises(SpecError, match="`truncate` must be True or False"):
        cells.get("lstm1997").partials(truncate=1)
