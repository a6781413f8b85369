"""``gradflow analyze`` against PyTorch autograd: the lag maps and loss-gradient heatmaps of a
trained-size two-layer LSTM.

    python benchmarks/analyze.py [--repeats 3] [--batch 16] [--length 500] [--json FILE]

The network: ``gradflow.Network("lstm", 32, 256, num_layers=2)`` in float32 (the issue's
size: H = 256, T = 500, B = 16), random weights from seed 0, standard normal inputs and a
random output cotangent dL/dy_t at every step.  Three things are timed, in one process,
on the same number of threads (all cores), alternating with a pause before each run:

1. ``gradflow``: ``gradflow.network_flow(net, x, doutput=dout, units=True)``: the lag map
   log10 ||dy_T / dh^l_{T-k}|| (spectral norm) of both layers at every lag, and the loss
   gradient log10 ||dL/dh^l_t|| (layers x time) and log10 |dL/dh^l_t[j]| (units x time),
   the forward pass included;
2. ``analyze``: ``gradflow.analyze(net, x, doutput=dout)``, which computes all of that and
   also the gate statistics, the paths, the direct path's share and 16 Lyapunov exponents
   (on the first 4 sequences);
3. ``pytorch``: the same lag maps and heatmaps with autograd: the network unrolled one
   ``nn.LSTMCell`` step at a time (the weights of ``gradflow.interop.to_torch(net)``), the
   H rows of dy_T / d(every state) by one batched vector-Jacobian product
   (``torch.autograd.grad(..., is_grads_batched=True)``), ``torch.linalg.matrix_norm(ord=2)``,
   and one more backward pass for dL/dh^l_t; four sequences at a time (``--torch-chunk``),
   which bounds its memory.

Ratios are PyTorch's median time over gradflow's (above 1: gradflow is faster).  Before
timing, the two are compared entry by entry where PyTorch's float32 values have not
underflowed; the entries PyTorch loses to underflow (0, where gradflow has a finite
log10) are counted.  The command line ``gradflow analyze`` (a state dict in an ``.npz``,
the inputs and per-step targets in ``.npy`` files, the report in Markdown and HTML) is
timed end to end in a child process, warm kernel cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # the sibling modules, and this checkout's gradflow

import _report
from run import PAUSE, _alternate_once, _child_env, _json_child

LAYERS, D, H = 2, 32, 256

#: Largest |log10 difference| accepted before timing (float32, where PyTorch has not
#: underflowed), and the level below which PyTorch's float32 values are not compared.
TOLERANCE_LOG10 = 2e-3
TOLERANCE_UNITS = 1e-4
COMPARE_ABOVE_LOG10 = -30.0


def problem(T: int, B: int, seed: int = 0):
    """The float32 network, inputs (T, B, D) and output cotangent (T, B, H)."""
    import gradflow

    net = gradflow.Network("lstm", D, H, num_layers=LAYERS, seed=seed, dtype=np.float32)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    dout = rng.standard_normal((T, B, H)).astype(np.float32)
    return net, x, dout


def torch_maps(torch, net, x, dout, chunk: int):
    """A function computing, with PyTorch autograd, (lag (L, 1, T+1, B), grad (L, 1, T, B),
    units: L arrays (1, T, B, H)), all log10 in float64, as gradflow lays them out."""
    from gradflow.interop import to_torch

    module = to_torch(net)
    dt = module.weight_hh_l0.dtype
    cells = []
    for layer in range(LAYERS):
        cell = torch.nn.LSTMCell(D if layer == 0 else H, H).to(dt)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(module, f"{name}_l{layer}"))
        cells.append(cell.requires_grad_(False))
    T, B = x.shape[:2]

    def log10(a):
        return np.log10(np.abs(a.double().numpy()))

    def fn():
        lag = np.empty((LAYERS, 1, T + 1, B))
        grad = np.empty((LAYERS, 1, T, B))
        units = [np.empty((1, T, B, H)) for _ in range(LAYERS)]
        for b0 in range(0, B, chunk):
            xs = torch.from_numpy(x[:, b0:b0 + chunk]).unbind(0)
            ds = torch.from_numpy(dout[:, b0:b0 + chunk]).unbind(0)
            n = xs[0].shape[0]
            inp, hs = xs, []
            for layer in range(LAYERS):
                h = torch.zeros(n, H, dtype=dt, requires_grad=True)
                c = torch.zeros(n, H, dtype=dt)
                seq = [h]
                for t in range(T):
                    h, c = cells[layer](inp[t], (h, c))
                    seq.append(h)
                hs.append(seq)
                inp = seq[1:]
            states = [s for seq in hs for s in seq]
            eye = torch.eye(H, dtype=dt).unsqueeze(1).expand(H, n, H)
            J = torch.autograd.grad(hs[-1][-1], states, grad_outputs=eye, is_grads_batched=True,
                                    retain_graph=True, allow_unused=True)
            g = torch.autograd.grad(hs[-1][1:], [s for seq in hs for s in seq[1:]],
                                    grad_outputs=list(ds))
            with torch.no_grad():
                for layer in range(LAYERS):
                    Jl = torch.stack([torch.zeros(H, n, H, dtype=dt) if j is None else j
                                      for j in J[layer * (T + 1):(layer + 1) * (T + 1)]])
                    Jl = Jl.transpose(1, 2)                 # (T + 1, n, H rows, H)
                    m = Jl.abs().amax(dim=(2, 3), keepdim=True)
                    s = torch.linalg.matrix_norm(Jl / torch.where(m > 0, m, 1), ord=2)
                    vals = s.double().log10() + m[..., 0, 0].double().log10()
                    lag[layer, 0, :, b0:b0 + n] = vals.numpy()[::-1]    # index: lag T - t
                    gl = torch.stack(g[layer * T:(layer + 1) * T])      # (T, n, H)
                    grad[layer, 0, :, b0:b0 + n] = log10(torch.linalg.vector_norm(gl, dim=-1))
                    units[layer][0, :, b0:b0 + n] = log10(gl)
        return lag, grad, units

    return fn


def compare(ref, got) -> dict:
    """Where PyTorch's value is above 10**COMPARE_ABOVE_LOG10: the largest |difference| of
    the log10 norms (per unit: of the values, relative to the step's largest unit, as
    float32 cancellation leaves small units with larger relative errors); and how many of
    gradflow's finite entries PyTorch has as exactly 0."""
    out = {}
    for name, r, g in zip(("lag", "grad", "units"), ref, got):
        if name == "units":
            r, g = np.concatenate([a.ravel() for a in r]), np.concatenate([a.ravel() for a in g])
        both = np.isfinite(r) & (r > COMPARE_ABOVE_LOG10) & np.isfinite(g)
        out[name] = {"compared": int(both.sum()),
                     "pytorch_zero_gradflow_finite": int((np.isneginf(r) & np.isfinite(g)).sum()),
                     "gradflow_min_log10": float(np.min(g[np.isfinite(g)]))}
        if name == "units":
            rel = [np.max(np.abs(10.0 ** a - 10.0 ** b) / np.max(10.0 ** a, axis=-1, keepdims=True))
                   for a, b in zip(ref[2], got[2])]
            out[name]["max_diff_rel_to_largest"] = float(max(rel))
        else:
            out[name]["max_abs_diff_log10"] = float(np.max(np.abs(r[both] - g[both])))
    return out


def cli_end_to_end(net, x, dout, repeats: int) -> dict:
    """``gradflow analyze`` on files, in a child process: seconds per run."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "model.npz", **{f"{k}_l{layer}": v for layer, (cell,) in
                                       enumerate(net.layers) for k, v in cell.params.items()})
        np.save(tmp / "x.npy", x)
        np.save(tmp / "targets.npy", np.zeros_like(dout))      # per-step MSE targets
        cmd = [sys.executable, "-m", "gradflow", "analyze", str(tmp / "model.npz"),
               "--data", str(tmp / "x.npy"), "--targets", str(tmp / "targets.npy"),
               "--layout", "tbd", "--no-progress"]
        times = []
        for k in range(repeats):
            out = tmp / f"out{k}"
            t0 = time.perf_counter()
            proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True,
                                  env=_child_env(unset=False), cwd=ROOT)
            times.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise RuntimeError(f"gradflow analyze failed: {proc.stderr[-2000:]}")
    return {"seconds": times}


def run(T: int = 500, B: int = 16, repeats: int = 3, cli_repeats: int = 2, chunk: int = 4,
        log=print) -> dict:
    import scipy.linalg.cython_blas  # noqa: F401  (Numba's BLAS: loaded before the limit)
    import torch
    from threadpoolctl import threadpool_limits

    import gradflow

    threads = os.cpu_count()
    torch.set_num_threads(threads)
    out = {"T": T, "B": B, "D": D, "H": H, "layers": LAYERS, "dtype": "float32",
           "threads": threads, "repeats": repeats, "torch_chunk": chunk,
           "load_start": os.getloadavg()}
    net, x, dout = problem(T, B)
    with threadpool_limits(threads, user_api="blas"):
        def g():
            f = gradflow.network_flow(net, x, doutput=dout, units=True)
            return f.log10_lag, f.log10_grad, f.log10_grad_units

        def a():
            return gradflow.analyze(net, x, doutput=dout)

        t = torch_maps(torch, net, x, dout, chunk)
        log("warm-up ...")
        gradflow.analyze(net, x[:20, :2], doutput=dout[:20, :2])       # compiles, if needed
        torch_maps(torch, net, x[:20, :chunk], dout[:20, :chunk], chunk)()
        log("the checked runs (timed: with --repeats 0 the only runs) ...")
        first = {}
        for name, fn in (("pytorch", t), ("gradflow", g)):
            time.sleep(PAUSE)
            t0 = time.perf_counter()
            first[name] = fn()
            out.setdefault("checked_run_seconds", {})[name] = time.perf_counter() - t0
        ref, got = first["pytorch"], first["gradflow"]
        agree = compare(ref, got)
        out["agree"] = agree
        bad = {k: v for k, v in agree.items()
               if v.get("max_abs_diff_log10", 0) > TOLERANCE_LOG10
               or v.get("max_diff_rel_to_largest", 0) > TOLERANCE_UNITS}
        if bad:
            raise RuntimeError(f"gradflow and PyTorch differ: {bad}")
        time.sleep(PAUSE)
        t0 = time.perf_counter()
        a()
        out["checked_run_seconds"]["analyze"] = time.perf_counter() - t0
        log(f"  agree: {agree}")
        if repeats:
            log(f"timing, {repeats} alternating runs each ...")
            out["times"] = _alternate_once({"gradflow": g, "analyze": a, "pytorch": t},
                                           repeats)["times"]
        else:       # PyTorch takes minutes at the size: the checked runs, once each
            out["times"] = {k: [v] for k, v in out["checked_run_seconds"].items()}
    log("gradflow analyze on the command line, end to end ...")
    out["cli"] = cli_end_to_end(net, x, dout, cli_repeats)
    out["load_end"] = os.getloadavg()
    return out


def text(res) -> str:
    t = res["times"]
    med = {k: statistics.median(v) for k, v in t.items()}
    lines = [f"2-layer LSTM, D = {res['D']}, H = {res['H']}, T = {res['T']}, B = {res['B']}, "
             f"float32, {res['threads']} thread(s); "
             + (f"medians of {res['repeats']} alternating runs (min-max), seconds"
                if res["repeats"] else "one timed run each (the checked runs), seconds"),
             f"  gradflow.network_flow (lag maps + heatmaps): {_report._s(t['gradflow'])}",
             f"  gradflow.analyze (all of the analysis):     {_report._s(t['analyze'])}",
             f"  PyTorch autograd (lag maps + heatmaps):     {_report._s(t['pytorch'])}",
             f"  PyTorch / network_flow = {med['pytorch'] / med['gradflow']:.2f}x, "
             f"PyTorch / analyze = {med['pytorch'] / med['analyze']:.2f}x",
             f"  gradflow analyze on the command line, end to end (report written): "
             f"{_report._s(res['cli']['seconds'], 1)} s"]
    for k, v in res["agree"].items():
        diff = (f"max |log10 difference| {v['max_abs_diff_log10']:.1e}" if k != "units" else
                f"max |difference| / the step's largest unit {v['max_diff_rel_to_largest']:.1e}")
        lines.append(f"  {k}: {diff} over "
                     f"{v['compared']} entries; PyTorch 0 where gradflow is finite: "
                     f"{v['pytorch_zero_gradflow_finite']} (gradflow's smallest log10: "
                     f"{v['gradflow_min_log10']:.1f})")
    lines.append("  load average at the start / end: "
                 + ", ".join(f"{x:.2f}" for x in res["load_start"]) + " / "
                 + ", ".join(f"{x:.2f}" for x in res["load_end"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--length", type=int, default=500, help="T (default 500)")
    p.add_argument("--batch", type=int, default=16, help="B (default 16)")
    p.add_argument("--repeats", type=int, default=3,
                   help="timed runs of each (medians); 0: time the checked runs, once each")
    p.add_argument("--cli-repeats", type=int, default=2, help="runs of the command line")
    p.add_argument("--torch-chunk", type=int, default=4,
                   help="sequences per PyTorch batched backward pass (its memory)")
    p.add_argument("--json", default=None, help="write every measurement here")
    args = p.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = _json_child([str(HERE / "_machine.py"), "512", "1"], _child_env(unset=False))
    print(f"{started}\n{_report.machine_text(machine)}", flush=True)
    res = run(args.length, args.batch, args.repeats, args.cli_repeats, args.torch_chunk,
              log=lambda m: print(m, flush=True))
    res.update(started=started, machine=machine)
    print(text(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
