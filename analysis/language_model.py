"""A real trained model: a 2-layer character-level LSTM trained on Python's help texts,
analysed with ``gradflow.analyze`` before and after training, and its gradient horizons
set against the context it measurably uses (its loss with the context cut to k
characters, computed with gradflow's own forward pass)."""

from __future__ import annotations

import json
import math

import numpy as np

from gradflow.report import Figure, Section, StudyConfig, Table

from ._common import fmt, grid
from .trained_model import corpus, path

TITLE = "A trained language model: gradient horizons against the context it uses"

#: levels of the gradient (relative to lag 0) at which horizons are read; 1e-8 is
#: gradflow.analyze's default
THRESHOLDS = (1e-1, 1e-2, 1e-4, 1e-8)
#: the loss "stops improving" at the shortest context whose mean loss, and that of every
#: longer context measured, is within this much of the whole-sequence loss (nats/char)
PLATEAU = 0.01
#: the same at other tolerances, for the table
PLATEAUS = (0.1, 0.01, 0.001)
ROLES = ("initial", "trained")
NAMES = {"initial": "before training", "trained": "after training"}
COLORS = ("#1f77b4", "#d62728")


def sizes(config: StudyConfig) -> dict:
    """The study's sizes: sequences (and their last `steps` steps) for the analysis;
    sequences, target positions (the last `positions` of each) and context lengths for
    the loss."""
    if config.quick:
        return {"analysis": 2, "steps": 64, "lyapunov": False, "loss": 8, "positions": 4,
                "contexts": [1, 2, 4, 8, 16, 32]}
    return {"analysis": 8, "steps": 256, "lyapunov": True, "loss": 48, "positions": 8,
            "contexts": [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96]}


def load(role: str):
    """The model file of `role` ("initial" or "trained"), read without PyTorch, as a
    :class:`gradflow.analyzer.LoadedModel` (the LSTM and its readout ``head``)."""
    from gradflow.analyzer import load_model

    return load_model(path(role), readout="head", batch_first=True)


def evaluation_data() -> dict:
    """The committed evaluation sequences: ``codes`` (N, T + 1), and ``x`` (n, T, VOCAB)
    and ``targets`` (n, T) of the first n, the analysis's input."""
    with np.load(path("data"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def context_losses(model, codes, contexts, positions) -> tuple[np.ndarray, np.ndarray]:
    """The next-character loss with the context cut to k characters.

    For every sequence n and position t, the model reads ``codes[n, t-k+1 .. t]`` from a
    zero state (gradflow's ``Network.forward``), its readout gives logits for the next
    character, and the loss is the cross-entropy of ``codes[n, t+1]``.

    Parameters
    ----------
    model : LoadedModel
        With a readout (``load(role)``).
    codes : array_like of int, shape (N, T + 1)
    contexts : sequence of int or None
        Context lengths k >= 1; None: everything from the sequence's start (t + 1 codes).
    positions : array_like of int, shape (P,)
        Input positions t (0-based), each at least ``max(k) - 1``.

    Returns
    -------
    loss : ndarray, shape (len(contexts), N, P), float64
        Cross-entropy in nats.
    correct : ndarray, shape (len(contexts), N, P), bool
        Whether the most probable character is the next one.
    """
    from gradflow.errors import InvalidArgumentError

    net, readout = model.network, model.readout
    if readout is None:
        raise InvalidArgumentError("`model` has no readout; load it with readout='head'")
    W, b = readout
    codes = np.asarray(codes)
    positions = np.asarray(positions, dtype=np.int64)
    N, T1 = codes.shape
    if positions.min() < 0 or positions.max() > T1 - 2:
        raise InvalidArgumentError(f"`positions` must lie in [0, {T1 - 2}]; got "
                                   f"{positions.min()} .. {positions.max()}")
    longest = max((k for k in contexts if k is not None), default=1)
    if positions.min() + 1 < longest:
        raise InvalidArgumentError(f"a context of {longest} needs positions >= {longest - 1}; "
                                   f"the first is {positions.min()}")
    targets = codes[:, positions + 1].reshape(-1)  # (N * P,)
    loss = np.empty((len(contexts), N, len(positions)))
    correct = np.empty(loss.shape, dtype=bool)
    for j, k in enumerate(contexts):
        if k is None:
            h = net.forward(corpus.one_hot(codes[:, :-1])).output[:, positions]
        else:
            window = positions[:, None] + np.arange(1 - k, 1)[None, :]  # (P, k)
            x = corpus.one_hot(codes[:, window].reshape(N * len(positions), k))
            h = net.forward(x).output[:, -1]
        logits = h.reshape(N * len(positions), -1).astype(np.float64) @ W.T + b
        top = logits.max(axis=-1, keepdims=True)
        logz = top[:, 0] + np.log(np.exp(logits - top).sum(axis=-1))
        loss[j] = (logz - logits[np.arange(len(targets)), targets]).reshape(N, -1)
        correct[j] = (logits.argmax(axis=-1) == targets).reshape(N, -1)
    return loss, correct


def plateau(contexts, excess, tolerance: float = PLATEAU) -> float:
    """The shortest context from which on the mean excess loss stays within `tolerance`
    (for it and every longer context of the list); NaN when the longest is still above."""
    contexts, excess = np.asarray(contexts, dtype=np.float64), np.asarray(excess)
    above = np.flatnonzero(excess > tolerance)
    if not above.size:
        return float(contexts[0])
    return float(contexts[above[-1] + 1]) if above[-1] + 1 < len(contexts) else float("nan")


def measure(role: str, analysis: int, steps: int, lyapunov: bool, loss: int, positions: int,
            contexts: list) -> dict:
    """Everything the section shows about one model, as plain arrays: its analysis
    (``gradflow.analyze`` on the first `analysis` sequences, their last `steps` steps,
    cross-entropy of the next characters through the readout) and its context losses."""
    from threadpoolctl import threadpool_limits

    import gradflow
    from gradflow.analyzer import horizons_of

    data = evaluation_data()
    model = load(role)
    x, y = data["x"][:analysis, -steps:], data["targets"][:analysis, -steps:]
    model.network.forward(x[:1, :2])  # load the kernels and the BLAS before limiting threads
    with threadpool_limits(1):
        a = gradflow.analyze(model, x, targets=y, loss="cross-entropy", lyapunov=lyapunov,
                             inputs_label=f"{analysis} held-out sequences of {steps} characters")
        T = a.flow.length
        rel = a.flow.log10_lag[:, 0] - a.flow.log10_lag[:, 0, :1]  # (L, K, B)
        trace = a.network.forward(a.x)
        bins = np.linspace(0.0, 1.0, 41)
        f = [tr[0].intermediate("f") for tr in trace.traces]  # each layer's forget gate
        gates = np.stack([np.histogram(v, bins=bins)[0] / v.size for v in f])
        units = np.stack([np.median(np.minimum(np.asarray(h[0], dtype=np.float64), T + 1), axis=0)
                          for h in a.paths.horizons])  # (L, H)
        codes = data["codes"][:loss]
        pos = np.arange(codes.shape[1] - 1 - positions, codes.shape[1] - 1)
        lo, ok = context_losses(model, codes, [*contexts, None], pos)
    return {
        "role": role, "summary": list(a.summary), "loss": a.loss, "T": T,
        "lags": np.asarray(a.flow.lags), "log10_rel": rel,
        "horizons": {t: horizons_of(a.flow.log10_lag, a.flow.lags, t)[:, 0] for t in THRESHOLDS},
        "gate_bins": bins, "gate_share": gates, "unit_horizons": units,
        "above": a.paths.saturated_high[:, 0],
        "contexts": list(contexts), "context_loss": lo, "context_correct": ok,
    }


# ---------------------------------------------------------------------- the section
def _log() -> dict:
    return json.loads(path("log").read_text())


def _median_h(h: np.ndarray, T: int) -> str:
    h = np.asarray(h, dtype=np.float64)
    m = float(np.median(np.minimum(h, T + 1)))
    return f"> {T}" if m > T else f"{m:.0f}"


def _at_lag(r: dict, layer: int, k: float) -> float:
    """The median log10 gradient, relative to lag 0, of `layer` at lag `k`."""
    j = int(np.searchsorted(r["lags"], k))
    if j >= len(r["lags"]) or not math.isfinite(k):
        return float("nan")
    return float(np.median(r["log10_rel"][layer, j]))


def _curves(r: dict) -> dict:
    lo = r["context_loss"]  # (K + 1, N, P); the last: the whole sequence
    full = lo[-1]
    excess = (lo[:-1] - full).reshape(len(r["contexts"]), -1)
    n = excess.shape[1]
    return {"loss": lo[:-1].reshape(len(r["contexts"]), -1).mean(axis=1),
            "excess": excess.mean(axis=1), "excess_se": excess.std(axis=1, ddof=1) / math.sqrt(n),
            "accuracy": r["context_correct"][:-1].reshape(len(r["contexts"]), -1).mean(axis=1),
            "full": float(full.mean()), "full_accuracy": float(r["context_correct"][-1].mean()),
            "targets": n}


def _lag_figure(res: dict, kstar: float):
    from gradflow.plot import new_figure

    fig, axes = new_figure(ncols=2, width=10.0, height=3.6, sharey=True)
    data = {"model": [], "layer": [], "lag": [], "log10_rel_median": [], "log10_rel_q10": [],
            "log10_rel_q90": []}
    for ax, role in zip(axes, ROLES):
        r = res[role]
        for layer in range(r["log10_rel"].shape[0]):
            v = r["log10_rel"][layer]
            ok = np.isfinite(v).all(axis=1)
            med, lo, hi = (np.median(v[ok], axis=1), np.quantile(v[ok], 0.1, axis=1),
                           np.quantile(v[ok], 0.9, axis=1))
            lags = r["lags"][ok]
            ax.plot(lags, med, color=COLORS[layer % 2], label=f"layer {layer + 1}")
            ax.fill_between(lags, lo, hi, color=COLORS[layer % 2], alpha=0.2, lw=0)
            for key, vals in (("lag", lags), ("log10_rel_median", med), ("log10_rel_q10", lo),
                              ("log10_rel_q90", hi)):
                data[key] += np.asarray(vals, dtype=np.float64).tolist()
            data["model"] += [role] * len(lags)
            data["layer"] += [layer + 1] * len(lags)
        for t in (1e-2, 1e-8):
            ax.axhline(math.log10(t), color="0.5", lw=0.8, ls=":")
        if role == "trained" and math.isfinite(kstar):
            ax.axvline(kstar, color="k", lw=0.9, ls="--", label=f"loss stops improving (k = {kstar:g})")
        ax.set_title(NAMES[role])
        ax.set_xlabel("lag k (characters)")
        ax.legend(frameon=False, fontsize=7)
    for ax in axes:
        ax.set_ylabel(r"$\log_{10}\,\|\partial h^2_T/\partial h^l_{T-k}\|$ − lag 0")
    return fig, data


def _context_figure(res: dict, curves: dict, kstar: float):
    from gradflow.plot import new_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=10.0, height=3.6)
    data = {"model": [], "context": [], "loss_mean": [], "excess_mean": [], "excess_se": [],
            "accuracy": [], "whole_sequence_loss": []}
    for role, color in zip(ROLES, ("0.45", "k")):
        c, ks = curves[role], np.asarray(res[role]["contexts"], dtype=np.float64)
        ax1.plot(ks, c["loss"], "o-", ms=3, color=color, label=NAMES[role])
        ax1.axhline(c["full"], color=color, lw=0.8, ls="--")
        for key, vals in (("context", ks), ("loss_mean", c["loss"]), ("excess_mean", c["excess"]),
                          ("excess_se", c["excess_se"]), ("accuracy", c["accuracy"])):
            data[key] += np.asarray(vals, dtype=np.float64).tolist()
        data["whole_sequence_loss"] += [c["full"]] * len(ks)
        data["model"] += [role] * len(ks)
    ax1.set_xscale("log", base=2)
    ax1.set(xlabel="context k (characters)", ylabel="next-character loss (nats)",
            title="loss with the context cut to k")
    ax1.legend(frameon=False, fontsize=7)
    r, c = res["trained"], curves["trained"]
    ks = np.asarray(r["contexts"], dtype=np.float64)
    ax2.errorbar(ks, c["excess"], yerr=2 * c["excess_se"], fmt="o-", ms=3, color="k",
                 label="after training, ± 2 s.e.")
    ax2.axhline(PLATEAU, color="0.5", lw=0.8, ls=":")
    if math.isfinite(kstar):
        ax2.axvline(kstar, color="k", lw=0.9, ls="--")
    T = r["T"]
    for layer in range(r["log10_rel"].shape[0]):
        for t, ls in ((1e-2, "-."), (1e-8, "-")):
            h = float(np.median(np.minimum(r["horizons"][t][layer], T + 1)))
            if h <= T:
                ax2.axvline(h, color=COLORS[layer % 2], lw=0.9, ls=ls,
                            label=f"layer {layer + 1}: horizon at {t:g}")
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("symlog", linthresh=PLATEAU)
    ax2.set(xlabel="context k (characters)", ylabel="loss above the whole sequence's (nats)",
            title="what more context still gives")
    ax2.legend(frameon=False, fontsize=6.5)
    return fig, data


def _gate_figures(res: dict):
    from gradflow.plot import new_figure

    fig1, axes1 = new_figure(ncols=2, width=10.0, height=3.3, sharey=True)
    fig2, axes2 = new_figure(ncols=2, width=10.0, height=3.3, sharey=True)
    d1 = {"model": [], "layer": [], "bin_low": [], "share": []}
    d2 = {"model": [], "layer": [], "unit": [], "horizon": []}
    for ax1, ax2, role in zip(axes1, axes2, ROLES):
        r = res[role]
        T = r["T"]
        for layer, share in enumerate(r["gate_share"]):
            ax1.stairs(share, r["gate_bins"], color=COLORS[layer % 2], label=f"layer {layer + 1}")
            d1["model"] += [role] * len(share)
            d1["layer"] += [layer + 1] * len(share)
            d1["bin_low"] += r["gate_bins"][:-1].tolist()
            d1["share"] += share.tolist()
            u = r["unit_horizons"][layer]
            ax2.hist(u, bins=np.linspace(0, T + 1, 33), histtype="step", color=COLORS[layer % 2],
                     label=f"layer {layer + 1}")
            d2["model"] += [role] * len(u)
            d2["layer"] += [layer + 1] * len(u)
            d2["unit"] += list(range(len(u)))
            d2["horizon"] += u.tolist()
        ax1.set(title=NAMES[role], xlabel="forget gate f")
        ax2.set(title=NAMES[role], xlabel=f"per-unit memory horizon (steps; > {T} as {T + 1})")
        ax1.legend(frameon=False, fontsize=7)
        ax2.legend(frameon=False, fontsize=7)
    for ax in axes1:
        ax.set_ylabel("share of values")
    for ax in axes2:
        ax.set_ylabel("units")
    return (fig1, d1), (fig2, d2)


def _verdict(r: dict, c: dict, kstar: dict) -> str:
    """Whether the trained model's loss stops improving near its gradient horizon."""
    T, L = r["T"], r["log10_rel"].shape[0]
    ks, k = r["contexts"], kstar[PLATEAU]
    if not math.isfinite(k):
        return (f"After training the loss still improves by more than {PLATEAU:g} nats at the "
                f"longest context measured ({ks[-1]} characters: {fmt(c['excess'][-1])} nats "
                "above the whole sequence's), so where it stops cannot be compared with the "
                "horizons here.")
    j = ks.index(int(k))
    shorter = (f"; with {ks[j - 1]} characters it is {fmt(c['excess'][j - 1])} ± "
               f"{fmt(c['excess_se'][j - 1], 2)} nats above it" if j > 0 else "")
    default = [float(np.median(np.minimum(r["horizons"][1e-8][layer], T + 1))) for layer in range(L)]
    text = ("**Does the loss stop improving near the gradient horizon?** After training, the "
            f"loss with a context of k characters comes within {PLATEAU:g} nats of the whole "
            f"sequence's ({c['full']:.3f} nats, over {c['targets']} targets) at "
            f"k* = {k:g} characters and stays within it for every longer context measured"
            f"{shorter}. The analysis's horizon at its default level (10⁻⁸ of lag 0) is "
            + " and ".join(f"{_median_h(r['horizons'][1e-8][layer], T)} steps in layer {layer + 1}"
                           for layer in range(L)) + " (median over the sequences)")
    if all(h <= T for h in default) and max(default) <= 1.5 * k and min(default) >= k / 1.5:
        text += ": within a factor 1.5 of k*. Here the horizon matches the context the model uses."
    elif all(h <= T for h in default):
        text += (f": {fmt(min(default) / k, 2)} to {fmt(max(default) / k, 2)} times k*. It does "
                 "not match: at the 10⁻⁸ horizon the last output's dependence on the past state has "
                 "fallen by eight orders of magnitude, and the prediction stopped gaining from "
                 "that dependence long before.")
    else:
        text += (f": beyond the {T} steps of the sequences in some layer, so at least "
                 f"{fmt(T / k, 2)} times k*. It does not match.")
    text += f" At lag k* the gradient is already {_levels(r, k)} of its lag-0 value."
    near = {}
    for t in THRESHOLDS:
        hs = [float(np.median(np.minimum(r["horizons"][t][layer], T + 1))) for layer in range(L)]
        near[t] = (max(abs(math.log(max(h, 0.5) / k)) for h in hs), hs)
    best = min(near, key=lambda t: near[t][0])
    text += (f" Of the levels {', '.join(f'{t:g}' for t in THRESHOLDS)}, the horizon nearest k* "
             f"is the one at {best:g} of lag 0 (" + " and ".join(
                 f"{h:.0f} steps in layer {layer + 1}" if h <= T else f"more than {T} in layer {layer + 1}"
                 for layer, h in enumerate(near[best][1])) + ").")
    fine = min(PLATEAUS)
    kf = kstar[fine]
    if math.isfinite(kf) and kf != k:
        text += (f" Smaller gains go on further: the loss comes within {fine:g} nats of the whole "
                 f"sequence's at k = {kf:g}, where the gradient is {_levels(r, kf)} of its lag-0 "
                 "value (table).")
    text += (f" At the longest context measured, {ks[-1]} characters, the loss is "
             f"{c['excess'][-1]:+.4f} ± {c['excess_se'][-1]:.4f} nats from the whole sequence's.")
    return text


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def factor(log10_value: float) -> str:
    """A factor given by its log10, for the text: ``0.032``, ``3.5 × 10⁻⁴``."""
    if log10_value >= -2:
        return f"{10 ** log10_value:.2g}"
    e = math.floor(log10_value)
    m = 10 ** (log10_value - e)
    if round(m, 1) >= 10:
        m, e = m / 10, e + 1
    return f"{m:.1f} × 10" + str(e).translate(_SUPERSCRIPT)


def _levels(r: dict, k: float) -> str:
    """The median gradient of each layer at lag `k`, relative to lag 0, in words."""
    parts = [f"{factor(v)} in layer {layer + 1}"
             for layer, v in enumerate(_at_lag(r, layer, k) for layer in range(r["log10_rel"].shape[0]))
             if math.isfinite(v)]
    return " and ".join(parts) if parts else "not measured"


def run(config: StudyConfig) -> Section:
    s = sizes(config)
    jobs = [dict(role=role, analysis=s["analysis"], steps=s["steps"], lyapunov=s["lyapunov"],
                 loss=s["loss"], positions=s["positions"], contexts=s["contexts"])
            for role in ROLES]
    res = dict(zip(ROLES, grid(measure, jobs, config)))
    log = _log()
    curves = {role: _curves(res[role]) for role in ROLES}
    kstar = {role: {tol: plateau(res[role]["contexts"], curves[role]["excess"], tol)
                    for tol in PLATEAUS} for role in ROLES}
    r, c = res["trained"], curves["trained"]
    T, L = r["T"], r["log10_rel"].shape[0]
    k_main = kstar["trained"][PLATEAU]

    fig_lag, d_lag = _lag_figure(res, k_main)
    fig_ctx, d_ctx = _context_figure(res, curves, k_main)
    (fig_gate, d_gate), (fig_unit, d_unit) = _gate_figures(res)
    figures = [
        Figure("context", fig_ctx,
               "The measured memory. Left: the mean next-character loss on held-out text when "
               "the model reads only the last k characters (from a zero state), before (grey) "
               "and after training (black); dashed, the loss with the whole sequence as "
               f"context. Right, after training: how much the loss exceeds the whole "
               f"sequence's, with ±2 standard errors over the {c['targets']} targets (paired; "
               f"symmetric-log scale, linear below {PLATEAU:g}); dotted, the {PLATEAU:g}-nat "
               "level that defines where the loss stops improving (black dashed line, k*); "
               "coloured lines, the layers' gradient horizons at 10⁻² (dash-dotted) and 10⁻⁸ "
               "(solid) of lag 0 where they fall within the sequences.",
               d_ctx),
        Figure("lag_maps", fig_lag,
               "log10 of ‖∂h²_T/∂h^l_{T−k}‖ relative to lag 0: how strongly the top layer's last "
               "output still depends on layer l's state k characters earlier, before and after "
               "training; median over the sequences and 10–90 % band. Dotted: 10⁻² and 10⁻⁸ "
               "(the analysis's default horizon level); dashed: k*, where the loss stops "
               "improving.", d_lag),
        Figure("gates", fig_gate,
               "The forget gate's values over every step, sequence and unit of each layer, "
               "before and after training.", d_gate),
        Figure("unit_horizons", fig_unit,
               "Each unit's memory horizon along its cell-state path (the first lag at which "
               "Π f falls below 10⁻⁸; median over the sequences), before and after training.",
               d_unit),
    ]

    rows = []
    for role in ROLES:
        rr = res[role]
        for layer in range(L):
            rows.append([NAMES[role], layer + 1,
                         *[_median_h(rr["horizons"][t][layer], rr["T"]) for t in THRESHOLDS],
                         f"{100 * rr['above'][layer]:.0f} %"])
    table = Table(
        "horizons", ["model", "layer", *[f"horizon at {t:g}" for t in THRESHOLDS],
                     "f above 0.95"], rows,
        "Gradient horizons: the first lag at which ‖∂h²_T/∂h^l_{T−k}‖ falls below each level "
        "relative to lag 0 (median over the sequences, in steps; 10⁻⁸ is `gradflow.analyze`'s "
        "default), and the share of forget-gate values above 0.95.")
    mem_rows = []
    for tol in PLATEAUS:
        kb, ka = kstar["initial"][tol], kstar["trained"][tol]
        mem_rows.append([f"{tol:g}", fmt(kb) if math.isfinite(kb) else f"> {r['contexts'][-1]}",
                         fmt(ka) if math.isfinite(ka) else f"> {r['contexts'][-1]}",
                         *[f"{_at_lag(r, layer, ka):.2f}" if math.isfinite(ka) else "—"
                           for layer in range(L)]])
    mem_table = Table(
        "memory", ["tolerance (nats)", "k* before", "k* after",
                   *[f"log10 gradient at k*, layer {layer + 1}" for layer in range(L)]],
        mem_rows,
        "k*: the shortest context from which on the mean loss (at it and at every longer "
        "context measured) is within the tolerance of the whole sequence's; and, after "
        "training, the median gradient at lag k* relative to lag 0.")
    ctx_rows = [[k, *[f"{curves[role][q][j]:.4f}" for role in ROLES for q in ("loss", "accuracy")],
                 f"{c['excess'][j]:+.4f} ± {c['excess_se'][j]:.4f}"]
                for j, k in enumerate(r["contexts"])]
    ctx_rows.append(["whole sequence", *[f"{curves[role][q]:.4f}" for role in ROLES
                                         for q in ("full", "full_accuracy")], "0"])
    ctx_table = Table("context_loss", ["context k", "loss before (nats)", "accuracy before",
                                       "loss after (nats)", "accuracy after",
                                       "after: above the whole sequence's (± s.e.)"], ctx_rows,
                      f"The next-character loss and accuracy over {c['targets']} held-out "
                      "targets with the context cut to k characters.")

    st = log["settings"]
    hist = log["history"]
    ci = curves["initial"]
    k0 = kstar["initial"][PLATEAU]
    if math.isfinite(k0) and k0 == r["contexts"][0]:
        before = (f"Before training the model uses no context: its loss "
                  f"({fmt(ci['full'], 4)} nats, against ln {corpus.VOCAB} = "
                  f"{math.log(corpus.VOCAB):.4f} for a uniform guess) is within {PLATEAU:g} nats "
                  f"of its whole-sequence value with a single character. ")
    else:
        before = (f"Before training the loss with k characters reaches its whole-sequence value "
                  f"({fmt(ci['full'], 4)} nats) within {PLATEAU:g} nats at k = "
                  f"{fmt(k0) if math.isfinite(k0) else 'more than ' + str(r['contexts'][-1])}. ")
    text = (
        "The studies above use networks at initialisation or trained on synthetic tasks. "
        "This one analyses a model trained on real data, the way a user would analyse their "
        "own (`gradflow.analyze`, the API behind `gradflow analyze`), and checks what the "
        "analysis says against what the model measurably does.\n\n"
        f"**The model and the data.** A {st['num_layers']}-layer LSTM (H = {st['hidden_size']}, "
        f"one-hot inputs over {corpus.VOCAB} symbols, a linear readout) learns to predict the "
        "next character of Python's own help texts (`pydoc_data.topics`, shipped with every "
        f"CPython): {log['characters']['train']:,} characters of training text, paragraphs "
        "deduplicated, and the topics " + ", ".join(f"`{t}`" for t in log["held_out_topics"])
        + f" ({log['characters']['held_out']:,} characters) held out. PyTorch trained it on one "
        f"CPU core ({st['steps']:,} steps of {st['batch']} windows of {st['length']} "
        f"characters, Adam, {log['seconds']:.0f} s; `gradflow.studies.trained_model.train`): "
        f"the held-out loss went from {hist['eval_loss'][0]:.3f} to {hist['eval_loss'][-1]:.3f} "
        f"nats per character (accuracy {hist['eval_accuracy'][0]:.3f} → "
        f"{hist['eval_accuracy'][-1]:.3f}). Both state dicts and the evaluation sequences "
        f"({st['eval_sequences']} held-out windows of {st['eval_length'] + 1} characters) are "
        "committed and read without PyTorch.\n\n"
        f"**The analysis** runs on {s['analysis']} held-out sequences of {T} characters, with "
        "the cross-entropy of the next character at every step through the readout "
        "(what `gradflow analyze` writes for the trained model is in `reports/trained-model/`). "
        "Before training it finds:\n\n"
        + "\n".join(f"- {line}" for line in res["initial"]["summary"])
        + "\n\nand after training:\n\n"
        + "\n".join(f"- {line}" for line in res["trained"]["summary"])
        + "\n\n**The measured memory.** The model's loss when it reads only the last k "
        f"characters (from a zero state), at the last {s['positions']} positions of "
        f"{s['loss']} held-out sequences, computed with gradflow's forward pass and the "
        "readout read from the state dict. " + before + "Yet its gradient horizon at 10⁻⁸ is "
        + " and ".join(f"{_median_h(res['initial']['horizons'][1e-8][layer], res['initial']['T'])} "
                       f"steps in layer {layer + 1}" for layer in range(L))
        + ": a horizon says how far back the output still depends on the state, not whether "
        "the model makes use of it.\n\n" + _verdict(r, c, kstar["trained"])
    )
    return Section(
        key="language_model", title=TITLE, text=text, figures=figures,
        tables=[mem_table, table, ctx_table],
        data={"sizes": s, "plateau_nats": PLATEAU, "thresholds": list(THRESHOLDS),
              "k_star": {role: {f"{tol:g}": (v if math.isfinite(v) else None)
                                for tol, v in kstar[role].items()} for role in ROLES},
              "whole_sequence_loss": {role: curves[role]["full"] for role in ROLES},
              "analysis_loss": {role: res[role]["loss"] for role in ROLES},
              "training": {"settings": st, "seconds": log["seconds"],
                           "eval_loss": hist["eval_loss"][-1],
                           "eval_accuracy": hist["eval_accuracy"][-1]}})
