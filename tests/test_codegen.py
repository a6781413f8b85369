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
    from gradflow.config import cache_dir

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
    assert printed == "_log_dtanh(a)"
