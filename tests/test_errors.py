"""Bad input gets one exception family, naming the argument, the given and the expected."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow import errors


@pytest.fixture(scope="module")
def lstm():
    return gradflow.Cell("lstm", 3, 4, seed=0)


def test_errors_derive_from_builtins():
    assert issubclass(errors.ShapeError, ValueError)
    assert issubclass(errors.DTypeError, TypeError)
    for cls in (errors.ShapeError, errors.DTypeError, errors.NonFiniteError, errors.UnknownCellError,
                errors.InvalidArgumentError, errors.SpecError, errors.CodegenError):
        assert issubclass(cls, gradflow.GradflowError)


def test_unknown_cell_suggests_names():
    with pytest.raises(errors.UnknownCellError, match=r"unknown cell 'LSTM'.*Did you mean 'lstm'"):
        gradflow.Cell("LSTM", 1, 1)
    with pytest.raises(errors.UnknownCellError, match=r"unknown cell 'lstn'.*Did you mean 'lstm'"):
        gradflow.Cell("lstn", 3, 4)


@pytest.mark.parametrize("kwargs, match", [
    ({"input_size": 0}, r"`input_size` must be an integer >= 1; got 0"),
    ({"hidden_size": -2}, r"`hidden_size` must be an integer >= 1; got -2"),
    ({"hidden_size": 2.5}, r"`hidden_size` must be an integer >= 1; got 2.5"),
])
def test_impossible_sizes(kwargs, match):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with pytest.raises(errors.InvalidArgumentError, match=match):
        gradflow.Cell("rnn", **args)


def test_bad_options():
    with pytest.raises(errors.DTypeError, match=r"`dtype` must be numpy.float64 or numpy.float32; got .*int"):
        gradflow.Cell("rnn", 3, 4, dtype=np.int32)
    with pytest.raises(errors.InvalidArgumentError, match=r"`init` must be one of"):
        gradflow.Cell("rnn", 3, 4, init="xavier")
    with pytest.raises(errors.InvalidArgumentError, match=r"`forget_bias` was given, but cell 'rnn' has no forget gate"):
        gradflow.Cell("rnn", 3, 4, forget_bias=1.0)
    with pytest.raises(errors.InvalidArgumentError, match=r"`spectral_radius` must be finite"):
        gradflow.Cell("rnn", 3, 4, spectral_radius=np.nan)


def test_x_shape_dtype_and_values(lstm):
    with pytest.raises(errors.ShapeError, match=r"`x` must have 3 dimensions \(\*, \*, 3\); got shape \(5, 3\).*x\[:, None, :\]"):
        lstm.forward(np.zeros((5, 3)))
    with pytest.raises(errors.ShapeError, match=r"`x` must have shape \(\*, \*, 3\); got \(5, 2, 4\)"):
        lstm.forward(np.zeros((5, 2, 4)))
    with pytest.raises(errors.ShapeError, match=r"got \(0, 2, 3\)"):
        lstm.forward(np.zeros((0, 2, 3)))
    with pytest.raises(errors.DTypeError, match=r"`x` has dtype float32; expected float64.*astype"):
        lstm.forward(np.zeros((5, 2, 3), dtype=np.float32))
    x = np.zeros((5, 2, 3))
    x[2, 1, 0] = np.nan
    with pytest.raises(errors.NonFiniteError, match=r"`x` holds a non-finite value \(nan\) at index \(2, 1, 0\)"):
        lstm.forward(x)
    x[2, 1, 0] = np.inf
    with pytest.raises(errors.NonFiniteError, match=r"\(inf\)"):
        lstm.forward(x)


def test_state_arguments(lstm):
    x = np.zeros((5, 2, 3))
    with pytest.raises(errors.ShapeError, match=r"`state0` must be a tuple or dict of the components \('h', 'c'\)"):
        lstm.forward(x, np.zeros((2, 4)))
    with pytest.raises(errors.ShapeError, match=r"`state0\['c'\]` must have shape \(2, 4\); got \(3, 4\)"):
        lstm.forward(x, (np.zeros((2, 4)), np.zeros((3, 4))))
    with pytest.raises(errors.InvalidArgumentError, match=r"`state0` has keys \['q'\]"):
        lstm.forward(x, {"q": np.zeros((2, 4))})
    with pytest.raises(errors.ShapeError, match=r"must have 2 components"):
        lstm.forward(x, (np.zeros((2, 4)),))


def test_backward_arguments(lstm):
    x = np.zeros((5, 2, 3))
    trace = lstm.forward(x)
    with pytest.raises(errors.ShapeError, match=r"`dh` must have shape \(5, 2, 4\); got \(4, 2, 4\).*trace.h.shape"):
        lstm.backward(trace, np.zeros((4, 2, 4)))
    with pytest.raises(errors.InvalidArgumentError, match=r"`trace` must be the Trace returned by Cell.forward"):
        lstm.backward(np.zeros((5, 2, 4)))
    other = gradflow.Cell("lstm", 3, 4, seed=1)
    with pytest.raises(errors.InvalidArgumentError, match=r"computed by another Cell"):
        other.backward(trace)
    dh = np.zeros((5, 2, 4))
    dh[4, 0, 0] = np.nan
    with pytest.raises(errors.NonFiniteError, match=r"`dh` holds a non-finite value"):
        lstm.backward(trace, dh)


def test_parameter_edits_are_checked():
    cell = gradflow.Cell("gru", 3, 4)
    cell.params["weight_hh"] = np.zeros((4, 4))
    with pytest.raises(errors.ShapeError, match=r"`params\['weight_hh'\]` must have shape \(12, 4\); got \(4, 4\)"):
        cell.forward(np.zeros((2, 1, 3)))


def test_divergence_is_reported_with_its_step():
    cell = gradflow.Cell("rnn-linear", 1, 1)
    cell.params["weight_hh"][:] = 1e200
    cell.params["weight_ih"][:] = 1.0
    cell.params["bias_ih"][:] = 0.0
    cell.params["bias_hh"][:] = 0.0
    with pytest.raises(errors.NonFiniteError, match=r"first appeared at step 2 in `h`") as info:
        cell.forward(np.ones((6, 1, 1)))
    assert info.value.step == 2 and info.value.component == "h"


def test_intermediate_and_component_names(lstm):
    trace = lstm.forward(np.zeros((2, 1, 3)))
    with pytest.raises(errors.InvalidArgumentError, match=r"`name` 'z' is not an intermediate of cell 'lstm'; expected one of \['i', 'f', 'g', 'o'\]"):
        trace.intermediate("z")
    with pytest.raises(errors.InvalidArgumentError, match=r"not a state component"):
        trace.component("n")
    with pytest.raises(errors.InvalidArgumentError, match=r"`gate` 'z' is not a gate of 'lstm'"):
        lstm.gate_slice("z")


@pytest.mark.parametrize("kwargs, match", [
    ({"gates": "a", "equations": "h = tanh(ax_a + ah_a + q)"}, r"unknown name 'q'"),
    ({"gates": "a", "equations": "c = tanh(ax_a)"}, r"never assign the state components \['h'\]"),
    ({"gates": "a b", "equations": "h = tanh(ax_a + ah_a)"}, r"gate 'b' does not enter"),
    ({"gates": "a", "equations": "h = sin(ax_a + ah_a)"}, r"the function 'sin' is not allowed"),
    ({"gates": "a", "equations": "h tanh(ax_a)"}, r"must have the form 'name = expression'"),
    ({"gates": "n r", "stage2": "n", "recurrent_input": "u", "equations": "u = h_prev\nh = ax_n + ah_n + ah_r"}, r"must be the last gates"),
    ({"gates": "a", "state": "c h", "equations": "h = ax_a + ah_a\nc = h"}, r"must start with 'h'"),
])
def test_malformed_specs(kwargs, match):
    with pytest.raises(errors.SpecError, match=match):
        gradflow.define_cell("bad", register=False, **kwargs)


def test_define_cell_cannot_shadow_catalogue():
    with pytest.raises(errors.SpecError, match=r"'lstm' is a catalogue cell"):
        gradflow.define_cell("lstm", gates="a", equations="h = ax_a + ah_a")
