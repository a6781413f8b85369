"""Derivations: every catalogue cell's equations and one-step Jacobian blocks, derived by
SymPy from the equations, and parameter counts computed from the parameter shapes."""

from __future__ import annotations

from gradflow.report import Figure, Section, StudyConfig, Table

TITLE = "Appendix: the cells' equations and one-step Jacobians"

#: the cells shown with equations in the quick report (all in the default one)
QUICK_CELLS = ("rnn", "lstm", "lstm-nfg", "gru")
SIZE = 128  # hidden and input size of the parameter-count table


def parameter_counts(names, hidden: int = SIZE, inputs: int = SIZE) -> list[dict]:
    """Per cell: gates, recurrent weights (entries of weight_hh) and all parameters."""
    import gradflow

    rows = []
    for name in names:
        cell = gradflow.Cell(name, inputs, hidden, seed=0)
        shapes = cell.param_shapes()
        rows.append({
            "cell": name,
            "gates": len(cell.spec.gates),
            "state": ",".join(cell.spec.state),
            "weight_hh": shapes["weight_hh"],
            "recurrent": int(shapes["weight_hh"][0] * shapes["weight_hh"][1]),
            "total": cell.num_parameters,
        })
    return rows


def run(config: StudyConfig) -> Section:
    from gradflow import cells
    from gradflow.plot import cell_color, new_figure

    names = list(cells.names())
    shown = [n for n in names if not config.quick or n in QUICK_CELLS]
    counts = parameter_counts(names)
    base = next(r for r in counts if r["cell"] == "rnn")
    lstm = next(r for r in counts if r["cell"] == "lstm")

    text = [
        "Each cell is written once, as per-unit scalar equations; SymPy differentiates them "
        "and assembles the one-step Jacobian of the state from the scalar partials and the "
        "recurrent weight blocks $W_{h\\cdot}$. Nothing below is typed by hand: the "
        "equations are `spec.latex()` and the Jacobians `spec.jacobian().latex()`. "
        "$a^{x}_{g,t}$ and $a^{h}_{g,t}$ are the input and recurrent pre-activations of gate "
        "$g$; $\\operatorname{diag}(v)$ is the diagonal matrix of the per-unit vector $v$.",
        "",
        "Two facts to read off the blocks, used throughout the report:",
        "",
        "- the vanilla RNN's only block is $\\operatorname{diag}(1 - h_t^2) W_{ha}$: every step "
        "back multiplies the gradient by a weight matrix and a derivative at most 1;",
        "- the LSTM's $\\partial c_t / \\partial c_{t-1}$ is exactly $\\operatorname{diag}(f_t)$, "
        "a direct edge with no weight matrix (the cell-state path), and for `lstm-nfg` "
        "(no forget gate) it is the identity: the 1997 constant error carousel.",
        "",
        f"Parameter counts (input and hidden size {SIZE}) are computed from the parameter "
        f"shapes of each `Cell`: the LSTM's `weight_hh` is {lstm['weight_hh'][0]}×"
        f"{lstm['weight_hh'][1]}, {lstm['recurrent'] // base['recurrent']} times the vanilla "
        f"RNN's {base['weight_hh'][0]}×{base['weight_hh'][1]}, and its total is "
        f"{lstm['total'] / base['total']:.2f} times the RNN's (four gates, each a full RNN "
        "layer's worth of weights and biases).",
    ]
    data = {"parameters": counts, "latex": {}}
    for name in shown:
        spec = cells.get(name)
        eq, jac = spec.latex(), spec.jacobian().latex()
        data["latex"][name] = {"equations": eq, "jacobian": jac}
        # each cell's derivation folds away: the report's results come first
        text += ["", "<details open>" if name == "lstm" else "<details>",
                 f"<summary>`{name}`: {spec.description}</summary>", "", "Equations:", "",
                 "$$", eq, "$$", "", "One-step Jacobian blocks:", "", "$$", jac, "$$", "",
                 "</details>"]
    if config.quick:
        text += ["", "(Quick report: equations of " + ", ".join(f"`{n}`" for n in shown)
                 + " only; the default report shows every catalogue cell.)"]

    table = Table(
        name="counts",
        columns=["cell", "gates", "state", "weight_hh shape", "recurrent weights",
                 "all parameters", "× rnn"],
        rows=[[r["cell"], r["gates"], r["state"], f"{r['weight_hh'][0]}×{r['weight_hh'][1]}",
               r["recurrent"], r["total"], round(r["total"] / base["total"], 3)] for r in counts],
        caption=f"Parameter counts at input size = hidden size = {SIZE}, from `Cell.param_shapes()`.",
    )
    fig, ax = new_figure(width=6.4, height=3.4)
    ratios = [r["total"] / base["total"] for r in counts]
    ax.bar(range(len(counts)), ratios, color=[cell_color(r["cell"]) for r in counts])
    ax.axhline(4.0, color="k", lw=0.8, ls="--")
    ax.set_xticks(range(len(counts)), [r["cell"] for r in counts], rotation=45, ha="right")
    ax.set_ylabel("parameters / rnn's (ratio)")
    ax.set_xlabel("cell")
    ax.set_title(f"Parameters relative to the vanilla RNN (D = H = {SIZE})")
    figure = Figure(
        name="parameters", figure=fig,
        caption="Each cell's number of parameters divided by the vanilla RNN's. The count "
                "scales with the number of gates: LSTM-family cells with four gates sit at "
                "exactly 4 (dashed line), three-gate cells (GRU, CIFG, NIG, NOG) at 3.",
        data={"cell": [r["cell"] for r in counts], "parameters": [r["total"] for r in counts],
              "ratio_to_rnn": ratios},
    )
    return Section(key="derivations", title=TITLE, text="\n".join(text), figures=[figure],
                   tables=[table], data=data)
