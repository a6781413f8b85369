"""The symbolic layer against itself by independent routes, and the kernels against it.

* the kernels' one step equals the explicit SymPy step evaluated with ``.subs()``;
* the generated partials equal SymPy's partials evaluated at the same point;
* the explicit one-step Jacobian (SymPy ``Matrix.jacobian``) equals central differences of
  the kernels' step;
* the symbolic blocks (diag factors times weight matrices) evaluated numerically equal
  the explicit Jacobian.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import gradflow
from gradflow import cells
from gradflow.symbolic.jacobian import Diag, explicit_step

from .conftest import assert_close

ALL = cells.names()
N, D = 2, 3  # units and inputs for explicit SymPy matrices


def _point(name, seed):
    cell = gradflow.Cell(name, D, N, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 1, D))
    state0 = tuple(rng.standard_normal((1, N)) for _ in cell.spec.state)
    return cell, x, state0


def _subs(cell, x, state0):
    """A substitution dict for explicit_step's MatrixSymbols."""
    _, sym = explicit_step(cell.spec, N, D)
    values = {sym["x"]: sympy.Matrix(x[0, 0]), **{sym[k]: sympy.Matrix(cell.params[k]) for k in ("weight_ih", "weight_hh")}}
    values[sym["bias_ih"]] = sympy.Matrix(cell.params["bias_ih"])
    values[sym["bias_hh"]] = sympy.Matrix(cell.params["bias_hh"])
    for k, s in enumerate(cell.spec.state):
        values[sym[f"{s}_prev"]] = sympy.Matrix(state0[k][0])
    for p in cell.spec.params:
        values[sym[p]] = sympy.Matrix(cell.params[p])
    return values


def _evaluate(matrix, values):
    out = matrix.subs(values).doit()
    return np.array(out.evalf(30).tolist(), dtype=np.float64)


@pytest.mark.parametrize("name", ALL)
def test_kernel_step_equals_sympy_subs(name):
    cell, x, state0 = _point(name, seed=11)
    new, _ = explicit_step(cell.spec, N, D)
    ref = _evaluate(new, _subs(cell, x, state0)).reshape(len(cell.spec.state), N)
    trace = cell.forward(x, state0)
    assert_close(trace.states[:, 1, 0], ref)


@pytest.mark.parametrize("name", ALL)
def test_generated_partials_equal_sympy_partials(name):
    cell, x, state0 = _point(name, seed=12)
    trace = cell.forward(x, state0)
    spec, k = cell.spec, cell.kernels
    S, G, H = len(spec.state), spec.num_gates, N
    jax = np.empty((S, G, 1, H)); jah = np.empty((S, G, 1, H)); jsp = np.empty((S, S, 1, H))
    a = trace.kernel_arrays()  # writable arrays: the signature the library compiles
    k.partials_units(a["ax"][0], a["ah1"][0], a["ah2"][0], a["states"][:, 0], trace.unit_params(),
                     jax, jah, jsp)
    d = spec.derivation
    P = spec.partials()
    ah = np.concatenate([trace.ah1[0], trace.ah2[0]], axis=1)
    for j in range(H):
        point = {d.ax[g]: trace.ax[0, 0, q * H + j] for q, g in enumerate(spec.gates)}
        point.update({d.ah[g]: ah[0, q * H + j] for q, g in enumerate(spec.gates)})
        point.update({d.prev[s]: state0[q][0, j] for q, s in enumerate(spec.state)})
        point.update({d.params[p]: cell.params[p][j] for p in spec.params})
        for a, s in enumerate(spec.state):
            for q, g in enumerate(spec.gates):
                want = float(P[(s, f"ah_{g}")].subs(point).evalf(30))
                np.testing.assert_allclose(jah[a, q, 0, j], want, rtol=1e-12, atol=1e-14)
                want = float(P[(s, f"ax_{g}")].subs(point).evalf(30))
                np.testing.assert_allclose(jax[a, q, 0, j], want, rtol=1e-12, atol=1e-14)
            for c, s2 in enumerate(spec.state):
                want = float(P[(s, f"{s2}_prev")].subs(point).evalf(30))
                np.testing.assert_allclose(jsp[a, c, 0, j], want, rtol=1e-12, atol=1e-14)


def _step_fd(cell, x, state0, eps=1e-6):
    """Central differences of one kernel step with respect to the stacked previous state."""
    S = len(cell.spec.state)
    flat0 = np.concatenate([s[0] for s in state0])
    cols = []
    for i in range(flat0.size):
        out = []
        for sign in (1, -1):
            v = flat0.copy()
            v[i] += sign * eps
            st = tuple(v[k * N:(k + 1) * N][None] for k in range(S))
            out.append(cell.forward(x, st).states[:, 1, 0].reshape(-1))
        cols.append((out[0] - out[1]) / (2 * eps))
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("name", ALL)
def test_explicit_jacobian_equals_finite_differences(name):
    cell, x, state0 = _point(name, seed=13)
    J = _evaluate(cell.spec.jacobian(hidden_size=N, input_size=D), _subs(cell, x, state0))
    assert_close(J, _step_fd(cell, x, state0), kind="finite_difference")


def _block_value(block, cell, trace):
    """Evaluate a symbolic block's terms numerically at step 0 of `trace`."""
    spec = cell.spec
    d = spec.derivation
    H = N
    ah = np.concatenate([trace.ah1[0, 0], trace.ah2[0, 0]])

    def diag(expr):
        vals = []
        for j in range(H):
            point = {d.ax[g]: trace.ax[0, 0, q * H + j] for q, g in enumerate(spec.gates)}
            point.update({d.ah[g]: ah[q * H + j] for q, g in enumerate(spec.gates)})
            point.update({d.prev[s]: trace.states[q, 0, 0, j] for q, s in enumerate(spec.state)})
            point.update({d.params[p]: cell.params[p][j] for p in spec.params})
            vals.append(float(expr.subs(point).evalf(30)))
        return np.diag(vals)

    def weight(ms):
        kind, gate = ms.name[2], ms.name[3:]
        rows = cell.gate_slice(gate)
        return cell.params["weight_hh" if kind == "h" else "weight_ih"][rows]

    total = np.zeros((H, H))
    for term in block.terms:
        m = np.eye(H)
        for f in term:
            m = m @ (diag(f.expr) if isinstance(f, Diag) else weight(f))
        total = total + m
    return total


@pytest.mark.parametrize("name", ALL)
def test_symbolic_blocks_equal_explicit_jacobian(name):
    cell, x, state0 = _point(name, seed=14)
    trace = cell.forward(x, state0)
    J = _evaluate(cell.spec.jacobian(hidden_size=N, input_size=D), _subs(cell, x, state0))
    blocks = cell.spec.jacobian()
    for a, s in enumerate(cell.spec.state):
        for c, s2 in enumerate(cell.spec.state):
            got = _block_value(blocks[(s, s2)], cell, trace)
            assert_close(got, J[a * N:(a + 1) * N, c * N:(c + 1) * N], err_msg=f"d{s}/d{s2}")


def test_lstm_blocks_are_the_textbook_ones():
    """docs/references.md, LSTM without peepholes: the four one-step blocks, term by term."""
    spec = cells.get("lstm")
    J = spec.jacobian()
    f, i, g, o, c = sympy.symbols("f i g o c", real=True)
    cp = sympy.Symbol("c_prev", real=True)
    compact = {key: [(sympy.simplify(spec.compact(t[0].expr)), tuple(m.name for m in t[1:])) for t in b.terms] for key, b in J.items()}
    assert compact[("c", "c")] == [(f, ())]
    assert dict((w, e) for e, w in compact[("c", "h")]) == {
        ("W_hi",): g * i * (1 - i), ("W_hf",): cp * f * (1 - f), ("W_hg",): i * (1 - g**2)}
    tanh_c = sympy.tanh(c)
    assert sympy.simplify(compact[("h", "c")][0][0] - o * (1 - tanh_c**2) * f) == 0
    hh = dict((w, e) for e, w in compact[("h", "h")])
    assert sympy.simplify(hh[("W_ho",)] - tanh_c * o * (1 - o)) == 0
    for w, e_c in ((("W_hi",), g * i * (1 - i)), (("W_hf",), cp * f * (1 - f)), (("W_hg",), i * (1 - g**2))):
        assert sympy.simplify(hh[w] - o * (1 - tanh_c**2) * e_c) == 0


def test_nfg_direct_edge_is_identity_and_gru_leak_is_z():
    assert cells.get("lstm-nfg").jacobian()[("c", "c")].direct == 1
    gru = cells.get("gru")
    z = gru.derivation.full["z"]
    assert sympy.simplify(gru.jacobian()[("h", "h")].direct - z) == 0


def test_latex_renders_every_cell():
    for name in ALL:
        spec = cells.get(name)
        tex = spec.latex()
        assert tex.count(r"\begin{aligned}") == 2
        for s in spec.state:
            assert f"{s}_{{t}} &=" in tex
        assert r"\frac{\partial h_{t}}{\partial h_{t-1}}" in spec.jacobian().latex()
