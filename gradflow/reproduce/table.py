"""From trials to the table: per experiment and model, the success rate and the training
sequences to success (mean and spread over the trials) beside the paper's, and the page
(a report section) that shows them."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["summarise", "section", "fmt_count", "differences"]


def fmt_count(v) -> str:
    """A count for a table cell: ``74,000``; ``—`` for none."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{int(round(v)):,}"


def _spread(values) -> str:
    if len(values) == 0:
        return "—"
    if len(values) == 1:
        return fmt_count(values[0])
    return (f"{fmt_count(np.mean(values))} ± {fmt_count(np.std(values, ddof=1))} "
            f"[{fmt_count(np.min(values))}, {fmt_count(np.max(values))}]")


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def summarise(runs, paper_module) -> list[dict]:
    """One row per experiment and model of the trials in `runs` (a DataFrame, one row per
    trial: ``exp, model, trial, solved, sequences, seconds`` and the rules' results)."""
    exps = {e.key: e for e in paper_module.EXPERIMENTS}
    rows = []
    done = runs[runs["error"].isna()] if "error" in runs else runs
    order = {e.key: k for k, e in enumerate(paper_module.EXPERIMENTS)}
    models = list(paper_module.MODELS)
    keys = sorted({(r.exp, r.model) for r in done.itertuples()},
                  key=lambda km: (order.get(km[0], 10**6), models.index(km[1]) if km[1] in models else 99))
    for key, model in keys:
        exp = exps[key]
        part = done[(done["exp"] == key) & (done["model"] == model)]
        solved = part[part["solved"].astype(bool)]
        seqs = [float(v) for v in solved["sequences"]]
        row = {"exp": key, "group": exp.group, "title": exp.title, "model": model,
               "trials": len(part), "paper_trials": exp.trials, "solved": len(solved),
               "success": 100.0 * len(solved) / max(len(part), 1),
               "sequences_mean": float(np.mean(seqs)) if seqs else None,
               "sequences_sd": float(np.std(seqs, ddof=1)) if len(seqs) > 1 else None,
               "sequences_min": min(seqs) if seqs else None,
               "sequences_max": max(seqs) if seqs else None,
               "sequences": _spread(seqs),
               "budget": int(part["budget"].max()) if "budget" in part else None,
               "seconds": float(part["seconds"].sum()),
               "stopped_by_time": (int(part["stopped_by_time"].astype(bool).sum())
                                   if "stopped_by_time" in part else 0),
               "weights": int(part["weights"].iloc[0]) if len(part) else None}
        for col in ("test_wrong", "test_total", "test_mse", "test_mean_abs", "sequences_st1",
                    "sequences_140", "test_wrong_140", "test_mse_140", "test_wrong_13",
                    "test_mse_13"):
            if col in part:
                vals = [_num(v) for v in part[col]]
                vals = [v for v in vals if v is not None]
                row[col] = float(np.mean(vals)) if vals else None
        rows.append(row)
    return rows


def _outcome(row) -> str:
    if row["solved"]:
        return (f"{row['solved']} of {row['trials']} trials met the rule, after "
                f"{fmt_count(row['sequences_mean'])} sequences on average")
    limit = " or the time limit" if row.get("stopped_by_time") else ""
    return f"none of {row['trials']} met the rule within {fmt_count(row['budget'])} sequences{limit}"


def differences(rows, paper_module) -> list[str]:
    """One line per experiment and model that is the paper's own net and rule
    (``paper_module.PAPER_NETS``): its measured success and sequences to success against
    the paper's, then the other models'."""
    exps = {e.key: e for e in paper_module.EXPERIMENTS}
    own_nets = paper_module.PAPER_NETS
    out = []
    for r in rows:
        if r["model"] not in own_nets:
            continue
        e = exps[r["exp"]]
        paper_seq = e.paper_sequences
        line = f"`{e.key}` ({e.title}), `{r['model']}`: {_outcome(r)}"
        if r["solved"] and paper_seq:
            line += f", {r['sequences_mean'] / paper_seq:.2g}× the paper's"
        success = e.paper.get("success")
        line += (f"; the paper: {fmt_count(paper_seq)} sequences, mean of "
                 + (f"{e.trials} trials, {success:g} % successful" if success is not None
                    else f"{e.trials} trials") + ".")
        others = [o for o in rows if o["exp"] == r["exp"] and o["model"] not in own_nets]
        if others:
            line += " " + "; ".join(f"`{o['model']}`: {_outcome(o)}" for o in others) + "."
        out.append(line)
    return out


def _measured_wrong(row) -> str:
    if row.get("test_wrong") is None:
        return "—"
    total = row.get("test_total") or 2560
    return f"{row['test_wrong']:.1f} / {int(total):,}"


def _paper_cells(exp) -> tuple[str, str, str]:
    p = exp.paper
    success = "—" if p.get("success") is None else f"{p['success']:g} %"
    seqs = fmt_count(p.get("sequences"))
    if "wrong" in p:
        other = f"{p['wrong']} / {p['test']:,} wrong"
        if "mse" in p:
            other += f", MSE {p['mse']}"
    elif "wrong_fraction" in p:
        other = f"{p['wrong_fraction'] * 100:.3g} % wrong"
        if p.get("st1"):
            other += f"; ST1 after {fmt_count(p['st1'])}"
        if "mean_abs" in p:
            other += f"; mean |error| {p['mean_abs']}"
    else:
        other = "—"
    return success, seqs, other


def _measured_other(row, exp) -> str:
    parts = []
    if row.get("test_wrong") is not None:
        parts.append(f"{_measured_wrong(row)} wrong")
        if row.get("test_mse") is not None and exp.group in ("4", "5", "6a", "6b"):
            parts[-1] += f", MSE {row['test_mse']:.3g}"
    if row.get("sequences_st1") is not None:
        parts.append(f"ST1 after {fmt_count(row['sequences_st1'])}")
    if row.get("test_mean_abs") is not None and exp.group == "3c":
        parts.append(f"mean |error| {row['test_mean_abs']:.3g}")
    if row.get("sequences_140") is not None:
        parts.append(f"n_seq 140 after {fmt_count(row['sequences_140'])}, "
                     f"{row.get('test_wrong_140') or 0:.1f} wrong")
    return "; ".join(parts) or "—"


def table_rows(rows, paper_module) -> tuple[list, list]:
    """The columns and rows of the reproduction table (strings), the paper's result on
    the rows of its own net (``paper_module.PAPER_NETS``)."""
    exps = {e.key: e for e in paper_module.EXPERIMENTS}
    columns = ["exp.", "task", "model", "weights (paper / here)", "trials (paper / here)",
               "success: paper", "success: measured", "sequences: paper",
               "sequences: measured, mean ± sd [min, max] of successful trials",
               "test: paper", "test: measured", "CPU time"]
    out = []
    for r in rows:
        exp = exps[r["exp"]]
        own = r["model"] in paper_module.PAPER_NETS
        ps, pseq, pother = _paper_cells(exp) if own else ("", "", "")
        weights = (f"{exp.paper.get('weights', '—'):,} / {r['weights']:,}" if own
                   else f"{r['weights']:,}")
        trials = f"{exp.trials} / {r['trials']}" if own else f"{r['trials']}"
        success = f"{r['solved']} of {r['trials']} ({r['success']:.0f} %)"
        seqs = r["sequences"]
        if r["solved"] < r["trials"]:
            seqs += f"; {r['trials'] - r['solved']} not within {fmt_count(r['budget'])}"
            if r.get("stopped_by_time"):
                seqs += f" ({r['stopped_by_time']} stopped by the time limit first)"
        out.append([exp.key, exp.title, r["model"], weights, trials, ps, success, pseq, seqs,
                    pother, _measured_other(r, exp), f"{r['seconds'] / 60:.1f} min"])
    return columns, out


def section(runs, paper_module, *, key: str, title: str, text: str, config_note: str = ""):
    """The report section of a reproduction: the table, a figure of the sequences to
    success (measured against the paper's), the readings, and the summary rows as data."""
    from matplotlib.figure import Figure as MplFigure

    from ..report import Figure, Section, Table

    rows = summarise(runs, paper_module)
    columns, trows = table_rows(rows, paper_module)
    exps = {e.key: e for e in paper_module.EXPERIMENTS}
    table = Table("table", columns, trows, caption=(
        "Every experiment of the paper's section 5 that was run: the paper's result (on the "
        f"rows of its own net, {', '.join(f'`{m}`' for m in paper_module.PAPER_NETS)}) "
        "beside the measured one, per model. Success: trials "
        "that met the paper's stopping rule within the budget; sequences: training "
        "sequences until it held (mean, standard deviation, least and most over the "
        "successful trials). " + config_note).strip())
    fig = MplFigure(figsize=(6.4, 4.6))
    ax = fig.add_subplot(1, 1, 1)
    data = {"exp": [], "model": [], "paper_sequences": [], "measured_mean": [],
            "measured_min": [], "measured_max": []}
    styles = {"lstm1997": ("o", "tab:blue"), "lstm1997-fc": ("D", "tab:cyan"),
              "lstm1997-full": ("s", "tab:orange"),
              "lstm": ("^", "tab:green"), "gru": ("v", "tab:purple"), "rnn": ("x", "tab:red")}
    for model, (marker, color) in styles.items():
        pts = [r for r in rows if r["model"] == model and r["sequences_mean"] is not None
               and exps[r["exp"]].paper_sequences]
        if not pts:
            continue
        xs = [exps[r["exp"]].paper_sequences for r in pts]
        ys = [r["sequences_mean"] for r in pts]
        lo = [r["sequences_mean"] - r["sequences_min"] for r in pts]
        hi = [r["sequences_max"] - r["sequences_mean"] for r in pts]
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt=marker, color=color, mfc="none", ms=7,
                    capsize=2, label=model)
        for r, x, y in zip(pts, xs, ys):
            data["exp"].append(r["exp"])
            data["model"].append(model)
            data["paper_sequences"].append(float(x))
            data["measured_mean"].append(float(y))
            data["measured_min"].append(float(r["sequences_min"]))
            data["measured_max"].append(float(r["sequences_max"]))
    if data["exp"]:
        allv = data["paper_sequences"] + data["measured_min"] + data["measured_max"]
        lo_v, hi_v = min(allv) / 2, max(allv) * 2
        ax.plot([lo_v, hi_v], [lo_v, hi_v], color="0.5", ls=":", label="as many as the paper")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set_xlabel("training sequences to success, paper (mean)")
    ax.set_ylabel("training sequences to success, measured")
    fig.tight_layout()
    figures = []
    if data["exp"]:
        figures.append(Figure("sequences", fig, (
            "Training sequences until the paper's stopping rule held, measured (mean over the "
            "successful trials; bars: least and most) against the paper's mean, per "
            "experiment and model. See the points on the dotted line where the measurement "
            "matches the paper, and above it where it took longer."), data))
    summary = [{k: v for k, v in r.items()} for r in rows]
    return Section(key, title, text, figures, [table], {"rows": summary})
