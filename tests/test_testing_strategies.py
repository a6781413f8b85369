"""gradflow.testing.strategies: what they draw, eager validation, the hypothesis plugin."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradflow
from gradflow.errors import InvalidArgumentError
from gradflow.testing import strategies as gst


@settings(max_examples=30)
@given(gst.cells(names=["lstm", "gru", "rnn"], input_size=(2, 3), hidden_size=(1, 4),
                 dtype=(np.float64, np.float32), scale=(0.5, 2.0), forget_bias=(1.0, 1.0)))
def test_cells_respect_sizes_dtype_scale_and_forget_bias(cell):
    assert cell.spec.name in ("lstm", "gru", "rnn")
    assert 2 <= cell.input_size <= 3 and 1 <= cell.hidden_size <= 4
    assert all(v.dtype == cell.dtype for v in cell.params.values())
    bound = 2.0 / np.sqrt(cell.hidden_size) * (1 + 1e-6)   # PyTorch's init times scale <= 2
    assert np.abs(cell.params["weight_ih"]).max() <= bound
    if cell.spec.forget_gate is not None:
        rows = cell.gate_slice(cell.spec.forget_gate)
        np.testing.assert_array_equal(cell.params["bias_ih"][rows], 1.0)
        np.testing.assert_array_equal(cell.params["bias_hh"][rows], 0.0)


@settings(max_examples=20)
@given(gst.cells(names=["lstm", "gru"], spectral_radius=(0.3, 1.7), hidden_size=(2, 4)))
def test_cells_spectral_radius_of_each_gate_block(cell):
    H = cell.hidden_size
    W = cell.params["weight_hh"]
    radii = [np.max(np.abs(np.linalg.eigvals(W[g * H:(g + 1) * H]))) for g in range(cell.spec.num_gates)]
    np.testing.assert_allclose(radii, radii[0], rtol=1e-9)
    assert 0.3 - 1e-9 <= radii[0] <= 1.7 + 1e-9


@settings(max_examples=20)
@given(gst.cells(zero_recurrence=True))
def test_cells_zero_recurrence(cell):
    assert not cell.params["weight_hh"].any()


@settings(max_examples=30)
@given(gst.cell_inputs(cells=gst.cells(dtype=(np.float64, np.float32)), length=(2, 5),
                       batch_size=(1, 3), x_scale=0.5, state_scale=0.25))
def test_cell_inputs_match_their_cell(case):
    cell, x, s0 = case
    T, B, D = x.shape
    assert 2 <= T <= 5 and 1 <= B <= 3 and D == cell.input_size
    assert x.dtype == cell.dtype and np.abs(x).max() <= 0.5
    assert len(s0) == len(cell.spec.state)
    for s in s0:
        assert s.shape == (B, cell.hidden_size) and s.dtype == cell.dtype
        assert np.abs(s).max() <= 0.25
    assert np.isfinite(cell.forward(x, s0).h).all()


@settings(max_examples=20)
@given(gst.cell_names(family="lstm", exclude=["lstm-peephole"]))
def test_cell_names_family_and_exclude(name):
    assert name.startswith("lstm") and name != "lstm-peephole"


@pytest.mark.parametrize("make, match", [
    (lambda: gst.cell_names(include=["lstmm"]), "unknown cell 'lstmm'"),
    (lambda: gst.cell_names(family="transformer"), "`family` must be one of"),
    (lambda: gst.cell_names(include=["gru"], family="lstm"), "no cell left"),
    (lambda: gst.cells(hidden_size=0), "`hidden_size` must satisfy"),
    (lambda: gst.cells(input_size=(3, 2)), "`input_size` must satisfy"),
    (lambda: gst.cells(input_size=2.5), "`input_size` must be an int"),
    (lambda: gst.cells(scale=(-1.0, 1.0)), "`scale` must be finite"),
    (lambda: gst.cells(spectral_radius=float("nan")), "`spectral_radius` must be finite"),
    (lambda: gst.cells(forget_bias="high"), "`forget_bias` must be a number"),
    (lambda: gst.cells(dtype=np.int32), "`dtype` must be numpy.float64 or numpy.float32"),
    (lambda: gst.cells(zero_recurrence=1), "`zero_recurrence` must be True or False"),
    (lambda: gst.sequences(input_size=(1, 2)), "`input_size` must be an int"),
    (lambda: gst.sequences(input_size=2, length=(0, 3)), "`length` must satisfy"),
    (lambda: gst.states("lstm"), "`cell` must be a gradflow.Cell"),
    (lambda: gst.cell_inputs(cells=[1, 2]), "`cells` must be a hypothesis strategy"),
])
def test_options_are_validated_when_the_strategy_is_built(make, match):
    """Eager validation: the error comes from building the strategy, not from drawing."""
    with pytest.raises(InvalidArgumentError, match=match):
        make()


def test_public_names():
    assert set(gst.__all__) == {"FAMILIES", "cell_names", "cells", "sequences", "states",
                                "cell_inputs", "CellInput"}
    for name in gst.__all__:
        assert getattr(gst, name).__doc__


def test_import_without_hypothesis_names_the_package(monkeypatch):
    for mod in ("hypothesis", "hypothesis.strategies", "hypothesis.extra", "hypothesis.extra.numpy"):
        monkeypatch.setitem(sys.modules, mod, None)
    monkeypatch.delitem(sys.modules, "gradflow.testing.strategies")
    with pytest.raises(ImportError, match="needs the 'hypothesis' package"):
        importlib.import_module("gradflow.testing.strategies")


def test_plugin_registers_cell_and_cellspec_strategies():
    from gradflow.testing._hypothesis_plugin import _hypothesis_setup_hook

    _hypothesis_setup_hook()
    seen = []

    @settings(max_examples=10)
    @given(st.from_type(gradflow.Cell), st.from_type(gradflow.CellSpec))
    def draw(cell, spec):
        seen.append((cell, spec))
        assert cell.spec.name in gradflow.cells.names()
        assert spec is gradflow.cells.get(spec.name)

    draw()
    assert seen


def test_plugin_imports_no_heavy_module():
    import subprocess

    code = ("import sys; from gradflow.testing._hypothesis_plugin import _hypothesis_setup_hook; "
            "_hypothesis_setup_hook(); "
            "print(sorted(m for m in ('numba', 'sympy', 'torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
