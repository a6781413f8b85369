"""A study of one's own: how far a GRU's gradient reaches, against its update-gate bias."""

import numpy as np

import gradflow
from gradflow.plot import lag_map, new_figure
from gradflow.report import Figure, Section, StudyConfig, Table

TITLE = "GRU: the update-gate bias and the lag map"


def run(config: StudyConfig) -> Section:
    T = 50 if config.quick else 200
    x = np.random.default_rng(config.seed).standard_normal((T, 4, 3))
    fig, ax = new_figure()
    data = {"lag": [], "bias": [], "median_log10_h": []}
    rows = []
    for bias, color in zip((0.0, 2.0, 4.0), ("C3", "C1", "C0")):
        cell = gradflow.Cell("gru", 3, 16, seed=config.seed, forget_bias=bias)
        flow = gradflow.gradient_flow(cell, x)
        lag_map(flow, ax=ax, label=f"update-gate bias {bias:g}", color=color)
        data["lag"] += flow.lags.tolist()
        data["bias"] += [bias] * len(flow.lags)
        data["median_log10_h"] += np.median(flow.log10_h, axis=1).tolist()
        horizon = gradflow.memory_horizon(flow, threshold=1e-2)
        rows.append([bias, float(np.median(np.minimum(horizon, T)))])
    ax.legend(frameon=False)
    return Section(
        key="gru_bias",
        title=TITLE,
        text=f"A larger update-gate bias keeps $z$ near 1 and the gradient alive (T = {T}).",
        figures=[Figure("lag_map", fig, "log10 of the gradient norm against the lag.", data)],
        tables=[Table("horizons", ["bias", "median horizon (lags, at most T)"], rows,
                      "The first lag at which the norm is below 1 % of its lag-0 value.")],
    )
