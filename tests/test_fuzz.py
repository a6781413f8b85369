"""A fuzzer over the public API and the command line.

Hypothesis draws arguments for every public function and command: mostly valid ones, and
wrong types, shapes, dtypes and sizes, NaN and infinities, huge numbers, and equation
strings from a grammar with attribute access, subscripts, dunder names and calls of
builtins.  Every call must return a correct result (checked against an independent
reference where one is cheap) or raise a :class:`~gradflow.GradflowError`: never another
exception, a crash, a hang, a file written outside the folders it was given, or code run
from an equation.

Examples per test: ``GRADFLOW_FUZZ_EXAMPLES`` (default 25; CI uses the default).
"""

from __future__ import annotations

import contextlib
import os
import signal
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradflow
from gradflow import cells
from gradflow.errors import GradflowError

from . import naive

EXAMPLES = int(os.environ.get("GRADFLOW_FUZZ_EXAMPLES", "25"))
# no "explain" phase: it re-runs a failing example under sys.settrace, many times slower
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])
#: seconds one call may take before it counts as a hang
LIMIT = 120
NAIVE = [n for n in cells.names() if n in ("rnn", "rnn-relu", "rnn-linear", "lstm", "lstm-nfg",
                                           "lstm-peephole", "lstm-cifg", "gru", "gru-cho", "mgu")]


class Hang(BaseException):
    """A call ran past :data:`LIMIT` seconds."""


@contextlib.contextmanager
def time_limit(seconds=LIMIT):
    def fire(signum, frame):
        raise Hang(f"a call ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def call(fn, *args, **kwargs):
    """fn(*args, **kwargs), or None when it raised a GradflowError (anything else fails)."""
    with time_limit():
        try:
            return fn(*args, **kwargs)
        except GradflowError:
            return None


# ---------------------------------------------------------------- values
SPECIAL = st.sampled_from([
    None, True, False, 0, -1, 1.5, -0.0, float("nan"), float("inf"), -float("inf"), 10 ** 30,
    2 ** 63, -(2 ** 63), 1e308, "", "lstm", "x" * 300, b"bytes", [], [1, 2], (), {}, {"h": 1},
    object(), np.float32(1.0), np.int64(3), np.bool_(True), np.array([]), np.array("s"),
    np.array([1 + 2j]), np.array([None], dtype=object), slice(1, 2), Path("/"), 1j,
])
JUNK = st.one_of(
    SPECIAL, st.integers(), st.floats(), st.text(max_size=6), st.lists(st.integers(-3, 3), max_size=3),
    hnp.arrays(st.sampled_from([np.float64, np.float32, np.int32, np.int8, np.bool_, np.complex64,
                                np.float16, np.uint64]),
               hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=3)),
)

#: junk for arguments that count work (examples, steps, sequences): a huge count is a long
#: computation the caller asked for, not a bad input, so none are drawn
JUNK_COUNT = st.one_of(
    st.sampled_from([None, True, 0, -1, 1.5, float("nan"), "", "3", [], {}, object(), np.array([2])]),
    st.integers(-3, 0), st.floats(), st.text(max_size=3))


def maybe(valid, junk=JUNK):
    """Mostly `valid`, sometimes junk."""
    return st.one_of(valid, valid, valid, junk)


def floats_with_specials(dtype):
    return st.one_of(st.floats(-3, 3, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30]))


def sequences(T, B, D, dtype=np.float64, specials=True):
    """Inputs of shape (T, B, D): small values, sometimes NaN, inf or huge."""
    elements = floats_with_specials(dtype) if specials else st.floats(-3, 3, width=32)
    return hnp.arrays(dtype, (T, B, D), elements=elements)


NAMES = st.sampled_from(cells.names())
SIZES = st.integers(1, 3)
HUGE = st.sampled_from([0, -3, 10 ** 6, 10 ** 9, 2 ** 62])
DTYPES = st.sampled_from([np.float64, np.float32])


@st.composite
def cells_(draw, names=NAMES):
    name = draw(names)
    D, H = draw(SIZES), draw(SIZES)
    dtype = draw(DTYPES)
    cell = gradflow.Cell(name, D, H, dtype=dtype, seed=draw(st.integers(0, 5)))
    return cell


@st.composite
def cell_and_input(draw, names=NAMES, specials=True):
    cell = draw(cells_(names))
    T, B = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    x = draw(sequences(T, B, cell.input_size, cell.dtype, specials))
    return cell, x


# ---------------------------------------------------------------- the cell
@FUZZ
@given(name=maybe(NAMES), D=maybe(SIZES, st.one_of(JUNK, HUGE)), H=maybe(SIZES, st.one_of(JUNK, HUGE)),
       dtype=maybe(DTYPES), seed=maybe(st.integers(0, 9)), forget_bias=maybe(st.none() | st.floats(-5, 5)),
       init=maybe(st.sampled_from(["pytorch", "orthogonal"])),
       spectral_radius=maybe(st.none() | st.floats(0, 3)))
def test_cell_construction(name, D, H, dtype, seed, forget_bias, init, spectral_radius):
    cell = call(gradflow.Cell, name, D, H, dtype=dtype, seed=seed, forget_bias=forget_bias,
                init=init, spectral_radius=spectral_radius)
    if cell is not None:
        assert repr(cell).startswith("Cell(")
        shapes = cell.param_shapes()
        assert {k: v.shape for k, v in cell.params.items()} == shapes
        assert all(v.dtype == cell.dtype and np.isfinite(v).all() for v in cell.params.values())


@FUZZ
@given(data=st.data())
def test_forward_and_backward(data):
    cell, x = data.draw(cell_and_input(st.sampled_from(NAIVE)))
    x = data.draw(maybe(st.just(x)))
    S, H = len(cell.spec.state), cell.hidden_size
    state0 = data.draw(maybe(st.none() | st.just(tuple(np.zeros((S, 1, H), cell.dtype)))))
    trace = call(cell.forward, x, state0)
    if trace is None:
        return
    # correct: the slow NumPy loop written from the papers
    s0 = [np.zeros((trace.batch_size, H))] * S if state0 is None else [np.repeat(s, trace.batch_size, 0) for s in state0]
    want = naive.forward(cell.spec.name, {k: v.astype(np.float64) for k, v in cell.params.items()},
                         np.asarray(x, np.float64), s0)
    tol = 1e-10 if cell.dtype == np.float64 else 2e-4
    np.testing.assert_allclose(trace.states, want, rtol=tol, atol=tol)
    dh = data.draw(maybe(st.just(np.ones(trace.h.shape, cell.dtype)) | st.none()))
    dstate = data.draw(maybe(st.none() | st.just({"h": np.ones((trace.batch_size, H), cell.dtype)})))
    grads = call(cell.backward, trace, dh, dstate)
    if grads is not None:
        assert set(grads.params) == set(cell.params)
        assert grads.x.shape == trace.x.shape
    name = data.draw(maybe(st.sampled_from(list(cell.spec.intermediates) + list(cell.spec.state))))
    for method in (trace.intermediate, trace.component):
        out = call(method, name)
        if out is not None:
            assert out.shape == trace.h.shape
    t0, t1 = data.draw(maybe(st.integers(-1, 7))), data.draw(maybe(st.integers(-1, 7)))
    piece = call(trace.slice, t0, t1)
    if piece is not None:
        np.testing.assert_array_equal(piece.h, trace.h[t0:t1])


@FUZZ
@given(data=st.data())
def test_trace_from_arrays(data):
    cell, x = data.draw(cell_and_input(specials=False))
    trace = cell.forward(x)
    arrays = [trace.x, trace.states, trace.ax, trace.ah1, trace.ah2, trace.u]
    k = data.draw(st.integers(0, 5))
    other = data.draw(JUNK | hnp.arrays(st.sampled_from([np.float64, np.float32]),
                                        hnp.array_shapes(min_dims=1, max_dims=4, max_side=4)))
    arrays[k] = other
    rebuilt = call(gradflow.Trace, cell, *arrays)
    if rebuilt is not None:
        call(rebuilt.intermediate, data.draw(st.sampled_from(list(cell.spec.intermediates) or ["h"])))
        call(cell.backward, rebuilt, np.ones(rebuilt.h.shape, cell.dtype))


# ---------------------------------------------------------------- gradient flow
@FUZZ
@given(data=st.data())
def test_flow_functions(data):
    cell, x = data.draw(cell_and_input())
    x = data.draw(maybe(st.just(x)))
    T = data.draw(st.integers(0, 8))
    lags = data.draw(maybe(st.none() | st.lists(st.integers(-1, T), min_size=1, max_size=4)))
    norm = data.draw(maybe(st.sampled_from(["spectral", "frobenius"])))
    flow = call(gradflow.gradient_flow, cell, x, lags=lags, norm=norm,
                state=data.draw(maybe(st.booleans())))
    if flow is not None:
        assert not np.isnan(flow.log10_h).any()
        if flow.lags[0] == 0 and flow.norm == "spectral":
            np.testing.assert_allclose(flow.log10_h[0], 0.0, atol=1e-12)  # the identity
    call(gradflow.state_jacobians, cell, x)
    pd = call(gradflow.path_decomposition, cell, x, component=data.draw(maybe(st.none() | st.sampled_from(["h", "c"]))),
              lags=lags, norm=norm)
    if pd is not None:
        assert not np.isnan(pd.log10_path).any()
    call(gradflow.jacobian_singular_values, cell, x, data.draw(maybe(st.integers(0, 3))),
         block=data.draw(maybe(st.none() | st.just(("h", "h")))))
    call(gradflow.lyapunov_spectrum, cell, x,
         transient=data.draw(maybe(st.none() | st.integers(0, 5), JUNK_COUNT)),
         n_exponents=data.draw(maybe(st.none() | st.integers(1, 4), JUNK_COUNT)),
         window=data.draw(maybe(st.none() | st.integers(1, 3), JUNK_COUNT)),
         tol=data.draw(maybe(st.just(1e-3))))
    call(gradflow.pascanu_bound, data.draw(maybe(st.just(cell))))
    call(gradflow.memory_horizon, data.draw(maybe(st.just(flow) | st.just(pd) | hnp.arrays(
        np.float64, st.integers(1, 5), elements=st.floats(-10, 0)))),
        threshold=data.draw(maybe(st.floats(1e-6, 1.0))))


# ---------------------------------------------------------------- equations
IDENTS = st.sampled_from(["ax_a", "ah_a", "h_prev", "c_prev", "u", "p", "x", "b", "W", "__class__",
                          "__import__", "__builtins__", "open", "eval", "exec", "Symbol", "os",
                          "sympy", "self", "globals", "lambda_", "None", "True"])
FUNCS = st.sampled_from(["sigmoid", "tanh", "exp", "log", "relu", "step", "sin", "eval", "exec",
                         "__import__", "getattr", "open", "print", "Symbol", "Function"])


def expressions(depth=3):
    leaf = st.one_of(IDENTS, st.integers(-10 ** 20, 10 ** 20).map(str),
                     st.floats(allow_nan=False).map(repr), st.sampled_from(["1e400", "0", "'s'", "[1]", "...", "1j"]))
    if depth == 0:
        return leaf
    sub = expressions(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "**", "%", "//", "@", "<", " and ", " if 1 else "]), sub)
        .map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(FUNCS, st.lists(sub, min_size=0, max_size=2)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(sub, st.sampled_from(["__class__", "__globals__", "real", "func", "args", "__mro__"]))
        .map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(sub, sub).map(lambda t: f"{t[0]}[{t[1]}]"),
        sub.map(lambda e: f"-{e}"),
    )


@FUZZ
@given(eqs=st.lists(st.tuples(st.sampled_from(["h", "c", "u", "f", "g", "h"]), expressions()), min_size=1, max_size=3),
       gates=maybe(st.sampled_from(["a", "a b", "i f g o"])), state=maybe(st.sampled_from([("h",), ("h", "c")])),
       params=maybe(st.sampled_from([(), ("p",)])),
       name=maybe(st.text(string.ascii_letters + string.digits + "-_.\"'\n ", min_size=1, max_size=12)))
def test_define_cell_never_runs_equations(eqs, gates, state, params, name, tmp_path_factory):
    folder = tmp_path_factory.mktemp("eq")
    old = os.getcwd()
    os.chdir(folder)
    try:
        text = "\n".join(f"{lhs} = {rhs}" for lhs, rhs in eqs)
        spec = call(gradflow.define_cell, name, gates=gates, equations=text, state=state,
                    params=params, register=False)
        if spec is not None:
            spec.partials()
            call(spec.latex)
    finally:
        os.chdir(old)
    assert os.listdir(folder) == []


# ---------------------------------------------------------------- tasks, training, interop, checkers
@FUZZ
@given(name=maybe(st.sampled_from(gradflow.train.tasks.names())), length=maybe(st.integers(1, 30), st.one_of(JUNK, HUGE)),
       n=maybe(st.integers(1, 4), JUNK_COUNT), seed=maybe(st.integers(0, 3)))
def test_tasks(name, length, n, seed):
    reber = isinstance(name, str) and name == "reber"
    task = call(gradflow.train.tasks.get, name) if reber else call(gradflow.train.tasks.get, name, length=length)
    if task is not None:
        batch = call(task.batch, n, seed)
        if batch is not None:
            assert batch.x.shape[1] == batch.size and np.isfinite(batch.x).all()


@FUZZ
@given(data=st.data())
def test_train(data):
    task = gradflow.train.tasks.get("adding", length=data.draw(st.integers(20, 24)))
    cell = data.draw(maybe(st.just(gradflow.Cell(data.draw(st.sampled_from(["lstm", "gru", "rnn"])),
                                                 task.input_size, 3, seed=0))))
    result = call(gradflow.train.train, cell, data.draw(maybe(st.just(task) | st.just("adding"))),
                  batch_size=data.draw(maybe(st.integers(1, 8), JUNK_COUNT)),
                  max_sequences=data.draw(maybe(st.integers(1, 40), JUNK_COUNT)),
                  optimizer=data.draw(maybe(st.sampled_from(["adam", "sgd"]))),
                  lr=data.draw(maybe(st.floats(1e-4, 0.1))),
                  clip=data.draw(maybe(st.none() | st.floats(0.1, 10))),
                  seed=data.draw(maybe(st.integers(0, 3))), window=data.draw(maybe(st.integers(1, 50), JUNK_COUNT)),
                  test_size=data.draw(maybe(st.integers(0, 16), JUNK_COUNT)), probes=data.draw(maybe(st.integers(0, 2), JUNK_COUNT)),
                  verbose=False)
    if result is not None:
        assert np.isfinite(result.history["loss"]).all()


@FUZZ
@given(data=st.data())
def test_interop(data, torch):
    from gradflow.interop import from_torch, to_torch

    nn = torch.nn
    module = data.draw(maybe(st.sampled_from([
        nn.LSTM(2, 3), nn.GRU(2, 3), nn.RNN(2, 3), nn.RNN(2, 3, nonlinearity="relu"),
        nn.LSTM(2, 3, num_layers=2), nn.LSTM(2, 3, bidirectional=True), nn.LSTM(2, 3, bias=False),
        nn.LSTM(2, 3, proj_size=2), nn.Linear(2, 3), nn.LSTM(2, 3).double(), nn.GRU(2, 3).half(),
    ])))
    cell = call(from_torch, module)
    if cell is not None:
        back = call(to_torch, cell)
        if back is not None:
            x = torch.zeros(2, 1, 2, dtype=next(back.parameters()).dtype)
            want = module(x.to(next(module.parameters()).dtype))[0].detach().double().numpy()
            trace = cell.forward(np.zeros((2, 1, 2), cell.dtype))
            # a multi-layer or bidirectional module comes back as a Network
            got = trace.output if isinstance(cell, gradflow.Network) else trace.h
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    call(to_torch, data.draw(maybe(cells_())))


@FUZZ
@given(data=st.data())
def test_checkers(data):
    from gradflow import testing

    cell, x = data.draw(cell_and_input(st.sampled_from(["rnn", "lstm", "gru"]), specials=True))
    call(testing.check_grads, data.draw(maybe(st.just(cell))), data.draw(maybe(st.just(x))),
         raise_on_failure=False)
    call(testing.check_identities, data.draw(maybe(st.sampled_from(["rnn", "lstm", "gru"]))),
         examples=data.draw(maybe(st.integers(1, 2), JUNK_COUNT)), raise_on_failure=False)
    from tests.user_impls import numpy_step

    call(testing.check_implementation, data.draw(maybe(st.just(numpy_step.lstm_step))),
         data.draw(maybe(st.sampled_from(["lstm", "gru", "rnn"]))),
         examples=data.draw(maybe(st.integers(1, 2), JUNK_COUNT)), raise_on_failure=False)


# ---------------------------------------------------------------- reports and the command line
FAST_STUDY = '''
import numpy as np
from gradflow.report import Figure, Section
from gradflow.report.style import new_figure
TITLE = "fast"
def run(config):
    fig, ax = new_figure()
    ax.plot([0, 1, 2], [0.0, 1.0, config.seed])
    ax.set_xlabel("lag (steps)")
    ax.set_ylabel("value (1)")
    return Section(key="fast", title=TITLE, text="t",
                   figures=[Figure("f", fig, "c.", {"x": [0, 1, 2], "y": [0.0, 1.0, config.seed]})])
'''


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    studies = root / "fuzz_studies"
    studies.mkdir()
    (studies / "__init__.py").write_text("")
    (studies / "fast.py").write_text(FAST_STUDY)
    work = root / "work"
    work.mkdir()
    return root, studies, work


def _files(folder: Path) -> set:
    return {p for p in folder.rglob("*")}


@FUZZ
@given(data=st.data())
def test_run_report(data, sandbox):
    from gradflow.report.runner import run_report

    root, studies, work = sandbox
    out = data.draw(maybe(st.sampled_from(["out", "out/nested", "", ".", "file.txt"])))
    (work / "file.txt").write_text("keep")
    before = _files(root)
    result = call(run_report, work / out if isinstance(out, str) else out, folder=studies,
                  only=data.draw(maybe(st.none() | st.just(["fast"]) | st.just(["nope"]))),
                  seed=data.draw(maybe(st.integers(0, 3))),
                  formats=data.draw(maybe(st.sampled_from([("md",), ("md", "html"), ("pdf",)]))),
                  n_jobs=data.draw(maybe(st.integers(1, 2))), progress=False)
    new = {p for p in _files(root) - before if "__pycache__" not in p.parts}
    if result is not None:
        allowed = result.out.resolve()
        assert all(p.resolve() == allowed or allowed in p.resolve().parents for p in new), new
    else:
        assert new == set(), new
    assert (work / "file.txt").read_text() == "keep"


def argv_strategy():
    number = st.one_of(st.integers(-2, 3).map(str), st.sampled_from(["x", "1e9", "nan", "", "-1", "0.5"]))
    train = st.tuples(
        st.just("train"), maybe(st.sampled_from(gradflow.train.tasks.names()), st.text(max_size=4)),
        st.lists(st.sampled_from([["--length", "5"], ["--hidden", "3"], ["--batch", "4"],
                                  ["--cell", "gru"], ["--cell", "nope"], ["--optimizer", "sgd"],
                                  ["--lr", "0.01"], ["--clip", "0"], ["--seed", "1"],
                                  ["--test-size", "8"], ["--window", "4"], ["--json", "out.json"],
                                  ["--json", "missing/out.json"], ["--forget-bias", "1"],
                                  ["--input-bias", "-1"], ["--length"], ["--bogus"]]), max_size=4),
        st.lists(st.sampled_from(["--length", "--hidden", "--batch", "--lr", "--seed", "--test-size",
                                  "--window", "--max-sequences"]), max_size=2), number,
    ).map(lambda t: [t[0], t[1], *[a for pair in t[2] for a in pair],
                     *[a for flag in t[3] for a in (flag, t[4])],
                     "--max-sequences", "32", "--max-seconds", "5", "--quiet"])
    verify = st.tuples(st.just("verify"), st.sampled_from(
        ["rnn", "lstm", "nope", "x:y", ":", "a:b:c", "tests/user_impls/missing.py:f",
         "tests.user_impls.numpy_step:lstm_step", "tests.user_impls.numpy_step:nothing", ""]),
        st.lists(st.sampled_from([["--examples", "1"], ["--examples", "0"], ["--examples", "x"],
                                  ["--kind", "lstm"], ["--kind", "bogus"], ["--seed", "2"]]), max_size=2),
    ).map(lambda t: [t[0], t[1], "--examples", "1", *[a for pair in t[2] for a in pair]])
    report = st.lists(st.sampled_from([["--out", "rep"], ["--out", "file.txt"], ["--out", ""],
                                       ["--only", "fast"], ["--only", "nope"], ["--format", "md"],
                                       ["--format", "pdf"], ["--jobs", "0"], ["--jobs", "x"],
                                       ["--seed", "-1"], ["--quick"], ["--bogus"]]), max_size=3
                      ).map(lambda parts: ["report", "--no-progress", "--out", "rep",
                                           *[a for p in parts for a in p]])
    cells_cmd = st.sampled_from([["cells"], ["cells", "lstm"], ["cells", "LSTM"], ["cells", "nope"],
                                 ["cells", "gru", "--latex"]])
    other = st.lists(st.text(string.printable, max_size=8), max_size=3)
    return st.one_of(train, verify, report, cells_cmd, other)


@FUZZ
@given(argv=argv_strategy())
def test_command_line(argv, sandbox, monkeypatch, capsys):
    from gradflow.cli import main

    root, studies, work = sandbox
    (work / "file.txt").write_text("keep")
    monkeypatch.chdir(work)
    if argv[:1] == ["report"]:
        argv = [*argv, "--studies", str(studies)]
    before = _files(root)
    with time_limit():
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: usage errors and --help
            code = exc.code
    capsys.readouterr()
    assert code in (0, 1, 2), (argv, code)
    new = {p.relative_to(work).parts[0] for p in _files(root) - before
           if work in p.parents and "__pycache__" not in p.parts}
    assert new <= {"rep", "out.json"}, (argv, new)
    assert (work / "file.txt").read_text() == "keep"


# ---------------------------------------------------------------- networks
@st.composite
def networks(draw):
    """A small network, its input in its own layout (sometimes junk) and its output size."""
    kind = draw(st.sampled_from(["rnn", "lstm", "gru", "mgu", "lstm-peephole"]))
    L = draw(st.integers(1, 2))
    sizes = draw(st.one_of(SIZES, st.lists(SIZES, min_size=L, max_size=L)))
    net = gradflow.Network(kind, draw(SIZES), sizes, num_layers=L if isinstance(sizes, int) else 1,
                           bidirectional=draw(st.booleans()), batch_first=draw(st.booleans()),
                           dtype=draw(DTYPES), seed=draw(st.integers(0, 3)))
    T, B = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    x = draw(sequences(T, B, net.input_size, net.dtype, specials=False))
    x = x.swapaxes(0, 1) if net.batch_first else x
    return net, draw(maybe(st.just(np.ascontiguousarray(x)))), (T, B)


@FUZZ
@given(kind=maybe(st.sampled_from(["lstm", "gru", "rnn"]) | NAMES),
       D=maybe(SIZES, st.one_of(JUNK, HUGE)),
       hidden=maybe(SIZES | st.lists(SIZES, min_size=1, max_size=3), st.one_of(JUNK, HUGE)),
       # a million layers is a long computation the caller asked for; 2**62 is impossible
       layers=maybe(st.integers(1, 3), st.one_of(JUNK_COUNT, st.sampled_from([2 ** 62, 10 ** 15]))),
       options=st.fixed_dictionaries({}, optional={
           "bidirectional": maybe(st.booleans()), "bias": maybe(st.booleans()),
           "batch_first": maybe(st.booleans()), "dtype": maybe(DTYPES),
           "seed": maybe(st.integers(0, 9)), "forget_bias": maybe(st.none() | st.floats(-5, 5)),
           "dropout": maybe(st.floats(0, 1))}))
def test_network_construction(kind, D, hidden, layers, options):
    net = call(gradflow.Network, kind, D, hidden, layers, **options)
    if net is not None:
        sizes = [hidden] * layers if isinstance(hidden, int) else list(hidden)
        assert net.hidden_sizes == tuple(sizes) and net.input_size == D
        dirs = 2 if net.bidirectional else 1
        assert net.output_size == dirs * sizes[-1]
        for name, value in net.params.items():
            assert np.isfinite(value).all(), name


@FUZZ
@given(data=st.data())
def test_network_passes_and_flow(data):
    net, x, (T, B) = data.draw(networks())
    trace = call(net.forward, x)
    if trace is not None:
        out = trace.output
        assert out.shape == ((B, T) if net.batch_first else (T, B)) + (net.output_size,)
        assert np.isfinite(out).all()
        dout = data.draw(maybe(st.just(np.ones_like(out))))
        grads = call(net.backward, trace, dout)
        if grads is not None:
            assert np.isfinite(grads.x).all() and grads.x.shape == np.shape(x)
    lags = data.draw(maybe(st.none() | st.lists(st.integers(-1, T + 1), min_size=1, max_size=3)))
    flow = call(gradflow.network_flow, net, x, lags=lags,
                norm=data.draw(maybe(st.sampled_from(["spectral", "frobenius"]))))
    if flow is not None:
        assert flow.log10_lag.shape[:2] == (net.num_layers, 2 if net.bidirectional else 1)
        assert not np.isnan(flow.log10_lag[:, 0]).any()   # only reverse directions have NaN
        if flow.lags[0] == 0 and flow.norm == "spectral":
            # d y_T / d h^{L,forward}_T is the identity (stacked over a zero block): norm 1
            np.testing.assert_allclose(flow.log10_lag[-1, 0, 0], 0.0, atol=1e-6)
    call(gradflow.network_paths, net, x, lags=lags,
         threshold=data.draw(maybe(st.floats(1e-9, 0.5))),
         total=data.draw(maybe(st.booleans())))
    call(gradflow.network_lyapunov, net, x,
         transient=data.draw(maybe(st.none() | st.integers(0, 3), JUNK_COUNT)),
         n_exponents=data.draw(maybe(st.none() | st.integers(1, 3), JUNK_COUNT)),
         interval=data.draw(maybe(st.none() | st.integers(1, 3), JUNK_COUNT)))


# ---------------------------------------------------------------- sweeps
@FUZZ
@given(grid=maybe(st.dictionaries(st.sampled_from(["i", "b", "lag"]),
                                  st.lists(st.integers(0, 3), min_size=1, max_size=3),
                                  min_size=1, max_size=2)
                  | st.lists(st.fixed_dictionaries({"i": st.integers(0, 3)}), max_size=3)),
       options=st.fixed_dictionaries({}, optional={
           "seed": maybe(st.integers(0, 3)), "n_jobs": maybe(st.just(1)),
           "executor": maybe(st.sampled_from(["serial", "joblib", "spark"])),
           "stop_on_error": maybe(st.booleans()), "tables": maybe(st.booleans()),
           "batch_size": maybe(st.none() | st.integers(1, 3), JUNK_COUNT)}))
def test_sweep(grid, options):
    from .sweep_points import number_point

    options = {k: v for k, v in options.items() if not (k == "executor" and isinstance(v, str) and v == "joblib")}
    result = call(gradflow.sweep, number_point, grid, progress=False, **options)
    if result is not None:
        n = len(grid) if isinstance(grid, list) else int(np.prod([len(v) for v in grid.values()]))
        assert len(result.results) == n
        points = list(gradflow.sweeps.points_of(grid))
        for point, value in zip(points, result.results):
            if "i" in point:       # without "i" the point fails, and the sweep goes on
                assert value == point["i"] / 2


# ---------------------------------------------------------------- model files
TRAINED = Path(__file__).resolve().parents[1] / "analysis" / "trained_model" / "lstm_initial.pt"


@FUZZ
@given(data=st.data())
def test_read_state_dict_of_damaged_files(data, tmp_path_factory):
    """A real torch.save file, truncated or with bytes changed: tensors or a GradflowError,
    never code run from the file (the restricted unpickler) nor another exception."""
    from gradflow.interop import read_state_dict

    blob = bytearray(TRAINED.read_bytes())
    how = data.draw(st.sampled_from(["truncate", "flip", "splice", "junk"]))
    if how == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            # mostly in the zip's directories and the pickle, at the ends of the file
            i = data.draw(st.one_of(st.integers(0, 2000), st.integers(len(blob) - 2000, len(blob) - 1)))
            blob[i] = data.draw(st.integers(0, 255))
    elif how == "splice":
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=64))
    else:
        blob = bytearray(data.draw(st.binary(max_size=256)))
    path = tmp_path_factory.mktemp("pt") / "model.pt"
    path.write_bytes(bytes(blob))
    state = call(read_state_dict, path)
    if state is not None:
        assert all(isinstance(v, np.ndarray) for v in state.values())


def _analyze_sandbox(work: Path) -> None:
    """A tiny model, inputs and targets in `work`, for the analyze command's fuzzing."""
    net = gradflow.Network("lstm", 2, 3, num_layers=2, seed=0)
    np.savez(work / "model.npz", **dict(net.params.items()))
    rng = np.random.default_rng(0)
    np.save(work / "x.npy", rng.standard_normal((6, 2, 2)))
    np.save(work / "x_bad.npy", rng.standard_normal((6, 2, 5)))
    np.save(work / "y.npy", rng.standard_normal((2, 3)))
    (work / "model.pt").write_bytes(b"not a zip")


@FUZZ
@given(parts=st.lists(st.sampled_from([
    ["--data", "x.npy"], ["--data", "x_bad.npy"], ["--data", "missing.npy"], ["--data", "file.txt"],
    ["--targets", "y.npy"], ["--targets", "x.npy"], ["--layout", "btd"], ["--layout", "bogus"],
    ["--loss", "cross-entropy"], ["--loss", "hinge"], ["--readout", "head"], ["--kind", "gru"],
    ["--forget-bias", "2"], ["--forget-bias", "nan"], ["--length", "0"], ["--length", "4"],
    ["--batch", "2"], ["--threshold", "2"], ["--exponents", "2"], ["--exponents", "-1"],
    ["--seed", "x"], ["--format", "md"], ["--format", "pdf"], ["--out", "file.txt"],
    ["--out", ""], ["--trust-pickle"], ["--bogus"]]), max_size=3),
       model=st.sampled_from(["model.npz", "model.npz", "model.pt", "missing.pt", "file.txt", "x.npy"]))
def test_analyze_command_line(parts, model, sandbox, monkeypatch, capsys):
    from gradflow.cli import main

    root, _, work = sandbox
    if not (work / "model.npz").exists():
        _analyze_sandbox(work)
    (work / "file.txt").write_text("keep")
    monkeypatch.chdir(work)
    argv = ["analyze", model, "--no-progress", "--length", "5", "--batch", "2", "--exponents", "2",
            "--out", "rep", *[a for p in parts for a in p]]
    before = _files(root)
    with time_limit():
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    capsys.readouterr()
    assert code in (0, 2), (argv, code)
    new = {p.relative_to(work).parts[0] for p in _files(root) - before
           if work in p.parents and "__pycache__" not in p.parts}
    assert new <= {"rep"}, (argv, new)
    assert (work / "file.txt").read_text() == "keep"
