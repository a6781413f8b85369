"""Gradient flow over the layers and time of a Network.

References are independent of the code under test: PyTorch float64 autograd on stacks run
one cell step at a time, closed forms of linear stacks (also where float64 would
underflow), the slow NumPy cells of tests/naive.py, and the single-cell analyses (which
have their own references in test_flow.py and test_spectra.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow
from gradflow.errors import DTypeError, InvalidArgumentError, ShapeError
from gradflow.flow import network as flow_network

from . import naive
from .torch_reference import torch_flow as _torch_flow
from .conftest import assert_close


@pytest.mark.torch
@pytest.mark.parametrize("kind, bidirectional, H, T", [("lstm", True, 3, 7), ("gru", False, 4, 8)])
def test_lag_norms_and_loss_gradients_match_torch_autograd(torch, kind, bidirectional, H, T):
    net = gradflow.Network(kind, 2, H, num_layers=2, bidirectional=bidirectional, seed=4)
    rng = np.random.default_rng(7)
    B = 2
    x = rng.standard_normal((T, B, 2))
    dout = rng.standard_normal((T, B, net.output_size))
    ref_lag, ref_grad, ref_units = _torch_flow(torch, net, x, dout)
    flow = gradflow.network_flow(net, x, doutput=dout, units=True)
    assert flow.log10_lag.shape == (2, net.num_directions, T + 1, B)
    # nothing underflows: every entry below the top is finite (but a reverse lag T)
    assert np.isfinite(ref_lag[0, :, :T]).all() and np.isfinite(ref_lag[0, 0]).all()
    assert np.isfinite(ref_grad).all()
    assert_close(flow.log10_lag, ref_lag)
    assert_close(flow.log10_grad, ref_grad)
    for layer in range(2):
        assert_close(flow.log10_grad_units[layer], ref_units[layer])
    if bidirectional:
        # the top reverse direction at T read the last step first: only lag 0 reaches it
        assert flow.log10_lag[1, 1, 0, 0] == 0.0
        assert np.isneginf(flow.log10_lag[1, 1, 1:T]).all()
        assert np.isnan(flow.log10_lag[:, 1, T]).all()  # no reverse state at time 0
    fro = gradflow.network_flow(net, x, norm="frobenius", lags=[0, 2, T])
    np.testing.assert_array_equal(fro.lags, [0, 2, T])
    assert np.all(fro.log10_lag[np.isfinite(fro.log10_lag)]
                  >= flow.log10_lag[:, :, [0, 2, T]][np.isfinite(fro.log10_lag)] - 1e-12)


# ---------------------------------------------------------------------- Cell.backward reference
def _state_grads(net, trace, dout):
    """Total dL/dh^{l,d} at every state index s = 0 .. T of each direction's own order
    (B, H), from Cell.backward on the slices of each layer's trace: the gradient on the
    slice's initial state is what flows back from the future, to which what flows in from
    above at that step is added; layer by layer from the top, the input gradients of a
    layer's directions summed give what flows into the layer below."""
    T = trace.length
    g_out, out = dout, {}
    for layer in range(net.num_layers - 1, -1, -1):
        g_in = 0.0
        for d, tr in enumerate(trace.traces[layer]):
            cell, H = tr.cell, tr.cell.hidden_size
            dh = g_out[..., d * H:(d + 1) * H]
            dh = np.ascontiguousarray(dh[::-1] if d else dh)
            G = np.empty((T + 1,) + dh.shape[1:])
            for s in range(T + 1):
                future = cell.backward(tr.slice(s, T), dh[s:]).state0["h"] if s < T else 0.0
                G[s] = future + (dh[s - 1] if s >= 1 else 0.0)
            out[layer, d] = G
            dx = cell.backward(tr, dh).x
            g_in = g_in + (dx[::-1] if d else dx)
        g_out = g_in
    return out


@pytest.mark.parametrize("bidirectional", [False, True])
def test_mixed_cells_and_sizes_against_cell_backward(bidirectional):
    """An LSTM, a Cho GRU (reset before the matmul) and an MGU layer of three sizes."""
    net = gradflow.Network(["lstm", "gru-cho", "mgu"], 2, [3, 4, 2], bidirectional=bidirectional,
                           seed=8)
    rng = np.random.default_rng(8)
    T, B = 6, 2
    x = rng.standard_normal((T, B, 2))
    dout = rng.standard_normal((T, B, net.output_size))
    trace = net.forward(x)
    flow = gradflow.network_flow(net, x, doutput=dout, units=True)
    with np.errstate(divide="ignore"):
        for (layer, d), G in _state_grads(net, trace, dout).items():
            G = G[1:][::-1] if d else G[1:]                # states at times 1 .. T
            assert_close(flow.log10_grad[layer, d], np.log10(np.linalg.norm(G, axis=-1)))
            assert_close(flow.log10_grad_units[layer][d], np.log10(np.abs(G)))
        R = net.output_size
        rows = []
        for i in range(R):                                 # d out_T[i] / d h, row by row
            unit = np.zeros_like(dout)
            unit[-1, :, i] = 1.0
            rows.append(_state_grads(net, trace, unit))
        for (layer, d) in rows[0]:
            J = np.stack([r[layer, d] for r in rows], axis=2)   # (T + 1, B, R, H)
            norms = np.log10(np.linalg.norm(J, 2, axis=(2, 3)))
            ref = norms[::-1] if d == 0 else np.concatenate([norms[1:], np.full((1, B), np.nan)])
            assert_close(flow.log10_lag[layer, d], ref)


# ---------------------------------------------------------------------- identities
@pytest.mark.parametrize("kind", ["lstm", "gru", "gru-cho", "rnn"])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_one_layer_is_gradient_flow(kind, norm):
    net = gradflow.Network(kind, 3, 5, seed=2)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 3, 3))
    dh = rng.standard_normal((12, 3, 5))
    flow = gradflow.network_flow(net, x, doutput=dh, norm=norm)
    ref = gradflow.gradient_flow(net.cell(0), x, dh=dh, norm=norm)
    np.testing.assert_allclose(flow.log10_lag[0, 0], ref.log10_h, rtol=1e-12)
    np.testing.assert_allclose(flow.log10_grad[0, 0], ref.log10_loss_grad, rtol=1e-12)
    part = gradflow.network_flow(net, x, lags=[5, 0, 2], norm=norm)
    np.testing.assert_allclose(part.log10_lag[0, 0], ref.log10_h[[0, 2, 5]], rtol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_some_lags_are_those_of_all_lags(bidirectional):
    """A unidirectional stack without a loss visits only the steps the largest lag
    reaches; a bidirectional one every step."""
    net = gradflow.Network("lstm", 2, 3, num_layers=3, bidirectional=bidirectional, seed=5)
    x = np.random.default_rng(5).standard_normal((15, 2, 2))
    full = gradflow.network_flow(net, x)
    part = gradflow.network_flow(net, x, lags=[6, 0, 2])
    assert_close(part.log10_lag, full.log10_lag[:, :, [0, 2, 6]])  # warm starts differ


def test_no_path_between_layers_is_exactly_zero():
    net = gradflow.Network("lstm", 2, 3, num_layers=2, bidirectional=True, seed=0)
    net.params["weight_ih_l1"][...] = 0.0
    net.params["weight_ih_l1_reverse"][...] = 0.0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 2, 2))
    flow = gradflow.network_flow(net, x, doutput=rng.standard_normal((6, 2, 6)), units=True)
    low = flow.log10_lag[0]
    assert np.isneginf(low[0]).all()             # forward, every lag 0 .. T
    assert np.isneginf(low[1, :-1]).all() and np.isnan(low[1, -1]).all()
    assert np.isneginf(flow.log10_grad[0]).all() and np.isneginf(flow.log10_grad_units[0]).all()
    assert np.isfinite(flow.log10_lag[1, 0]).all() and np.isfinite(flow.log10_grad[1]).all()


def _linear(a, b, H, T, dtype, bidirectional, q):
    """rnn-linear, two layers, no biases, W_hh = a q in every layer and direction and
    weight_ih_l1 = b I (b [I I] when bidirectional)."""
    net = gradflow.Network("rnn-linear", 1, H, num_layers=2, bidirectional=bidirectional,
                           dtype=dtype, seed=0)
    w = (a * q).astype(dtype)
    for name, value in net.params.items():
        if name.startswith("bias"):
            value[...] = 0.0
        elif name.startswith("weight_hh"):
            value[...] = w
        elif name.startswith("weight_ih_l1"):
            value[...] = b * np.hstack([np.eye(H)] * net.num_directions)
    return net, np.zeros((T, 1, 1), dtype=dtype)


@pytest.mark.parametrize("dtype, a", [(np.float64, 1e-40), (np.float64, 1e40), (np.float64, 0.6),
                                      (np.float32, 1e-30), (np.float32, 1e30)])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_linear_stack_closed_form(dtype, a, norm):
    """W_hh = a Q (Q orthogonal) in both layers, weight_ih_l1 = b I: d h^1_T / d h^1_{T-k}
    = (aQ)^k and d h^1_T / d h^0_{T-k} = b (aQ)^k times the m_k paths through the layers
    (k + 1, or T at the initial state); dL/dh_t likewise for a loss on h^1_T.  With
    a = 1e-40 and T = 20 the norms reach 1e-800."""
    T, H, b = 20, 3, 0.5
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((H, H)))
    net, x = _linear(a, b, H, T, dtype, False, q)
    dout = np.zeros((T, 1, H), dtype=dtype)
    dout[-1, 0] = [1.0, -2.0, 0.5]
    flow = gradflow.network_flow(net, x, doutput=dout, norm=norm)
    la, lb = math.log10(a), math.log10(b)
    extra = 0.0 if norm == "spectral" else 0.5 * math.log10(H)
    k = np.arange(T + 1)
    m = np.where(k < T, k + 1, T)
    tol = dict(atol=1e-10 if dtype == np.float64 else 2e-5, rtol=0)
    assert np.isfinite(flow.log10_lag).all() and np.isfinite(flow.log10_grad).all()
    np.testing.assert_allclose(flow.log10_lag[1, 0, :, 0], k * la + extra, **tol)
    np.testing.assert_allclose(flow.log10_lag[0, 0, :, 0], lb + k * la + np.log10(m) + extra, **tol)
    t = np.arange(1, T + 1)
    lv = math.log10(np.linalg.norm(dout[-1, 0].astype(np.float64)))
    np.testing.assert_allclose(flow.log10_grad[1, 0, :, 0], (T - t) * la + lv, **tol)
    np.testing.assert_allclose(flow.log10_grad[0, 0, :, 0],
                               lb + (T - t) * la + np.log10(T - t + 1) + lv, **tol)
    if a < 1e-20:
        assert flow.log10_lag[1, 0, -1, 0] < -590 and flow.log10_grad[1, 0, 0, 0] < -560


@pytest.mark.parametrize("dtype, a", [(np.float64, 1e-40), (np.float64, 0.7), (np.float32, 1e-30),
                                      (np.float32, 0.7)])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_bidirectional_linear_stack_closed_form(dtype, a, norm):
    """W_hh = a I everywhere, weight_ih_l1 = b [I I]; the rows of the output at T are
    (h^{1,f}_T, h^{1,r}_T).  Layer 0 forward at T - k: [b a^k m_k I; b a^k I]; layer 0
    reverse at T - k: b a^k S_k I on the forward rows (S_k = sum_{j < T-k} a^{2j}: every
    time at or before T - k that it reaches and that layer 1 carries on to T) and b I on
    the reverse rows at k = 0; layer 1 reverse: I at lag 0, nothing later."""
    T, H, b = 20, 2, 1.5
    net, x = _linear(a, b, H, T, dtype, True, np.eye(H))
    a = float(dtype(a))
    flow = gradflow.network_flow(net, x, norm=norm)
    with np.errstate(divide="ignore"):
        ref = np.full((2, 2, T + 1), np.nan)
        k = np.arange(T + 1)
        m = np.where(k < T, k + 1, T)
        ref[1, 0] = k * math.log10(a)
        ref[1, 1, :T] = np.log10(k[:T] == 0)
        ref[0, 0] = math.log10(b) + k * math.log10(a) + 0.5 * np.log10(m ** 2.0 + 1)
        S = np.array([sum(a ** (2 * j) for j in range(T - kk)) for kk in range(T)])
        ref[0, 1, :T] = math.log10(b) + k[:T] * math.log10(a) + np.log10(S)
        ref[0, 1, 0] = math.log10(b) + 0.5 * math.log10(S[0] ** 2 + 1)
    if norm == "frobenius":
        ref += 0.5 * math.log10(H)
    np.testing.assert_allclose(flow.log10_lag[..., 0], ref,
                               atol=1e-10 if dtype == np.float64 else 2e-5, rtol=0)
    finite = ~np.isnan(ref)
    finite[1, 1, 1:] = False
    assert np.isfinite(flow.log10_lag[..., 0][finite]).all()


def test_float32_and_float64_agree():
    net = gradflow.Network("gru", 3, 5, num_layers=2, bidirectional=True, seed=3)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 2, 3))
    dout = rng.standard_normal((30, 2, 10))
    ref = gradflow.network_flow(net, x, doutput=dout)
    got = gradflow.network_flow(net.astype(np.float32), x.astype(np.float32),
                                doutput=dout.astype(np.float32))
    finite = np.isfinite(ref.log10_lag)
    assert np.array_equal(finite, np.isfinite(got.log10_lag))
    # the float32 run carries its own rounding (of the states and the Jacobians)
    err = np.abs(got.log10_lag[finite] - ref.log10_lag[finite])
    bound = np.broadcast_to(1e-5 * (1 + ref.lags[None, None, :, None]), finite.shape)[finite]
    assert np.all(err <= bound), err.max()
    assert np.max(np.abs(got.log10_grad - ref.log10_grad)) < 1e-4


def test_batch_rows_in_groups_give_the_same_result(monkeypatch):
    net = gradflow.Network("lstm", 2, 3, num_layers=2, bidirectional=True, seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 5, 2))
    dout = rng.standard_normal((6, 5, 6))
    whole = gradflow.network_flow(net, x, doutput=dout, units=True)
    monkeypatch.setattr(flow_network, "ADJOINT_BYTES", 1)      # one batch row at a time
    rows = gradflow.network_flow(net, x, doutput=dout, units=True)
    assert_close(rows.log10_lag, whole.log10_lag)
    assert_close(rows.log10_grad, whole.log10_grad)
    for a, b in zip(rows.log10_grad_units, whole.log10_grad_units):
        assert_close(a, b)


def test_batch_first_layout_and_repr():
    net = gradflow.Network("gru", 2, 3, num_layers=2, batch_first=True, seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 2))
    dout = rng.standard_normal((2, 5, 3))
    flow = gradflow.network_flow(net, x, doutput=dout)
    tm = gradflow.Network.from_cells([net.cell(0), net.cell(1)])
    ref = gradflow.network_flow(tm, x.swapaxes(0, 1), doutput=dout.swapaxes(0, 1))
    assert_close(flow.log10_lag, ref.log10_lag)
    assert_close(flow.log10_grad, ref.log10_grad)
    assert repr(flow).startswith("NetworkFlow(layers=2, directions=1, T=5, B=2")


# ---------------------------------------------------------------------- paths and gates
def test_paths_and_gates_against_numpy_lstm():
    """Per layer and direction, the cell path prod f and its horizons from a NumPy LSTM
    run layer by layer, and the forget gates' quantiles and saturation."""
    T, B, H = 9, 2, 3
    net = gradflow.Network("lstm", 2, H, num_layers=2, bidirectional=True, seed=6,
                           forget_bias=1.0)
    x = np.random.default_rng(6).standard_normal((T, B, 2))
    res = gradflow.network_paths(net, x, threshold=0.3, saturation=0.2, quantiles=(0.1, 0.5))
    inp = x
    for layer in range(2):
        outs = []
        for d in range(2):
            p = net.cell(layer, d).params
            seq = inp[::-1] if d else inp
            states = naive.forward("lstm", p, seq, [np.zeros((B, H))] * 2)
            pre = (seq @ p["weight_ih"].T + p["bias_ih"]
                   + states[0, :-1] @ p["weight_hh"].T + p["bias_hh"])
            f = naive.sigmoid(pre[..., H:2 * H])                      # (T, B, H)
            path = np.concatenate([np.zeros((1, B, H)), np.cumsum(np.log10(f[::-1]), axis=0)])
            pd = res.paths[layer][d]
            assert pd.component == "c"
            assert_close(pd.log10_path_units, path)
            below = path < math.log10(0.3)
            want = np.where(below.any(axis=0), np.argmax(below, axis=0), np.inf)
            np.testing.assert_array_equal(res.horizons[layer][d], want)
            assert res.gates[layer][d] == "f"
            assert_close(res.gate_quantiles[layer, d], np.quantile(f, [0.1, 0.5]))
            assert res.saturated_low[layer, d] == np.mean(f < 0.2)
            assert res.saturated_high[layer, d] == np.mean(f > 0.8)
            h = states[0, 1:]
            outs.append(h[::-1] if d else h)
        inp = np.concatenate(outs, axis=-1)
    assert "NetworkPaths(layers=2" in repr(res)


def test_paths_of_mixed_cells():
    net = gradflow.Network(["rnn", "gru"], 2, [3, 4], seed=0)
    x = np.random.default_rng(0).standard_normal((5, 1, 2))
    res = gradflow.network_paths(net, x, total=False)
    assert res.paths[0][0] is None and res.horizons[0][0] is None and res.gates[0][0] is None
    assert np.isnan(res.gate_quantiles[0, 0]).all()
    gru = res.paths[1][0]
    assert gru.component == "h" and res.horizons[1][0].shape == (1, 4) and res.gates[1][0] == "z"
    ref = gradflow.path_decomposition(net.cell(1), net.forward(x).layer_input(1), total=False)
    assert_close(gru.log10_path_units, ref.log10_path_units)


# ---------------------------------------------------------------------- Lyapunov
def test_lyapunov_of_one_layer_is_lyapunov_spectrum():
    net = gradflow.Network("lstm", 2, 4, bidirectional=True, seed=3)
    x = np.random.default_rng(3).standard_normal((80, 2, 2))
    res = gradflow.network_lyapunov(net, x, transient=10)
    assert res.exponents.shape == (2, 2, 8)
    for d, seq in ((0, x), (1, np.ascontiguousarray(x[::-1]))):
        ref = gradflow.lyapunov_spectrum(net.cell(0, d), seq, transient=10)
        assert_close(res.spectra[d].exponents, ref.exponents)
        assert_close(res.spectra[d].running, ref.running)
        np.testing.assert_array_equal(res.spectra[d].converged, ref.converged)
    assert repr(res).startswith("NetworkLyapunov(directions=2, state_sizes=[8]")


@pytest.mark.parametrize("a0, a1", [(0.5, 2.0), (2.0, 0.5)])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lyapunov_of_a_linear_stack(a0, a1, bidirectional):
    """W_hh^l = a_l Q_l: the stacked Jacobian is block lower-triangular with diagonal
    blocks a_l Q_l, so the exponents are log a_0 and log a_1, H times each (per
    direction when bidirectional)."""
    H = 3
    net = gradflow.Network("rnn-linear", 2, H, num_layers=2, bidirectional=bidirectional, seed=0)
    rng = np.random.default_rng(4)
    for name, value in net.params.items():
        layer = int(name.split("_l")[1][0])
        if name.startswith("weight_hh"):
            q, _ = np.linalg.qr(rng.standard_normal((H, H)))
            value[...] = (a0, a1)[layer] * q
    x = np.zeros((120, 2, 2))
    res = gradflow.network_lyapunov(net, x, transient=30)
    hi, lo = math.log(max(a0, a1)), math.log(min(a0, a1))
    for spectrum in res.spectra:
        ex = spectrum.exponents
        # each block's sum is its volume growth, H log a (exact once the QR vectors span
        # the block's invariant subspace); single exponents inside a block converge like 1/N
        # unless that subspace is the top layer's coordinates (a1 > a0)
        np.testing.assert_allclose(ex[:, :H].sum(axis=1), H * hi, atol=1e-9)
        np.testing.assert_allclose(ex[:, H:].sum(axis=1), H * lo, atol=1e-9)
        np.testing.assert_allclose(ex, np.repeat([[hi] * H + [lo] * H], 2, axis=0),
                                   atol=1e-9 if a1 > a0 else 1e-2)


# ---------------------------------------------------------------------- arguments
def test_bad_arguments():
    net = gradflow.Network("lstm", 2, 3, num_layers=2, seed=0)
    x = np.zeros((5, 1, 2))
    with pytest.raises(InvalidArgumentError, match="`net` must be a gradflow.Network; got Cell"):
        gradflow.network_flow(net.cell(0), x)
    with pytest.raises(InvalidArgumentError, match="`net` must be a gradflow.Network"):
        gradflow.network_lyapunov("lstm", x)
    with pytest.raises(InvalidArgumentError, match="`net` must be a gradflow.Network"):
        gradflow.network_paths(None, x)
    with pytest.raises(ShapeError, match="`x`"):
        gradflow.network_flow(net, np.zeros((5, 1, 3)))
    with pytest.raises(DTypeError, match="`x`"):
        gradflow.network_flow(net, x.astype(np.float32))
    with pytest.raises(ShapeError, match="`doutput` must have shape \\(5, 1, 3\\)"):
        gradflow.network_flow(net, x, doutput=np.zeros((5, 1, 4)))
    with pytest.raises(InvalidArgumentError, match=r"`lags` must lie in \[0, T\]"):
        gradflow.network_flow(net, x, lags=[6])
    with pytest.raises(InvalidArgumentError, match="`lags` must hold integers"):
        gradflow.network_flow(net, x, lags=[0.5])
    with pytest.raises(InvalidArgumentError, match="`norm` must be one of"):
        gradflow.network_flow(net, x, norm="nuclear")
    with pytest.raises(InvalidArgumentError, match="`units=True` needs `doutput`"):
        gradflow.network_flow(net, x, units=True)
    with pytest.raises(InvalidArgumentError, match="`lags` must include 0"):
        gradflow.network_paths(net, x, lags=[1, 2])
    with pytest.raises(InvalidArgumentError, match="`saturation` must lie in"):
        gradflow.network_paths(net, x, saturation=0.7)
    with pytest.raises(InvalidArgumentError, match="`threshold`"):
        gradflow.network_paths(net, x, threshold=0)
    with pytest.raises(InvalidArgumentError, match="`quantiles`"):
        gradflow.network_paths(net, x, quantiles=[1.5])
    with pytest.raises(InvalidArgumentError, match="`transient`"):
        gradflow.network_lyapunov(net, x, transient=4)
    with pytest.raises(InvalidArgumentError, match="at least 2 steps"):
        gradflow.network_lyapunov(net, x[:1])


def test_non_finite_jacobian_is_reported_with_its_step():
    """h_prev ** 0.5 at h_prev = 0 in the top layer: the forward pass is finite, the
    partial 0.5 / sqrt(h_prev) is not (the first step read from the end is step 4)."""
    from gradflow.errors import NonFiniteError
    from gradflow.symbolic.spec import CellSpec

    spec = CellSpec("netflow-kink", gates="a", equations="h = tanh(ax_a + ah_a) + h_prev**0.5")
    low = gradflow.Cell("rnn", 1, 2, seed=0)
    top = gradflow.Cell(spec, 2, 2, seed=0)
    for v in top.params.values():
        v[...] = 0.0
    net = gradflow.Network.from_cells([low, top])
    with pytest.raises(NonFiniteError, match="layer 1 .* step 4") as info:
        gradflow.network_flow(net, np.zeros((5, 1, 1)))
    assert info.value.step == 4


def test_docstring_examples():
    import doctest

    result = doctest.testmod(flow_network,
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
