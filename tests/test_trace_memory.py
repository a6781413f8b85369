"""What a forward pass keeps, and the checkpointed mode.

References: the full backward pass (whose gradients other tests check against finite
differences and PyTorch), PyTorch float64 autograd, NumPy products for the recomputed
pre-activations, and byte counts from the cells' equations (an LSTM's backward pass reads
its four gate values and tanh c; a tanh RNN's, tanh of its pre-activation).
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import gradflow
from gradflow import cell as cell_module
from gradflow.errors import InvalidArgumentError, NonFiniteError

from .conftest import assert_close


def _problem(name, T, B, D, H, seed=0, dtype=np.float64):
    cell = gradflow.Cell(name, D, H, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    state0 = tuple(0.3 * rng.standard_normal((B, H)).astype(dtype) for _ in cell.spec.state)
    dstate = tuple(rng.standard_normal((B, H)).astype(dtype) for _ in cell.spec.state)
    return cell, x, dh, state0, dstate


def _assert_same_grads(got, ref, dtype=np.float64, what=""):
    for k in ref.params:
        assert_close(got.params[k], ref.params[k], dtype=dtype, err_msg=f"{what} {k}")
    assert_close(got.x, ref.x, dtype=dtype, err_msg=f"{what} x")
    for k in ref.state0:
        assert_close(got.state0[k], ref.state0[k], dtype=dtype, err_msg=f"{what} state0 {k}")


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "gru-cho", "lstm-peephole", "mgu", "lstm-niaf"])
@pytest.mark.parametrize("checkpoint", [1, 5, 17, True])
def test_checkpointed_backward_equals_the_full_backward(name, checkpoint):
    cell, x, dh, state0, dstate = _problem(name, T=37, B=5, D=3, H=4)
    full = cell.backward(cell.forward(x, state0), dh, dstate)
    ct = cell.forward(x, state0, checkpoint=checkpoint)
    assert isinstance(ct, gradflow.CheckpointedTrace)
    every = math.isqrt(36) + 1 if checkpoint is True else checkpoint
    assert ct.every == every and ct.checkpoints.shape[1] == -(-37 // every) + 1
    ref = cell.forward(x, state0)
    assert_close(ct.h, ref.h)
    for s in cell.spec.state:
        assert_close(ct.final[s], ref.final[s])
    _assert_same_grads(cell.backward(ct, dh, dstate), full, what=f"{name} every {every}")


def test_checkpointed_lstm_against_pytorch(torch):
    """An LSTM's checkpointed gradients against torch.nn.LSTM in float64 autograd."""
    cell, x, dh, _, _ = _problem("lstm", T=50, B=3, D=4, H=6, seed=3)
    g = cell.backward(cell.forward(x, checkpoint=8), dh)
    module = torch.nn.LSTM(4, 6).double()
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, f"{k}_l0").copy_(torch.from_numpy(cell.params[k]))
    xt = torch.from_numpy(x).requires_grad_(True)
    y, _ = module(xt)
    y.backward(torch.from_numpy(dh))
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        assert_close(g.params[k], getattr(module, f"{k}_l0").grad.numpy(), err_msg=k)
    assert_close(g.x, xt.grad.numpy())


def test_checkpointed_float32_matches_float64():
    cell, x, dh, _, _ = _problem("lstm", T=60, B=4, D=3, H=5, seed=2, dtype=np.float32)
    g = cell.backward(cell.forward(x, checkpoint=True), dh)
    c64 = cell.astype(np.float64)
    ref = c64.backward(c64.forward(x.astype(np.float64)), dh.astype(np.float64))
    _assert_same_grads(g, ref, dtype=np.float32, what="float32")


def test_lean_trace_keeps_states_and_saved_values():
    """An LSTM trace holds x, the states and five saved values per unit and step (i, f,
    g, o, tanh c); a tanh RNN's, one (tanh); a GRU's also a_h (its n reads r * a_h of n).
    The pre-activations are recomputed on demand, equal to the NumPy products."""
    T, B, D, H = 30, 4, 3, 5
    for name, saved, extra in (("lstm", 5, 0), ("rnn", 1, 0), ("gru", 3, 3)):
        cell, x, _, state0, _ = _problem(name, T, B, D, H)
        trace = cell.forward(x, state0)
        S = len(cell.spec.state)
        want = 8 * (T * B * D + S * (T + 1) * B * H + (saved + extra) * T * B * H)
        assert trace.nbytes == want, (name, trace.nbytes, want)
        p = cell.params
        h_prev = trace.states[0, :T]
        assert_close(trace.ax, x @ p["weight_ih"].T + p["bias_ih"], err_msg=name)
        assert_close(trace.ah1, h_prev @ p["weight_hh"].T + p["bias_hh"], err_msg=name)
        G = cell.spec.num_gates
        assert trace.nbytes == want + 8 * T * B * G * H * (2 if extra == 0 else 1)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 8 steps, so that the chunk buffers are small beside the trace."""
    monkeypatch.setattr(cell_module, "CHUNK_BYTES", 1)


def _peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = fn()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def test_forward_backward_peak_memory_is_the_trace_and_dx(small_chunks):
    """Peak of an LSTM forward + backward (tracemalloc): the trace (x, 2 states, 5 saved
    values), dx, and buffers of a few steps; before, the trace also held 8 numbers of
    pre-activations per unit and step and the backward pass 4 of their gradients."""
    T, B, H = 400, 8, 16
    cell, x, dh, _, _ = _problem("lstm", T, B, H, H)
    cell.backward(cell.forward(x), dh)  # compile, warm up
    peak, _ = _peak(lambda: cell.backward(cell.forward(x), dh))
    number = T * B * H * 8                  # one number per unit and step, float64
    expected = (1 + 2 + 5) * number + number  # trace, then dx
    assert peak < 1.15 * expected, (peak / number)
    states_and_gates = 6 * number           # h, c, i, f, g, o
    assert peak / states_and_gates < 1.6


def test_checkpointed_memory_grows_like_sqrt_T(small_chunks):
    """Beyond x, h and dx (inputs and outputs), a checkpointed pass holds the checkpoints
    and one stretch: quadrupling T doubles it (a full trace's would quadruple).  The
    lengths are long enough that the buffers of a few steps (about 44 KB here, whatever
    T) do not hide the growth."""
    B, H = 4, 8
    extra = {}
    for T in (1600, 6400):
        cell, x, dh, _, _ = _problem("lstm", T, B, H, H)
        cell.backward(cell.forward(x, checkpoint=True), dh)
        peak, _ = _peak(lambda: cell.backward(cell.forward(x, checkpoint=True), dh))
        extra[T] = peak - 3 * T * B * H * 8  # x copy, h, dx
        full, _ = _peak(lambda: cell.backward(cell.forward(x), dh))
        assert peak < 0.6 * full
    assert 1.5 < extra[6400] / extra[1600] < 2.6, extra


def test_checkpoint_argument_and_nonfinite_step():
    cell, x, dh, _, _ = _problem("lstm", T=20, B=2, D=3, H=4)
    for bad in (0, -3, 2.5, "sqrt", False):
        with pytest.raises(InvalidArgumentError, match="`checkpoint`"):
            cell.forward(x, checkpoint=bad)
    assert cell.forward(x, checkpoint=100).every == 20
    ct = cell.forward(x, checkpoint=6)
    assert repr(ct).startswith("CheckpointedTrace('lstm', T=20, B=2, H=4, every=6")
    with pytest.raises(InvalidArgumentError, match="`trace`"):
        gradflow.Cell("lstm", 3, 4).backward(ct, dh)
    lin = gradflow.Cell("rnn-linear", 3, 4, seed=0)
    lin.params["weight_hh"][:] = 1e100 * np.eye(4)    # h overflows after a few steps
    with pytest.raises(NonFiniteError) as whole:
        lin.forward(x)
    with pytest.raises(NonFiniteError) as err:
        lin.forward(x, checkpoint=2)
    assert err.value.step == whole.value.step >= 2
