"""Every identity of docs/references.md, on hypothesis-drawn cells, inputs and states.

Each test's docstring states the identity and the conditions under which it holds.  The
analytic side is gradflow's: one-step Jacobians from the backward pass (one
vector-Jacobian product per row) and from ``gradflow.state_jacobians``, gradients from
``Cell.backward``.  The references are independent: closed forms evaluated in NumPy
from the parameters (inside ``gradflow.testing.identities``, written from the papers),
central finite differences, SymPy simplification, PyTorch autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import gradflow
from gradflow.errors import InvalidArgumentError
from gradflow.testing import (CheckFailure, CheckResult, IDENTITIES, check_identities,
                              check_identity)
from gradflow.testing import _references as ids
from gradflow.testing import strategies as gst
from gradflow.testing._numeric import step_jacobians

LSTM_F = ["lstm", "lstm-cifg", "lstm-nig", "lstm-nog", "lstm-niaf", "lstm-noaf"]
BOTH = (np.float64, np.float32)


def _run(key, case):
    cell = IDENTITIES[key].prepare(case.cell)
    return check_identity(key, cell, case.x, case.state0)


@given(gst.cell_inputs(cells=gst.cells(names=["rnn", "rnn-relu", "rnn-linear"], dtype=BOTH)))
def test_rnn_step_jacobian(case):
    """d h_t/d h_{t-1} = diag(phi'(a_t)) W_hh for tanh, ReLU and linear RNNs.

    Conditions: any weights, inputs and states (ReLU: phi'(0) = 0, as PyTorch)."""
    _run("rnn-step", case)


@given(gst.cell_inputs(cells=gst.cells(names=["rnn", "rnn-relu", "rnn-linear"], scale=(0.2, 3.0)),
                       length=(1, 10)))
def test_rnn_norm_bound(case):
    """||d h_T/d h_k||_2 <= (gamma ||W_hh||_2)^(T-k) for every lag, gamma = sup|phi'| = 1.

    Conditions: tanh, ReLU or linear activation (gamma = 1); any weights and inputs."""
    _run("rnn-bound", case)


@given(gst.cell_inputs(cells=gst.cells(names=["lstm"], dtype=BOTH, forget_bias=(-2.0, 3.0))))
def test_lstm_one_step_blocks(case):
    """The four LSTM blocks: dc/dc = diag(f); dc/dh = diag(c_prev f(1-f)) U_f +
    diag(g i(1-i)) U_i + diag(i(1-g^2)) U_g; dh/dc = diag(o(1-tanh^2 c)) diag(f);
    dh/dh = diag(tanh c o(1-o)) U_o + diag(o(1-tanh^2 c)) dc/dh.

    Conditions: the LSTM without peepholes; any weights, inputs and states."""
    _run("lstm-blocks", case)


@settings(max_examples=300)
@given(gst.cell_inputs(cells=gst.cells(names=LSTM_F, hidden_size=(1, 4), dtype=BOTH,
                                       forget_bias=(-3.0, 4.0), scale=(0.1, 3.0)),
                       length=(1, 40), batch_size=(1, 3)))
def test_cell_state_path_is_product_of_forget_gates(case):
    """Headline: the cell-state path gradient, the product of the direct c -> c edges from
    step 0 to T, equals diag(prod_t f_t) exactly (up to rounding), checked in log space
    and as a renormalised matrix product, with the SymPy form of the edge.

    Conditions: any weights and inputs (W_hh need not vanish: this is the direct path
    only, not the total derivative); every LSTM with a forget gate and no peepholes."""
    _run("cell-path", case)


@settings(max_examples=100)
@given(gst.cell_inputs(cells=gst.cells(names=LSTM_F, zero_recurrence=True, forget_bias=(-2.0, 4.0)),
                       length=(1, 20)))
def test_total_cell_gradient_with_zero_recurrence(case):
    """Total d c_T/d c_k = diag(prod_{t>k} f_t), from the backward pass over the steps.

    Conditions: W_hh = 0 (no path through h); LSTMs with a forget gate, no peepholes."""
    _run("total-cell-path", case)


def test_total_cell_gradient_differs_when_recurrence_is_on():
    """The condition matters: with W_hh != 0 the total d c_T/d c_0 is not prod f."""
    from gradflow.testing._numeric import draw_case

    cell, x, s0 = draw_case("lstm", np.random.default_rng(3), hidden_size=3, length=8, batch=1,
                            scale=2.0)
    with pytest.raises(InvalidArgumentError, match="W_hh = 0"):
        check_identity("total-cell-path", cell, x, s0)
    res = CheckResult("total-cell-path", "")
    ids.total_cell_path(res, ids.Point(cell, x, s0, "vjp"))
    assert not res.passed and res.relative_error > 1e-3


@given(gst.cell_inputs(cells=gst.cells(names=["lstm-peephole"], dtype=BOTH)))
def test_peephole_direct_edge(case):
    """With peepholes the direct edge gains peephole terms: dc/dc_prev =
    diag(f + c_prev p_f f(1-f) + g p_i i(1-i)); dh/dc_prev = diag(tanh(c) o(1-o) p_o +
    o(1-tanh^2 c)) dc/dc_prev.

    Conditions: any weights, peephole weights, inputs and states."""
    _run("peephole-edge", case)


@given(gst.cell_inputs(cells=gst.cells(names=["lstm-nfg"], dtype=BOTH)))
def test_no_forget_gate_is_the_constant_error_carousel(case):
    """lstm-nfg: the direct edge d c_t/d c_{t-1} is the identity matrix, exactly.

    Conditions: any weights, inputs and states."""
    _run("nfg-cec", case)


@given(gst.cell_inputs(cells=gst.cells(names=["lstm-cifg"], dtype=BOTH)))
def test_cifg_coupling(case):
    """CIFG: i = 1 - f, so c_t = f c_{t-1} + (1 - f) g and dc/dc_prev = diag(f).

    Conditions: any weights, inputs and states."""
    _run("cifg-coupling", case)


@given(gst.cell_inputs(cells=gst.cells(names=["gru", "gru-cho"], dtype=BOTH)))
def test_gru_update(case):
    """GRU: h_t = (1 - z) n + z h_{t-1}, z and n computed in NumPy from the parameters.

    Conditions: any weights, inputs and states; PyTorch's convention (r multiplies
    W_hn h + b_hn) and Cho's (r multiplies h before the matmul)."""
    _run("gru-update", case)


@given(gst.cell_inputs(cells=gst.cells(names=["gru", "gru-cho"], zero_recurrence=True)))
def test_gru_leak_path(case):
    """GRU leak path: the direct (weight-free) term of d h_t/d h_{t-1} is diag(z) (SymPy,
    any weights); with W_hh = 0 it is the whole one-step Jacobian (numbers).

    Conditions: W_hh = 0 for the numerical part."""
    _run("gru-leak", case)


@given(gst.cell_inputs(cells=gst.cells(names=["mgu"], zero_recurrence=True, dtype=BOTH)))
def test_mgu_leak_path(case):
    """Minimal gated unit: the direct term of d h_t/d h_{t-1} is diag(1 - f) (SymPy, any
    weights); with W_hh = 0 it is the whole one-step Jacobian (numbers).

    Conditions: W_hh = 0 for the numerical part."""
    _run("mgu-leak", case)


@settings(max_examples=40)
@given(gst.cell_inputs(cells=gst.cells(hidden_size=(1, 3), input_size=(1, 2), dtype=BOTH),
                       length=(1, 4)))
def test_backward_agrees_with_finite_differences(case):
    """Backward pass = central finite differences (float64 differences; float32 cells get
    the float32 finite-difference tolerance), every parameter, the input and the state.

    Conditions: the cell is differentiable at the point (ReLU kinks are skipped)."""
    _run("finite-differences", case)


@given(gst.cell_inputs(cells=gst.cells(dtype=BOTH), length=(1, 8)))
def test_jvp_and_vjp_are_adjoint(case):
    """<J v, w> = <v, J^T w> for the map (x, state0) -> (h_1..h_T, final state): J v by
    tangent propagation through state_jacobians, J^T w by Cell.backward.

    Conditions: any weights, inputs, tangents and cotangents."""
    _run("adjoint", case)


@pytest.mark.torch
@given(gst.cell_inputs(cells=gst.cells(names=["rnn", "rnn-relu", "lstm", "gru"])))
def test_float64_agrees_with_pytorch(torch, case):
    """float64 forward, parameter, input and state gradients = PyTorch autograd (~1e-10).

    Conditions: float64; the cells PyTorch has."""
    _run("pytorch", case)


def test_every_identity_is_exercised_and_states_conditions():
    """Each identity of the registry applies to some cell and says when it holds."""
    import gradflow

    for key, ident in IDENTITIES.items():
        assert ident.conditions and ident.statement
        assert any(ident.applies_to(n) for n in gradflow.cells.names()), key


def test_an_identity_check_fails_on_a_wrong_jacobian(monkeypatch):
    """The cell-path check can fail: a Jacobian whose c -> c edge is 1.001 f is caught,
    and the failure names the source, the step and both values."""
    real = ids.step_jacobians

    def wrong(cell, x, state0=None, **kw):
        out = real(cell, x, state0, **kw)
        J = out[1].copy()
        H = cell.hidden_size
        J[..., H:, H:] *= 1.001
        return (out[0], J, *out[2:])

    monkeypatch.setattr(ids, "step_jacobians", wrong)
    from gradflow.testing._numeric import draw_case

    cell, x, s0 = draw_case("lstm", np.random.default_rng(0), length=5)
    with pytest.raises(CheckFailure, match="cell-path") as info:
        check_identity("cell-path", cell, x, s0, method="vjp")
    res = info.value.result
    assert res.where["source"] == "backward rows"
    assert "analytic=" in str(info.value) and "reference=" in str(info.value)


def test_check_identities_report_and_validation():
    report = check_identities("lstm-nfg", examples=2)
    assert [r.name for r in report] == ["nfg-cec", "finite-differences", "adjoint"]
    assert all(r.examples >= 1 for r in report)
    with pytest.raises(InvalidArgumentError, match="does not apply"):
        check_identities("gru", identities=["cell-path"])
    with pytest.raises(InvalidArgumentError, match="unknown"):
        check_identities("gru", identities=["no-such-identity"])


@pytest.mark.parametrize("rho", [0.5, 1.0, 1.3])
def test_rnn_norm_bound_is_attained_by_a_scaled_orthogonal_linear_rnn(rho):
    """Exact closed form: for the linear RNN with W_hh = rho Q (Q orthogonal),
    d h_T/d h_k = W_hh^(T-k), whose spectral norm is rho^(T-k), the bound with equality.

    Conditions: rnn-linear (phi' = 1), W_hh a multiple of an orthogonal matrix."""
    cell = gradflow.Cell("rnn-linear", 2, 4, seed=1, init="orthogonal")
    cell.params["weight_hh"] *= rho
    x = np.random.default_rng(0).standard_normal((30, 1, 2))
    _, J = step_jacobians(cell, x)
    got = ids._log10_norm_products(J)[:, 0]
    lags = 30 - np.arange(30)
    np.testing.assert_allclose(got, lags * np.log10(rho), rtol=0, atol=1e-12)
