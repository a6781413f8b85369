"""A two-layer bidirectional LSTM, gradflow against PyTorch: forward + backward, and the
lag map over depth and time.

    python benchmarks/network.py [--repeats 5] [--threads N] [--json FILE]
    python benchmarks/network.py --dtypes float64 --lag-batch 2    # a shorter run

The network: ``gradflow.Network("lstm", 128, 128, num_layers=2, bidirectional=True)``
and the ``torch.nn.LSTM`` with the same weights (``gradflow.interop.to_torch``), the same
input and output cotangent, in one process, on the same number of threads (all cores by
default, as benchmarks/run.py: ``torch.set_num_threads``, and gradflow follows the BLAS's
limit, ``threadpoolctl.threadpool_limits``).  Two comparisons, each in float64 and float32:

1. forward + backward, B = 32, T = 100: ``net.backward(net.forward(x), dout)`` against
   ``module(x)`` and ``y.backward(dout)``, dout random; both give every parameter's
   gradient and the input's.
2. the lag map: log10 ||d y_T / d h^{l,d}_{T-k}|| (spectral norm) for both layers, both
   directions and every lag k = 0 .. T, per batch row: ``gradflow.network_flow(net, x)``
   (its ``log10_lag``, forward pass included) against PyTorch autograd: the network
   unrolled one ``nn.LSTMCell`` step at a time, the 2H rows of d y_T / d(every state) by
   one batched vector-Jacobian product (``torch.autograd.grad(..., is_grads_batched=True)``)
   and ``torch.linalg.matrix_norm(ord=2)``.  B = 4 by default (``--lag-batch``): PyTorch's
   cost grows with B * 2H cotangents; gradflow alone is also timed at B = 32.

Before timing, each pair is checked to compute the same thing (output, every gradient,
every lag-map entry; a mismatch stops the run).  Then, as in benchmarks/run.py: a warm-up,
runs alternating between the two with a pause before each, medians with the min-max
spread; ratio = PyTorch's median time / gradflow's (above 1: gradflow is faster).  The
forward + backward pair is also timed back to back (run.py's second table).

``run(...)`` returns the numbers as a dict; ``--json FILE`` writes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]  # the sibling modules, and this checkout's gradflow

import _report
from run import PAUSE, _alternate, _alternate_once, _child_env, _json_child

LAYERS, T, D, H = 2, 100, 128, 128

#: The largest differences accepted before timing: relative to the largest entry (outputs
#: and gradients), absolute in log10 (lag maps).
TOLERANCE = {"float64": {"fb": 1e-10, "lag": 1e-8}, "float32": {"fb": 1e-4, "lag": 1e-4}}


def _network(dtype: str, batch: int, seed: int = 0):
    """The gradflow network, an input (T, batch, D) and an output cotangent."""
    import gradflow

    net = gradflow.Network("lstm", D, H, num_layers=LAYERS, bidirectional=True,
                           dtype=np.dtype(dtype), seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, batch, D)).astype(dtype)
    dout = rng.standard_normal((T, batch, net.output_size)).astype(dtype)
    return net, x, dout


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


# ---------------------------------------------------------------------- forward + backward
def _fb_pair(torch, net, x, dout):
    """(gradflow run, PyTorch run, check): one forward + backward pass each; check()
    compares the last passes' output, parameter gradients and input gradient."""
    from gradflow.interop import to_torch

    module = to_torch(net)
    params = dict(module.named_parameters())
    xt = torch.from_numpy(x).requires_grad_(True)
    dt = torch.from_numpy(dout)
    last = {}

    def gradflow_run():
        trace = net.forward(x)
        last["gradflow"] = (trace.output, net.backward(trace, dout))

    def torch_run():
        for p in params.values():
            p.grad = None
        xt.grad = None
        y, _ = module(xt)
        y.backward(dt)
        last["pytorch"] = y

    def check():
        y_g, grads = last["gradflow"]
        y_t = last["pytorch"].detach().numpy()
        return {"output": _rel(y_g, y_t),
                "parameter_grads": max(_rel(g, params[k].grad.numpy())
                                       for k, g in grads.params.items()),
                "input_grad": _rel(grads.x, xt.grad.numpy())}

    return gradflow_run, torch_run, check


def forward_backward(torch, dtype: str, batch: int, repeats: int) -> dict:
    net, x, dout = _network(dtype, batch)
    g, t, check = _fb_pair(torch, net, x, dout)
    g()
    t()
    agree = check()
    bad = {k: v for k, v in agree.items() if not v <= TOLERANCE[dtype]["fb"]}
    if bad:
        raise RuntimeError(f"forward + backward {dtype}: gradflow and PyTorch differ: {bad}")
    timed = _alternate({"gradflow": g, "pytorch": t}, float("inf"), repeats)
    return {"case": "forward+backward", "dtype": dtype, "B": batch, "T": T, "D": D, "H": H,
            "agree_max_rel_diff": agree, **timed}


# ---------------------------------------------------------------------- lag map
def _torch_lagmap(torch, net, x):
    """PyTorch autograd's lag map: log10 ||d y_T / d h^{l,d}_{T-k}||_2, (L, dirs, T + 1, B)
    float64, in the layout of NetworkFlow.log10_lag (NaN: no reverse state at time 0).

    The network runs one nn.LSTMCell step at a time, each layer's input at step t the
    concatenation of the layer below's two states at t (no stacked tensor to slice: its
    backward would add a full-size zero gradient per step).  A reverse direction's state
    at time t is the one after it read x_t."""
    from gradflow.interop import to_torch

    module = to_torch(net)
    dt = module.weight_hh_l0.dtype
    cells = {}
    for layer in range(LAYERS):
        for d in range(2):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            cell = torch.nn.LSTMCell(D if layer == 0 else 2 * H, H).to(dt)
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(module, name + sfx))
            cells[layer, d] = cell.requires_grad_(False)
    xs = torch.from_numpy(x).unbind(0)
    steps, B = len(xs), x.shape[1]

    def fn():
        inp, states = xs, []
        for layer in range(LAYERS):
            per_dir = []
            for d in range(2):
                h = torch.zeros(B, H, dtype=dt, requires_grad=True)
                c = torch.zeros(B, H, dtype=dt)
                hs = {0: h} if d == 0 else {}
                for p in (range(steps) if d == 0 else range(steps - 1, -1, -1)):
                    h, c = cells[layer, d](inp[p], (h, c))
                    hs[p + 1] = h
                per_dir.append(hs)
            states.append(per_dir)
            inp = [torch.cat([per_dir[0][t], per_dir[1][t]], dim=-1) for t in range(1, steps + 1)]
        top = inp[-1]                                       # y_T, (B, 2H)
        R = top.shape[1]
        eye = torch.eye(R, dtype=dt).unsqueeze(1).expand(R, B, R)
        keys = [(layer, d, t) for layer in range(LAYERS) for d in range(2)
                for t in sorted(states[layer][d])]
        grads = dict(zip(keys, torch.autograd.grad(
            top, [states[k[0]][k[1]][k[2]] for k in keys], grad_outputs=eye,
            is_grads_batched=True, allow_unused=True)))
        out = np.full((LAYERS, 2, steps + 1, B), np.nan)
        with torch.no_grad():
            for layer in range(LAYERS):
                for d in range(2):
                    ts = sorted(states[layer][d])
                    gs = [grads[layer, d, t] for t in ts]
                    # unreached states (the top reverse direction after y_T) have no gradient
                    J = torch.stack([torch.zeros(R, B, H, dtype=dt) if g is None else g
                                     for g in gs])
                    J = J.transpose(1, 2)                   # (times, B, R, H)
                    # scaled by the largest entry, so that the norm itself cannot underflow
                    m = J.abs().amax(dim=(2, 3), keepdim=True)
                    n = torch.linalg.matrix_norm(J / torch.where(m > 0, m, 1), ord=2)
                    n = n.double().log10() + m[..., 0, 0].double().log10()
                    out[layer, d, [steps - t for t in ts]] = n.numpy()
        return out

    return fn


def _compare_lagmaps(ref, got) -> dict:
    """Where both are finite, the largest |difference| of the log10 norms; and whether
    the NaN and -inf (exactly zero) entries are the same."""
    fin = np.isfinite(ref) & np.isfinite(got)
    return {"same_nan": bool(np.array_equal(np.isnan(ref), np.isnan(got))),
            "same_zero": bool(np.array_equal(np.isneginf(ref), np.isneginf(got))),
            "finite_entries": int(fin.sum()),
            "max_abs_diff_log10": float(np.max(np.abs(ref[fin] - got[fin]))),
            "min_log10": float(np.min(got[fin]))}


def lag_map(torch, dtype: str, batch: int, big_batch: int, repeats: int) -> list[dict]:
    import gradflow

    net, x_big, _ = _network(dtype, max(batch, big_batch))
    x = np.ascontiguousarray(x_big[:, :batch])

    def g():
        return gradflow.network_flow(net, x).log10_lag

    t = _torch_lagmap(torch, net, x)
    ref, got = t(), g()                                     # also the warm-up
    agree = _compare_lagmaps(ref, got)
    if not (agree["same_nan"] and agree["same_zero"]
            and agree["max_abs_diff_log10"] <= TOLERANCE[dtype]["lag"]):
        raise RuntimeError(f"lag map {dtype}: gradflow and PyTorch differ: {agree}")
    rows = [{"case": "lag map", "dtype": dtype, "B": batch, "T": T, "D": D, "H": H,
             "agree": agree, **_alternate_once({"gradflow": g, "pytorch": t}, repeats)}]
    if big_batch > batch:
        def gb():
            return gradflow.network_flow(net, x_big).log10_lag

        big = gb()                                          # also the warm-up
        # batch rows are independent: the first rows are those of the small batch
        same = float(np.nanmax(np.abs(np.where(np.isneginf(got), 0, got)
                                      - np.where(np.isneginf(big[..., :batch]), 0,
                                                 big[..., :batch]))))
        times = []
        for _ in range(repeats):
            time.sleep(PAUSE)
            t0 = time.perf_counter()
            gb()
            times.append(time.perf_counter() - t0)
        rows.append({"case": "lag map", "dtype": dtype, "B": big_batch, "T": T, "D": D,
                     "H": H, "first_rows_vs_small_batch": same,
                     "times": {"gradflow": times}})
    return rows


# ---------------------------------------------------------------------- runner
def run(dtypes=("float64", "float32"), repeats: int = 5, threads: int | None = None,
        fb_batch: int = 32, lag_batch: int = 4, lag_big_batch: int = 32, lag: bool = True,
        log=print) -> dict:
    """Both comparisons for every dtype; returns every measurement."""
    import scipy.linalg.cython_blas  # noqa: F401  (Numba's BLAS: loaded before the limit)
    import torch
    from threadpoolctl import threadpool_limits

    threads = threads or os.cpu_count()
    torch.set_num_threads(threads)
    out = {"threads": threads, "repeats": repeats, "load_start": os.getloadavg(), "rows": []}
    with threadpool_limits(threads, user_api="blas"):
        for dt in dtypes:
            log(f"forward + backward {dt}, B={fb_batch} ...")
            r = forward_backward(torch, dt, fb_batch, repeats)
            r["load"] = os.getloadavg()
            log("  " + _line(r) + "; " + _agree_text(r))
            out["rows"].append(r)
        for dt in dtypes if lag else ():
            log(f"lag map {dt}, B={lag_batch} (and gradflow at B={lag_big_batch}) ...")
            for r in lag_map(torch, dt, lag_batch, lag_big_batch, repeats):
                r["load"] = os.getloadavg()
                log("  " + _line(r) + "; " + _agree_text(r))
                out["rows"].append(r)
    out["load_end"] = os.getloadavg()
    return out


def _name(r) -> str:
    return f"{r['case']} B={r['B']} T={r['T']} H={r['H']}"


def _median(times) -> float | None:
    return statistics.median(times) if times else None


def _ratio(r, key="times") -> float | None:
    t = r.get(key) or {}
    if "pytorch" not in t:
        return None
    return _median(t["pytorch"]) / _median(t["gradflow"])


def _line(r, key="times") -> str:
    t = r[key]
    ratio = _ratio(r, key)
    return (f"gradflow {_report._ms(t['gradflow'])} ms, PyTorch {_report._ms(t.get('pytorch'))} ms"
            + (f" = {ratio:.2f}x" if ratio else ""))


def _agree_text(r) -> str:
    if "agree_max_rel_diff" in r:
        a = r["agree_max_rel_diff"]
        return (f"max relative difference: output {a['output']:.1e}, parameter gradients "
                f"{a['parameter_grads']:.1e}, input gradient {a['input_grad']:.1e}")
    if "agree" in r:
        a = r["agree"]
        return (f"max |log10 difference| {a['max_abs_diff_log10']:.1e} over "
                f"{a['finite_entries']} finite entries, NaN and zero entries "
                f"{'the same' if a['same_nan'] and a['same_zero'] else 'DIFFER'}, "
                f"smallest log10 norm {a['min_log10']:.1f}")
    return (f"first B rows as at the small batch to {r['first_rows_vs_small_batch']:.0e} "
            "(log10)")


def table(res) -> str:
    """The compact table: one line per case and dtype (and the back-to-back runs)."""
    rows = []
    for r in res["rows"]:
        rows.append((_name(r), r["dtype"], r, "times"))
        if "b2b" in r:
            rows.append((_name(r) + ", back to back", r["dtype"], r, "b2b"))
    w = max(len(n) for n, *_ in rows)
    head = (f"{'case':{w}s}  dtype    {'gradflow ms':>24s}  {'PyTorch ms':>24s}  "
            "PyTorch / gradflow")
    lines = [head, "-" * len(head)]
    for name, dt, r, key in rows:
        t = r[key]
        ratio = _ratio(r, key)
        lines.append(f"{name:{w}s}  {dt:7s}  {_report._ms(t['gradflow']):>24s}  "
                     f"{_report._ms(t.get('pytorch')):>24s}  "
                     + (f"{ratio:.2f}x" if ratio else "-"))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                   choices=["float64", "float32"])
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each (medians)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both (default: all cores, as benchmarks/run.py)")
    p.add_argument("--batch", type=int, default=32, help="B of the forward + backward pass")
    p.add_argument("--lag-batch", type=int, default=4,
                   help="B of the lag-map comparison (PyTorch's time grows with it)")
    p.add_argument("--lag-big-batch", type=int, default=32,
                   help="B of gradflow's lag map timed alone (0: skip)")
    p.add_argument("--no-lag", action="store_true", help="the forward + backward pass only")
    p.add_argument("--json", default=None, help="write every measurement here")
    a = p.parse_args(argv)

    def log(msg):
        print(msg, flush=True)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = _json_child([str(HERE / "_machine.py"), "2048", "3"], _child_env(unset=False))
    log(f"{started}\n{_report.machine_text(machine)}")
    if "peak" in machine:
        pk = machine["peak"]
        log(f"GEMM peak (NumPy {pk['float64']['n']}² matmul, median): "
            f"{pk['float64']['median_gflops']:.0f} GFLOP/s float64, "
            f"{pk['float32']['median_gflops']:.0f} GFLOP/s float32")
    res = run(a.dtypes, a.repeats, a.threads, a.batch, a.lag_batch, a.lag_big_batch,
              not a.no_lag, log)
    res.update(started=started, machine=machine)
    log(f"\n2-layer bidirectional LSTM, D = H = {H}, T = {T}; {res['threads']} thread(s) "
        f"each; medians of {res['repeats']} alternating runs (min-max)")
    log(table(res))
    load = ", ".join(f"{x:.2f}" for x in res["load_start"])
    log(f"load average (1, 5, 15 min) at the start: {load}; at the end: "
        f"{', '.join(f'{x:.2f}' for x in res['load_end'])} ({os.cpu_count()} cores: other "
        "processes' work shows up as noise)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
