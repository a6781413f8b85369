"""Text and Markdown for the benchmark runner's results (see run.py for what is measured)."""

from __future__ import annotations

import statistics
from pathlib import Path

NOTES = Path(__file__).resolve().parent / "notes.md"


def _stats(times):
    """(median, min, max) in seconds, or None."""
    if not times:
        return None
    return statistics.median(times), min(times), max(times)


def _ms(times) -> str:
    s = _stats(times)
    if s is None:
        return "–"
    return f"{s[0] * 1e3:.1f} ({s[1] * 1e3:.1f}–{s[2] * 1e3:.1f})"


def _s(times, digits=2) -> str:
    s = _stats(times)
    if s is None:
        return "–"
    return f"{s[0]:.{digits}f} ({s[1]:.{digits}f}–{s[2]:.{digits}f})"


def _ratio(res, peer, key="times"):
    """Peer's median time / gradflow's (above 1: gradflow is faster), or None.

    key: "times" (alternating runs, each after a pause) or "b2b" (back-to-back runs)."""
    r = res.get(peer) or {}
    t = r.get(key) or {}
    if "gradflow" not in t or peer not in t:
        return None
    return statistics.median(t[peer]) / statistics.median(t["gradflow"])


def _gradflow_times(row):
    """gradflow's times from every process of the row (one per peer), pooled."""
    out = []
    for peer in ("pytorch", "jax"):
        out += ((row.get(peer) or {}).get("times") or {}).get("gradflow", [])
    return out


def fb_line(row) -> str:
    """One line of progress for a forward + backward case."""
    head = f"{row['cell']} B={row['B']} T={row['T']} H={row['H']} {row['dtype']}:"
    parts = []
    for peer in ("pytorch", "jax"):
        if peer in row:
            if "error" in row[peer]:
                parts.append(f"{peer} error: {row[peer]['error']}")
                continue
            t = row[peer]["times"]
            parts.append(f"gradflow {_ms(t['gradflow'])} ms vs {peer} {_ms(t[peer])} ms "
                         f"= {_ratio(row, peer):.2f}x")
    return head + " " + "; ".join(parts)


def machine_text(m) -> str:
    if "error" in m:
        return f"machine description failed: {m['error']}"
    blas = "; ".join(f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} "
                     f"threads, {Path(b['filepath']).name})" for b in m["blas"])
    env = ", ".join(f"{k}={v!r}" if v is not None else f"{k} unset" for k, v in m["env"].items())
    return (f"{m['cpu']}, {m['cores']} cores ({' '.join(m['simd'])})\n"
            f"Python {m['python']}, NumPy {m['numpy']}, SciPy {m['scipy']}, Numba {m['numba']}, "
            f"PyTorch {m['torch']}, JAX {m['jax'] or 'not installed'}\n"
            f"BLAS: {blas}\ngradflow's per-step products: {m.get('per_step')}\n"
            f"PyTorch's own: {m.get('torch_backends')}\nenvironment: {env}")


def startup_text(s) -> str:
    return "\n".join([
        f"python -c pass: {_s(s['python'].get('wall'))} s",
        f"import gradflow: {_s(s['import'].get('inner'), 3)} s in the process "
        f"({_s(s['import'].get('wall'))} s for the whole process)",
        f"first LSTM forward+backward, cold (fresh caches: generate + compile): "
        f"{_s(s['cold'].get('inner'))} s (whole process {_s(s['cold'].get('wall'))} s)",
        f"first LSTM forward+backward, cached: {_s(s['cached'].get('inner'))} s "
        f"(warm start, whole process: import, cell, first pass: {_s(s['cached'].get('wall'))} s)",
    ])


def _fb_table(variant) -> list[str]:
    peak = variant["machine"]["peak"]
    lines = [
        "| cell | B | T | D=H | dtype | gradflow ms | PyTorch ms | PyTorch / gradflow "
        "| JAX ms | JAX / gradflow | gradflow GFLOP/s | % of GEMM peak | grads agree |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in variant["fb"]:
        g = _gradflow_times(row)
        cells = [row["cell"], row["B"], row["T"], row["H"], row["dtype"], _ms(g)]
        agree = []
        for peer in ("pytorch", "jax"):
            r = row.get(peer)
            if r is None:
                cells += ["–", "–"]
            elif "error" in r:
                cells += [f"error: {r['error'][:60]}", "–"]
            else:
                cells += [_ms(r["times"][peer]), f"**{_ratio(row, peer):.2f}×**"]
                agree.append(r["max_rel_diff_weight_hh"])
        flops = next((row[p]["flops"] for p in ("pytorch", "jax") if "flops" in row.get(p, {})), None)
        if flops and g:
            gf = flops / statistics.median(g) / 1e9
            cells += [f"{gf:.1f}", f"{100 * gf / peak[row['dtype']]['median_gflops']:.0f}%"]
        else:
            cells += ["–", "–"]
        cells.append(f"{max(agree):.0e}" if agree else "–")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _b2b_table(variant) -> list[str]:
    """Back-to-back runs of each framework (one block each, in the same processes)."""
    lines = ["| cell | B | T | D=H | dtype | gradflow ms | PyTorch ms | PyTorch / gradflow "
             "| JAX ms | JAX / gradflow |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in variant["fb"]:
        g = []
        for peer in ("pytorch", "jax"):
            g += ((row.get(peer) or {}).get("b2b") or {}).get("gradflow", [])
        if not g:
            continue
        cells = [row["cell"], row["B"], row["T"], row["H"], row["dtype"], _ms(g)]
        for peer in ("pytorch", "jax"):
            b = (row.get(peer) or {}).get("b2b") or {}
            if peer in b:
                cells += [_ms(b[peer]), f"**{_ratio(row, peer, 'b2b'):.2f}×**"]
            else:
                cells += ["–", "–"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines if len(lines) > 2 else []


def _lagmap_table(variant) -> list[str]:
    if not variant["lagmap"]:
        return ["(benchmarks/lagmap.py not present)"]
    lines = ["| dtype | gradflow ms | PyTorch ms | PyTorch / gradflow | JAX ms | JAX / gradflow "
             "| first lag at 0: PyTorch / JAX / gradflow |",
             "|---|---|---|---|---|---|---|"]
    for r in variant["lagmap"]:
        if "error" in r:
            lines.append(f"| error: {r['error']} |")
            continue
        sec, ratio, u = r["seconds"], r["ratio"], r["underflow"]

        def cell(name):
            return f"{sec[name] * 1e3:.1f}" if name in sec else "–"

        def rat(name):
            return f"**{ratio[name]:.1f}×**" if name in ratio else "–"

        def zero(name):
            z = (u.get(name) or {}).get("first_zero_lag", "–")
            return "never" if z is None else str(z)

        lines.append(f"| {r['dtype']} | {cell('gradflow')} | {cell('pytorch')} | {rat('pytorch')} | "
                     f"{cell('jax')} | {rat('jax')} | {zero('pytorch')} / {zero('jax')} / "
                     f"{zero('gradflow')} |")
    return lines


def _lyapunov_lines(variant) -> list[str]:
    out = []
    for r in variant["lyapunov"]:
        if "error" in r:
            out.append(f"- Lyapunov spectrum: error {r['error']}")
            continue
        g, t = _stats(r.get("gradflow")), _stats(r.get("pytorch"))
        line = (f"- Lyapunov spectrum of an LSTM (all {2 * r['H']} exponents, H = {r['H']}, "
                f"T = {r['T']:,}, {r['dtype']}): gradflow {_s(r.get('gradflow'))} s")
        if t:
            line += (f", PyTorch (jacrev + QR per step) {_s(r.get('pytorch'))} s: "
                     f"**{t[0] / g[0]:.1f}×**; largest exponent {r['gradflow_top']:.4f} "
                     f"(gradflow) vs {r['pytorch_top']:.4f} (PyTorch)")
        out.append(line)
    return out


def goals(results) -> list[str]:
    """The issue's speed goals against the first variant's figures (met / missed, by how much)."""
    v = results["variants"][-1]  # as a user's machine would be (BLAS variables unset)
    lines = [f"Measured {v['label']}; verdicts from the alternating runs (the first table).", ""]
    worst, worst_b2b = {}, {}
    for row in v["fb"]:
        where = f"{row['cell']} B={row['B']} T={row['T']} H={row['H']}"
        for peer in ("pytorch", "jax"):
            for table, key_ in ((worst, "times"), (worst_b2b, "b2b")):
                r = _ratio(row, peer, key_)
                key = (peer, row["dtype"])
                if r is not None and (key not in table or r < table[key][0]):
                    table[key] = (r, where)
    need = {("pytorch", "float64"): 1.5, ("pytorch", "float32"): 1.0,
            ("jax", "float64"): 1.0, ("jax", "float32"): 1.0}
    for key, (r, where) in sorted(worst.items()):
        ok = "met" if r >= need[key] else "missed"
        b2b = worst_b2b.get(key)
        also = f"; back to back worst {b2b[0]:.2f}× ({b2b[1]})" if b2b else ""
        lines.append(f"- forward+backward vs {key[0]} in {key[1]}: goal ≥ {need[key]:g}×, "
                     f"worst {r:.2f}× ({where}){also}: **{ok}**")
    peak = v["machine"]["peak"]
    for row in v["fb"]:
        if row["H"] == 512:
            g = _gradflow_times(row)
            flops = next((row[p]["flops"] for p in ("pytorch", "jax") if "flops" in row.get(p, {})), 0)
            share = flops / statistics.median(g) / 1e9 / peak[row["dtype"]]["median_gflops"]
            gb = [t for p in ("pytorch", "jax") for t in ((row.get(p) or {}).get("b2b") or {}).get("gradflow", [])]
            also = (f" ({100 * flops / statistics.median(gb) / 1e9 / peak[row['dtype']]['median_gflops']:.0f}% "
                    "back to back)") if gb else ""
            lines.append(f"- H = 512, {row['dtype']}: {100 * share:.0f}% of the GEMM peak{also} "
                         f"(goal 70%): **{'met' if share >= 0.7 else 'missed'}**")
        if row["B"] == 1 and row["dtype"] == "float64":
            r, rb = _ratio(row, "pytorch"), _ratio(row, "pytorch", "b2b")
            if r is not None:
                also = f" ({rb:.1f}× back to back)" if rb is not None else ""
                lines.append(f"- B = 1, float64: {r:.1f}× PyTorch{also} (goal 10×): "
                             f"**{'met' if r >= 10 else 'missed'}**")
    for r in v["lagmap"]:
        for peer, need_r in (("pytorch", 4.0), ("jax", 1.0)):
            if peer in r.get("ratio", {}):
                x = r["ratio"][peer]
                lines.append(f"- lag map {r['dtype']} vs {peer}: {x:.1f}× (goal ≥ {need_r:g}×): "
                             f"**{'met' if x >= need_r else 'missed'}**")
    for r in v["lyapunov"]:
        g, t = _stats(r.get("gradflow")), _stats(r.get("pytorch"))
        if g and t and not r.get("error"):
            x = t[0] / g[0]
            lines.append(f"- Lyapunov spectrum (H = {r['H']}, T = {r['T']:,}, {r['dtype']}) vs "
                         f"PyTorch jacrev + QR: {x:.1f}× (goal ≥ 5×): "
                         f"**{'met' if x >= 5 else 'missed'}**")
    s = results.get("startup", {})
    warm = _stats(s.get("cached", {}).get("wall"))
    imp = _stats(s.get("import", {}).get("inner"))
    if warm:
        lines.append(f"- warm start (whole process) {warm[0]:.2f} s (goal < 1 s): "
                     f"**{'met' if warm[0] < 1 else 'missed'}**")
    if imp:
        lines.append(f"- `import gradflow` {imp[0]:.3f} s (goal < 0.3 s): "
                     f"**{'met' if imp[0] < 0.3 else 'missed'}**")
    return lines


def markdown(results, command: str) -> str:
    m = results["machine"]
    out = [
        "# Benchmarks",
        "",
        "gradflow's forward and backward passes, lag map and Lyapunov spectrum against PyTorch "
        "and JAX on the CPU, and against the machine's own GEMM peak.  Generated by",
        "",
        "```",
        command + " --out BENCHMARKS.md",
        "```",
        "",
        f"on {results['started']}.  Times are medians over alternating runs in one process "
        "per pair after a warm-up, with the min–max spread in parentheses; ratios are the "
        "peer's median time over gradflow's (above 1: gradflow is faster).  GFLOP/s counts "
        "the matrix products only (6·T·B·G·H·(D+H) for a forward + backward pass).  "
        "\"grads agree\" is the largest difference of the weight_hh gradients, relative to "
        "their largest entry.  Every peer runs on all cores "
        "(`torch.set_num_threads(os.cpu_count())`; XLA's default).",
        "",
        "## Machine",
        "",
        "```",
        machine_text(m),
        "```",
        "",
    ]
    if "load_start" in results:
        out += [f"Load average (1, 5, 15 min) at the start: "
                f"{', '.join(f'{x:.2f}' for x in results['load_start'])}; at the end: "
                f"{', '.join(f'{x:.2f}' for x in results.get('load_end', ()))} "
                "(2 cores: other processes' work shows up as noise).", ""]
    for v in results["variants"]:
        pk = v["machine"]["peak"]
        out += [
            f"## Forward + backward, {v['label']}",
            "",
            f"GEMM peak (NumPy {pk['float64']['n']}² matmul, median): "
            f"{pk['float64']['median_gflops']:.0f} GFLOP/s float64, "
            f"{pk['float32']['median_gflops']:.0f} GFLOP/s float32.",
            "",
            *_fb_table(v),
            "",
        ]
        b2b = _b2b_table(v)
        if b2b:
            out += [
                "The same passes run back to back (a block of runs per framework after one "
                "pause, the first left out), as in a training loop, where threads and caches "
                "stay warm.  On this machine, a virtual one, a pass that follows a pause of "
                "0.05 s or more runs slower than one that follows another pass; comparing "
                "the two tables shows by how much for each framework (see the notes below):",
                "",
                *b2b,
                "",
            ]
        out += [
            "Lag map ‖∂h_T/∂h_{T−k}‖ for every k of an LSTM, B = 1, H = 128, T = 1000 "
            "(benchmarks/lagmap.py):",
            "",
            *_lagmap_table(v),
            "",
            *_lyapunov_lines(v),
            "",
        ]
    if "startup" in results:
        out += ["## Start-up (whole processes, medians)", "", "```",
                startup_text(results["startup"]), "```", ""]
    out += ["## Goals", "", *goals(results), ""]
    if NOTES.exists():
        out += [NOTES.read_text().strip(), ""]
    return "\n".join(out)
