"""The studies: their helpers against independent references, and the quick report end to
end — every figure labelled, its data file present, parseable, non-empty and free of NaN."""

from __future__ import annotations

import csv
import math
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gradflow.report.runner import available_studies, run_report  # noqa: E402
from gradflow.studies import _common, claims, derivations, forget_bias  # noqa: E402

from .conftest import assert_close  # noqa: E402


def test_parameter_counts_match_pytorch(torch):
    """The derivations' counts against torch.nn.RNN / LSTM / GRU's own parameters."""
    rows = {r["cell"]: r for r in derivations.parameter_counts(["rnn", "lstm", "gru"], hidden=24, inputs=10)}
    for name, module in (("rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)):
        m = module(10, 24)
        assert rows[name]["total"] == sum(p.numel() for p in m.parameters())
        assert rows[name]["recurrent"] == m.weight_hh_l0.numel()
    assert rows["lstm"]["recurrent"] == 4 * rows["rnn"]["recurrent"]


def test_predicted_horizon_is_the_first_lag_below_the_threshold():
    for b in (0.0, 1.0, 2.5, 5.0):
        f = 1.0 / (1.0 + math.exp(-b))
        k, p = 0, 1.0
        while p >= forget_bias.THRESHOLD:  # slow loop: multiply until below
            p *= f
            k += 1
        assert forget_bias.predicted_horizon(b) == k


def test_activation_derivative_bounds_against_a_numeric_grid():
    act = claims.activations()
    a = np.linspace(-10, 10, 200001)
    s = 1 / (1 + np.exp(-a))
    assert float(act["sigmoid_max"]) == pytest.approx(np.max(s * (1 - s)), rel=1e-9)
    assert float(act["tanh_max"]) == pytest.approx(np.max(1 - np.tanh(a) ** 2), rel=1e-9)
    assert act["critical_zero"]


def test_lag_grid_and_band():
    lags = _common.lag_grid(1000)
    assert lags[0] == 0 and lags[-1] == 1000 and np.all(np.diff(lags) > 0)
    assert np.array_equal(lags[:41], np.arange(41))
    v = np.arange(12.0).reshape(2, 6)
    from gradflow.plot import band_summary

    med, lo, hi = band_summary(v)
    assert_close(med, [2.5, 8.5])
    assert np.all(lo <= med) and np.all(med <= hi)


def test_grid_runs_in_processes_in_order():
    from gradflow.report import StudyConfig

    jobs = [dict(bias=b) for b in (3.0, 0.0, 5.0, 1.0)]
    serial = _common.grid(forget_bias.predicted_horizon, jobs, StudyConfig(n_jobs=1))
    assert _common.grid(forget_bias.predicted_horizon, jobs, StudyConfig(n_jobs=2)) == serial


def test_zero_recurrence_path_equals_total_against_a_numpy_loop():
    """With W_hh = 0 the cell-state path is the whole gradient: the study's share is 0, and
    its path norm is max_j prod f_j computed here from the forward pass."""
    import gradflow

    lags = np.array([0, 1, 5, 20])
    r = __import__("gradflow.studies.cell_state", fromlist=["decompose"]).decompose(
        "z", "lstm", None, True, seed=3, T=20, H=6, D=3, B=2, lags=lags)
    assert np.max(np.abs(r["share"])) < 1e-12
    cell = gradflow.Cell("lstm", 3, 6, seed=3)
    cell.params["weight_hh"][:] = 0.0
    f = cell.forward(_common.inputs(4, 20, 2, 3)).intermediate("f")
    for i, k in enumerate(lags):
        expected = np.log10(np.max(np.prod(f[20 - k:], axis=0), axis=-1))
        assert_close(r["path"][i], expected, kind="finite_difference")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    return run_report(out, quick=True, seed=0, n_jobs=1, progress=False)


def test_quick_report_runs_every_study_without_breaking_a_rule(quick_report):
    assert quick_report.failed == {}
    assert quick_report.problems == []
    keys = [s.key for s in quick_report.sections]
    assert keys == available_studies()
    for key in ("derivations", "vanishing", "cell_state", "forget_bias", "exploding", "spectra",
                "variants", "claims"):
        assert key in keys


def test_quick_report_data_files_hold_every_plotted_number(quick_report):
    out = quick_report.out
    svgs = sorted((out / "figures").glob("*.svg"))
    assert len(svgs) >= 10
    for svg in svgs:
        path = out / "data" / f"{svg.stem}.csv"
        with path.open() as fh:
            rows = list(csv.reader(fh))
        assert len(rows) >= 2, path
        numeric = 0
        for row in rows[1:]:
            for v in row:
                try:
                    x = float(v)
                except ValueError:
                    continue
                numeric += 1
                assert math.isfinite(x), (path, row)
        assert numeric > 0, path
        text = svg.read_text()
        assert "NaN" not in text and "nan" not in re.sub(r"[A-Za-z]+nan|nan[A-Za-z]+", "", text)


def test_quick_report_markdown_and_html(quick_report):
    out = quick_report.out
    md = (out / "index.md").read_text()
    html = (out / "index.html").read_text()
    n_fig = len(list((out / "figures").glob("*.svg")))
    assert md.count("![Figure") == n_fig
    assert html.count("<figure>") == n_fig
    assert '<pre class="latex"' not in html  # every equation rendered, none fell back
    assert "failed to run" not in md
    verdicts = (out / "data" / "claims-verdicts.csv").read_text()
    for v in ("holds", "fails", "holds under stated conditions"):
        assert v in verdicts


def test_same_seed_same_bytes_through_worker_processes(quick_report, tmp_path):
    """Studies run again over joblib's processes reproduce the serial quick report exactly."""
    keys = ["vanishing", "exploding"]
    again = run_report(tmp_path / "again", only=keys, quick=True, seed=0, n_jobs=2, progress=False)
    assert again.ok
    for p in sorted((again.out / "data").iterdir()) + sorted((again.out / "figures").iterdir()):
        assert p.read_bytes() == (quick_report.out / p.parent.name / p.name).read_bytes(), p.name


def _numeric_columns(data: dict) -> dict:
    out = {}
    for name, values in data.items():
        arr = np.asarray(values)
        if arr.dtype.kind in "fiu":
            out[name] = arr.astype(np.float64).ravel()
    return out


def _holds_run(column: np.ndarray, values: np.ndarray) -> bool:
    """Whether `values` stand in `column` as a contiguous run (exactly, as floats)."""
    n = len(values)
    if n > len(column):
        return False
    starts = np.flatnonzero(column[: len(column) - n + 1] == values[0])
    return any(np.array_equal(column[s:s + n], values) for s in starts)


def test_quick_report_figures_plot_what_their_data_files_hold(quick_report):
    """Every curve a figure draws (lines of 3 points or more) stands, point for point, in a
    column of that figure's data: a data file cannot hold another quantity than the one
    plotted (say the 10 % quantile under the name q90)."""
    checked = 0
    for section in quick_report.sections:
        for fig in section.figures:
            columns = _numeric_columns(fig.data)
            for ax in fig.figure.get_axes():
                for line in ax.get_lines():
                    y = np.asarray(line.get_ydata(), dtype=np.float64)
                    y = y[np.isfinite(y)]
                    if y.size < 3 or np.all(y == y[0]):
                        continue  # reference lines (a level, a bound drawn as two points)
                    found = any(_holds_run(col, y) for col in columns.values())
                    assert found, (f"{section.key}/{fig.name}: the curve {line.get_label()!r} "
                                   "is not in the figure's data")
                    checked += 1
    assert checked >= 20


def test_quick_report_data_rows_keep_their_order_relations(quick_report):
    """Per row: q10 <= median <= q90 (for every quantity with those columns), and measured
    lag norms of a tanh RNN under the Pascanu bound."""
    checked = 0
    for section in quick_report.sections:
        tables = [f.data for f in section.figures]
        for data in tables:
            cols = _numeric_columns(data)
            for name in cols:
                if not name.endswith("median"):
                    continue
                stem = name[: -len("median")]
                lo, hi = cols.get(stem + "q10"), cols.get(stem + "q90")
                if lo is None or hi is None:
                    continue
                med = cols[name]
                assert np.all(lo <= med + 1e-12) and np.all(med <= hi + 1e-12), (section.key, name)
                checked += 1
            if {"measured_median", "measured_max", "pascanu_bound"} <= set(cols):
                assert np.all(cols["measured_median"] <= cols["measured_max"] + 1e-12)
                assert np.all(cols["measured_max"] <= cols["pascanu_bound"] + 1e-9)
                checked += 1
    assert checked >= 3


# ---------------------------------------------------------------- the phase diagram's helpers
def test_phase_cells_have_the_grid_point_they_claim():
    from gradflow.studies import phase

    c = phase.make_cell("lstm", 5, 12, 1.7, 2.5, 0.3, seed=4)
    for g in c.spec.gates:
        block = c.params["weight_hh"][c.gate_slice(g)]
        assert max(abs(np.linalg.eigvals(block))) == pytest.approx(1.7, rel=1e-12)
    assert np.all(c.params["bias_ih"][c.gate_slice("f")] == 2.5)
    others = np.delete(c.params["bias_ih"], np.arange(12, 24))
    assert np.all(others == 0) and np.all(c.params["bias_hh"] == 0)
    assert np.std(c.params["weight_ih"]) * np.sqrt(5) == pytest.approx(0.3, rel=0.15)
    # the same seed gives the same matrices, only rescaled
    d = phase.make_cell("lstm", 5, 12, 0.5, -1.0, 0.6, seed=4)
    assert_close(d.params["weight_hh"] * 1.7 / 0.5, c.params["weight_hh"])
    assert_close(d.params["weight_ih"] / 0.6, c.params["weight_ih"] / 0.3)


def test_phase_measure_near_the_zero_state_against_closed_forms():
    """With a vanishing input the state stays at 0, where the one-step Jacobian is constant:
    W for the tanh RNN, and for the LSTM (gates at sigma(0) = 1/2, f = sigma(b), g = 0) a
    map whose nonzero eigenvalues are those of W_g / 4 + sigma(b) I.  lambda_max is the log
    of the largest eigenvalue modulus, and the horizon the first k with ||J^k|| < 0.01."""
    from gradflow.studies import phase

    T, H = 600, 10
    rnn = phase.make_cell("rnn", 3, H, 0.6, None, 1e-9, seed=2)
    W = rnn.params["weight_hh"]
    got = phase.measure("rnn", 0.6, None, 1e-9, 2, T, H, 3, 2)
    assert got["lam"] == pytest.approx(math.log(0.6), abs=0.02)
    k, P = 0, np.eye(H)
    while np.linalg.norm(P, 2) >= phase.THRESHOLD:  # slow loop over matrix powers
        P, k = W @ P, k + 1
    assert got["horizon"] == k and got["censored"] == 0

    b = 1.5
    lstm = phase.make_cell("lstm", 3, H, 0.8, b, 1e-9, seed=3)
    Wg = lstm.params["weight_hh"][lstm.gate_slice("g")]
    s = 1 / (1 + math.exp(-b))
    lam = math.log(max(abs(np.linalg.eigvals(Wg / 4 + s * np.eye(H)))))
    got = phase.measure("lstm", 0.8, b, 1e-9, 3, T, H, 3, 2)
    assert got["lam"] == pytest.approx(lam, abs=0.02)


def test_phase_crossings_and_censored_horizons():
    from gradflow.studies import phase

    assert phase.crossing([1, 2, 3, 4], [-3, -1, 1, 2]) == pytest.approx(2.5)
    assert math.isnan(phase.crossing([1, 2, 3], [1, 2, 3]))  # above the level from the start
    assert math.isnan(phase.crossing([1, 2], [-2, -1]))
    assert phase.crossing([0, 1], [-1, 0]) == 1.0  # reaching the level counts
    assert phase.first_censored([1, 2, 3], [5, 100, 100], 100) == 2
    assert math.isnan(phase.first_censored([1, 2, 3], [5, 6, 7], 100))


def test_phase_grid_sizes_and_the_full_grid_estimate():
    from gradflow.report import StudyConfig
    from gradflow.studies import phase

    full = phase.sizes(StudyConfig(full=True))
    c = phase.counts(StudyConfig(full=True))
    maps = len(full["radius"]) * (len(full["scale"]) + len(full["bias"]) * len(full["lstm_scales"]))
    g = full["learn"]
    runs = len(g["radius"]) * g["seeds"] * (len(g["scale"]) + len(g["bias"]) * len(g["lstm_scales"]))
    assert (c["maps"], c["runs"]) == (maps * full["seeds"], runs)
    cost = phase.COST
    assert c["cpu_hours"] == pytest.approx(
        (maps * full["seeds"] * cost["map"]["full"] + runs * cost["learn"]["full"]) / 3600)
    assert phase.counts(StudyConfig())["maps"] < c["maps"] / 5
