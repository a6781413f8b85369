"""Code generation: the whitelist, stable primitives, and the on-disk kernel cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import sympy

import gradflow
from gradflow import cells
from gradflow.codegen import module_path
from gradflow.codegen.printer import KernelPrinter, check_supported
from gradflow.errors import CodegenError


def test_printer_refuses_unknown_functions():
    x = sympy.Symbol("x")
    with pytest.raises(CodegenError, match=r"cell 'demo'.*cannot generate kernel code for sin"):
        check_supported(sympy.sin(x) + 1, "cell 'demo'")
    with pytest.raises(CodegenError, match="not finite"):
        check_supported(sympy.zoo * x, "cell 'demo'")
    with pytest.raises(CodegenError):
        KernelPrinter().doprint(sympy.besselj(0, x))


def test_stable_primitives_at_extremes():
    k = gradflow.Cell("lstm", 1, 1).kernels
    assert k._sigmoid(1000.0) == 1.0 and k._sigmoid(-1000.0) == 0.0
    assert k._sigmoid(-700.0) > 0.0  # exp(-700) is representable: no premature underflow
    assert k._log_sigmoid(-1000.0) == -1000.0
    np.testing.assert_allclose(k._log_sigmoid(-30.0), -30.0 - np.log1p(np.exp(-30.0)), rtol=1e-15)
    assert k._log_sigmoid(1000.0) == 0.0
    assert np.isnan(k._sigmoid(np.nan)) and np.isnan(k._relu(np.nan)) and np.isnan(k._step(np.nan))
    assert k._step(0.0) == 0.0 and k._relu(-2.0) == 0.0


def test_generated_source_is_readable_and_keyed_by_the_spec():
    spec = cells.get("gru")
    path = module_path(spec)
    gradflow.Cell(spec, 2, 2).kernels  # generates it
    text = path.read_text()
    assert spec.hash in text and "def fwd_units(" in text and "def backward_kernel(" in text
    other = gradflow.define_cell("gru-variant", gates="r z n", register=False, equations="""
        r = sigmoid(ax_r + ah_r)
        z = sigmoid(ax_z + ah_z)
        n = tanh(ax_n + r*ah_n)
        h = (1 - z)*n + z*h_prev + 0
    """.replace(" + 0", " + 0*h_prev"))
    assert module_path(other) != path


def test_cache_folder_falls_back_when_not_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.delenv("GRADFLOW_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "sub"))  # cannot mkdir under a file
    from gradflow.codegen import cache_dir
    from gradflow.errors import CacheWarning

    with pytest.warns(CacheWarning, match="Not a directory"):
        folder = cache_dir()
    assert not str(folder).startswith(str(blocker))
    assert folder.is_dir()


SCRIPT = textwrap.dedent("""
    import json, numpy as np, gradflow
    cell = gradflow.Cell("rnn-linear", 2, 3, seed=0)
    trace = cell.forward(np.ones((4, 2, 2)))
    cell.backward(trace, np.ones((4, 2, 3)))
    k = cell.kernels
    stats = {f: [sum(getattr(k, f).stats.cache_hits.values()), sum(getattr(k, f).stats.cache_misses.values())]
             for f in ("forward_kernel", "backward_kernel")}
    print(json.dumps({"stats": stats, "file": k.__file__}))
""")


def test_a_second_process_loads_compiled_kernels_from_disk(tmp_path):
    env = {**os.environ, "GRADFLOW_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    runs = [json.loads(subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True,
                                      capture_output=True, text=True).stdout) for _ in range(2)]
    assert runs[0]["file"].startswith(str(tmp_path))
    for name in ("forward_kernel", "backward_kernel"):
        hits, misses = runs[0]["stats"][name]
        assert hits == 0 and misses == 1, runs[0]  # compiled in the first process
        hits, misses = runs[1]["stats"][name]
        assert hits == 1 and misses == 0, runs[1]  # loaded from disk in the second


def test_log_of_tanh_derivative_is_stable():
    k = gradflow.Cell("lstm", 1, 1).kernels
    for x in (0.0, 0.3, -2.0, 6.0):
        np.testing.assert_allclose(k._log_dtanh(x), -2.0 * np.log(np.cosh(x)), rtol=1e-13, atol=1e-15)  # sech^2
    # where 1 - tanh(x)**2 underflows in double precision, the log is still exact
    np.testing.assert_allclose(k._log_dtanh(400.0), np.log(4.0) - 800.0, rtol=1e-15)
    np.testing.assert_allclose(k._log_dtanh(-400.0), np.log(4.0) - 800.0, rtol=1e-15)
    printed = KernelPrinter().doprint(sympy.log(sympy.Abs(sympy.tanh(sympy.Symbol("a")) ** 2 - 1)))
    assert printed == "_log_dtanh(v_a)"


def _ulps(got, want):
    """Distance in units of the last place of `want` (float64)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return np.abs(got - want) / np.spacing(np.abs(want))


def test_inlined_exp_tanh_sigmoid_agree_with_the_library_to_a_few_ulps():
    from scipy.special import expit

    k = gradflow.Cell("lstm", 1, 1).kernels
    rng = np.random.default_rng(0)
    xs = np.concatenate([rng.uniform(-745, 709, 4000), rng.uniform(-30, 30, 4000),
                         rng.uniform(-1, 1, 2000), np.linspace(-0.7, 0.7, 1001)])
    exp_ = np.array([k._exp(x) for x in xs])
    normal = np.exp(xs) > np.finfo(np.float64).tiny
    assert np.max(_ulps(exp_[normal], np.exp(xs[normal]))) <= 3
    # subnormal results: exact to the absolute spacing of the smallest subnormal
    np.testing.assert_allclose(exp_[~normal], np.exp(xs[~normal]), rtol=0, atol=5e-324 * 4)
    tanh_ = np.array([k._tanh(x) for x in xs])
    assert np.max(_ulps(tanh_, np.tanh(xs))) <= 3
    sig_ = np.array([k._sigmoid(x) for x in xs])
    tiny = expit(xs) > np.finfo(np.float64).tiny
    assert np.max(_ulps(sig_[tiny], expit(xs[tiny]))) <= 4


def test_inlined_functions_keep_special_values():
    k = gradflow.Cell("lstm", 1, 1).kernels
    assert k._exp(np.inf) == np.inf and k._exp(-np.inf) == 0.0 and np.isnan(k._exp(np.nan))
    assert k._exp(710.0) == np.inf and k._exp(0.0) == 1.0 and k._exp(-800.0) == 0.0
    assert k._tanh(np.inf) == 1.0 and k._tanh(-np.inf) == -1.0 and np.isnan(k._tanh(np.nan))
    assert np.copysign(1.0, k._tanh(-0.0)) == -1.0 and k._tanh(0.0) == 0.0
    assert k._sigmoid(np.inf) == 1.0 and k._sigmoid(-np.inf) == 0.0 and np.isnan(k._sigmoid(np.nan))


def _ulps32(got, want64):
    """Distance in float32 units in the last place of the float32 rounding of `want64`."""
    want = np.asarray(want64, dtype=np.float64).astype(np.float32)
    return np.abs(np.asarray(got, dtype=np.float64) - want) / np.spacing(np.abs(want))


def test_float32_module_computes_in_float32_within_2_ulps():
    from numba import float32, njit
    from scipy.special import expit

    k = gradflow.Cell("lstm", 1, 1, dtype=np.float32).kernels
    assert k.DTYPE is np.float32
    with open(k.__file__) as fh:
        assert "np.float32(" in fh.read()
    rng = np.random.default_rng(1)
    xs = np.concatenate([rng.uniform(-104, 89, 20000), rng.uniform(-20, 20, 20000),
                         rng.uniform(-1, 1, 5000), np.linspace(-0.7, 0.7, 1001)]).astype(np.float32)

    @njit
    def each(f, a):
        out = np.empty_like(a)
        for i in range(a.shape[0]):
            out[i] = f(a[i])
        return out

    x64 = xs.astype(np.float64)
    ref = {"_exp": np.exp(x64), "_tanh": np.tanh(x64), "_sigmoid": expit(x64)}
    for name, want in ref.items():
        got = each(getattr(k, name), xs)
        assert got.dtype == np.float32
        with np.errstate(over="ignore"):  # exp beyond float32's range rounds to inf
            w32 = np.abs(want.astype(np.float32))
        ok = np.isfinite(w32) & (w32 > np.finfo(np.float32).tiny)   # normal float32 results
        assert np.max(_ulps32(got[ok], want[ok])) <= 2, name
        assert getattr(k, name).nopython_signatures[-1].return_type == float32, name
    special = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 89.0, -104.0], dtype=np.float32)
    e, t, s = (each(getattr(k, n), special) for n in ("_exp", "_tanh", "_sigmoid"))
    np.testing.assert_array_equal(e, [np.inf, 0.0, np.nan, 1.0, 1.0, np.inf, 0.0])
    np.testing.assert_array_equal(t, [1.0, -1.0, np.nan, -0.0, 0.0, 1.0, -1.0])
    assert np.signbit(t[3]) and not np.signbit(t[4])
    np.testing.assert_array_equal(s[:3], [1.0, 0.0, np.nan])


def test_shared_input_and_recurrent_gradients_detected_symbolically():
    """d phi/d ax_g == d phi/d ah_g for every gate of an LSTM or RNN, not for the GRU's n gate."""
    flags = {n: gradflow.Cell(n, 1, 1).kernels.DAH1_IS_DAX for n in ("lstm", "rnn", "gru", "mgu")}
    assert flags == {"lstm": True, "rnn": True, "gru": False, "mgu": False}


@pytest.mark.parametrize("name", ["lstm", "gru", "gru-cho", "lstm-peephole"])
def test_backward_without_saved_values_recomputes_the_same(name):
    cell = gradflow.Cell(name, 3, 4, seed=0)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 2, 3))
    dh = rng.standard_normal((6, 2, 4))
    trace = cell.forward(x)
    with_saved = cell.backward(trace, dh)
    rebuilt = gradflow.Trace(cell, trace.x, trace.states, trace.ax, trace.ah1, trace.ah2, trace.u)
    assert trace.saved is not None and rebuilt.saved is None
    without = cell.backward(rebuilt, dh)
    for key, value in with_saved.params.items():
        np.testing.assert_allclose(without.params[key], value, rtol=1e-13, atol=1e-15, err_msg=key)
    np.testing.assert_allclose(without.x, with_saved.x, rtol=1e-13, atol=1e-15)
