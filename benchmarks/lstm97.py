"""Online learning with the 1997 LSTM, one sequence per update: gradflow against an
equivalent PyTorch loop, side by side in one run.

Both train the same net -- the paper's adding-problem net (Exp. 4: two memory cell blocks
of two cells, logistic output unit, squared error) with the same initial weights, float64
-- by plain gradient descent at the paper's learning rate, one sequence per update, on the
same sequences, in one process, on one thread.  gradflow runs its generated kernels
(truncated gradient, or full BPTT with ``--full``); PyTorch runs the cell step by step under autograd
(``torch.nn.LSTM`` cannot express the 1997 cell: no forget gate, g and h of the paper, gates
shared by a block), with the truncated gradient as the paper defines it: the net inputs
read a detached ``h_{t-1}``.  Each update (forward, error, backward, weight change) is
timed; the two alternate in rounds of consecutive updates (online learning runs one
update after another) so that both see the same machine load; the figures are medians,
as sequences per second, and their ratio.  After the timed updates both
nets must still hold the same weights.

    python benchmarks/lstm97.py --length 100 --updates 200
    python benchmarks/lstm97.py --length 1000 --updates 40 --json

``run(...)`` returns the numbers as a dict.  The estimate of the full reproduction's CPU
time (``--estimate``) multiplies each experiment's budget in the paper (mean training
sequences times trials, for the 1997 net with the truncated gradient) by the measured
time per step.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _torch_net(torch, net, truncate: bool):
    """The 1997 net in PyTorch with the weights of gradflow's BlockNet `net`: the shared
    gates as one parameter per block, expanded to the block's cells."""
    c = net.cell
    H, S = c.hidden_size, net.block_size
    p = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in net.params.items()}
    rows = {g: c.gate_slice(g) for g in c.spec.gates}
    shared = {}
    for g in net.shared:
        r = rows[g]
        for name in ("weight_ih", "weight_hh", "bias_ih"):
            shared[(g, name)] = torch.tensor(net.params[name][r][::S].copy(), requires_grad=True)

    def gate_params(g, name):
        if (g, name) in shared:
            return shared[(g, name)].repeat_interleave(S, dim=0)
        return p[name][rows[g]]

    leaves = [p["weight_ih"], p["weight_hh"], p["bias_ih"], p["readout.weight"],
              p["readout.bias"], *shared.values()]

    def step(x, y, lr):
        Wi = {g: gate_params(g, "weight_ih") for g in "igo"}
        Wh = {g: gate_params(g, "weight_hh") for g in "igo"}
        b = {g: gate_params(g, "bias_ih") for g in "igo"}
        h = torch.zeros(1, H, dtype=torch.float64)
        s = torch.zeros(1, H, dtype=torch.float64)
        for t in range(x.shape[0]):
            hin = h.detach() if truncate else h
            net_ = {g: x[t] @ Wi[g].T + hin @ Wh[g].T + b[g] for g in "igo"}
            i = torch.sigmoid(net_["i"])
            gg = 4 * torch.sigmoid(net_["g"]) - 2
            o = torch.sigmoid(net_["o"])
            s = s + i * gg
            h = o * (2 * torch.sigmoid(s) - 1)
        out = torch.sigmoid(h @ p["readout.weight"].T + p["readout.bias"])
        loss = 0.5 * ((out - y) ** 2).sum()
        for leaf in leaves:
            leaf.grad = None
        loss.backward()
        with torch.no_grad():
            for leaf in leaves:
                if leaf.grad is not None:
                    leaf -= lr * leaf.grad
            # the untied rows of the shared gates are not used: keep them equal to the
            # shared ones so that the weights can be compared afterwards
            for (g, name), v in shared.items():
                p[name][rows[g]] = v.repeat_interleave(S, dim=0)

    return p, step


def run(length: int = 100, updates: int = 200, warmup: int = 10, truncate: bool = True,
        seed: int = 0, lr: float = 0.5, rounds: int = 5) -> dict:
    """Time `updates` online updates of each implementation after `warmup` untimed ones,
    alternating between the two in `rounds` rounds of consecutive updates."""
    import torch
    from threadpoolctl import threadpool_limits

    from gradflow.reproduce import hochreiter1997 as h97
    from gradflow.reproduce.runner import train_step
    from gradflow.train import SGD, tasks

    torch.set_num_threads(1)
    exp = h97.BY_KEY["4-100"]
    task = tasks.get("adding", length=length)
    _, net, _, _ = h97.build(exp, "lstm1997", seed)
    opt = SGD(lr)
    tp, tstep = _torch_net(torch, net, truncate)
    batches = []
    chunk = task.batch(warmup + updates, np.random.default_rng(seed))
    for k in range(warmup + updates):
        L = int(chunk.lengths[k])
        batches.append(tasks.Batch(chunk.x[:L, k:k + 1].copy(), chunk.y[:L, k:k + 1].copy(),
                                   chunk.mask[:L, k:k + 1].copy(), chunk.lengths[k:k + 1]))
    g_times, t_times = [], []

    def gradflow_update(b):
        t0 = time.perf_counter()
        _, _, grads = train_step(net, b, truncate)
        opt.step(net.params, grads)
        return time.perf_counter() - t0

    def torch_update(b):
        t0 = time.perf_counter()
        L = int(b.lengths[0])
        tstep(torch.tensor(b.x[:, 0]), torch.tensor(b.y[L - 1, 0]), lr)
        return time.perf_counter() - t0

    with threadpool_limits(1):
        for b in batches[:warmup]:
            gradflow_update(b)
            torch_update(b)
        # alternate in rounds of consecutive updates, as online learning runs them (one
        # update after another, caches warm); both see the same sequences in the same order
        for part in np.array_split(np.arange(warmup, warmup + updates), rounds):
            g_times += [gradflow_update(batches[k]) for k in part]
            t_times += [torch_update(batches[k]) for k in part]
    g, t = float(np.median(g_times)), float(np.median(t_times))
    drift = max(float(np.max(np.abs(net.params[k] - tp[k].detach().numpy())))
                for k in ("weight_ih", "weight_hh", "bias_ih", "readout.weight"))
    steps = float(np.mean([int(b.lengths[0]) for b in batches]))
    return {"length": length, "mean_steps": steps, "truncate": truncate, "updates": updates,
            "hidden": net.cell.hidden_size, "dtype": "float64", "threads": 1,
            "gradflow_s_per_sequence": g, "torch_s_per_sequence": t,
            "gradflow_seq_per_s": 1.0 / g, "torch_seq_per_s": 1.0 / t,
            "gradflow_us_per_step": g / steps * 1e6, "torch_us_per_step": t / steps * 1e6,
            "ratio_gradflow_over_torch": t / g, "max_weight_difference_after": drift,
            "torch_version": torch.__version__}


def estimate(us_per_step: float, overhead_us: float) -> list[dict]:
    """CPU time of the paper's budgets (the 1997 net with the truncated gradient, the
    paper's mean sequences times its trials), at `us_per_step` per time step and
    `overhead_us` per sequence.  Input and output sizes change the cost per step (Exp. 2
    has 101 or up to 1,004 inputs), which this ignores."""
    from gradflow.reproduce import hochreiter1997 as h97
    from gradflow.train import tasks

    out = []
    for e in h97.EXPERIMENTS:
        task = tasks.get(e.task, **e.task_options)
        if e.task == "distractors":
            steps = task.length + 12
        elif e.task in ("long-lag", "reber"):
            steps = task.length if e.task == "long-lag" else 12
        else:
            steps = task.length + task.length // 20
        seqs = e.paper_sequences * e.trials
        seconds = seqs * (steps * us_per_step + overhead_us) * 1e-6
        out.append({"exp": e.key, "trials": e.trials, "sequences": seqs, "steps": steps,
                    "cpu_hours": seconds / 3600})
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--updates", type=int, default=200)
    p.add_argument("--full", action="store_true", help="full BPTT instead of the truncated gradient")
    p.add_argument("--estimate", action="store_true",
                   help="also estimate the full reproduction's CPU time from the measurement")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    r = run(a.length, a.updates, truncate=not a.full)
    if a.estimate:
        short = r if a.length <= 200 else run(100, 100, truncate=not a.full)
        long = r if a.length >= 500 else run(1000, max(10, a.updates // 10), truncate=not a.full)
        per_step = (long["gradflow_s_per_sequence"] - short["gradflow_s_per_sequence"]) / \
            (long["mean_steps"] - short["mean_steps"]) * 1e6
        overhead = short["gradflow_s_per_sequence"] * 1e6 - per_step * short["mean_steps"]
        rows = estimate(per_step, max(overhead, 0.0))
        r["estimate"] = {"us_per_step": per_step, "overhead_us_per_sequence": overhead,
                         "experiments": rows, "cpu_hours": sum(x["cpu_hours"] for x in rows)}
    if a.json:
        print(json.dumps(r, indent=2))
        return
    kind = "truncated gradient" if r["truncate"] else "full BPTT"
    print(f"1997 LSTM, 2 blocks of 2 cells, adding T={r['length']} (mean {r['mean_steps']:.0f} "
          f"steps), one sequence per update, {kind}, float64, 1 thread, median of "
          f"{r['updates']} updates:")
    print(f"  gradflow {r['gradflow_seq_per_s']:9.0f} sequences/s ({r['gradflow_us_per_step']:.2f} us/step)")
    print(f"  PyTorch  {r['torch_seq_per_s']:9.1f} sequences/s ({r['torch_us_per_step']:.2f} us/step)")
    print(f"  ratio gradflow/PyTorch: {r['ratio_gradflow_over_torch']:.0f}  "
          f"(weights still agree to {r['max_weight_difference_after']:.1e})")
    if "estimate" in r:
        e = r["estimate"]
        print(f"estimate: {e['us_per_step']:.2f} us per step + {e['overhead_us_per_sequence']:.0f} us "
              f"per sequence -> the paper's budgets (1997 net, truncated, all trials): "
              f"{e['cpu_hours']:.1f} CPU hours")
        for x in e["experiments"]:
            print(f"  {x['exp']:<10} {x['trials']:>3} trials x {x['sequences'] / x['trials']:>10,.0f} "
                  f"sequences x {x['steps']:>5} steps: {x['cpu_hours']:7.2f} h")


if __name__ == "__main__":
    main()
