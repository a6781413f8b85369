"""Vanishing with lag: log10 ||d h_T / d h_{T-k}|| against the lag k for rnn, lstm and gru
at initialisation, over several seeds."""

from __future__ import annotations

import numpy as np

from gradflow.report import Figure, Section, StudyConfig, Table

from ._common import fmt, grid, inputs, lag_grid, seed_of

TITLE = "Vanishing with lag: gradient norms against lag at initialisation"

CELLS = ("rnn", "lstm", "gru")


def sizes(config: StudyConfig) -> dict:
    if config.quick:
        return {"T": 200, "H": 32, "D": 8, "B": 2, "seeds": 2}
    return {"T": 1000, "H": 64, "D": 16, "B": 4, "seeds": 6}


def lag_norms(cell: str, seed: int, T: int, H: int, D: int, B: int, lags) -> np.ndarray:
    """log10 spectral norm of d h_T / d h_{T-k} at `lags`, shape (K, B), one initialisation."""
    from threadpoolctl import threadpool_limits

    import gradflow

    with threadpool_limits(1):
        c = gradflow.Cell(cell, D, H, seed=seed)
        x = inputs(seed + 1, T, B, D)
        return gradflow.gradient_flow(c, x, lags=lags, state=False).log10_h


def decay_rate(lags: np.ndarray, median: np.ndarray) -> float:
    """The decay rate in decades per step: the slope of the median log10 norm fitted over the
    second half of the lags (past the first steps' transient)."""
    tail = lags >= lags[-1] // 2
    return float(np.polyfit(lags[tail], median[tail], 1)[0])


def run(config: StudyConfig) -> Section:
    from gradflow.plot import band_summary, cell_color, lag_map, new_figure

    s = sizes(config)
    lags = lag_grid(s["T"])
    jobs = [dict(cell=c, seed=seed_of(config.seed, "vanishing", c, k), T=s["T"], H=s["H"],
                 D=s["D"], B=s["B"], lags=lags) for c in CELLS for k in range(s["seeds"])]
    out = grid(lag_norms, jobs, config)
    per_cell = {c: np.concatenate([o for j, o in zip(jobs, out) if j["cell"] == c], axis=1)
                for c in CELLS}

    fig, ax = new_figure(width=6.4, height=3.8)
    data = {"cell": [], "lag": [], "median": [], "q10": [], "q90": []}
    rows, slopes = [], {}
    for c in CELLS:
        med, lo, hi = band_summary(per_cell[c])
        lag_map(per_cell[c], lags, ax=ax, label=c, color=cell_color(c))
        data["cell"] += [c] * len(lags)
        data["lag"] += lags.tolist()
        data["median"] += med.tolist()
        data["q10"] += lo.tolist()
        data["q90"] += hi.tolist()
        slopes[c] = slope = decay_rate(lags, med)
        at = {k: med[np.searchsorted(lags, k)] for k in (10, 100, s["T"]) if k <= s["T"]}
        rows.append([c, *(round(float(at.get(k, np.nan)), 2) for k in (10, 100)),
                     round(float(med[-1]), 1), round(float(slope), 4),
                     round(float(-1.0 / slope), 1) if slope < 0 else "∞"])
    ax.set_title(f"At initialisation: H = {s['H']}, T = {s['T']}, "
                 f"{s['seeds']} seeds × {s['B']} sequences")
    ax.legend(frameon=False)
    n = s["seeds"] * s["B"]
    figure = Figure(
        name="lag_norms", figure=fig,
        caption=f"Median (line) and 10–90 % band over {n} initialisations and input sequences "
                "of the spectral norm of the Jacobian product from step T−k to T, on a "
                "log10 scale. All three cells decay exponentially (straight lines) at "
                "initialisation: the LSTM and the GRU decay more slowly than the vanilla "
                "RNN, but none keeps the gradient — gating only helps once the gates are "
                "driven open (see the forget-gate bias section). The products are renormalised "
                "every step, so even the smallest norms are measured, not underflowed to 0.",
        data=data,
    )
    table = Table(
        name="decay", caption="Median log10 gradient norm at lags 10, 100 and T; the decay rate "
        "fitted over the second half of the lags (decades per step) and its inverse, the "
        "number of steps for the gradient to shrink tenfold.",
        columns=["cell", "log10 norm, k = 10", "k = 100", f"k = {s['T']}",
                 "slope (decades/step)", "steps per decade"],
        rows=rows)
    text = (
        "The gradient that reaches step $T-k$ from a loss at step $T$ is multiplied by the "
        "product of one-step Jacobians $\\partial h_T/\\partial h_{T-k} = "
        "\\prod_{t=T-k+1}^{T} \\partial h_t / \\partial h_{t-1}$. We draw PyTorch-style "
        "initialisations (uniform in $\\pm 1/\\sqrt{H}$), feed standard normal inputs and "
        "measure the spectral norm of the product at every lag with "
        "`gradflow.gradient_flow` (renormalised, so nothing underflows).\n\n"
        f"At lag {s['T']} the median norm is $10^{{{per_cell['rnn'].shape and fmt(np.median(per_cell['rnn'][-1]), 4)}}}$ "
        f"for the RNN, $10^{{{fmt(np.median(per_cell['lstm'][-1]), 4)}}}$ for the LSTM and "
        f"$10^{{{fmt(np.median(per_cell['gru'][-1]), 4)}}}$ for the GRU: each step divides the "
        f"gradient by about $10^{{{fmt(-slopes['rnn'], 2)}}}$, $10^{{{fmt(-slopes['lstm'], 2)}}}$ "
        f"and $10^{{{fmt(-slopes['gru'], 2)}}}$ respectively. With default initialisation, "
        "an LSTM is not immune to vanishing gradients: its forget gates sit near "
        "$\\sigma(0) = 0.5$, and $0.5^{k}$ vanishes as fast as any contraction. What the "
        "LSTM offers is a path whose decay is set by the gates alone (next section), which "
        "a bias on the forget gate can open."
    )
    return Section(key="vanishing", title=TITLE, text=text, figures=[figure], tables=[table],
                   data={"sizes": s, "slope_decades_per_step": slopes})
