"""Path decomposition, memory horizons, singular values, Lyapunov exponents and bounds.

Expected values come from the trace's gate values (computed by the forward pass, not by
the Jacobian code), plain NumPy products and decompositions, and closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow.errors import InvalidArgumentError

from .conftest import assert_close

D = 2


def _log10_backward_prod(g):
    """log10 |prod of g over the last k steps| for k = 0 .. T: (T + 1, B, H)."""
    logs = np.log10(np.abs(g[::-1]))
    return np.concatenate([np.zeros((1,) + g.shape[1:]), np.cumsum(logs, axis=0)])


@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 4.0), bias=st.floats(-6.0, 6.0),
       name=st.sampled_from(["lstm", "lstm-cifg", "lstm-nig", "lstm-nog", "lstm-noaf"]))
def test_cell_path_is_product_of_forget_gates(seed, scale, bias, name):
    cell = gradflow.Cell(name, D, 4, seed=seed, forget_bias=bias)
    for k in cell.params:
        cell.params[k] *= scale
    x = np.random.default_rng(seed).standard_normal((25, 2, D))
    pd = gradflow.path_decomposition(cell, x, total=False)
    f = cell.forward(x).intermediate("f")
    assert pd.component == "c"
    assert_close(pd.log10_path_units, _log10_backward_prod(f))
    assert_close(pd.log10_path, _log10_backward_prod(f).max(axis=2))


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), bias=st.floats(-3.0, 3.0),
       norm=st.sampled_from(["spectral", "frobenius"]))
def test_total_equals_cell_path_without_recurrent_weights(seed, bias, norm):
    cell = gradflow.Cell("lstm", D, 5, seed=seed, forget_bias=bias)
    cell.params["weight_hh"][:] = 0.0
    x = np.random.default_rng(seed).standard_normal((30, 2, D))
    pd = gradflow.path_decomposition(cell, x, norm=norm)
    logs = _log10_backward_prod(cell.forward(x).intermediate("f"))
    if norm == "spectral":
        ref = logs.max(axis=2)
    else:
        ref = 0.5 * np.log10(np.sum(10.0 ** (2 * (logs - logs.max(axis=2, keepdims=True))),
                                    axis=2)) + logs.max(axis=2)
    assert_close(pd.log10_total, ref)
    assert_close(pd.log10_share, np.zeros_like(ref), err_msg="share of the cell path")


def test_path_share_below_one_with_recurrence_and_long_lags():
    cell = gradflow.Cell("lstm", D, 6, seed=0, forget_bias=2.0)
    x = np.random.default_rng(1).standard_normal((60, 3, D))
    pd = gradflow.path_decomposition(cell, x)
    assert pd.log10_total.shape == (61, 3)
    assert np.all(np.isfinite(pd.log10_share))
    assert_close(pd.share, 10.0 ** pd.log10_share)


def test_lstm_nfg_direct_edge_is_identity():
    cell = gradflow.Cell("lstm-nfg", D, 4, seed=2)
    x = np.random.default_rng(2).standard_normal((20, 2, D))
    pd = gradflow.path_decomposition(cell, x)
    np.testing.assert_array_equal(pd.log10_path_units, 0.0)
    # and with W_hh = 0 the total d c_T / d c_{T-k} is the identity
    cell.params["weight_hh"][:] = 0.0
    pd = gradflow.path_decomposition(cell, x, norm="frobenius")
    assert_close(pd.log10_total, np.full((21, 2), 0.5 * math.log10(4)))


@pytest.mark.parametrize("name,gate,leak", [("gru", "z", lambda z: z), ("gru-cho", "z", lambda z: z),
                                            ("mgu", "f", lambda f: 1 - f)])
def test_gru_leak_path(name, gate, leak):
    cell = gradflow.Cell(name, D, 4, seed=4)
    x = np.random.default_rng(3).standard_normal((15, 2, D))
    pd = gradflow.path_decomposition(cell, x)
    assert pd.component == "h"
    g = leak(cell.forward(x).intermediate(gate))
    assert_close(pd.log10_path_units, _log10_backward_prod(g))


def test_path_decomposition_refuses_cells_without_a_direct_edge():
    cell = gradflow.Cell("rnn", D, 3, seed=0)
    with pytest.raises(InvalidArgumentError, match="no direct self edge"):
        gradflow.path_decomposition(cell, np.zeros((3, 1, D)))
    lstm = gradflow.Cell("lstm", D, 3, seed=0)
    with pytest.raises(InvalidArgumentError, match="no direct edge h_t"):
        gradflow.path_decomposition(lstm, np.zeros((3, 1, D)), component="h")


def test_memory_horizon_closed_form():
    # rnn-linear, W_hh = 0.5 I: log10 norm at lag k = -0.30103 k; below 1e-3 first at k = 10
    cell = gradflow.Cell("rnn-linear", 1, 3, seed=0)
    cell.params["weight_hh"][:] = 0.5 * np.eye(3)
    flow = gradflow.gradient_flow(cell, np.zeros((30, 2, 1)))
    np.testing.assert_array_equal(gradflow.memory_horizon(flow, threshold=1e-3), [10.0, 10.0])
    np.testing.assert_array_equal(gradflow.memory_horizon(flow, threshold=0.3), [2.0, 2.0])
    np.testing.assert_array_equal(gradflow.memory_horizon(flow, threshold=1e-30), [np.inf, np.inf])
    curve = np.array([0.0, -1.0, -2.5, -4.0])
    assert gradflow.memory_horizon(curve, threshold=1e-2) == 2.0
    with pytest.raises(InvalidArgumentError, match="`threshold`"):
        gradflow.memory_horizon(curve, threshold=0.0)


def test_memory_horizon_of_forget_gates():
    cell = gradflow.Cell("lstm", D, 4, seed=1, forget_bias=3.0)
    x = np.random.default_rng(0).standard_normal((200, 2, D))
    logs = _log10_backward_prod(cell.forward(x).intermediate("f")).max(axis=2)  # (T+1, B)
    below = logs < -3
    ref = np.where(below.any(0), np.argmax(below, axis=0), np.inf)
    np.testing.assert_array_equal(gradflow.memory_horizon(cell, x, threshold=1e-3), ref)
    trace = cell.forward(x)
    np.testing.assert_array_equal(gradflow.memory_horizon(trace, threshold=1e-3), ref)
    pd = gradflow.path_decomposition(cell, x, total=False)
    np.testing.assert_array_equal(gradflow.memory_horizon(pd, threshold=1e-3), ref)


@pytest.mark.parametrize("block", [("h", "h"), ("c", "h"), None])
def test_singular_values_match_numpy_products(block):
    cell = gradflow.Cell("lstm", D, 4, seed=6)
    x = np.random.default_rng(6).standard_normal((12, 2, D))
    lags = [0, 1, 5, 12]
    sv = gradflow.jacobian_singular_values(cell, x, lags, block=block)
    full = gradflow.state_jacobians(cell, x).full
    H = 4
    P = np.broadcast_to(np.eye(8), (2, 8, 8)).copy()
    for k in range(13):
        if k:
            P = P @ full[12 - k]
        if k in lags:
            if block is None:
                M = P
            else:
                a, c = ["h", "c"].index(block[0]), ["h", "c"].index(block[1])
                M = P[:, a * H:(a + 1) * H, c * H:(c + 1) * H]
            with np.errstate(divide="ignore"):  # lag 0 of (c, h) is the zero matrix
                ref = np.log10(np.linalg.svd(M, compute_uv=False))
            got = sv.log10[lags.index(k)]
            # where the NumPy product itself resolves them (above its rounding floor)
            resolved = ref > ref[:, :1] + np.log10(8 * np.finfo(float).eps) + 2
            np.testing.assert_allclose(got[resolved], ref[resolved], atol=1e-9)
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))


def test_singular_values_of_a_diagonal_linear_rnn():
    lam = np.array([1.5, 0.9, 0.2])
    cell = gradflow.Cell("rnn-linear", 1, 3, seed=0)
    cell.params["weight_hh"][:] = np.diag(lam)
    # lags where the spread (1.5 / 0.2)**k still fits in one float64 matrix
    sv = gradflow.jacobian_singular_values(cell, np.zeros((400, 1, 1)), [0, 100, 200])
    ref = np.array([0, 100, 200])[:, None] * np.log10(lam)
    assert_close(sv.log10[:, 0], ref, err_msg="|lambda|^k")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_singular_values_span_more_than_the_dtype(dtype):
    """W_hh = Q diag(lam) Q^T (Q orthogonal): the singular values of W^k are |lam|^k. At
    lag 50 they span 154 decades, beyond any one floating-point product; the QR factors
    measure every one, the plain product only those above its rounding floor."""
    H = 6
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((H, H)))
    lam = np.array([1.2, 0.9, 0.5, 0.1, 0.02, 1e-3])
    cell = gradflow.Cell("rnn-linear", D, H, seed=0, dtype=dtype)
    w = (q @ np.diag(lam) @ q.T).astype(dtype)
    w = (w + w.T) / 2                   # exactly symmetric in the dtype: sigma(W^k) = |lam_w|^k
    cell.params["weight_hh"][:] = w
    lam_w = np.sort(np.abs(np.linalg.eigvalsh(w.astype(np.float64))))[::-1]
    lags = [0, 1, 5, 50]
    x = np.zeros((50, 2, D), dtype)
    sv = gradflow.jacobian_singular_values(cell, x, lags)
    ref = np.array(lags)[:, None] * np.log10(lam_w)
    tol = 1e-9 if dtype == np.float64 else 1e-4     # per step, in log10
    for b in range(2):
        for a, k in enumerate(lags):
            np.testing.assert_allclose(sv.log10[a, b], ref[a], atol=tol * max(k, 1),
                                       err_msg=f"lag {k}")
    assert sv.method == "qr" and np.all(np.isneginf(sv.log10_floor))
    assert ref[-1, 0] - ref[-1, -1] > 150
    prod = gradflow.jacobian_singular_values(cell, x, lags, method="product")
    assert prod.method == "product"
    wrong = np.abs(prod.log10[-1, 0] - ref[-1]) > 1
    assert wrong.sum() >= 3 and np.all(prod.log10[-1, 0][wrong] < prod.log10_floor[-1, 0])


def test_singular_values_of_an_lstm_against_extended_precision():
    """LSTM, full state and blocks: the product of the one-step Jacobians (state_jacobians,
    float64) multiplied and decomposed in 120-digit arithmetic (mpmath) gives singular
    values spanning more than 16 decades; the QR factors match every one."""
    mpmath = pytest.importorskip("mpmath")
    cell = gradflow.Cell("lstm", D, 3, seed=1)
    x = np.random.default_rng(2).standard_normal((25, 1, D))
    full = gradflow.state_jacobians(cell, x).full[:, 0]
    lags = [3, 12, 25]
    with mpmath.workdps(120):
        P = mpmath.eye(6)
        refs = {}
        for k in range(1, 26):
            P = P * mpmath.matrix(full[25 - k].tolist())
            if k in lags:
                refs[k] = P
        for block, sl in ((None, (slice(0, 6), slice(0, 6))), (("h", "h"), (slice(0, 3), slice(0, 3))),
                          (("c", "h"), (slice(3, 6), slice(0, 3)))):
            sv = gradflow.jacobian_singular_values(cell, x, lags, block=block)
            for a, k in enumerate(lags):
                M = refs[k][sl[0], sl[1]]
                s = mpmath.svd_r(M, compute_uv=False)
                ref = np.sort([float(mpmath.log10(v)) for v in s])[::-1]
                np.testing.assert_allclose(sv.log10[a, 0], ref, atol=1e-8,
                                           err_msg=f"block {block}, lag {k}")
                if block is None and k == 25:
                    assert ref[0] - ref[-1] > 16


def test_singular_values_at_lag_zero_and_bad_method():
    cell = gradflow.Cell("lstm", D, 3, seed=0)
    x = np.zeros((4, 1, D))
    np.testing.assert_array_equal(gradflow.jacobian_singular_values(cell, x, 0).log10, 0.0)
    zero = gradflow.jacobian_singular_values(cell, x, [0], block=("c", "h"))
    assert np.all(np.isneginf(zero.log10))
    with pytest.raises(InvalidArgumentError, match="`method`"):
        gradflow.jacobian_singular_values(cell, x, [1], method="svd")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lyapunov_diagonal_linear(dtype):
    lam = np.array([0.9, -0.5, 1.2, 0.1, -1.0])
    cell = gradflow.Cell("rnn-linear", D, 5, seed=0, dtype=dtype)
    cell.params["weight_hh"][:] = np.diag(lam)
    x = np.random.default_rng(0).standard_normal((120, 2, D)).astype(dtype)
    ly = gradflow.lyapunov_spectrum(cell, x, transient=20)
    ref = np.sort(np.log(np.abs(lam.astype(dtype).astype(np.float64))))[::-1]
    np.testing.assert_allclose(ly.exponents, np.broadcast_to(ref, (2, 5)),
                               atol=10 * np.finfo(dtype).eps)
    assert ly.running.shape == (100, 2, 5)
    assert ly.converged.all()


@pytest.mark.parametrize("name,a", [("rnn-linear", 1.3), ("rnn-linear", 0.7), ("rnn", 0.05)])
def test_lyapunov_scaled_orthogonal(name, a):
    H = 6
    cell = gradflow.Cell(name, D, H, seed=1)
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((H, H)))
    cell.params["weight_hh"][:] = a * q
    cell.params["bias_ih"][:] = 0.0
    cell.params["bias_hh"][:] = 0.0
    # zero input and state: the tanh RNN stays at h = 0, where J = a Q exactly
    x = np.zeros((200, 1, D))
    ly = gradflow.lyapunov_spectrum(cell, x, transient=10)
    assert_close(ly.exponents, np.full((1, H), math.log(a)))


def test_lyapunov_sum_is_mean_log_determinant():
    """Sum of exponents = mean log|det J_t|; for tanh with W = a Q (|det| = a^H):
    H log a + mean_t sum_j log(1 - h_tj^2), from the trace alone."""
    H, a = 5, 0.3
    cell = gradflow.Cell("rnn", D, H, seed=2)
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((H, H)))
    cell.params["weight_hh"][:] = a * q
    x = 0.5 * np.random.default_rng(5).standard_normal((300, 2, D))
    ly = gradflow.lyapunov_spectrum(cell, x, transient=50)
    h = cell.forward(x).h[50:]
    ref = H * math.log(a) + np.mean(np.sum(np.log(1 - h ** 2), axis=2), axis=0)
    assert_close(ly.exponents.sum(axis=1), ref)
    # the contraction bounds every exponent (tanh' <= 1)
    assert np.all(ly.exponents <= math.log(a) + 1e-12)


@pytest.mark.parametrize("name", ["rnn", "rnn-relu"])
def test_lyapunov_under_pascanu_bound(name):
    cell = gradflow.Cell(name, D, 6, seed=7, init="orthogonal")
    x = np.random.default_rng(7).standard_normal((300, 2, D))
    ly = gradflow.lyapunov_spectrum(cell, x, transient=30, n_exponents=3)
    bound = gradflow.pascanu_bound(cell)
    assert ly.exponents.shape == (2, 3)
    assert np.all(ly.exponents <= bound.lyapunov_bound + 1e-12)
    assert_close(bound.curve([0, 2]), [0.0, 2 * bound.log10_per_step])


def test_lyapunov_lstm_reports_convergence():
    cell = gradflow.Cell("lstm", D, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((400, 1, D))
    ly = gradflow.lyapunov_spectrum(cell, x, transient=40, window=36, tol=1e-3)
    assert ly.exponents.shape == (1, 8)
    assert np.all(np.diff(ly.exponents[0]) <= 0)
    assert_close(ly.drift, ly.running[-1] - ly.running[-37])
    assert ly.converged[0] == (np.abs(ly.drift).max() <= 1e-3)
    assert_close(ly.log10_per_step, ly.exponents / math.log(10))


def test_lyapunov_default_transient_and_window():
    """Documented defaults: transient T // 10, window N // 10 with N = T - transient."""
    cell = gradflow.Cell("rnn", D, 2, seed=0)
    ly = gradflow.lyapunov_spectrum(cell, np.zeros((230, 1, D)))
    assert (ly.transient, ly.steps, ly.window) == (23, 207, 20)
    assert ly.running.shape == (207, 1, 2)
    assert_close(ly.drift, ly.running[-1] - ly.running[-21])
    short = gradflow.lyapunov_spectrum(cell, np.zeros((9, 1, D)))     # 9 // 10 = 0
    assert (short.transient, short.steps, short.window) == (0, 9, 1)


def _benettin_numpy(J, transient, interval):
    """Benettin's method in NumPy from the full one-step Jacobians J (T, n, n) of one
    sequence, a QR every `interval` steps (and at the transient's last step and the
    end): (exponents sorted, largest first; running means at the factorisation steps)."""
    T, n = J.shape[0], J.shape[1]
    Q, sums, since, at = np.eye(n), np.zeros(n), 0, {}
    for t in range(T):
        Q = J[t] @ Q
        since += 1
        if since == interval or t == transient - 1 or t == T - 1:
            Q, r = np.linalg.qr(Q)
            if t >= transient:
                sums += np.log(np.abs(np.diag(r)))
                at[t] = sums / (t - transient + 1)
            since = 0
    return np.sort(sums / (T - transient))[::-1], at


@pytest.mark.parametrize("name,H,bias", [("lstm", 12, None), ("gru", 12, None), ("rnn", 16, None),
                                         ("lstm", 8, 3.0)])
def test_lyapunov_interval_agrees_with_a_qr_every_step(name, H, bias):
    """The interval chosen from the growth of the condition number: the exponents agree
    with Benettin's QR at every step (NumPy, from the full Jacobians) within 1e-3, with
    far fewer factorisations."""
    cell = gradflow.Cell(name, D, H, seed=11, forget_bias=bias)
    x = np.random.default_rng(12).standard_normal((600, 2, D))
    ly = gradflow.lyapunov_spectrum(cell, x, transient=100)
    every = gradflow.lyapunov_spectrum(cell, x, transient=100, interval=1)
    J = gradflow.state_jacobians(cell, x).full
    for b in range(2):
        ref, _ = _benettin_numpy(J[:, b], 100, 1)
        np.testing.assert_allclose(every.exponents[b], ref, atol=1e-9)
        np.testing.assert_allclose(ly.exponents[b], ref, atol=1e-3)
    np.testing.assert_array_equal(every.qr_count, [600, 600])
    assert np.all(ly.qr_count < 400), ly.qr_count


def test_lyapunov_fixed_interval_is_the_numpy_loop():
    """A fixed interval k: the same factorisation steps as a NumPy loop, the same exponents
    and, at every factorisation, the same running means (interpolated in between)."""
    cell = gradflow.Cell("lstm", D, 5, seed=3)
    x = np.random.default_rng(4).standard_normal((90, 1, D))
    ly = gradflow.lyapunov_spectrum(cell, x, transient=9, interval=4)
    J = gradflow.state_jacobians(cell, x).full[:, 0]
    ref, at = _benettin_numpy(J, 9, 4)
    tol = 1e-9
    np.testing.assert_allclose(ly.exponents[0], ref, atol=tol)
    # steps 9 .. 89 averaged: factorisations at 12, 16, ..., 88 and 89
    assert sorted(at) == [*range(12, 89, 4), 89] and ly.qr_count[0] == 1 + len(at) + 2
    for t, means in at.items():
        got = np.sort(ly.running[t - 9, 0])[::-1]
        np.testing.assert_allclose(got, np.sort(means)[::-1], atol=tol, err_msg=f"step {t}")
    # between two factorisations: the growth spread evenly over the steps
    mid = ly.running[14 - 9, 0]                       # step 14, between 12 and 16
    want = (at[12] * 4 + 0.5 * (at[16] * 8 - at[12] * 4)) / 6
    np.testing.assert_allclose(np.sort(mid)[::-1], np.sort(want)[::-1], atol=tol)


def test_lyapunov_float32_interval_agrees_with_every_step():
    cell = gradflow.Cell("lstm", D, 8, seed=5, dtype=np.float32)
    x = np.random.default_rng(6).standard_normal((500, 1, D)).astype(np.float32)
    ly = gradflow.lyapunov_spectrum(cell, x, transient=50)
    every = gradflow.lyapunov_spectrum(cell, x, transient=50, interval=1)
    np.testing.assert_allclose(ly.exponents, every.exponents, atol=1e-3)
    assert ly.qr_count[0] < 500


def test_lyapunov_interval_keeps_exact_zero_directions():
    """rnn-linear with a zero row in W_hh maps a direction to exactly 0: its exponent is
    -inf with any interval, and the others are the closed form."""
    cell = gradflow.Cell("rnn-linear", D, 3, seed=0)
    cell.params["weight_hh"][:] = np.diag([0.5, 0.0, 2.0])
    x = np.zeros((50, 1, D))
    for interval in (None, 1, 5):
        ly = gradflow.lyapunov_spectrum(cell, x, transient=5, interval=interval)
        np.testing.assert_allclose(ly.exponents[0, :2], np.log([2.0, 0.5]), atol=1e-12)
        assert ly.exponents[0, 2] == -np.inf


def test_lyapunov_interval_of_a_fast_growing_map_never_overflows():
    """W_hh = 1e100 I, float64: a factorisation before the vectors could overflow (its
    entries grow by 1e100 a step), so every exponent is log(1e100)."""
    cell = gradflow.Cell("rnn-linear", D, 3, seed=0)
    cell.params["weight_hh"][:] = 1e100 * np.eye(3)
    for k in ("weight_ih", "bias_ih", "bias_hh"):
        cell.params[k][:] = 0.0   # h stays 0
    ly = gradflow.lyapunov_spectrum(cell, np.zeros((40, 1, D)), transient=4, interval=30)
    np.testing.assert_allclose(ly.exponents[0], np.full(3, 100 * math.log(10)), rtol=1e-12)
    assert ly.qr_count[0] > 40 // 30 + 2


def test_spectra_bad_arguments():
    cell = gradflow.Cell("lstm", D, 3, seed=0)
    x = np.zeros((10, 1, D))
    with pytest.raises(InvalidArgumentError, match="`transient`"):
        gradflow.lyapunov_spectrum(cell, x, transient=10)
    with pytest.raises(InvalidArgumentError, match="`n_exponents`"):
        gradflow.lyapunov_spectrum(cell, x, n_exponents=7)
    for bad in (0, -2, 1.5, "auto", True):
        with pytest.raises(InvalidArgumentError, match="`interval`"):
            gradflow.lyapunov_spectrum(cell, x, interval=bad)
    with pytest.raises(InvalidArgumentError, match="`block`"):
        gradflow.jacobian_singular_values(cell, x, [1], block=("h", "z"))
    with pytest.raises(InvalidArgumentError, match="vanilla RNNs"):
        gradflow.pascanu_bound(cell)


@pytest.mark.parametrize("dtype, b", [(np.float64, -92.1), (np.float32, -80.0)])
def test_path_totals_with_extreme_forget_gates(dtype, b):
    """W_hh = 0 and forget-gate bias b: every step multiplies d c / d c by sigma(b) exactly,
    about 1e-40 (float64) or 2e-35 (float32) per step, more than 2**-100, so the path
    product and the total at lag k are sigma(b)**k (log10: k log10 sigma(b), the logistic's
    log computed here by log1p)."""
    cell = gradflow.Cell("lstm", 1, 2, dtype=dtype, seed=0, forget_bias=b)
    cell.params["weight_hh"][:] = 0
    cell.params["weight_ih"][:] = 0
    T = 6
    pd = gradflow.path_decomposition(cell, np.zeros((T, 1, 1), dtype=dtype))
    log10_f = (b - math.log1p(math.exp(b))) / math.log(10)  # log10 sigma(b) = b - log(1 + e^b)
    want = np.arange(T + 1) * log10_f
    tol = 1e-4 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(pd.log10_path[:, 0], want, atol=tol)
    np.testing.assert_allclose(pd.log10_total[:, 0], want, atol=tol)
    np.testing.assert_allclose(pd.log10_share[:, 0], 0.0, atol=tol)
