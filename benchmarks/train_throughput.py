"""Training throughput, gradflow against an equivalent PyTorch training loop.

Both train the same cell (same size, same initial weights, float64) with a linear
readout on the same batches of a task, with Adam and clipping by global norm, in one
process, on the same number of threads.  Each update (forward, loss, backward, clip,
Adam step) is timed after a warm-up; the result is the median, as sequences per second.

    python benchmarks/train_throughput.py --cell lstm --task adding --length 100 --hidden 16

``run(...)`` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def _gradflow_step(model, task, opt, batch, clip):
    from gradflow.train import clip_by_global_norm

    _, _, grads = model.loss_and_gradients(task, batch)
    clip_by_global_norm(grads, clip)
    opt.step(model.params, grads)


def _torch_loop(torch, cell, readout, task, lr):
    kinds = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}
    net = kinds[cell.spec.name](cell.input_size, cell.hidden_size).double()
    with torch.no_grad():
        for name, value in cell.params.items():
            getattr(net, f"{name}_l0").copy_(torch.tensor(value))
    lin = torch.nn.Linear(cell.hidden_size, task.output_size).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(readout.params["weight"]))
        lin.bias.copy_(torch.tensor(readout.params["bias"]))
    params = list(net.parameters()) + list(lin.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    return net, lin, params, opt


def _torch_step(torch, net, lin, params, opt, task, tb, clip):
    x, y, mask = tb
    opt.zero_grad()
    h, _ = net(x)
    out = lin(h)
    n = mask.sum()
    if task.loss == "mse":
        loss = (((out - y) ** 2) * mask[..., None]).sum() / (n * out.shape[-1])
    else:
        logp = torch.log_softmax(out, dim=-1)
        loss = -((y * logp).sum(-1) * mask).sum() / n
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def _load_kernels(cell) -> None:
    """Run the cell's kernels once on a throwaway copy, so that the BLAS library they
    call is loaded before ``threadpool_limits`` is entered (it limits only the libraries
    already loaded)."""
    tmp = cell.copy()
    trace = tmp.forward(np.zeros((2, 1, cell.input_size), dtype=cell.dtype))
    tmp.backward(trace, np.ones_like(trace.h))


def run(cell: str = "lstm", task: str = "adding", length: int = 100, hidden: int = 16,
        batch: int = 32, updates: int = 30, warmup: int = 5, lr: float = 0.01,
        clip: float = 1.0, threads: int = 1, seed: int = 0) -> dict:
    """Time `updates` training updates of each implementation (after `warmup` untimed
    ones) on the same batches; return medians and sequences per second."""
    import torch
    from threadpoolctl import threadpool_limits

    import gradflow
    from gradflow.train import tasks
    from gradflow.train import Adam, Model

    torch.set_num_threads(threads)
    t = tasks.get(task, length=length)
    c = gradflow.Cell(cell, t.input_size, hidden, seed=seed)
    model = Model(c, t.output_size, seed=seed)
    net, lin, params, topt = _torch_loop(torch, c, model.readout, t, lr)
    opt = Adam(lr)
    rng = np.random.default_rng(seed)
    batches = [t.batch(batch, rng) for _ in range(warmup + updates)]
    tbatches = [(torch.tensor(b.x), torch.tensor(b.y), torch.tensor(b.mask, dtype=torch.float64))
                for b in batches]
    _load_kernels(c)
    g_times, t_times = [], []
    with threadpool_limits(threads):
        for k in range(warmup + updates):
            # alternate, so both see the same machine load
            t0 = time.perf_counter()
            _gradflow_step(model, t, opt, batches[k], clip)
            t1 = time.perf_counter()
            _torch_step(torch, net, lin, params, topt, t, tbatches[k], clip)
            t2 = time.perf_counter()
            if k >= warmup:
                g_times.append(t1 - t0)
                t_times.append(t2 - t1)
    g, tt = float(np.median(g_times)), float(np.median(t_times))
    # the two runs trained the same weights on the same data: they must still agree
    drift = float(np.max(np.abs(model.params["weight_hh"] - net.weight_hh_l0.detach().numpy())))
    return {"cell": cell, "task": task, "length": length, "hidden": hidden, "batch": batch,
            "dtype": "float64", "threads": threads, "updates": updates,
            "gradflow_s_per_update": g, "torch_s_per_update": tt,
            "gradflow_seq_per_s": batch / g, "torch_seq_per_s": batch / tt,
            "ratio_gradflow_over_torch": tt / g, "max_weight_difference_after": drift,
            "torch_version": torch.__version__}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", default="lstm", choices=("lstm", "gru", "rnn"))
    p.add_argument("--task", default="adding")
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--updates", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    r = run(a.cell, a.task, a.length, a.hidden, a.batch, a.updates, threads=a.threads)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{r['cell']} H={r['hidden']} on {r['task']} T={r['length']}, batch {r['batch']}, "
          f"{r['dtype']}, {r['threads']} thread(s), median of {r['updates']} updates:")
    print(f"  gradflow {r['gradflow_seq_per_s']:8.0f} sequences/s ({r['gradflow_s_per_update'] * 1e3:.1f} ms/update)")
    print(f"  PyTorch  {r['torch_seq_per_s']:8.0f} sequences/s ({r['torch_s_per_update'] * 1e3:.1f} ms/update)")
    print(f"  ratio gradflow/PyTorch: {r['ratio_gradflow_over_torch']:.2f}  "
          f"(weights still agree to {r['max_weight_difference_after']:.1e})")


if __name__ == "__main__":
    main()
