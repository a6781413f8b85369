"""check_grads, check_symbolic, check_implementation and the result objects: each passes
on correct code and fails, with the worst element located, on wrong code."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow.errors import InvalidArgumentError
from gradflow.testing import (CheckFailure, CheckReport, CheckResult, check_grads,
                              check_implementation, check_symbolic)
from gradflow.testing import checks as checks_module
from gradflow.testing._result import compare


# ---------------------------------------------------------------------- results
def test_compare_locates_the_worst_element_and_reports_both_values():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = ref.copy()
    got[1, 0] += 1e-3
    res = compare("demo", "got vs ref", got, ref, rtol=1e-6, atol=0.0,
                  labels=lambda k: {"index": tuple(int(i) for i in np.unravel_index(k, ref.shape))})
    assert not res.passed and res.where["index"] == (1, 0)
    assert res.analytic == got[1, 0] and res.reference == 3.0
    np.testing.assert_allclose(res.worst_error, 1e-3, rtol=1e-9)
    with pytest.raises(CheckFailure) as info:
        res.raise_if_failed()
    assert isinstance(info.value, AssertionError)
    assert "analytic=3.001" in str(info.value) and "reference=3.0" in str(info.value)


def test_nan_is_a_failure_and_exact_zero_tolerance_accepts_equality():
    assert not compare("n", "", [np.nan], [1.0], rtol=1, atol=1).passed
    assert compare("z", "", [0.5, 0.0], [0.5, 0.0], rtol=0, atol=0).passed
    assert not compare("z", "", [0.5], [0.5 + 1e-16], rtol=0, atol=0).passed


def test_equal_infinities_match_and_unequal_ones_do_not():
    assert compare("inf", "", [-np.inf, 1.0], [-np.inf, 1.0], rtol=1e-9, atol=0).passed
    assert not compare("inf", "", [-np.inf], [-700.0], rtol=1e-9, atol=0).passed


def test_inequality_check():
    res = CheckResult("bound", "")
    res.add_le([0.5, 0.9], [1.0, 1.0], rtol=0, atol=1e-12)
    assert res.passed
    res.add_le([1.1], [1.0], rtol=0, atol=1e-12)
    assert not res.passed and res.worst_error == pytest.approx(0.1)


def test_report_table_names_failed_properties():
    ok = compare("fine", "", [1.0], [1.0], rtol=1e-9, atol=0)
    bad = compare("broken", "", [2.0], [1.0], rtol=1e-9, atol=0)
    rep = CheckReport([ok, bad], subject="demo")
    assert not rep.passed and rep.failed == [bad] and rep["fine"] is ok
    lines = rep.table().splitlines()
    assert lines[0].split()[:2] == ["property", "examples"]
    assert any(line.startswith("broken") and "FAIL" in line for line in lines)
    with pytest.raises(CheckFailure, match="1 of 2 properties failed: 'broken'"):
        rep.raise_if_failed()


# ---------------------------------------------------------------------- check_grads
@pytest.mark.parametrize("name", ["lstm-peephole", "gru-cho", "rnn-relu"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_check_grads_passes_on_gradflow_cells(name, dtype):
    cell = gradflow.Cell(name, 2, 3, seed=4, dtype=dtype)
    x = np.random.default_rng(1).standard_normal((4, 2, 2)).astype(dtype)
    res = check_grads(cell, x, (np.full((2, 3), 0.3, dtype),) * len(cell.spec.state))
    assert res.passed and res.examples == 1
    assert res.tolerance == gradflow.config.tolerance(dtype, "finite_difference")


def test_check_grads_catches_a_wrong_gradient_and_says_where(monkeypatch):
    cell = gradflow.Cell("lstm", 2, 3, seed=0)
    real = cell.backward

    def wrong(trace, dh=None, dstate=None):
        g = real(trace, dh, dstate)
        g.params["weight_hh"][5, 1] += 1e-3
        return g

    monkeypatch.setattr(cell, "backward", wrong)
    with pytest.raises(CheckFailure) as info:
        check_grads(cell, np.ones((3, 1, 2)))
    res = info.value.result
    assert res.where == {"parameter": "weight_hh", "index": (5, 1)}
    assert abs(res.analytic - res.reference) == pytest.approx(1e-3, rel=1e-4)


def test_check_grads_locates_an_input_error_by_step(monkeypatch):
    cell = gradflow.Cell("gru", 2, 2, seed=0)
    real = cell.backward

    def wrong(trace, dh=None, dstate=None):
        g = real(trace, dh, dstate)
        g.x[2, 0, 1] *= 1.01
        return g

    monkeypatch.setattr(cell, "backward", wrong)
    res = check_grads(cell, np.ones((4, 1, 2)), raise_on_failure=False)
    assert not res.passed and res.where["input"] == "x" and res.where["step"] == 2


def test_check_grads_validates():
    with pytest.raises(InvalidArgumentError, match="`cell` must be a gradflow.Cell"):
        check_grads("lstm", np.ones((2, 1, 1)))
    cell = gradflow.Cell("rnn", 2, 2)
    with pytest.raises(gradflow.ShapeError, match="`x`"):
        check_grads(cell, np.ones((2, 1, 3)))


# ---------------------------------------------------------------------- check_symbolic
@pytest.mark.parametrize("name", gradflow.cells.names())
def test_kernels_agree_with_sympy_subs(name):
    res = check_symbolic(name, examples=1, hidden_size=2, input_size=1, seed=7)
    assert res.passed and res.tolerance["rtol"] == 1e-10


def test_check_symbolic_uses_a_small_given_cell():
    cell = gradflow.Cell("gru", 1, 2, seed=3)
    assert check_symbolic(cell, examples=1).passed


def test_check_symbolic_catches_a_wrong_jacobian(monkeypatch):
    real = checks_module.step_jacobians

    def wrong(cell, x, state0=None, **kw):
        trace, J, Jx = real(cell, x, state0, **kw)
        J = J.copy()
        J[0, 0, 0, 1] += 1e-6
        return trace, J, Jx

    monkeypatch.setattr(checks_module, "step_jacobians", wrong)
    with pytest.raises(CheckFailure) as info:
        check_symbolic("lstm", examples=1)
    assert info.value.result.where["quantity"] == "J_state"
    assert info.value.result.where["index"] == (0, 1)


def test_check_symbolic_validates():
    with pytest.raises(InvalidArgumentError, match="at most 3"):
        check_symbolic("lstm", hidden_size=5)
    with pytest.raises(gradflow.UnknownCellError):
        check_symbolic("lstmm")


# ---------------------------------------------------------------------- check_implementation
@pytest.mark.torch
def test_pytorch_builtins_pass(torch):
    for module in (torch.nn.LSTM(2, 3), torch.nn.GRU(3, 2), torch.nn.RNN(2, 2),
                   torch.nn.RNN(2, 2, nonlinearity="relu")):
        rep = check_implementation(module, examples=3)
        assert rep.passed and rep["forward"].examples == 3


def test_numpy_step_functions():
    from tests.user_impls import numpy_step as N

    for step, kind in ((N.lstm_step, "lstm"), (N.gru_step, "gru"), (N.rnn_step, "rnn")):
        rep = check_implementation(step, kind, examples=3)
        assert rep.passed
        assert "finite differences" in rep["backward"].note
    with pytest.raises(CheckFailure, match="'cell equations'") as info:
        check_implementation(N.lstm_step_no_output_tanh, "lstm", examples=3)
    assert "lstm-noaf" in info.value.report["cell equations"].note


def test_a_step_function_running_another_kind_fails_forward():
    from tests.user_impls import numpy_step as N

    rep = check_implementation(N.gru_step, "rnn", examples=2, raise_on_failure=False)
    assert not rep["forward"].passed


@pytest.mark.torch
def test_check_implementation_validates(torch):
    with pytest.raises(InvalidArgumentError, match="`kind` must be (given|one of)"):
        check_implementation(torch.nn.Linear(2, 2))
    with pytest.raises(InvalidArgumentError, match="no parameters named"):
        check_implementation(torch.nn.Linear(2, 2), "rnn")
    with pytest.raises(InvalidArgumentError, match="`impl` must be a torch.nn.Module or a step"):
        check_implementation(lambda x: x, "rnn")
    with pytest.raises(InvalidArgumentError, match="`examples`"):
        check_implementation(torch.nn.GRU(2, 2), examples=0)
