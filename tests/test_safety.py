"""Safety: equations never run as code, traces cannot make kernels read out of bounds,
and arguments that used to slip through are refused with gradflow's own errors."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import gradflow
from gradflow.errors import (DTypeError, GradflowError, InvalidArgumentError, NonFiniteError,
                             ShapeError, SpecError)
from gradflow.symbolic.parse import parse_expression

# ---------------------------------------------------------------- equations are not code
#: Known ways out of an eval sandbox, each written so that it would create CANARY when run.
ESCAPES = [
    "Symbol.__new__.__globals__['__builtins__']['__import__']('os').system('touch CANARY')",
    "__import__('os').system('touch CANARY')",
    "().__class__.__bases__[0].__subclasses__()",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0]('touch CANARY', shell=True)",
    "(lambda: __import__('os').system('touch CANARY'))()",
    "eval(\"__import__('os').system('touch CANARY')\")",
    "exec(\"import os; os.system('touch CANARY')\")",
    "getattr(__builtins__, '__import__')('os').system('touch CANARY')",
    "tanh.__globals__['sympy'].__builtins__",
    "sigmoid.eval.__globals__['__builtins__']",
    "Integer(1).__class__.__mro__[-1].__subclasses__()",
    "open('CANARY', 'w')",
    "compile('1', 'f', 'eval')",
    "ax_a.__class__",
    "ax_a.func.__init__.__globals__",
    "f'{__import__(\"os\").system(\"touch CANARY\")}'",
    "(x := __import__('os'))",
    "globals()['__builtins__']",
    "ax_a if __import__('os').system('touch CANARY') else ah_a",
    "tanh(*[ax_a])",
    "tanh(x=ax_a)",
    "__builtins__",
    "ax_a[0]",
    "'a' * 10",
    "b'bytes'",
    "ax_a and ah_a",
    "ax_a < ah_a",
    "{ax_a}",
    "ax_a @ ah_a",
    "ax_a % 2",
    "ax_a // 2",
    "~ax_a",
    "not ax_a",
    "await ax_a",
    "1 if 1 else 0",
    "Function('f')(ax_a)",
    "Symbol('t')",
    "sympify('ax_a')",
    "S('1')",
    "N(ax_a)",
    "...",
    "None",
    "True",
    "1j",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escapes_are_refused_and_never_run(payload, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for equations in (f"u1 = {payload}\nh = tanh(ax_a + ah_a)",
                      f"h = tanh(ax_a + ah_a) + 0*({payload})"):
        with pytest.raises(SpecError):
            gradflow.define_cell("x1", gates="a", register=False, equations=equations)
    assert not (tmp_path / "CANARY").exists()
    assert os.listdir(tmp_path) == []


def test_the_reported_exploit_is_refused_before_anything_runs(tmp_path):
    canary = tmp_path / "pwned"
    payload = (f"u1 = Symbol.__new__.__globals__['__builtins__']['__import__']('os')"
               f".system('touch {canary}')\nh = tanh(ax_a + ah_a)")
    with pytest.raises(SpecError, match="attribute access"):
        gradflow.define_cell("x1", gates="a", register=False, equations=payload)
    assert not canary.exists()


@pytest.mark.parametrize("rhs, match", [
    ("2**10**10**10 * ax_a + ah_a", "exponent"),
    ("((10**15)**64)**64 * ax_a + ah_a", "too large"),
    ("tanh(" * 200 + "ax_a" + ")" * 200 + " + ah_a", "nested|parse"),
    ("+".join(["ax_a"] * 1200) + " + ah_a", "parts|characters"),
    ("ax_a + ah_a + " + "1" * 5000, "characters|parse"),
    ("tanh(ax_a)/0 + ah_a", "not finite"),
    ("log(0*ax_a) + ah_a", "not finite"),
    ("ax_a + ah_a + 1e400", "not finite"),
    ("ax_a + ah_a + 99999999999999999999", "too large"),
    ("sin(ax_a) + ah_a", "not allowed"),
])
def test_expressions_that_would_hang_or_are_not_finite_are_refused_quickly(rhs, match):
    with pytest.raises(SpecError, match=match):
        gradflow.define_cell("x1", gates="a", register=False, equations=f"h = {rhs}")


def test_parser_builds_the_same_expression_as_sympy():
    import sympy

    a, b = sympy.symbols("a b", real=True)
    names = {"a": a, "b": b}
    got = parse_expression("-(a - 2*b)**2 / 3 + exp(-a) * log(b) - tanh(a)**-1", names)
    want = -(a - 2 * b) ** 2 / 3 + sympy.exp(-a) * sympy.log(b) - sympy.tanh(a) ** -1
    assert sympy.simplify(got - want) == 0
    assert parse_expression("2.5e-3 * a", names) == sympy.Float(2.5e-3) * a


def test_sympy_expressions_are_checked_against_the_same_whitelist():
    import sympy

    a = sympy.Symbol("ax_a", real=True)
    b = sympy.Symbol("ah_a", real=True)
    for bad in (sympy.sin(a) + b, sympy.Integral(a, a) + b, a + b + sympy.zoo, a + b + sympy.I):
        with pytest.raises(SpecError):
            gradflow.define_cell("x1", gates="a", register=False, equations=[("h", bad)])
    with pytest.raises(SpecError, match="SymPy expression"):
        gradflow.define_cell("x1", gates="a", register=False, equations=[("h", object())])


@pytest.mark.parametrize("name", ['x"""+__import__("os").system("x")+"""', "a b", "", "-x", "x" * 65,
                                  "x\ny", "../../x"])
def test_cell_names_are_plain_identifiers(name):
    with pytest.raises(SpecError, match="`name`"):
        gradflow.define_cell(name, gates="a", register=False, equations="h = tanh(ax_a + ah_a)")


def test_user_names_cannot_shadow_kernel_variables():
    """Per-unit parameters named like a kernel's own variables, modules and temporaries
    (``H``, ``j``, ``math``, ``t0``, ``sv0``) compute the right thing."""
    names = ("H", "j", "math", "t0", "sv0")
    spec = gradflow.define_cell("shadowing", gates="a", params=" ".join(names), register=False,
                                equations="h = tanh(ax_a + ah_a + H*h_prev + j - math + t0*sv0)")
    cell = gradflow.Cell(spec, 2, 3, seed=0)
    rng = np.random.default_rng(1)
    for n in names:
        cell.params[n][:] = rng.standard_normal(3)
    x = rng.standard_normal((4, 2, 2))
    p = cell.params
    h = np.zeros((2, 3))
    for t in range(4):
        h = np.tanh(x[t] @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
                    + p["H"] * h + p["j"] - p["math"] + p["t0"] * p["sv0"])
    np.testing.assert_allclose(cell.forward(x).h[-1], h, rtol=1e-12)


# ---------------------------------------------------------------- traces
def _two_traces():
    cell = gradflow.Cell("lstm", 3, 4, seed=0)
    rng = np.random.default_rng(0)
    return cell, cell.forward(rng.standard_normal((5, 2, 3))), cell.forward(rng.standard_normal((50, 2, 3)))


def test_a_trace_of_mismatched_arrays_is_refused():
    cell, t5, t50 = _two_traces()
    with pytest.raises(ShapeError, match="`states` must have shape"):
        gradflow.Trace(cell, t50.x, t5.states, t50.ax, t50.ah1, t50.ah2, t50.u)
    with pytest.raises(ShapeError, match="`ax`"):
        gradflow.Trace(cell, t5.x, t5.states, t50.ax, t5.ah1, t5.ah2, t5.u)
    with pytest.raises(DTypeError, match="dtype"):
        gradflow.Trace(cell, t5.x, t5.states.astype(np.float32), t5.ax, t5.ah1, t5.ah2, t5.u)
    with pytest.raises(DTypeError, match="numpy array"):
        gradflow.Trace(cell, t5.x, t5.states.tolist(), t5.ax, t5.ah1, t5.ah2, t5.u)
    other = gradflow.Cell("lstm", 3, 5, seed=0)
    with pytest.raises(ShapeError):
        gradflow.Trace(other, t5.x, t5.states, t5.ax, t5.ah1, t5.ah2, t5.u)
    with pytest.raises(InvalidArgumentError, match="`cell`"):
        gradflow.Trace("lstm", t5.x, t5.states, t5.ax, t5.ah1, t5.ah2, t5.u)


def test_a_rebuilt_trace_gives_the_same_intermediates_and_gradients():
    cell, t5, _ = _two_traces()
    rebuilt = gradflow.Trace(cell, t5.x, t5.states, t5.ax, t5.ah1, t5.ah2, t5.u)
    np.testing.assert_array_equal(rebuilt.intermediate("f"), t5.intermediate("f"))
    dh = np.ones((5, 2, 4))
    a, b = cell.backward(t5, dh), cell.backward(rebuilt, dh)
    np.testing.assert_allclose(a.params["weight_hh"], b.params["weight_hh"], rtol=1e-13)


def test_trace_arrays_are_read_only_and_backward_uses_the_forward_parameters():
    cell, t5, _ = _two_traces()
    dh = np.random.default_rng(3).standard_normal((5, 2, 4))
    before = cell.backward(t5, dh)
    with pytest.raises(ValueError, match="read-only"):
        t5.h[0, 0, 0] = 10.0
    with pytest.raises(AttributeError):
        t5.ax = np.zeros_like(t5.ax)
    cell.params["weight_hh"] += 1.0      # changed in place after the forward pass
    cell.params["bias_ih"] = np.zeros_like(cell.params["bias_ih"])
    after = cell.backward(t5, dh)
    for key in before.params:
        np.testing.assert_array_equal(after.params[key], before.params[key])
    # and the trace does not share its input with the caller
    x = np.ones((3, 1, 3))
    trace = cell.forward(x)
    x[:] = 5.0
    assert np.all(trace.x == 1.0)


def test_a_very_long_sequence_runs_forward_and_backward():
    cell = gradflow.Cell("lstm", 1, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((100_000, 1, 1))
    trace = cell.forward(x)
    grads = cell.backward(trace, np.ones_like(trace.h))
    assert np.isfinite(grads.params["weight_hh"]).all()
    part = cell.backward(trace.slice(99_990, 100_000), np.ones((10, 1, 2)))
    assert np.isfinite(part.x).all()


def test_trace_slice_checks_its_bounds():
    cell, t5, _ = _two_traces()
    for t0, t1 in ((0, 6), (3, 3), (-1, 2), (1.0, 2)):
        with pytest.raises(InvalidArgumentError):
            t5.slice(t0, t1)
    np.testing.assert_array_equal(t5.slice(1, 3).h, t5.h[1:3])


# ---------------------------------------------------------------- arguments that slipped through
@pytest.mark.parametrize("kwargs, error, match", [
    ({"dtype": "bogus"}, DTypeError, "dtype"),
    ({"dtype": None}, DTypeError, "dtype"),
    ({"dtype": np.int32}, DTypeError, "dtype"),
    ({"forget_bias": float("nan")}, InvalidArgumentError, "forget_bias"),
    ({"forget_bias": "3"}, InvalidArgumentError, "forget_bias"),
    ({"seed": -1}, InvalidArgumentError, "seed"),
    ({"seed": 1.5}, InvalidArgumentError, "seed"),
    ({"spectral_radius": "2"}, InvalidArgumentError, "spectral_radius"),
    ({"spectral_radius": -1.0}, InvalidArgumentError, "spectral_radius"),
    ({"spectral_radius": math.inf}, InvalidArgumentError, "spectral_radius"),
])
def test_cell_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        gradflow.Cell("lstm", 2, 3, **kwargs)


def test_impossible_sizes_are_refused_before_allocating():
    with pytest.raises(InvalidArgumentError, match="GiB"):
        gradflow.Cell("lstm", 10 ** 6, 10 ** 6)
    with pytest.raises(InvalidArgumentError, match="num_layers=4611686018427387904"):
        gradflow.Network("lstm", 3, 4, num_layers=2 ** 62)     # not a list of 2**62 sizes
    cell = gradflow.Cell("lstm", 1, 64)
    # a view of one number as 10**12 steps: refused before anything is copied or allocated
    x = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10 ** 6, 10 ** 6, 1), strides=(0, 0, 0))
    with pytest.raises(InvalidArgumentError, match="GiB"):
        cell.forward(x)


def test_a_trace_too_large_for_memory_is_refused_before_the_forward_pass(monkeypatch):
    """The trace holds at most (S + 4 G + 1) numbers per unit, step and row: 19 for an LSTM,
    1,216 bytes per step and row at H = 8.  With 100 kB allowed, 20 steps of 4 rows
    (97 kB) run and 20 steps of 6 rows (146 kB) are refused, although a copy of x is tiny."""
    from gradflow import _validate

    cell = gradflow.Cell("lstm", 1, 8, seed=0)
    monkeypatch.setattr(_validate, "MEMORY_SHARE", 0.5)
    monkeypatch.setattr(_validate, "_total_memory", lambda: 200_000)
    assert cell.forward(np.zeros((20, 4, 1))).h.shape == (20, 4, 8)
    with pytest.raises(InvalidArgumentError, match=r"forward pass's trace .*T=20, B=6, H=8"):
        cell.forward(np.zeros((20, 6, 1)))


def test_lyapunov_with_too_few_steps_after_the_transient():
    cell = gradflow.Cell("rnn", 2, 3, seed=0)
    x = np.zeros((6, 1, 2))
    with pytest.raises(InvalidArgumentError, match="transient"):
        gradflow.lyapunov_spectrum(cell, x, transient=5)
    assert gradflow.lyapunov_spectrum(cell, x, transient=4).steps == 2


def test_pascanu_bound_of_nan_weights():
    cell = gradflow.Cell("rnn", 2, 3, seed=0)
    cell.params["weight_hh"][0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="weight_hh"):
        gradflow.pascanu_bound(cell)


@pytest.mark.parametrize("source", ["abc", [[1.0, "x"]], {"a": 1}, [0.0, np.nan],
                                    np.array([1 + 2j])])
def test_memory_horizon_of_bad_arrays(source):
    with pytest.raises(InvalidArgumentError):
        gradflow.memory_horizon(source)


def test_memory_horizon_lags_must_increase():
    with pytest.raises(InvalidArgumentError, match="increasing"):
        gradflow.memory_horizon(np.array([0.0, -1.0, -5.0]), lags=[0, 2, 1])


def test_from_torch_refuses_nan_parameters(torch):
    from gradflow.interop import from_torch

    module = torch.nn.LSTM(2, 3)
    with torch.no_grad():
        module.weight_hh_l0[1, 2] = float("nan")
    with pytest.raises(NonFiniteError, match="weight_hh_l0"):
        from_torch(module)


def test_train_json_into_a_missing_folder_fails_before_training(tmp_path, capsys):
    from gradflow.cli import main

    status = main(["train", "adding", "--length", "10", "--max-sequences", "64", "--quiet",
                   "--json", str(tmp_path / "missing" / "out.json")])
    assert status == 2
    err = capsys.readouterr().err
    assert "--json" in err and "does not exist" in err


def test_errors_are_gradflow_errors():
    for exc in (DTypeError, InvalidArgumentError, NonFiniteError, ShapeError, SpecError):
        assert issubclass(exc, GradflowError)
