"""Gradient flow over time: one-step Jacobians, lag maps, loss gradients, renormalisation.

References are independent of gradflow's generated code: central finite differences of
the slow NumPy cells in tests/naive.py, products of those Jacobians, PyTorch float64
autograd, and closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow import cells
from gradflow.errors import DTypeError, InvalidArgumentError, ShapeError

from . import naive
from .conftest import assert_close

D, H, B = 2, 3, 2


def _fd_step_jacobians(cell, x, state0=None):
    """d s_t/d s_{t-1} and d s_t/d x_t by central differences of naive.step: lists of
    (B, S*H, S*H) and (B, S*H, D) for t = 1 .. T."""
    name, p = cell.spec.name, cell.params
    tr = cell.forward(x, state0)
    S, Hh = len(cell.spec.state), cell.hidden_size
    eps = 1e-6
    Js, Jx = [], []

    def f(xt, state):
        return np.concatenate(naive.step(name, p, xt, state), axis=1)  # (B, S*H)

    for t in range(x.shape[0]):
        prev = [tr.states[k, t].copy() for k in range(S)]
        J = np.empty((x.shape[1], S * Hh, S * Hh))
        for c in range(S):
            for j in range(Hh):
                up = [v.copy() for v in prev]
                dn = [v.copy() for v in prev]
                up[c][:, j] += eps
                dn[c][:, j] -= eps
                J[:, :, c * Hh + j] = (f(x[t], tuple(up)) - f(x[t], tuple(dn))) / (2 * eps)
        Jxt = np.empty((x.shape[1], S * Hh, x.shape[2]))
        for d in range(x.shape[2]):
            xp, xm = x[t].copy(), x[t].copy()
            xp[:, d] += eps
            xm[:, d] -= eps
            Jxt[:, :, d] = (f(xp, tuple(prev)) - f(xm, tuple(prev))) / (2 * eps)
        Js.append(J)
        Jx.append(Jxt)
    return Js, Jx


def _naive_lag_norms(Js, Hh, ord_):
    """Norms of the h-block and the full product J_T ... J_{T-k+1} for k = 0 .. T."""
    T = len(Js)
    Bn, n, _ = Js[0].shape
    P = np.broadcast_to(np.eye(n), (Bn, n, n)).copy()
    out_h, out_s = [], []
    for k in range(T + 1):
        if k:
            P = P @ Js[T - k]
        out_h.append([np.linalg.norm(P[b, :Hh, :Hh], ord_) for b in range(Bn)])
        out_s.append([np.linalg.norm(P[b], ord_) for b in range(Bn)])
    return np.log10(out_h), np.log10(out_s)


@pytest.mark.parametrize("name", cells.names())
def test_state_jacobians_match_finite_differences(name):
    cell = gradflow.Cell(name, D, H, seed=3)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, B, D))
    S = len(cell.spec.state)
    state0 = tuple(0.5 * rng.standard_normal((B, H)) for _ in range(S))
    if S == 1:
        state0 = state0[0]
    sj = gradflow.state_jacobians(cell, x, state0)
    Js, Jx = _fd_step_jacobians(cell, x, state0)
    assert sj.full.shape == (3, B, S * H, S * H)
    assert_close(sj.full, np.stack(Js), kind="finite_difference", err_msg=name)
    assert_close(sj.input, np.stack(Jx), kind="finite_difference", err_msg=name)
    for a, of in enumerate(cell.spec.state):
        for c, wrt in enumerate(cell.spec.state):
            assert_close(sj.block(of, wrt), np.stack(Js)[:, :, a * H:(a + 1) * H, c * H:(c + 1) * H],
                         kind="finite_difference", err_msg=f"{name} block {of}, {wrt}")


@pytest.mark.parametrize("name", ["lstm", "gru", "gru-cho", "lstm-peephole", "rnn"])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_lag_norms_match_naive_products(name, norm):
    cell = gradflow.Cell(name, D, H, seed=5)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, B, D))
    flow = gradflow.gradient_flow(cell, x, norm=norm)
    ord_ = 2 if norm == "spectral" else "fro"
    # against finite-difference Jacobians of the naive cell
    ref_h, ref_s = _naive_lag_norms(_fd_step_jacobians(cell, x)[0], H, ord_)
    np.testing.assert_allclose(flow.log10_h, ref_h, atol=1e-6)
    np.testing.assert_allclose(flow.log10_state, ref_s, atol=1e-6)
    # against a plain NumPy product of gradflow's own one-step Jacobians (the products
    # and renormalisation alone)
    full = gradflow.state_jacobians(cell, x).full
    ref_h, ref_s = _naive_lag_norms(list(full), H, ord_)
    assert_close(flow.log10_h, ref_h)
    assert_close(flow.log10_state, ref_s)
    np.testing.assert_array_equal(flow.lags, np.arange(9))


def test_lag_subset_and_h_only_agree_with_full_run():
    cell = gradflow.Cell("lstm", D, 5, seed=0)
    x = np.random.default_rng(0).standard_normal((20, B, D))
    full = gradflow.gradient_flow(cell, x)
    part = gradflow.gradient_flow(cell, x, lags=[7, 0, 3], state=False)
    np.testing.assert_array_equal(part.lags, [0, 3, 7])
    assert part.log10_state is None
    assert_close(part.log10_h, full.log10_h[[0, 3, 7]])
    # with a loss gradient the sweep covers every step, the lag map only the last 7
    dh = np.random.default_rng(1).standard_normal((20, B, 5))
    both = gradflow.gradient_flow(cell, x, dh=dh, lags=[7, 0, 3])
    assert_close(both.log10_h, full.log10_h[[0, 3, 7]])
    assert_close(both.log10_state, full.log10_state[[0, 3, 7]])
    assert_close(both.log10_loss_grad, gradflow.gradient_flow(cell, x, dh=dh).log10_loss_grad)


def test_docstring_examples():
    import doctest

    from gradflow.flow import lagmap, paths, spectra

    for module in (gradflow.flow, lagmap, paths, spectra):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__


def _torch_lstm_gru(torch, name, cell):
    Hh, Dd = cell.hidden_size, cell.input_size
    mod = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[name](Dd, Hh).double()
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(mod, k).copy_(torch.from_numpy(cell.params[k]))
    return mod


@pytest.mark.torch
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_lag_norms_match_torch_autograd(torch, name):
    cell = gradflow.Cell(name, D, 4, seed=11)
    rng = np.random.default_rng(4)
    T = 12
    x = rng.standard_normal((T, B, D))
    mod = _torch_lstm_gru(torch, name, cell)
    xt = torch.from_numpy(x)
    ref = np.empty((T + 1, B))
    for b in range(B):
        h = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
        c = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
        hs = [h]
        for t in range(T):
            if name == "lstm":
                h, c = mod(xt[t, b:b + 1], (h, c))
            else:
                h = mod(xt[t, b:b + 1], h)
            hs.append(h)
        for k in range(T + 1):
            rows = [torch.autograd.grad(h[0, i], hs[T - k], retain_graph=True)[0][0]
                    for i in range(4)]
            ref[k, b] = math.log10(torch.linalg.matrix_norm(torch.stack(rows), 2).item())
    flow = gradflow.gradient_flow(cell, x)
    assert_close(flow.log10_h, ref)


@pytest.mark.torch
def test_lag_norms_match_torch_from_initial_state(torch):
    cell = gradflow.Cell("lstm", D, 4, seed=2)
    x = np.random.default_rng(5).standard_normal((10, 1, D))
    mod = _torch_lstm_gru(torch, "lstm", cell)
    h0 = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    h, c = h0, torch.zeros(1, 4, dtype=torch.float64)
    for t in range(10):
        h, c = mod(torch.from_numpy(x[t]), (h, c))
    jac = torch.stack([torch.autograd.grad(h[0, i], h0, retain_graph=True)[0][0] for i in range(4)])
    flow = gradflow.gradient_flow(cell, x, norm="frobenius", lags=[10])
    assert_close(flow.log10_h[0, 0], math.log10(torch.linalg.matrix_norm(jac).item()))


@pytest.mark.torch
def test_loss_gradient_matches_torch(torch):
    cell = gradflow.Cell("lstm", D, 4, seed=9)
    rng = np.random.default_rng(6)
    T = 9
    x = rng.standard_normal((T, B, D))
    dh = rng.standard_normal((T, B, 4))
    mod = _torch_lstm_gru(torch, "lstm", cell)
    h = torch.zeros(B, 4, dtype=torch.float64)
    c = torch.zeros(B, 4, dtype=torch.float64)
    hs = []
    for t in range(T):
        h, c = mod(torch.from_numpy(x[t]), (h, c))
        h.retain_grad()
        hs.append(h)
    loss = sum((hs[t] * torch.from_numpy(dh[t])).sum() for t in range(T))
    loss.backward()
    ref = np.log10(np.stack([np.linalg.norm(hs[t].grad.numpy(), axis=1) for t in range(T)]))
    flow = gradflow.gradient_flow(cell, x, dh=dh, lags=[0])
    assert flow.log10_loss_grad.shape == (T, B)
    assert_close(flow.log10_loss_grad, ref)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_renormalisation_reaches_minus_4000(dtype, norm):
    """rnn-linear with W_hh = a I, a = 10**-0.4: d h_T / d h_{T-k} = a**k I exactly, so over
    T = 10,000 steps the norm is 1e-4000 (times sqrt(H) for Frobenius)."""
    T, Hh = 10_000, 2
    cell = gradflow.Cell("rnn-linear", 1, Hh, dtype=dtype, seed=0)
    a = dtype(10.0 ** -0.4)  # the value the cell really multiplies by
    cell.params["weight_hh"][:] = np.eye(Hh, dtype=dtype) * a
    x = np.zeros((T, 1, 1), dtype=dtype)
    dh = np.zeros((T, 1, Hh), dtype=dtype)
    dh[-1] = 1.0
    flow = gradflow.gradient_flow(cell, x, dh=dh, norm=norm)
    k = np.arange(T + 1)
    extra = 0.0 if norm == "spectral" else 0.5 * math.log10(Hh)
    exact = k * math.log10(float(a)) + extra
    # one rounding of a relative eps/2 per step
    bound = (k + 1) * np.finfo(dtype).eps
    assert np.all(np.isfinite(flow.log10_h))
    assert np.all(np.abs(flow.log10_h[:, 0] - exact) <= bound)
    assert abs(flow.log10_h[-1, 0] - extra + 4000.0) < 1e-2
    # dL/dh_t = a**(T - t) dh_T: log10 = (T - t) log10 a + log10 sqrt(H)
    t = np.arange(1, T + 1)
    exact_g = (T - t) * math.log10(float(a)) + 0.5 * math.log10(Hh)
    assert np.all(np.isfinite(flow.log10_loss_grad))
    assert np.all(np.abs(flow.log10_loss_grad[:, 0] - exact_g) <= (T - t + 2) * np.finfo(dtype).eps)


def test_float32_agrees_with_float64():
    cell64 = gradflow.Cell("gru", D, 6, seed=1)
    x = np.random.default_rng(8).standard_normal((40, B, D))
    ref = gradflow.gradient_flow(cell64, x)
    got = gradflow.gradient_flow(cell64.astype(np.float32), x.astype(np.float32))
    # the float32 run carries its own rounding, growing with the lag
    err = np.abs(got.log10_h - ref.log10_h)
    assert np.all(err <= 1e-5 * (1 + ref.lags[:, None])), err.max()


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.2, 3.0), name=st.sampled_from(
    ["rnn", "rnn-relu", "rnn-linear"]))
def test_vanilla_rnn_under_pascanu_bound(seed, scale, name):
    cell = gradflow.Cell(name, D, 4, seed=seed)
    cell.params["weight_hh"] *= scale
    x = np.random.default_rng(seed).standard_normal((15, B, D))
    flow = gradflow.gradient_flow(cell, x, state=False)
    gamma = 1.0
    per_step = math.log10(gamma * np.linalg.norm(cell.params["weight_hh"], 2))
    bound = np.broadcast_to(flow.lags[:, None] * per_step, flow.log10_h.shape)
    finite = np.isfinite(flow.log10_h)
    assert finite[0].all()
    assert np.all(flow.log10_h[finite] <= (bound + 1e-12 * (1 + np.abs(bound)))[finite])
    # the library's own statement of the bound is the same number
    pb = gradflow.pascanu_bound(cell)
    assert pb.gamma == gamma
    assert_close(pb.log10_per_step, per_step)


def test_summary_quantiles():
    cell = gradflow.Cell("lstm", D, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((6, 5, D))
    flow = gradflow.gradient_flow(cell, x, dh=np.ones((6, 5, 4)))
    s = flow.summary(quantiles=(0.25, 0.5))
    assert_close(s["log10_h"]["median"], np.median(flow.log10_h, axis=1))
    assert_close(s["log10_h"]["quantiles"][1], np.median(flow.log10_h, axis=1))
    assert_close(s["log10_loss_grad"]["quantiles"][0], np.quantile(flow.log10_loss_grad, 0.25, axis=1))


def test_exact_zero_is_minus_inf_not_an_underflow():
    cell = gradflow.Cell("rnn", D, 3, seed=0)
    cell.params["weight_hh"][:] = 0.0
    flow = gradflow.gradient_flow(cell, np.ones((4, 1, D)))
    assert flow.log10_h[0, 0] == 0.0
    assert np.all(np.isneginf(flow.log10_h[1:]))


def test_bad_arguments():
    cell = gradflow.Cell("lstm", D, 3, seed=0)
    x = np.zeros((5, 1, D))
    with pytest.raises(InvalidArgumentError, match="`norm`"):
        gradflow.gradient_flow(cell, x, norm="nuclear")
    with pytest.raises(InvalidArgumentError, match=r"`lags` must lie in \[0, T\]"):
        gradflow.gradient_flow(cell, x, lags=[6])
    with pytest.raises(InvalidArgumentError, match="`lags` must hold integers"):
        gradflow.gradient_flow(cell, x, lags=[0.5])
    with pytest.raises(ShapeError, match="`dh`"):
        gradflow.gradient_flow(cell, x, dh=np.zeros((5, 1, 4)))
    with pytest.raises(DTypeError, match="`x`"):
        gradflow.gradient_flow(cell, x.astype(np.float32))
    with pytest.raises(InvalidArgumentError, match="`cell` must be a gradflow.Cell"):
        gradflow.state_jacobians("lstm", x)
    sj = gradflow.state_jacobians(cell, x)
    with pytest.raises(InvalidArgumentError, match="`wrt` 'z'"):
        sj.block("c", "z")


@pytest.mark.parametrize("name", ["lstm-peephole", "gru-cho", "mgu"])
def test_state_jacobians_match_sympy_explicit_step(name):
    """The symbolic route: differentiate explicit_step's matrix expressions with SymPy and
    substitute the numbers."""
    import sympy

    from gradflow.symbolic.jacobian import explicit_step

    n = 2
    cell = gradflow.Cell(name, D, n, seed=21)
    rng = np.random.default_rng(21)
    x = rng.standard_normal((1, 1, D))
    state0 = tuple(rng.standard_normal((1, n)) for _ in cell.spec.state)
    new, sym = explicit_step(cell.spec, n, D)
    prev = [sym[f"{s}_prev"][j, 0] for s in cell.spec.state for j in range(n)]
    jac = new.jacobian(prev)
    values = {sym["x"]: sympy.Matrix(x[0, 0])}
    for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        values[sym[k]] = sympy.Matrix(cell.params[k])
    for k, s in enumerate(cell.spec.state):
        values[sym[f"{s}_prev"]] = sympy.Matrix(state0[k][0])
    for p in cell.spec.params:
        values[sym[p]] = sympy.Matrix(cell.params[p])
    ref = np.array(jac.subs(values).doit().evalf(30).tolist(), dtype=np.float64)
    got = gradflow.state_jacobians(cell, x, state0 if len(state0) > 1 else state0[0]).full[0, 0]
    assert_close(got, ref)


def test_non_finite_jacobian_is_reported_with_its_step():
    """h_prev ** 0.5 at h_prev = 0: the forward pass is finite (h stays 0), the partial
    0.5 / sqrt(h_prev) is not."""
    from gradflow.errors import NonFiniteError
    from gradflow.symbolic.spec import CellSpec

    spec = CellSpec("flow-kink", gates="a", equations="h = tanh(ax_a + ah_a) + h_prev**0.5")
    cell = gradflow.Cell(spec, 1, 2, seed=0)
    for v in cell.params.values():
        v[...] = 0.0
    x = np.zeros((5, 1, 1))
    np.testing.assert_array_equal(cell.forward(x).h, 0.0)
    with pytest.raises(NonFiniteError, match="step 4") as info:
        gradflow.gradient_flow(cell, x)
    assert info.value.step == 4
    with pytest.raises(NonFiniteError, match="step 0 in `h`"):
        gradflow.state_jacobians(cell, x)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-40), (np.float64, 1e40),
                                          (np.float32, 1e-35), (np.float32, 1e35)])
@pytest.mark.parametrize("norm", ["spectral", "frobenius"])
def test_extreme_factors_per_step(dtype, scale, norm):
    """rnn-linear with W_hh = a Q (Q orthogonal): d h_T / d h_{T-k} = a**k Q**k, whose
    norm is |a|**k (times sqrt(H) for Frobenius), exactly, even when a single step scales
    the product by far more than 2**100 (1e40 ~ 2**133; float32: 1e35 ~ 2**116)."""
    T, Hh = 5, 3
    cell = gradflow.Cell("rnn-linear", 1, Hh, dtype=dtype, seed=0)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((Hh, Hh)))
    cell.params["weight_hh"][:] = (q * scale).astype(dtype)
    cell.params["bias_hh"][:] = 0
    cell.params["bias_ih"][:] = 0
    a = float(dtype(scale))
    x = np.zeros((T, 1, 1), dtype=dtype)
    flow = gradflow.gradient_flow(cell, x, norm=norm)
    extra = 0.0 if norm == "spectral" else 0.5 * math.log10(Hh)
    k = np.arange(T + 1)
    exact = k * math.log10(a) + extra
    np.testing.assert_allclose(flow.log10_h[:, 0], exact, atol=1e-4 if dtype == np.float32 else 1e-10)
    sv = gradflow.jacobian_singular_values(cell, x, list(range(T + 1)))
    np.testing.assert_allclose(sv.log10[:, 0], np.repeat((k * math.log10(a))[:, None], Hh, axis=1),
                               atol=1e-4 if dtype == np.float32 else 1e-10)


def test_jacobians_are_held_a_chunk_of_steps_at_a_time(monkeypatch):
    """The one-step Jacobians of the whole sequence, T B (S H)**2 numbers, are never all in
    memory: with 4-step chunks the peak stays far below them, and the result is the one
    computed in a single chunk."""
    import tracemalloc

    from gradflow.flow import _steps

    T, Bn, Hh = 150, 2, 16
    cell = gradflow.Cell("lstm", 1, Hh, seed=0)
    x = np.random.default_rng(0).standard_normal((T, Bn, 1))
    one_chunk = gradflow.gradient_flow(cell, x)                  # 2.4 MB < CHUNK_BYTES
    per_step = Bn * (2 * Hh) ** 2 * 8                             # dense J_t of every row
    all_steps = T * per_step
    monkeypatch.setattr(_steps, "CHUNK_BYTES", 4 * per_step)
    tracemalloc.start()
    try:
        chunked = gradflow.gradient_flow(cell, x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < all_steps / 2, f"peak {peak} bytes; all Jacobians {all_steps}"
    np.testing.assert_array_equal(chunked.log10_h, one_chunk.log10_h)
    np.testing.assert_array_equal(chunked.log10_state, one_chunk.log10_state)


def test_the_finiteness_check_of_a_row_reads_that_row_alone():
    """The kernel's (max |o|, sum of o * 0) of rows of 1 to 6 entries, in the compiled kernel
    and as plain Python (where a read past the row's end raises IndexError)."""
    from gradflow.flow._kernels import _absmax_check

    for fn in (_absmax_check, _absmax_check.py_func):
        for n in range(1, 7):
            o = -np.arange(1.0, n + 1)
            assert fn(o) == (float(n), 0.0)
            for bad in (np.inf, np.nan):
                for j in range(n):
                    p = o.copy()
                    p[j] = bad
                    with np.errstate(invalid="ignore"):   # inf * 0 in the Python version
                        assert np.isnan(fn(p)[1]), (n, j, bad)
