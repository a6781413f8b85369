"""An :class:`~gradflow.analyzer.Analysis` as a report: the same Markdown + self-contained
HTML, figures and data files as ``gradflow report``, written to a folder beside `out` and
moved into place when complete."""

from __future__ import annotations

import numpy as np

from ..report import Figure, Section, StudyConfig, Table
from .summary import PATH_LAG, at_longest_lag, layer_name, level, only_lag0, power

__all__ = ["sections", "write", "TITLE"]

TITLE = "Gradient flow in a trained recurrent network"


def _finite_rows(data: dict, value_cols) -> tuple[dict, int]:
    """`data` without the rows where a value column is not finite; how many went."""
    keep = np.ones(len(next(iter(data.values()))), dtype=bool)
    for c in value_cols:
        keep &= np.isfinite(np.asarray(data[c], dtype=np.float64))
    return {k: np.asarray(v)[keep] for k, v in data.items()}, int((~keep).sum())


def _dropped(n: int) -> str:
    return (f" {n} entries that are exactly zero (−∞ in log10) or undefined (a reverse "
            "direction at lag T) are not in the data file." if n else "")


def _layers(net):
    return [(layer, d, cell) for layer, pair in enumerate(net.layers) for d, cell in enumerate(pair)]


def _model_section(a) -> Section:
    net, m = a.network, a.model
    rows = [[layer_name(net, r["layer"], r["direction"] == "reverse"), r["cell"],
             r["input_size"], r["hidden_size"], r["parameters"]] for r in net.describe()]
    table = Table("architecture", ["layer", "cell", "inputs", "units", "parameters"], rows,
                  f"The recurrent layers: {net.num_parameters:,} parameters in all"
                  + (f", and a readout of {m.readout[0].shape[1]} → {m.readout[0].shape[0]}"
                     if m.readout is not None else "") + ".")
    skipped = (f" Not analysed (not recurrent): {', '.join(m.skipped[:12])}"
               + (" …" if len(m.skipped) > 12 else "") + "." if m.skipped else "")
    loss = f" The loss is {a.loss:.6g}." if a.loss is not None else ""
    T = a.flow.length
    text = (f"The model: {m.source}, read as a {net.num_layers}-layer "
            f"{'bidirectional ' if net.bidirectional else ''}network of "
            f"{', '.join(sorted({c.spec.name for _, _, c in _layers(net)}))} cells "
            f"({net.dtype.name}).{skipped}\n\n"
            f"The input: {a.inputs} (T = {T}). The loss gradients are those of {a.objective}."
            f"{loss} Every number below is a base-10 logarithm of a norm, computed with "
            "renormalised products: nothing underflows, an exact zero is −∞.")
    return Section(key="model", title="The model and the input", text=text, tables=[table],
                   data={"source": m.source, "inputs": a.inputs, "objective": a.objective,
                         "loss": a.loss, "seed": a.seed, "threshold": a.threshold})


def _lag_section(a) -> Section:
    from ..plot import lag_map, new_figure

    net, flow = a.network, a.flow
    fig, ax = new_figure(width=6.6, height=3.8)
    data = {"layer": [], "direction": [], "lag": [], "sequence": [], "log10_norm": []}
    rows = []
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    lag0 = []
    for k, (layer, d, cell) in enumerate(_layers(net)):
        v = flow.log10_lag[layer, d]  # (K, B)
        ok = np.isfinite(v).all(axis=1)
        if only_lag0(flow, layer, d):
            lag0.append(layer_name(net, layer, d))
        else:
            lag_map(v[ok], flow.lags[ok], ax=ax, label=layer_name(net, layer, d),
                    color=colors[k % len(colors)], band=v.shape[1] > 1)
        for j, lag in enumerate(flow.lags):
            for b in range(v.shape[1]):
                data["layer"].append(layer + 1)
                data["direction"].append(d)
                data["lag"].append(int(lag))
                data["sequence"].append(b)
                data["log10_norm"].append(float(v[j, b]))
        h = a.horizons[layer, d]
        fin = h[np.isfinite(h)]
        if only_lag0(flow, layer, d):
            rows.append([layer_name(net, layer, d), "lag 0 only", "—", "—", "exactly 0"])
            continue
        rows.append([layer_name(net, layer, d), _med(h, flow.length),
                     f"{fin.min():.0f} – {fin.max():.0f}" if fin.size else "—",
                     f"{int(np.sum(np.isinf(h)))} of {h.size}",
                     power(at_longest_lag(flow, layer, d))])
    ax.axhline(np.log10(a.threshold), color="0.4", lw=0.8, ls=":")
    ax.set_ylabel(r"$\log_{10}\,\|\partial h^L_T/\partial h^l_{T-k}\|$")
    ax.legend(frameon=False, fontsize=7)
    data, dropped = _finite_rows(data, ["log10_norm"])
    only = (f" Not drawn: {', '.join(lag0)}, on which the last output depends at lag 0 only "
            "(a reverse direction reaches the last step first)." if lag0 else "")
    figure = Figure("lag_maps", fig,
                    "The gradient of the top layer's last output with respect to each layer's "
                    "hidden state k steps earlier: median over the sequences (line) and 10–90 % "
                    f"band. Dotted: {level(a.threshold)}, the level of the horizons in the "
                    "table (relative to lag 0)." + only + _dropped(dropped), data)
    table = Table("horizons", ["layer", "median horizon (steps)", "range",
                               f"beyond T = {flow.length}", "at the longest lag"], rows,
                  r"Gradient horizons: the first lag at which $\|\partial h^L_T/\partial "
                  r"h^l_{T-k}\|$ falls below " + level(a.threshold) + " of its lag-0 value, "
                  "over the sequences; and the gradient at the longest lag, relative to lag 0 "
                  "(median).")
    text = ("How far back does each layer's state still move the output? For every layer and "
            "direction, the norm of the Jacobian of the last output with respect to that "
            "layer's hidden state k steps earlier (`gradflow.network_flow`), through the "
            "layer's own recurrence and through the layers above it.")
    return Section(key="lags", title="Gradient against lag, layer by layer", text=text,
                   figures=[figure], tables=[table])


def _heat_section(a) -> Section:
    from ..plot import heatmap, new_figure

    net, flow = a.network, a.flow
    T = flow.length
    labels = [layer_name(net, layer, d) for layer, d, _ in _layers(net)]
    if flow.log10_grad is not None:
        grid = np.stack([np.nanmedian(flow.log10_grad[layer, d], axis=-1)
                         for layer, d, _ in _layers(net)])  # (rows, T)
        what = f"‖∂L/∂h^l_t‖ of {a.objective}"
    else:  # pragma: no cover - analyze always gives a loss or the probe
        raise ValueError("no loss gradient")
    fig, ax = new_figure(width=6.6, height=1.2 + 0.45 * len(labels))
    heatmap(grid, ax=ax, x=np.arange(1, T + 1), y=np.arange(len(labels)), xlabel="time step t",
            ylabel="layer", colorbar=r"$\log_{10}\,\|\partial L/\partial h^l_t\|$")
    ax.set_yticks(np.arange(len(labels)), labels)
    data = {"row": np.repeat(np.arange(len(labels)), T), "t": np.tile(np.arange(1, T + 1), len(labels)),
            "log10_norm": grid.ravel()}
    data, dropped = _finite_rows(data, ["log10_norm"])
    fig1 = Figure("layers_time", fig,
                  f"{what}: median over the sequences, each layer and direction a row (rows in "
                  f"the order {', '.join(labels)})." + _dropped(dropped), data)
    panels = len(net.layers)
    fig, axes = new_figure(ncols=panels, width=min(3.6 * panels + 0.6, 13.0), height=3.6)
    axes = np.atleast_1d(axes)
    d2 = {"layer": [], "unit": [], "t": [], "log10_abs": []}
    for layer, ax in enumerate(axes):
        units = flow.log10_grad_units[layer]  # (dirs, T, B, H)
        med = np.nanmedian(units, axis=2)  # (dirs, T, H)
        grid = np.concatenate(list(med), axis=-1).T  # (dirs*H, T)
        heatmap(grid, ax=ax, x=np.arange(1, T + 1), y=np.arange(grid.shape[0]),
                xlabel="time step t", ylabel="unit" + (" (forward, then reverse)"
                                                       if net.bidirectional else ""),
                colorbar=r"$\log_{10}\,|\partial L/\partial h_t[j]|$")
        ax.set_title(f"layer {layer + 1}")
        for j in range(grid.shape[0]):
            d2["layer"] += [layer + 1] * T
            d2["unit"] += [j] * T
            d2["t"] += list(range(1, T + 1))
            d2["log10_abs"] += grid[j].tolist()
    d2, dropped2 = _finite_rows(d2, ["log10_abs"])
    fig2 = Figure("units_time", fig,
                  "The same gradient per unit: |∂L/∂h_t[j]|, median over the sequences, for "
                  "every unit of every layer." + _dropped(dropped2), d2)
    text = ("Where in the network and when does the loss gradient live? Rows are layers (and "
            "directions), columns time steps: the total gradient of the loss on each hidden "
            "state, through time and through the layers above — the heatmaps practitioners "
            "draw with hooks, here without underflow.")
    return Section(key="heatmaps", title="The gradient over layers, units and time", text=text,
                   figures=[fig1, fig2])


def _gate_section(a) -> Section | None:
    from ..plot import new_figure

    net = a.network
    gated = [(layer, d, c) for layer, d, c in _layers(net) if c.spec.forget_gate is not None]
    if not gated:
        return None
    trace = net.forward(a.x)
    T = a.flow.length
    figs = {name: new_figure(width=4.4, height=3.2) for name in ("gate", "horizon", "share")}
    bins = np.linspace(0.0, 1.0, 41)
    d1 = {"row": [], "bin_low": [], "share": []}
    d2 = {"row": [], "unit": [], "horizon": []}
    d3 = {"row": [], "lag": [], "log10_share": []}
    rows = []
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    for k, (layer, d, cell) in enumerate(gated):
        name, color = layer_name(net, layer, d), colors[k % len(colors)]
        g = trace.traces[layer][d].intermediate(cell.spec.forget_gate).ravel()
        hist = np.histogram(g, bins=bins)[0] / g.size
        figs["gate"][1].stairs(hist, bins, label=name, color=color)
        d1["row"] += [k] * len(hist)
        d1["bin_low"] += bins[:-1].tolist()
        d1["share"] += hist.tolist()
        # per unit: the median over sequences of the unit's direct-path horizon
        hv = np.median(np.minimum(np.asarray(a.paths.horizons[layer][d], dtype=np.float64),
                                  T + 1), axis=0)
        figs["horizon"][1].hist(hv, bins=np.linspace(0, T + 1, 31), histtype="step",
                                color=color, label=name)
        d2["row"] += [k] * hv.size
        d2["unit"] += list(range(hv.size))
        d2["horizon"] += hv.tolist()
        pd = a.shares.paths[layer][d]
        if pd is not None and pd.log10_share is not None:
            share = np.nanmedian(pd.log10_share, axis=-1)
            ok = np.isfinite(share) & (pd.lags > 0)
            figs["share"][1].plot(pd.lags[ok], share[ok], color=color, label=name)
            d3["row"] += [k] * int(ok.sum())
            d3["lag"] += pd.lags[ok].tolist()
            d3["log10_share"] += share[ok].tolist()
        gq = a.paths.gate_quantiles[layer, d]
        rows.append([name, cell.spec.forget_gate, *[f"{v:.3f}" for v in gq],
                     f"{100 * a.gate_below_half[layer, d]:.1f} %",
                     f"{100 * a.paths.saturated_low[layer, d]:.1f} %",
                     f"{100 * a.paths.saturated_high[layer, d]:.1f} %"])
    labels = ", ".join(f"{k}: {layer_name(net, layer, d)}" for k, (layer, d, _) in enumerate(gated))
    ax = figs["gate"][1]
    ax.set(xlabel="gate value", ylabel="share of values")
    ax.legend(frameon=False, fontsize=7)
    ax = figs["horizon"][1]
    ax.set(xlabel="per-unit memory horizon (steps)", ylabel="units")
    ax.legend(frameon=False, fontsize=7)
    figures = [
        Figure("gate_values", figs["gate"][0],
               "The distribution of the forget-like gate (LSTM f, GRU z) over every step, "
               f"sequence and unit of each layer (rows in the data: {labels}).", d1),
        Figure("unit_horizons", figs["horizon"][0],
               "Each unit's memory horizon along its direct path: the first lag at which the "
               f"path falls below {level(a.threshold)}, median over the sequences; beyond "
               f"T = {T} counted as T + 1.", d2),
    ]
    if d3["row"]:
        ax = figs["share"][1]
        ax.set(xlabel="lag k (time steps)", ylabel=r"$\log_{10}$ share of the direct path")
        ax.legend(frameon=False, fontsize=7)
        figures.append(Figure(
            "direct_share", figs["share"][0],
            "The share of each layer's own Jacobian ∂s_T/∂s_{T−k} carried by the direct path "
            f"(Π f for an LSTM's cell state), median over the first {a.detail} sequences; at "
            f"lag {PATH_LAG} it is quoted in the findings.", d3))
    table = Table("gate_statistics",
                  ["layer", "gate", *[f"q{int(round(100 * v))}" for v in a.paths.quantiles],
                   "below 0.5", f"below {a.paths.saturation:g}",
                   f"above {1 - a.paths.saturation:g}"],
                  rows, "Quantiles of the forget-like gate over steps, sequences and units, and "
                        "its saturated shares.")
    text = ("Gates decide how much of the gradient a cell passes back: an LSTM's cell state "
            "carries it along the direct path multiplied by f_t at every step, a GRU's hidden "
            "state by z_t. Gates near 0 cut the path; gates near 1 keep it.")
    return Section(key="gates", title="Gates and memory", text=text, figures=figures,
                   tables=[table])


def _lyapunov_section(a) -> Section | None:
    from ..plot import lyapunov, new_figure

    if a.lyapunov is None:
        return None
    net = a.network
    fig, ax = new_figure(width=6.0, height=3.4)
    data = {"direction": [], "index": [], "sequence": [], "exponent": []}
    for d, spec in enumerate(a.lyapunov.spectra):
        lyapunov(spec, ax=ax, label="reverse" if d else ("forward" if net.bidirectional else None))
        for b in range(spec.exponents.shape[0]):
            for i, v in enumerate(spec.exponents[b]):
                data["direction"].append(d)
                data["index"].append(i + 1)
                data["sequence"].append(b)
                data["exponent"].append(float(v))
    if net.bidirectional:
        ax.legend(frameon=False, fontsize=7)
    data, dropped = _finite_rows(data, ["exponent"])
    lam = a.lyapunov.exponents[..., 0]
    figure = Figure("lyapunov", fig,
                    "The largest Lyapunov exponents of the stacked state (every layer of a "
                    f"direction), log10 per step, median over the first {a.detail} sequences; "
                    "the data file holds natural-log exponents per sequence."
                    + _dropped(dropped), data)
    text = ("The Lyapunov exponents are the long-run rates at which the network's state map "
            "stretches or shrinks perturbations (Benettin's QR method on the product of "
            "one-step Jacobians, `gradflow.network_lyapunov`). All negative: the network "
            "forgets its initial state and gradients over long lags vanish at about the rate "
            f"of the largest; here it is {np.median(lam):.3g} per step (natural log, median).")
    return Section(key="lyapunov", title="Lyapunov spectrum of the stacked state", text=text,
                   figures=[figure])


def _whatif_section(a) -> Section | None:
    from ..plot import lag_map, new_figure

    w = a.whatif
    if w is None:
        return None
    net, flow = a.network, a.flow
    gated = [(layer, d) for layer, d, c in _layers(net)
             if c.spec.forget_gate is not None and not only_lag0(flow, layer, d)]
    fig, axes = new_figure(ncols=len(gated), width=min(3.6 * len(gated) + 0.4, 13.0), height=3.4,
                           sharey=True)
    axes = np.atleast_1d(axes)
    data = {"row": [], "model": [], "lag": [], "median_log10_norm": []}
    rows = []
    for k, ((layer, d), ax) in enumerate(zip(gated, axes)):
        for which, src, color in (("trained", flow, "#1f77b4"), (f"bias + {w.shift:g}", w.flow,
                                                                  "#d62728")):
            v = src.log10_lag[layer, d]
            ok = np.isfinite(v).all(axis=1)
            lag_map(v[ok], src.lags[ok], ax=ax, label=which, color=color)
            med = np.median(v[ok], axis=1)
            data["row"] += [k] * int(ok.sum())
            data["model"] += [which] * int(ok.sum())
            data["lag"] += src.lags[ok].tolist()
            data["median_log10_norm"] += med.tolist()
        ax.set_title(layer_name(net, layer, d))
        ax.legend(frameon=False, fontsize=7)
        before, after = a.horizons[layer, d], w.horizons[layer, d]
        rows.append([layer_name(net, layer, d), _med(before, flow.length),
                     _med(after, flow.length), power(at_longest_lag(flow, layer, d)),
                     power(at_longest_lag(w.flow, layer, d))])
    figure = Figure("whatif", fig,
                    f"Lag maps of the trained model (blue) and of the same model with every "
                    f"forget-like gate's bias raised by {w.shift:g} (red), on the same input.",
                    data)
    table = Table("whatif_horizons", ["layer", "trained: median horizon",
                                      f"bias + {w.shift:g}: median horizon",
                                      "trained: at the longest lag",
                                      f"bias + {w.shift:g}: at the longest lag"], rows,
                  f"Gradient horizons (below {level(a.threshold)} of lag 0) and the gradient at "
                  "the longest lag (relative to lag 0, median), before and after.")
    text = (f"What would a larger forget bias change? The same analysis with every forget-like "
            f"gate's bias raised by {w.shift:g} (`forget_bias={w.shift:g}`), nothing else "
            "changed: a larger bias opens the gates, so the direct path multiplies by values "
            "nearer 1 and the gradient reaches further back — at the price of a state that "
            "forgets less.")
    return Section(key="whatif", title=f"What if the forget-gate bias were {w.shift:+g}?",
                   text=text, figures=[figure], tables=[table])


def _med(h, T) -> str:
    h = h[~np.isnan(h)]
    if not h.size:
        return "—"
    m = float(np.median(np.minimum(h, T + 1)))
    return f"> {T}" if m > T else f"{m:.0f}"


def sections(a) -> list:
    """The report's sections for analysis `a`, in reading order."""
    out = [_model_section(a), _lag_section(a), _heat_section(a), _gate_section(a),
           _lyapunov_section(a), _whatif_section(a)]
    return [s for s in out if s is not None]


def preface(a, secs) -> str:
    lines = ["What this network does with gradients, measured by `gradflow analyze` (every "
             "figure's numbers are in `data/`, next to the figures in `figures/`).", "",
             "**Findings**", ""]
    lines += [f"- {s}" for s in a.summary]
    lines += ["", "Contents:", ""]
    lines += [f"{k}. [{s.title}](#{s.key})" for k, s in enumerate(secs, start=1)]
    return "\n".join(lines)


def write(a, out, *, formats=("md", "html"), progress: bool = False) -> list:
    """Write the report of `a` into `out` (see the module documentation)."""
    from .. import _validate as check
    from ..report import output
    from ..report.runner import FORMATS, check_section
    from ..report.style import style
    from ..report.writer import write_report

    formats = check.names("formats", formats, allowed=FORMATS)
    out = check.path("out", out)
    staged = output.staging(out)
    try:
        with style():
            secs = sections(a)
        problems = [p for s in secs for p in check_section(s)]
        if problems:
            raise RuntimeError("the analysis report breaks its rules: " + "; ".join(problems))
        written = write_report(staged, secs, config=StudyConfig(seed=a.seed), formats=formats,
                               progress=progress, title=TITLE, preface=preface(a, secs))
        output.publish(staged, out)
    except BaseException:
        output.discard(staged)
        raise
    return [out / p.relative_to(staged) for p in written]
