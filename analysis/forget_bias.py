"""Forget-gate bias: the LSTM's memory horizon against the forget bias, measured and
predicted."""

from __future__ import annotations

import math

import numpy as np

from gradflow.report import Figure, Section, StudyConfig, Table

from ._common import grid, inputs, seed_of

TITLE = "Forget-gate bias: memory horizon against the bias"

THRESHOLD = 1e-2  # horizon: the first lag at which a norm is below 1 % of its lag-0 value


def sizes(config: StudyConfig) -> dict:
    if config.quick:
        return {"T": 800, "H": 16, "D": 8, "B": 2, "seeds": 1, "biases": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]}
    return {"T": 1200, "H": 64, "D": 16, "B": 4, "seeds": 3,
            "biases": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]}


def predicted_horizon(bias: float, threshold: float = THRESHOLD) -> float:
    """Lags until sigma(bias)^k < threshold: the horizon if every forget gate sat at sigma(bias)."""
    log_f = -math.log1p(math.exp(-bias))
    return float(math.ceil(math.log(threshold) / log_f))


def horizons(bias: float, seed: int, T: int, H: int, D: int, B: int) -> dict:
    """Measured horizons (B,) of the Π f path and of the total d h_T / d h_{T-k}."""
    from threadpoolctl import threadpool_limits

    import gradflow

    with threadpool_limits(1):
        cell = gradflow.Cell("lstm", D, H, seed=seed, forget_bias=bias)
        x = inputs(seed + 1, T, B, D)
        path = gradflow.memory_horizon(cell, x, threshold=THRESHOLD)
        flow = gradflow.gradient_flow(cell, x, state=False)
        total = gradflow.memory_horizon(flow, threshold=THRESHOLD)
        f = cell.forward(x).intermediate("f")
        return {"path": path, "total": total, "mean_log_f": float(np.mean(np.log(f)))}


def run(config: StudyConfig) -> Section:
    from gradflow.plot import new_figure

    s = sizes(config)
    jobs = [dict(bias=b, seed=seed_of(config.seed, "bias", k), T=s["T"], H=s["H"], D=s["D"],
                 B=s["B"]) for b in s["biases"] for k in range(s["seeds"])]
    out = grid(horizons, jobs, config)
    biases = np.asarray(s["biases"])
    pred, path, total, mlf, censored = [], [], [], [], 0
    T = s["T"]
    for b in s["biases"]:
        parts = [o for j, o in zip(jobs, out) if j["bias"] == b]
        p = np.concatenate([o["path"] for o in parts])
        t = np.concatenate([o["total"] for o in parts])
        censored += int(np.sum(~np.isfinite(p)) + np.sum(~np.isfinite(t)))
        # a horizon beyond the sequence is reported as T (censored), never as inf
        path.append(float(np.median(np.minimum(p, s["T"]))))
        total.append(float(np.median(np.minimum(t, s["T"]))))
        pred.append(predicted_horizon(b))
        mlf.append(float(np.mean([o["mean_log_f"] for o in parts])))
    # the prediction with the gates' measured mean log value instead of log sigma(b)
    pred_mean = [float(math.ceil(math.log(THRESHOLD) / v)) for v in mlf]

    fig, ax = new_figure(width=6.4, height=3.6)
    ax.plot(biases, pred, "k--", label="predicted: σ(b)^k = 1 %")
    ax.plot(biases, pred_mean, color="0.5", ls=":", label="predicted from measured mean log f")
    ax.plot(biases, path, "o-", color="#1f77b4", label="measured: Π f path")
    ax.plot(biases, total, "s-", color="#d62728", label=r"measured: total $\|\partial h_T/\partial h_{T-k}\|$")
    ax.set_yscale("log")
    ax.set_xlabel("forget-gate bias b (pre-activation units)")
    ax.set_ylabel("memory horizon (time steps)")
    ax.set_title(f"LSTM, H = {s['H']}: lag where the gradient falls below 1 % of lag 0")
    ax.legend(frameon=False, fontsize=7)
    figure = Figure(
        name="horizon", figure=fig,
        caption="Memory horizon (first lag at which a norm drops below 1 % of its value at lag 0, "
                "median over runs) against the forget-gate bias. The horizon grows "
                "exponentially with the bias — about e^b steps, since 1 − σ(b) ≈ e^{−b}. "
                "The closed form σ(b)^k (dashed) is a prediction for one unit whose gate sits "
                "at σ(b); the measured Π f horizon uses the spectral norm of diag(Π f), i.e. the "
                "unit whose gates happen to be most open, so it runs longer than the prediction "
                "(and longer still than the prediction from the gates' mean log value, dotted, "
                "which input noise lowers by Jensen's inequality). "
                f"Horizons beyond T = {s['T']} are plotted at T.",
        data={"bias": biases.tolist(), "predicted_sigma_b": pred, "predicted_mean_log_f": pred_mean,
              "measured_path": path, "measured_total": total},
    )
    def shown(v):  # a median at T means at least half the runs ran past the sequence
        return f"≥ {T}" if v >= T else f"{v:.0f}"

    rows = [[b, f"{p:.0f}", f"{pm:.0f}", shown(a), shown(t)]
            for b, p, pm, a, t in zip(s["biases"], pred, pred_mean, path, total)]
    table = Table(name="horizons", columns=["bias b", "predicted σ(b)^k", "predicted E log f",
                                           "measured Π f", "measured total"],
                  rows=rows, caption="Memory horizons in time steps (medians).")
    k1 = s["biases"].index(1.0)
    text = (
        "Along the cell-state path the gradient is multiplied by $f_t$ every step. If every "
        "forget gate sat at its bias value, $f = \\sigma(b)$, the path would fall below a "
        "fraction $\\epsilon$ of its start after $k^* = \\lceil \\ln\\epsilon / \\ln\\sigma(b) "
        "\\rceil$ steps; since $-\\ln\\sigma(b) \\approx e^{-b}$ for large $b$, the horizon "
        "grows like $e^{b}\\ln(1/\\epsilon)$. We set the LSTM's forget bias (`forget_bias=b`, "
        f"the rest PyTorch's initialisation), run {s['T']} steps of standard normal input and "
        f"measure, with $\\epsilon$ = {THRESHOLD:g}, the horizon of the path "
        "(`gradflow.memory_horizon(cell, x)`) and of the total gradient "
        "$\\|\\partial h_T/\\partial h_{T-k}\\|$ (`memory_horizon(gradient_flow(...))`).\n\n"
        f"At $b = 1$ (Jozefowicz et al.'s recommendation) the prediction is {pred[k1]:.0f} "
        f"steps and the measured Π f horizon {shown(path[k1])}; at $b = 5$ the prediction is "
        f"{pred[-1]:.0f} and the measurement {shown(path[-1])} (total gradient: "
        f"{shown(total[-1])}). The total gradient $\\|\\partial h_T/\\partial h_{{T-k}}\\|$ "
        "outlives the Π f path once the bias is large: the paths through $h$ and the "
        "recurrent weights add to the cell-state path. "
        "The bias is the knob that sets how long an LSTM remembers at initialisation; "
        "default initialisation ($b \\approx 0$) gives a horizon of a handful of steps."
        + (f" {censored} of the measured horizons (of single sequences) exceeded the "
           f"sequence of {T} steps; medians at T are shown as ≥ {T}."
           if censored else "")
    )
    return Section(key="forget_bias", title=TITLE, text=text, figures=[figure], tables=[table],
                   data={"sizes": s, "threshold": THRESHOLD, "censored": censored})
