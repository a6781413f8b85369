"""gradflow.plot: each function draws what its result holds (checked against the result's
arrays), labels its axes, and refuses what it cannot draw."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import gradflow  # noqa: E402
from gradflow import plot  # noqa: E402
from gradflow.errors import InvalidArgumentError  # noqa: E402
from gradflow.report.style import layout_problems  # noqa: E402


@pytest.fixture(scope="module")
def results():
    cell = gradflow.Cell("lstm", 2, 6, seed=0)
    x = np.random.default_rng(0).standard_normal((40, 3, 2))
    return {
        "flow": gradflow.gradient_flow(cell, x),
        "paths": gradflow.path_decomposition(cell, x),
        "sv": gradflow.jacobian_singular_values(cell, x, [1, 5, 20]),
        "lyap": gradflow.lyapunov_spectrum(cell, x),
    }


def test_lag_map_draws_the_median_and_the_band(results):
    flow = results["flow"]
    ax = plot.lag_map(flow, label="lstm")
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), flow.lags)
    np.testing.assert_allclose(line.get_ydata(), np.median(flow.log10_h, axis=1))
    assert len(ax.collections) == 1  # the band
    assert ax.get_xlabel() and ax.get_ylabel()
    assert layout_problems(ax.figure) == []
    ax = plot.lag_map(flow.log10_h[:, 0], band=False)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), flow.log10_h[:, 0])
    with pytest.raises(InvalidArgumentError, match="which"):
        plot.lag_map(flow, which="c")


def test_paths_spectra_and_horizons(results):
    pd, sv, lyap = results["paths"], results["sv"], results["lyap"]
    ax = plot.path_decomposition(pd)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.median(pd.log10_path, axis=1))
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), np.median(pd.log10_total, axis=1))
    axes = plot.singular_values(sv)
    assert len(axes) == 3 and layout_problems(axes[0].figure) == []
    v = np.median(sv.log10[0], axis=0)
    np.testing.assert_allclose(axes[0].get_lines()[0].get_ydata(), v[v > sv.log10_floor[0].max()])
    ax = plot.lyapunov(lyap)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), np.median(lyap.log10_per_step, axis=0))
    h = gradflow.memory_horizon(np.array([[0.0, 0.0], [-1.0, -5.0], [-4.0, -6.0]]), threshold=1e-2)
    ax = plot.horizons([*h, np.inf], label="units")
    assert "1 beyond the longest lag" in ax.get_legend_handles_labels()[1][0]
    with pytest.raises(InvalidArgumentError, match="PathDecomposition"):
        plot.path_decomposition(results["flow"])


def test_training_curves_and_heatmap():
    task = gradflow.train.tasks.get("adding-uniform", length=10)
    result = gradflow.train.train(gradflow.Cell("gru", task.input_size, 4, seed=0), task,
                                  max_sequences=320, test_size=0, probes=0, verbose=False)
    ax = plot.training_curves(result, smooth=1)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), result.history["loss"])
    values = np.array([[0.0, -1.0, -np.inf], [-2.0, -3.0, -4.0]])
    ax = plot.heatmap(values)
    img = ax.get_images()[0].get_array()
    assert img[0, 2] == -4.0  # exact zeros drawn in the lowest colour
    with pytest.raises(InvalidArgumentError, match="2-D"):
        plot.heatmap(values[0])


def test_results_print_short_convert_to_frames_and_render_in_notebooks(results):
    flow, pd_, sv, lyap = results["flow"], results["paths"], results["sv"], results["lyap"]
    for r in (flow, pd_, sv, lyap):
        text = repr(r)
        assert len(text) < 600 and "\n" not in text and "..." not in text[:20]
        page = r._repr_html_()
        assert "<table>" in page and "data:image/svg+xml;base64," in page
    frame = flow.to_frame()
    K, B = flow.log10_h.shape
    assert len(frame) == K * B
    np.testing.assert_array_equal(frame["log10_h"].to_numpy().reshape(K, B), flow.log10_h)
    np.testing.assert_array_equal(frame["lag"].to_numpy().reshape(K, B)[:, 0], flow.lags)
    np.testing.assert_array_equal(pd_.to_frame()["log10_share"].to_numpy().reshape(K, B),
                                  pd_.log10_share)
    units = pd_.units_frame()
    assert len(units) == pd_.log10_path_units.size
    f = sv.to_frame()
    assert f["resolved"].dtype == bool and len(f) == sv.log10.size
    np.testing.assert_array_equal(lyap.to_frame()["exponent"].to_numpy().reshape(lyap.exponents.shape),
                                  lyap.exponents)
    with pytest.raises(InvalidArgumentError, match="no loss gradients"):
        flow.loss_frame()


def test_to_frame_without_pandas_says_what_to_install(results):
    from .subproc import run_python

    proc = run_python("""
        import sys
        sys.modules["pandas"] = None
        import numpy as np, gradflow
        flow = gradflow.gradient_flow(gradflow.Cell("rnn", 1, 2), np.zeros((3, 1, 1)))
        try:
            flow.to_frame()
        except gradflow.MissingDependencyError as exc:
            print(exc)
    """)
    assert 'pip install "gradflow-rnn[frames]"' in proc.stdout


def test_phase_map_draws_the_values_and_the_edge_contour():
    x = np.array([0.5, 1.0, 1.5, 2.0])
    y = np.array([0.1, 0.3, 1.0])
    lam = np.subtract.outer(-y, -x) - 1.2  # rises through 0 along x, later for larger y
    ax = plot.phase_map(lam, x, y, edge=lam, cmap="RdBu_r", center=0.0, ylog=True,
                        xlabel="radius", ylabel="scale", colorbar="lambda")
    mesh = ax.collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(lam.shape), lam)
    assert mesh.norm.vcenter == 0.0 and mesh.norm.vmin == lam.min() and mesh.norm.vmax == lam.max()
    assert len(ax.collections) == 3  # the map, and the contour's white edge and black line
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 0
    x0, x1 = ax.get_xlim()
    assert x0 == pytest.approx(0.25) and x1 == pytest.approx(2.25)  # half a step beyond
    assert layout_problems(ax.figure) == []
    # no contour where the edge field never reaches the level; a coarser map with a finer edge
    ax = plot.phase_map(lam, x, y, edge=lam - 10.0)
    assert len(ax.collections) == 1
    ax = plot.phase_map([[0.0, 1.0]], [1.0, 2.0], [0.5], edge=lam, edge_x=x, edge_y=y)
    assert len(ax.collections) == 3


def test_phase_map_refuses_what_it_cannot_draw():
    with pytest.raises(InvalidArgumentError, match=r"`values` must have shape \(len\(y\), len\(x\)\)"):
        plot.phase_map(np.zeros((2, 3)), [1, 2], [1, 2, 3])
    with pytest.raises(InvalidArgumentError, match="`edge` must have shape"):
        plot.phase_map(np.zeros((2, 2)), [1, 2], [1, 2], edge=np.zeros((3, 2)))
    with pytest.raises(InvalidArgumentError, match="`x` must be increasing"):
        plot.phase_map(np.zeros((1, 2)), [2, 1], [1])
    with pytest.raises(InvalidArgumentError, match=r"`y` must be increasing and positive \(log"):
        plot.phase_map(np.zeros((2, 1)), [1], [0.0, 1.0], ylog=True)
