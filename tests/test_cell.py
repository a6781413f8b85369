"""Cell forward and backward against independent references, for every catalogue cell.

References: a slow NumPy loop written from the papers (tests/naive.py) for the forward
pass; central finite differences of the loss for every gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow
from gradflow import cells

from . import naive
from .conftest import assert_close

ALL = cells.names()


def make(name, T=4, B=2, D=3, H=3, seed=0, dtype=np.float64):
    cell = gradflow.Cell(name, D, H, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 100)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    state0 = tuple(0.5 * rng.standard_normal((B, H)).astype(dtype) for _ in cell.spec.state)
    return cell, x, state0


@pytest.mark.parametrize("name", ALL)
def test_forward_matches_naive_numpy(name):
    cell, x, state0 = make(name, T=6, B=3, D=4, H=5, seed=1)
    trace = cell.forward(x, state0)
    ref = naive.forward(name, cell.params, x, state0)
    assert_close(trace.states, ref)
    assert_close(trace.h, ref[0, 1:])
    for k, s in enumerate(cell.spec.state):
        assert_close(trace.final[s], ref[k, -1])
        assert_close(trace.component(s), ref[k, 1:])


def _loss(cell, x, state0, dh, dstate):
    trace = cell.forward(x, state0)
    total = np.sum(trace.h * dh)
    for k in range(len(cell.spec.state)):
        total += np.sum(trace.states[k, -1] * dstate[k])
    return total


@pytest.mark.parametrize("name", ALL)
def test_backward_matches_finite_differences(name):
    cell, x, state0 = make(name, seed=2)
    # give peepholes and biases some weight so that every path is exercised
    rng = np.random.default_rng(3)
    T, B, H = x.shape[0], x.shape[1], cell.hidden_size
    dh = rng.standard_normal((T, B, H))
    dstate = [rng.standard_normal((B, H)) for _ in cell.spec.state]
    state0 = [s.copy() for s in state0]
    trace = cell.forward(x, state0)
    grads = cell.backward(trace, dh, dstate)

    def loss():
        return _loss(cell, x, state0, dh, dstate)

    for pname, value in cell.params.items():
        assert_close(grads.params[pname], naive.central_differences(loss, value), kind="finite_difference", err_msg=pname)
    assert_close(grads.x, naive.central_differences(loss, x), kind="finite_difference", err_msg="x")
    for k, s in enumerate(cell.spec.state):
        assert_close(grads.state0[s], naive.central_differences(loss, state0[k]), kind="finite_difference", err_msg=s)


@pytest.mark.parametrize("name", ["lstm", "gru-cho", "rnn"])
def test_float32_matches_float64(name):
    cell64, x, state0 = make(name, T=20, B=4, D=6, H=8, seed=4)
    cell32 = cell64.astype(np.float32)
    dh = np.random.default_rng(5).standard_normal(x.shape[:2] + (8,))
    t64, t32 = cell64.forward(x, state0), cell32.forward(x.astype(np.float32), tuple(s.astype(np.float32) for s in state0))
    assert t32.h.dtype == np.float32
    assert_close(t32.h, t64.h, dtype=np.float32)
    g64 = cell64.backward(t64, dh)
    g32 = cell32.backward(t32, dh.astype(np.float32))
    for k in g64.params:
        assert g32.params[k].dtype == np.float32
        scale = np.max(np.abs(g64.params[k]))
        np.testing.assert_allclose(g32.params[k] / scale, g64.params[k] / scale, atol=1e-4, err_msg=k)


def test_intermediates_are_the_gate_values():
    cell, x, state0 = make("lstm", T=5, B=2, D=3, H=4, seed=6)
    trace = cell.forward(x, state0)
    H = cell.hidden_size
    for t in range(x.shape[0]):
        h_prev = trace.states[0, t]
        a = x[t] @ cell.params["weight_ih"].T + cell.params["bias_ih"] + h_prev @ cell.params["weight_hh"].T + cell.params["bias_hh"]
        assert_close(trace.intermediate("f")[t], naive.sigmoid(a[:, H:2 * H]))
        assert_close(trace.intermediate("g")[t], np.tanh(a[:, 2 * H:3 * H]))


def test_initialisation_follows_pytorch_and_options():
    H = 16
    cell = gradflow.Cell("lstm", 8, H, seed=0)
    bound = 1 / np.sqrt(H)
    for v in cell.params.values():
        assert np.all(np.abs(v) <= bound)
    assert gradflow.Cell("lstm", 8, H, seed=0).params["weight_hh"].tobytes() == cell.params["weight_hh"].tobytes()
    assert not np.array_equal(gradflow.Cell("lstm", 8, H, seed=1).params["weight_hh"], cell.params["weight_hh"])

    biased = gradflow.Cell("lstm", 8, H, seed=0, forget_bias=2.0)
    rows = biased.gate_slice("f")
    np.testing.assert_array_equal(biased.params["bias_ih"][rows], 2.0)
    np.testing.assert_array_equal(biased.params["bias_hh"][rows], 0.0)

    ortho = gradflow.Cell("gru", 4, H, seed=0, init="orthogonal")
    for g in ("r", "z", "n"):
        W = ortho.params["weight_hh"][ortho.gate_slice(g)]
        np.testing.assert_allclose(W @ W.T, np.eye(H), atol=1e-12)

    scaled = gradflow.Cell("rnn", 4, H, seed=0, spectral_radius=1.5)
    np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(scaled.params["weight_hh"]))), 1.5, rtol=1e-12)


def test_parameter_counts():
    D, H = 10, 20
    counts = {n: gradflow.Cell(n, D, H).num_parameters for n in ("rnn", "lstm", "gru")}
    assert counts["rnn"] == H * D + H * H + 2 * H
    assert counts["lstm"] == 4 * counts["rnn"]
    assert counts["gru"] == 3 * counts["rnn"]


def test_user_defined_cell_matches_catalogue_twin():
    spec = gradflow.define_cell(
        "test-mgu", gates="f n", stage2="n", recurrent_input="u", register=False,
        equations="""
            f = sigmoid(ax_f + ah_f)
            u = f*h_prev
            n = tanh(ax_n + ah_n)
            h = (1 - f)*h_prev + f*n
        """)
    ours, x, state0 = make("mgu", seed=7)
    theirs = gradflow.Cell(spec, ours.input_size, ours.hidden_size)
    theirs.params = {k: v.copy() for k, v in ours.params.items()}
    assert_close(theirs.forward(x, state0).states, naive.forward("mgu", ours.params, x, state0))


def test_large_preactivations_stay_finite_and_exact():
    cell = gradflow.Cell("lstm", 2, 3, seed=0)
    x = np.full((3, 1, 2), 400.0)
    cell.params["weight_ih"][:] = np.sign(np.arange(12) % 2 - 0.5)[:, None]  # +-1 rows: |a| = 800
    trace = cell.forward(x)
    ref = naive.forward("lstm", cell.params, x, (np.zeros((1, 3)), np.zeros((1, 3))))
    assert np.isfinite(trace.states).all()
    assert_close(trace.states, ref)
    grads = cell.backward(trace, np.ones_like(trace.h))
    assert all(np.isfinite(g).all() for g in grads.params.values())


def test_a_slice_keeps_the_saved_values_of_its_steps():
    """trace.slice(t0, t1) carries the forward pass's saved function values of steps
    t0 .. t1 - 1 (so a backward pass on it evaluates no exp or tanh again); a trace rebuilt
    from arrays saved none, and neither do its slices."""
    cell, x, state0 = make("lstm", T=6, B=2, D=3, H=4, seed=8)
    trace = cell.forward(x, state0)
    part = trace.slice(2, 5)
    assert trace.saved is not None and part.saved is not None
    np.testing.assert_array_equal(part.saved, trace.saved[2:5])
    ref = naive.forward("lstm", cell.params, x, state0)
    assert_close(part.h, ref[0, 3:6])
    H = cell.hidden_size
    a = x[2:5] @ cell.params["weight_ih"].T + cell.params["bias_ih"] + \
        ref[0, 2:5] @ cell.params["weight_hh"].T + cell.params["bias_hh"]
    assert_close(part.intermediate("f"), naive.sigmoid(a[..., H:2 * H]))
    rebuilt = gradflow.Trace(cell, trace.x, trace.states, trace.ax, trace.ah1, trace.ah2, trace.u)
    assert rebuilt.saved is None and rebuilt.slice(2, 5).saved is None


def test_gradients_print_short():
    """repr(Grads) summarises each array (shape, dtype, first and last numbers) on one line,
    not the arrays themselves."""
    cell, x, state0 = make("lstm", T=30, B=4, D=3, H=16, seed=9)
    grads = cell.backward(cell.forward(x, state0), np.ones((30, 4, 16)))
    text = repr(grads)
    assert text.startswith("Grads(params={weight_ih: array(64, 3) float64 [")
    assert "weight_hh: array(64, 16) float64 [" in text
    assert "x=array(30, 4, 3) float64 [" in text
    assert "state0={h: array(4, 16) float64 [" in text and "c: array(4, 16) float64 [" in text
    assert "\n" not in text and len(text) < 600


def test_unit_params_stack_the_per_unit_parameters():
    """Cell.unit_params(): the per-unit parameters in spec order, (P, H); (0, H) without."""
    cell = gradflow.Cell("lstm-peephole", 2, 3, seed=10)
    want = np.stack([cell.params[n] for n in ("peephole_i", "peephole_f", "peephole_o")])
    np.testing.assert_array_equal(cell.unit_params(), want)
    other = {k: v + 1.0 for k, v in cell.params.items()}
    np.testing.assert_array_equal(cell.unit_params(other), want + 1.0)
    assert gradflow.Cell("lstm", 2, 3).unit_params().shape == (0, 3)


def test_a_cell_that_has_run_pickles_and_copies():
    """A cell keeps its kernel module after the first pass; pickling and deep copies leave it
    out and find it again."""
    import copy
    import pickle

    cell, x, state0 = make("lstm1997", seed=4)
    before = cell.forward(x, state0).states
    for other in (pickle.loads(pickle.dumps(cell)), copy.deepcopy(cell)):
        assert "_kernel_module" not in other.__dict__
        np.testing.assert_array_equal(other.forward(x, state0).states, before)
