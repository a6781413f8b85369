"""The per-step products on a weight packed once per pass (gradflow._blas, oneMKL).

The packed route must give NumPy's products within the dtype's rounding, must not change
how many threads a pass runs on, and must be chosen, or refused, as the environment says.
The whole passes at sizes that take it are checked against PyTorch autograd in
test_torch_agreement.py.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np
import pytest

import gradflow
from gradflow import _blas, _threads
from gradflow.config import tolerance

from .conftest import assert_close, rel_error
from .subproc import run_python

needs_mkl = pytest.mark.skipif(not _blas.packed_available(),
                               reason=f"no packed route here: {_blas.describe()}")


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows, n, k", [(4, 512, 128), (16, 128, 512), (33, 1024, 256),
                                        (128, 96, 200)])
def test_packed_product_equals_numpy(dtype, rows, n, k):
    """The kernels' product on a packed weight: a @ w.T (forward) and d @ w (backward)."""
    rng = np.random.default_rng(rows * n + k)
    kernels = gradflow.Cell("lstm", input_size=2, hidden_size=2, dtype=dtype).kernels
    w = rng.standard_normal((n, k)).astype(dtype)
    # the rows of a and out as the scans see them: a row block of a wider array
    a = rng.standard_normal((rows + 3, k + 5)).astype(dtype)[1:rows + 1, :k]
    rtol = tolerance(dtype)["rtol"]
    fn, pk = _blas.pack_weights(w, rows, transpose=True)
    assert fn != 0
    out = np.full((rows, n), np.nan, dtype=dtype)
    kernels._step_product(np.ascontiguousarray(a), w.T, fn, pk, out)
    # entries of a sum of k products cancel: bound the error by the scale of the result
    assert rel_error(out, a.astype(np.float64) @ w.T.astype(np.float64)) <= rtol

    d = rng.standard_normal((rows, n)).astype(dtype)
    fn, pk = _blas.pack_weights(w, rows, transpose=False)
    assert fn != 0
    out = np.full((rows, k), np.nan, dtype=dtype)
    kernels._step_product(d, w, fn, pk, out)
    assert rel_error(out, d.astype(np.float64) @ w.astype(np.float64)) <= rtol


def test_small_products_are_not_packed():
    w = np.ones((128, 32))
    assert _blas.pack_weights(w, 16, transpose=True)[0] == 0          # 4,096 entries
    assert _blas.pack_weights(np.ones((512, 128)), 1, transpose=True)[0] == 0   # one row
    assert _blas.pack_weights(np.ones((0, 128)), 16, transpose=True)[0] == 0    # no weight


@needs_mkl
def test_loading_mkl_keeps_the_blocks_of_rows():
    """gradflow sets its oneMKL to one thread; that is not a user's limit on BLAS threads,
    so a pass still splits its rows over the cores (it once ran on one)."""
    from threadpoolctl import threadpool_info

    openblas = [lib["num_threads"] for lib in threadpool_info()
                if lib["user_api"] == "blas" and lib["internal_api"] != "mkl"]
    assert any(lib["internal_api"] == "mkl" and lib["num_threads"] == 1
               for lib in threadpool_info())
    assert _threads.blas_threads() == min(openblas)


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_both_routes_agree_on_a_whole_pass(dtype):
    """The same LSTM pass with and without packed weights (the truncated 1997 gradient
    too): equal within the dtype's rounding."""
    rng = np.random.default_rng(0)
    cells = {"lstm": gradflow.Cell("lstm", input_size=8, hidden_size=64, dtype=dtype, seed=0),
             "lstm1997": gradflow.Cell("lstm1997", input_size=8, hidden_size=64, dtype=dtype,
                                       seed=1)}
    x = rng.standard_normal((7, 16, 8)).astype(dtype)
    dh = rng.standard_normal((7, 16, 64)).astype(dtype)
    results = {}
    for route, products in (("packed", contextlib.nullcontext), ("plain", _blas.numpy_products)):
        with products():
            for name, cell in cells.items():
                tr = cell.forward(x)
                g = cell.backward(tr, dh, truncate=name == "lstm1997")
                results[route, name] = (tr.h, g.params["weight_hh"], g.x)
    assert _blas.packed_available()   # restored on leaving
    for name in cells:
        for a, b in zip(results["packed", name], results["plain", name]):
            assert_close(a, b, dtype)


def _describe(env):
    code = ("import json, warnings\nwarnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    from gradflow import _blas\n"
            "    d = _blas.describe(); p = _blas.packed_available()\n"
            "print(json.dumps([d, p, [str(x.message) for x in w]]))")
    out = run_python(code, env={**os.environ, **env}).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_environment_variable_chooses_the_route():
    described, packed, warned = _describe({_blas.BLAS_ENV: "openblas"})
    assert not packed and "GRADFLOW_BLAS=openblas" in described and not warned
    described, packed, warned = _describe({_blas.BLAS_ENV: "fastest"})
    assert not packed and "'fastest'" in described
    assert len(warned) == 1 and "'auto' or 'openblas'" in warned[0]


def test_info_command_reports_the_route(capsys):
    from gradflow.cli import main

    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["per-step products"] == _blas.describe()
    assert info["gradflow"] == gradflow.__version__ and info["cores"] >= 1
    assert any("openblas" in line for line in info["blas"])
    assert main(["info"]) == 0
    assert "per-step products" in capsys.readouterr().out
