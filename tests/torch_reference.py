"""PyTorch float64 autograd references for networks, shared by the tests: the network run
one cell step at a time, and the norms of its Jacobians and loss gradients."""

from __future__ import annotations

import numpy as np


def torch_steps(torch, net, x):
    """The network run in PyTorch one cell step at a time (nn.LSTMCell / nn.GRUCell with
    the weights of to_torch(net)): the output (T, B, dirs*H) and, per layer and
    direction, the hidden states by sequence time {t: (B, H)} (forward 0 .. T, reverse
    1 .. T + 1; the initial states require grad)."""
    from gradflow.interop import to_torch

    module = to_torch(net)
    kind = net.layers[0][0].spec.name
    make = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    T, B, _ = x.shape
    H, dirs = net.hidden_sizes[0], net.num_directions
    inp = torch.from_numpy(x)
    states = []
    for layer in range(net.num_layers):
        outs, per_dir = [], []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            cell = make(inp.shape[-1], H).double()
            with torch.no_grad():
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(cell, name).copy_(getattr(module, name + sfx))
            h = torch.zeros(B, H, dtype=torch.float64, requires_grad=True)
            c = torch.zeros(B, H, dtype=torch.float64)
            hs = {0 if d == 0 else T + 1: h}
            for p in (range(T) if d == 0 else range(T - 1, -1, -1)):
                if kind == "lstm":
                    h, c = cell(inp[p], (h, c))
                else:
                    h = cell(inp[p], h)
                hs[p + 1] = h
            per_dir.append(hs)
            outs.append(torch.stack([hs[t] for t in range(1, T + 1)]))
        states.append(per_dir)
        inp = torch.cat(outs, dim=-1)
    # the composition is PyTorch's own stacked module
    ref = module(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(inp.detach().numpy(), ref, rtol=1e-12, atol=1e-14)
    return inp, states


def torch_flow(torch, net, x, dout):
    """log10 norms of d out_T / d h^{l,d}_{T-k} (L, dirs, T + 1, B), of dL/dh^{l,d}_t
    (L, dirs, T, B) and per unit (L, dirs, T, B, H), by autograd."""
    out, states = torch_steps(torch, net, x)
    T, B, R = out.shape
    L, dirs, H = net.num_layers, net.num_directions, net.hidden_sizes[0]
    nodes = [(layer, d, t) for layer in range(L) for d in range(dirs) for t in states[layer][d]]
    tensors = [states[layer][d][t] for layer, d, t in nodes]
    jac = {node: np.zeros((B, R, H)) for node in nodes}
    for i in range(R):
        grads = torch.autograd.grad(out[T - 1, :, i].sum(), tensors, retain_graph=True,
                                    allow_unused=True)
        for node, g in zip(nodes, grads):
            if g is not None:
                jac[node][:, i] = g.numpy()
    lag = np.full((L, dirs, T + 1, B), np.nan)
    with np.errstate(divide="ignore"):
        for (layer, d, t), M in jac.items():
            if 0 <= T - t <= T:
                lag[layer, d, T - t] = np.log10([np.linalg.norm(M[b], 2) for b in range(B)])
        inner = [(layer, d, t) for layer, d, t in nodes if 1 <= t <= T]
        loss = (out * torch.from_numpy(dout)).sum()
        grads = torch.autograd.grad(loss, [states[layer][d][t] for layer, d, t in inner])
        grad = np.empty((L, dirs, T, B))
        units = np.empty((L, dirs, T, B, H))
        for (layer, d, t), g in zip(inner, grads):
            grad[layer, d, t - 1] = np.log10(np.linalg.norm(g.numpy(), axis=1))
            units[layer, d, t - 1] = np.log10(np.abs(g.numpy()))
    return lag, grad, units
