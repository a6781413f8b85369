"""The phase diagram of trainability: over the recurrent weights' spectral radius, the
LSTM's forget-gate bias and the input scale, the largest Lyapunov exponent (the edge of
chaos at lambda_max = 0), the gradient horizon, and whether a long-lag task is learnt."""

from __future__ import annotations

import numpy as np

from gradflow.report import Figure, Section, StudyConfig, Table

from ._common import grid, inputs, lag_grid, seed_of

TITLE = "Phase diagram: the edge of chaos, memory horizons and where learning works"

#: horizon: the first lag at which ||d h_T / d h_{T-k}|| is below 1 % of its lag-0 value
THRESHOLD = 1e-2
#: the learning test: the 1997 temporal-order problem (classify the order of two symbols
#: hidden in a long sequence of distractors)
TASK = "temporal-order"
#: what a point costs on one core of a 2-core machine (seconds, medians measured by
#: ``benchmarks/sweep.py --cost``), for the time the full grid would take; a training run
#: that does not solve the task uses its whole budget, and most of the full grid's do not
COST = {"map": {"default": 0.13, "full": 1.2}, "learn": {"default": 1.3, "full": 58.0}}


def sizes(config: StudyConfig) -> dict:
    """The grids: `maps` (Lyapunov exponent and horizon at every point) and `learn` (a
    coarser sub-grid of training runs)."""
    if config.quick:
        return {"T": 100, "H": 16, "D": 8, "B": 2, "seeds": 1,
                "radius": [0.5, 1.0, 1.5, 2.5], "scale": [0.1, 1.0], "bias": [-2.0, 0.0, 2.0],
                "lstm_scales": [1.0],
                "learn": {"T": 20, "budget": 3_000, "test": 128, "seeds": 1,
                          "radius": [1.0], "scale": [1.0], "bias": [-2.0, 2.0],
                          "lstm_scales": [1.0]}}
    if config.full:
        return {"T": 1000, "H": 64, "D": 16, "B": 8, "seeds": 1,
                "radius": np.round(np.linspace(0.1, 4.0, 40), 3).tolist(),
                "scale": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
                "bias": np.round(np.linspace(-4.0, 6.0, 21), 3).tolist(),
                "lstm_scales": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
                "learn": {"T": 50, "budget": 100_000, "test": 1_024, "seeds": 5,
                          "radius": np.round(np.linspace(0.4, 4.0, 10), 3).tolist(),
                          "scale": [0.1, 1.0, 10.0], "bias": [-4.0, -2.0, -1.0, 0.0, 1.0, 2.0,
                                                              3.0, 4.0, 5.0, 6.0],
                          "lstm_scales": [0.1, 1.0, 10.0]}}
    return {"T": 400, "H": 32, "D": 8, "B": 4, "seeds": 2,
            "radius": np.round(np.linspace(0.25, 3.0, 12), 3).tolist(),
            "scale": [0.1, 0.3, 1.0, 3.0], "bias": [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0],
            "lstm_scales": [0.3, 1.0, 3.0],
            "learn": {"T": 20, "budget": 20_000, "test": 512, "seeds": 2,
                      "radius": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0], "scale": [0.3, 1.0, 3.0],
                      "bias": [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], "lstm_scales": [1.0]}}


def make_cell(cell: str, D: int, H: int, radius: float, bias: float | None, scale: float,
              seed: int):
    """The cell at one grid point: each gate's block of ``weight_hh`` has spectral radius
    `radius` (PyTorch's uniform draw, rescaled), ``weight_ih`` is normal with standard
    deviation ``scale / sqrt(D)`` (so unit-variance inputs drive each unit with variance
    ``scale**2``), every bias is 0 but the LSTM's forget gate's, which is `bias`.  The same
    seed gives the same matrices at every point, only scaled."""
    import gradflow

    c = gradflow.Cell(cell, D, H, seed=seed, spectral_radius=radius)
    p = c.params
    p["weight_ih"][...] = scale * np.random.default_rng(seed + 1).standard_normal(
        p["weight_ih"].shape) / np.sqrt(D)
    p["bias_ih"][...] = 0.0
    p["bias_hh"][...] = 0.0
    if bias is not None:
        p["bias_ih"][c.gate_slice(c.spec.forget_gate)] = bias
    return c


def measure(cell: str, radius: float, bias: float | None, scale: float, seed: int, T: int,
            H: int, D: int, B: int) -> dict:
    """The largest Lyapunov exponent (natural log per step) and the gradient horizon (time
    steps, censored at T) of one point, median over the batch of B input sequences."""
    from threadpoolctl import threadpool_limits

    import gradflow

    with threadpool_limits(1):
        c = make_cell(cell, D, H, radius, bias, scale, seed)
        x = inputs(seed + 2, T, B, D)
        lam = gradflow.lyapunov_spectrum(c, x, n_exponents=1).exponents[:, 0]
        flow = gradflow.gradient_flow(c, x, lags=lag_grid(T, dense=60, total=160), state=False)
        horizon = gradflow.memory_horizon(flow, threshold=THRESHOLD)
    return {"lam": float(np.median(lam)), "horizon": float(np.median(np.minimum(horizon, T))),
            "censored": int(np.sum(~np.isfinite(horizon)))}


def learn(cell: str, radius: float, bias: float | None, scale: float, seed: int, T: int,
          H: int, budget: int, test: int) -> dict:
    """One training run on the temporal-order task from the point's initialisation, with
    gradflow's training settings (Adam, learning rate 0.01, clipping at 1); solved means
    every test sequence right within `budget` sequences."""
    from threadpoolctl import threadpool_limits

    from gradflow import train
    from gradflow.train import tasks

    task = tasks.get(TASK, length=T)
    rec = train.recipe(cell)
    c = make_cell(cell, task.input_size, H, radius, bias, scale, seed)
    warm = c.copy()  # load the kernels and their BLAS before limiting its threads
    warm.backward(warm.forward(np.zeros((1, 1, task.input_size))), np.zeros((1, 1, H)))
    with threadpool_limits(1):
        r = train.train(c, task, batch_size=rec["batch_size"], optimizer=rec["optimizer"],
                        lr=rec["lr"], clip=rec["clip"], window=rec["window"],
                        max_sequences=budget, test_size=test, probes=2, seed=seed,
                        verbose=False)
    return {"solved": bool(r.solved), "sequences": int(r.sequences),
            "accuracy": float(r.test["accuracy"])}


def crossing(x, y, level: float = 0.0) -> float:
    """The first x at which the curve y(x) rises through `level` (linear interpolation);
    NaN when it does not."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    for k in range(len(x) - 1):
        if y[k] < level <= y[k + 1]:
            return float(x[k] + (level - y[k]) * (x[k + 1] - x[k]) / (y[k + 1] - y[k]))
    return float("nan")


def _points(s: dict, cells=("rnn", "lstm")) -> list[tuple]:
    """(cell, radius, bias, scale, replicate) of the maps; bias None for the RNN."""
    out = []
    for cell in cells:
        scales = s["scale"] if cell == "rnn" else s["lstm_scales"]
        biases = [None] if cell == "rnn" else s["bias"]
        out += [(cell, r, b, sc, k) for sc in scales for b in biases for r in s["radius"]
                for k in range(s["seeds"])]
    return out


def _learn_points(s: dict) -> list[tuple]:
    g = s["learn"]
    return ([("rnn", r, None, sc, k) for sc in g["scale"] for r in g["radius"]
             for k in range(g["seeds"])]
            + [("lstm", r, b, sc, k) for sc in g["lstm_scales"] for b in g["bias"]
               for r in g["radius"] for k in range(g["seeds"])])


def counts(config: StudyConfig) -> dict:
    """Map points and training runs of the grid, and the CPU time they cost (COST)."""
    s = sizes(config)
    kind = "full" if config.full else "default"
    maps, runs = len(_points(s)), len(_learn_points(s))
    return {"maps": maps, "runs": runs,
            "cpu_hours": (maps * COST["map"][kind] + runs * COST["learn"][kind]) / 3600}


def run(config: StudyConfig) -> Section:
    from gradflow.plot import new_figure, phase_map

    s, g = sizes(config), sizes(config)["learn"]
    points = _points(s)
    jobs = [dict(cell=c, radius=r, bias=b, scale=sc, seed=seed_of(config.seed, "phase", c, k),
                 T=s["T"], H=s["H"], D=s["D"], B=s["B"]) for c, r, b, sc, k in points]
    maps = grid(measure, jobs, config)
    lpoints = _learn_points(s)
    ljobs = [dict(cell=c, radius=r, bias=b, scale=sc, seed=seed_of(config.seed, "phase", c, k),
                  T=g["T"], H=s["H"], budget=g["budget"], test=g["test"])
             for c, r, b, sc, k in lpoints]
    runs = grid(learn, ljobs, config)

    def field(cell, key, rows, cols, fix, values, pts, row_of, col_of):
        """A (len(rows), len(cols)) array of `key`, averaged over replicates."""
        acc = np.zeros((len(rows), len(cols)))
        n = np.zeros_like(acc)
        for (c, r, b, sc, _k), v in zip(pts, values):
            if c != cell or not fix(b, sc):
                continue
            i, j = rows.index(row_of(r, b, sc)), cols.index(col_of(r, b, sc))
            acc[i, j] += float(v[key])
            n[i, j] += 1
        return np.where(n > 0, acc / np.maximum(n, 1), np.nan)

    R = s["radius"]
    by_scale = dict(rows=s["scale"], cols=R, row_of=lambda r, b, sc: sc, col_of=lambda r, b, sc: r)
    rnn = {k: field("rnn", k, fix=lambda b, sc: True, values=maps, pts=points, **by_scale)
           for k in ("lam", "horizon")}
    rnn_learn = field("rnn", "solved", fix=lambda b, sc: True, values=runs, pts=lpoints,
                      rows=g["scale"], cols=g["radius"], row_of=lambda r, b, sc: sc,
                      col_of=lambda r, b, sc: r)
    mid = 1.0 if 1.0 in s["lstm_scales"] else s["lstm_scales"][len(s["lstm_scales"]) // 2]
    lmid = 1.0 if 1.0 in g["lstm_scales"] else g["lstm_scales"][0]

    def lstm_field(key, scale):
        return field("lstm", key, fix=lambda b, sc: sc == scale, values=maps, pts=points,
                     rows=s["bias"], cols=R, row_of=lambda r, b, sc: b, col_of=lambda r, b, sc: r)

    lstm = {k: lstm_field(k, mid) for k in ("lam", "horizon")}
    lstm_learn = field("lstm", "solved", fix=lambda b, sc: sc == lmid, values=runs, pts=lpoints,
                       rows=g["bias"], cols=g["radius"], row_of=lambda r, b, sc: b,
                       col_of=lambda r, b, sc: r)

    radius_label = r"spectral radius $\rho$ of $W_{hh}$"
    lam_label = r"$\lambda_{\max}$ (per step)"
    hor_label = r"$\log_{10}$ horizon (steps)"
    solved_label = "share of runs solved"

    def three(maps_, learn_, ys, ly, ylabel, ylog):
        fig, axes = new_figure(ncols=3, width=11.0, height=3.4)
        phase_map(maps_["lam"], R, ys, ax=axes[0], edge=maps_["lam"], cmap="RdBu_r", center=0.0,
                  xlabel=radius_label, ylabel=ylabel, colorbar=lam_label, ylog=ylog)
        axes[0].set_title("largest Lyapunov exponent")
        phase_map(np.log10(maps_["horizon"]), R, ys, ax=axes[1], edge=maps_["lam"],
                  xlabel=radius_label, ylabel=ylabel, colorbar=hor_label, ylog=ylog,
                  vmin=0.0, vmax=np.log10(s["T"]))
        axes[1].set_title("gradient horizon")
        phase_map(learn_, g["radius"], ly, ax=axes[2], edge=maps_["lam"], edge_x=R, edge_y=ys,
                  cmap="Greens", vmin=0.0, vmax=1.0, xlabel=radius_label, ylabel=ylabel,
                  colorbar=solved_label, ylog=ylog)
        axes[2].set_title(f"{TASK} task learnt")
        axes[2].set_xlim(axes[0].get_xlim())  # the coarser grid on the maps' axes
        axes[2].set_ylim(axes[0].get_ylim())
        return fig

    def long_form(cell, fix):
        """The map and training measurements of `cell` at the points passing
        `fix(bias, scale)`, in long form: one row per point and measure."""
        data = {"radius": [], "input_scale": [], "replicate": [], "measure": [], "value": []}
        if cell != "rnn":
            data["forget_bias"] = []
        for pts, values in ((points, maps), (lpoints, runs)):
            for (c, r, b, sc, k), v in zip(pts, values):
                if c != cell or not fix(b, sc):
                    continue
                for key, val in v.items():
                    for name, x in (("radius", r), ("input_scale", sc), ("replicate", k),
                                    ("measure", key), ("value", float(val))):
                        data[name].append(x)
                    if cell != "rnn":
                        data["forget_bias"].append(b)
        return data

    fig1 = Figure(
        name="rnn", figure=three(rnn, rnn_learn, s["scale"], g["scale"], "input scale", True),
        caption="The tanh RNN over the spectral radius of $W_{hh}$ and the input scale "
                "(standard deviation of each unit's input drive). Left: the largest Lyapunov "
                "exponent of the driven network (red: chaotic, blue: contracting); the black "
                "line is the edge of chaos, λ_max = 0, drawn on every panel. Middle: the "
                f"gradient horizon (first lag below {THRESHOLD:g} of lag 0; censored at "
                f"T = {s['T']}). Right: the share of runs that learnt the {TASK} task "
                f"(T = {g['T']}) within {g['budget']:,} sequences, on a coarser grid.",
        data=long_form("rnn", lambda b, sc: True))
    fig2 = Figure(
        name="lstm", figure=three(lstm, lstm_learn, s["bias"], g["bias"],
                                  "forget-gate bias b", False),
        caption=f"The LSTM over the spectral radius (each gate's block of $W_{{hh}}$) and the "
                f"forget-gate bias, at input scale {mid:g} (training runs at {lmid:g}). Panels "
                "as for the RNN: λ_max with the edge of chaos, the gradient horizon, and the "
                "temporal-order task.",
        data=long_form("lstm", lambda b, sc: sc in (mid, lmid)))
    scales = s["lstm_scales"]
    fig, axes = new_figure(ncols=len(scales), width=3.7 * len(scales) + 0.4, height=3.3)
    axes = np.atleast_1d(axes)
    per_scale = {}
    for ax, sc in zip(axes, scales):
        per_scale[sc] = lstm_field("lam", sc)
        phase_map(per_scale[sc], R, s["bias"], ax=ax, edge=per_scale[sc], cmap="RdBu_r",
                  center=0.0, xlabel=radius_label, ylabel="forget-gate bias b",
                  colorbar=lam_label)
        ax.set_title(f"LSTM λ_max, input scale {sc:g}")
    fig3 = Figure(
        name="lstm_scales", figure=fig,
        caption="The LSTM's largest Lyapunov exponent at each input scale: a stronger input "
                "drive pushes the edge of chaos (black) to larger spectral radii.",
        data={"input_scale": [sc for sc in scales for _ in s["bias"] for _ in R],
              "forget_bias": [b for _ in scales for b in s["bias"] for _ in R],
              "radius": [r for _ in scales for _ in s["bias"] for r in R],
              "lam": np.concatenate([per_scale[sc].ravel() for sc in scales]).tolist()})

    # the edge of chaos and the longest horizon along the radius, per row of each map
    rows = []
    for sc, lam_row, hor_row in zip(s["scale"], rnn["lam"], rnn["horizon"]):
        rows.append(["rnn", "—", f"{sc:g}", _edge_text(R, lam_row),
                     *_horizon_text(R, hor_row, s["T"])])
    for b, lam_row, hor_row in zip(s["bias"], lstm["lam"], lstm["horizon"]):
        rows.append(["lstm", f"{b:g}", f"{mid:g}", _edge_text(R, lam_row),
                     *_horizon_text(R, hor_row, s["T"])])
    table = Table(
        name="edge", columns=["cell", "forget bias", "input scale", "edge of chaos ρ*",
                              "first ρ with horizon ≥ T", "longest horizon (at ρ)"],
        rows=rows,
        caption="Along the spectral radius, per row of the maps: where λ_max first rises "
                "through 0 (linear interpolation between grid points; '> ρ' when the row "
                "stays below 0 up to the grid's largest ρ, '< min' when it starts above 0); "
                f"the first ρ at which the gradient no longer falls below {THRESHOLD:g} of "
                f"its lag-0 value within T = {s['T']} steps ('—': nowhere in the grid); and "
                "the longest horizon.")

    edges_rnn = [crossing(R, row) for row in rnn["lam"]]
    full_sizes = sizes(StudyConfig(full=True))
    full, here = counts(StudyConfig(full=True)), counts(config)
    text = (
        "Where does a recurrent network keep gradients alive? Pascanu et al. (2013) tied "
        "exploding and vanishing gradients to the spectral radius of the recurrent weights; "
        "the signal-propagation theory of Poole et al. (2016) and Schoenholz et al. (2017) "
        "says that information and gradients travel furthest at the *edge of chaos*, where "
        "the largest Lyapunov exponent $\\lambda_{\\max}$ of the dynamics crosses 0; "
        "Engelken (2023) trains RNNs by keeping their Lyapunov exponents near 0 (gradient "
        "flossing). This study measures the three quantities on one grid: "
        "$\\lambda_{\\max}$ of the network driven by its input "
        "(`gradflow.lyapunov_spectrum`), the gradient horizon (the first lag at which "
        f"$\\|\\partial h_T/\\partial h_{{T-k}}\\|$ falls below {THRESHOLD:g} of its lag-0 "
        "value, `gradflow.memory_horizon`), and, on a coarser sub-grid, whether the "
        f"{TASK} task with sequences of {g['T']} steps is learnt within "
        f"{g['budget']:,} training sequences.\n\n"
        f"Each point is a network of H = {s['H']} units whose recurrent blocks are rescaled "
        "to spectral radius ρ, whose input weights give each unit an input drive of standard "
        "deviation 'input scale', and whose biases are 0 but the LSTM's forget gate "
        "(bias b). The same random matrices are used at every point, only rescaled, so the "
        f"maps vary smoothly. Maps: {s['T']} steps, a batch of {s['B']} sequences, medians "
        f"over the batch, means over {s['seeds']} initialisation(s); training: "
        f"{g['seeds']} initialisation(s) per point, gradflow's training settings.\n\n"
        + _rnn_findings(s, rnn["lam"], edges_rnn, rnn["horizon"]) + " "
        + _learn_findings(points, maps, lpoints, runs) + " "
        + _lstm_findings(s, lstm["horizon"], mid) + "\n\n"
        f"This run: {here['maps']} map points and {here['runs']} training runs. The full grid "
        f"(`gradflow report --full`) has {full['maps']:,} map points "
        f"({len(full_sizes['radius'])} radii × {len(full_sizes['bias'])} biases × "
        f"{len(full_sizes['lstm_scales'])} input scales for the LSTM, H = {full_sizes['H']}, "
        f"T = {full_sizes['T']}) and {full['runs']:,} training runs "
        f"(T = {full_sizes['learn']['T']}, {full_sizes['learn']['seeds']} seeds, up to "
        f"{full_sizes['learn']['budget']:,} sequences each); at the per-point cost measured by "
        f"`benchmarks/sweep.py` it is about {full['cpu_hours']:.0f} CPU-hours: "
        f"{full['cpu_hours'] / 2:.0f} h on 2 cores, {full['cpu_hours'] * 60 / 10:.0f} min on "
        f"10 workers and {full['cpu_hours'] * 60 / 100:.0f} min on 100 (`--scheduler "
        "ADDRESS`, a Dask cluster; see the README)."
    )
    return Section(key="phase", title=TITLE, text=text, figures=[fig1, fig2, fig3],
                   tables=[table],
                   data={"sizes": s, "threshold": THRESHOLD, "task": TASK, "grid": here,
                         "full_grid": full})


def _nearest(maps, points, cell, radius, bias, scale) -> dict:
    """The map point closest to a training point (same cell, bias and scale if present)."""
    best, dist = None, np.inf
    for (c, r, b, sc, _k), v in zip(points, maps):
        if c != cell or b != bias:
            continue
        d = abs(np.log(sc / scale)) + abs(r - radius)
        if d < dist:
            best, dist = v, d
    return best


def _edge_text(radius, lam_row) -> str:
    e = crossing(radius, lam_row)
    if np.isfinite(e):
        return f"{e:.2f}"
    return "< min" if lam_row[0] >= 0 else f"> {radius[-1]:g}"


def first_censored(radius, horizon_row, T) -> float:
    """The first radius at which the (median) horizon reaches T; NaN when none does."""
    hit = np.flatnonzero(np.asarray(horizon_row) >= T)
    return float(radius[hit[0]]) if hit.size else float("nan")


def _horizon_text(radius, horizon_row, T) -> list[str]:
    first = first_censored(radius, horizon_row, T)
    k = int(np.nanargmax(horizon_row))
    h = horizon_row[k]
    return [f"{first:g}" if np.isfinite(first) else "—",
            f"{'≥ ' if h >= T else ''}{h:.0f} (ρ = {radius[k]:g})"]


def _rnn_findings(s, lams, edges, horizon) -> str:
    """What the RNN's maps show: where the edge lies at each input scale, whether it moves
    with the input, and how far the longest horizon lies from it."""
    R, scales = s["radius"], s["scale"]
    def where(sc, e, lam):
        if np.isfinite(e):
            return f"at input scale {sc:g}, λ_max crosses 0 at ρ ≈ {e:.2f}"
        if lam[0] >= 0:
            return f"at input scale {sc:g}, λ_max is above 0 from ρ = {R[0]:g} on"
        return f"at input scale {sc:g}, λ_max stays below 0 up to ρ = {R[-1]:g}"

    parts = [where(sc, e, lam) for sc, e, lam in zip(scales, edges, lams)]
    text = "For the tanh RNN: " + "; ".join(parts) + ". "
    lo, hi = edges[0], edges[-1]
    if np.isfinite(lo) and (not np.isfinite(hi) or hi > lo):
        text += ("A stronger input drive saturates the units and suppresses chaos: the edge "
                 "moves to larger ρ. ")
    elif np.isfinite(lo) and np.isfinite(hi):
        text += "Here the edge does not move to larger ρ with a stronger drive. "
    pairs = [(e, first_censored(R, h, s["T"])) for e, h in zip(edges, horizon)]
    pairs = [(e, f) for e, f in pairs if np.isfinite(e) and np.isfinite(f)]
    if pairs:
        step = R[1] - R[0] if len(R) > 1 else 1.0
        text += ("The gradient stops vanishing (its horizon reaches the sequence's "
                 f"{s['T']} steps) at ρ = " + ", ".join(f"{f:g}" for _, f in pairs)
                 + ", against edges at " + ", ".join(f"{e:.2f}" for e, _ in pairs)
                 + f" (grid step {step:.2f}; table)")
        if all(abs(f - e) <= 1.5 * step for e, f in pairs):
            text += (": the vanishing regime ends at the edge of chaos, within the grid's "
                     "resolution; past it the gradients no longer fall (the exploding study).")
        else:
            text += ("; they do not coincide within the grid's resolution (1.5 steps).")
    return text


def _learn_findings(points, maps, lpoints, runs) -> str:
    """How many runs learnt the task, split by the sign of λ_max where they started."""
    out = []
    for cell in ("rnn", "lstm"):
        split = {"ordered": [0, 0], "chaotic": [0, 0]}
        for (c, r, b, sc, _k), v in zip(lpoints, runs):
            if c != cell:
                continue
            side = "chaotic" if _nearest(maps, points, c, r, b, sc)["lam"] > 0 else "ordered"
            split[side][0] += int(v["solved"])
            split[side][1] += 1
        parts = [f"{n} of {m} started {side} (λ_max {'>' if side == 'chaotic' else '≤'} 0)"
                 for side, (n, m) in split.items() if m]
        out.append(f"{cell.upper()} runs that learnt the task: " + ", ".join(parts))
    return "; ".join(out) + "."


def _lstm_findings(s, horizon, scale) -> str:
    """Whether the LSTM's horizon grows with the forget bias at every radius."""
    h = np.asarray(horizon)  # (biases, radii)
    rising = int(np.sum(np.all(np.diff(h, axis=0) >= 0, axis=0)))
    ratio = np.nanmedian(h[-1] / np.maximum(h[0], 1.0))
    return (f"For the LSTM at input scale {scale:g} the horizon does not fall as the forget "
            f"bias rises (b = {s['bias'][0]:g} … {s['bias'][-1]:g}) at {rising} of "
            f"{h.shape[1]} radii, and is {ratio:.0f} times longer at the largest bias than at "
            "the smallest (median over radii): the cell-state path multiplies the gradient by "
            "$f_t \\approx \\sigma(b)$ each step, so the bias, more than the spectral radius, "
            "sets the horizon (compare the forget-bias study).")
