"""The timed workloads: one forward + backward pass of a recurrent layer, in each framework.

Every framework gets the same weights, input and output cotangent ``dh`` (``dL/dh_t`` for
every step, as from a loss on every output), and computes the gradients of the weights,
the biases and the input:

* gradflow: ``cell.backward(cell.forward(x), dh)``;
* PyTorch: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` (one layer), ``y.backward(dh)``;
* JAX: the cell's step in ``lax.scan``, ``jit(grad)`` of ``sum(h * dh)``.

Each ``make_*`` returns ``(run, grads)``: ``run()`` does one pass (synchronously), and
``grads()`` returns the last pass's ``weight_hh`` gradient as a NumPy array, so that the
runner can check that the frameworks computed the same thing before comparing speed.
"""

from __future__ import annotations

import numpy as np

#: The benchmark's name for a cell -> (gradflow catalogue name, torch class, gates).
CELLS = {"lstm": ("lstm", "LSTM", 4), "gru": ("gru", "GRU", 3), "rnn": ("rnn", "RNN", 1)}


def flops(cell: str, B: int, T: int, D: int, H: int) -> float:
    """Floating-point operations of the matrix products of one forward + backward pass.

    Forward: ``x W_ih^T`` and ``h W_hh^T`` (2 T B G H (D + H)); backward: the gradients of
    both weights, of x and of h_{t-1} (twice that).  Elementwise work is not counted.
    """
    G = CELLS[cell][2]
    return 6.0 * T * B * G * H * (D + H)


def problem(cell: str, B: int, T: int, D: int, H: int, dtype: str, seed: int = 0):
    """A gradflow Cell with PyTorch's initialisation, an input x and a cotangent dh."""
    import gradflow

    c = gradflow.Cell(CELLS[cell][0], D, H, dtype=np.dtype(dtype), seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    return c, x, dh


def make_gradflow(cell, x, dh):
    """One forward + backward pass of a gradflow Cell."""
    out = {}

    def run():
        trace = cell.forward(x)
        out["grads"] = cell.backward(trace, dh)

    return run, lambda: out["grads"].params["weight_hh"]


def make_torch(cell, x, dh, threads: int):
    """The same pass through ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` with the cell's weights."""
    import torch

    torch.set_num_threads(threads)
    name = cell.spec.name
    kind = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[name]
    dt = torch.float64 if cell.dtype == np.float64 else torch.float32
    module = getattr(torch.nn, kind)(cell.input_size, cell.hidden_size).to(dt)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(module, f"{k}_l0").copy_(torch.from_numpy(cell.params[k]))
    xt = torch.from_numpy(x).requires_grad_(True)
    dht = torch.from_numpy(dh)
    params = list(module.parameters())

    def run():
        for p in params:
            p.grad = None
        xt.grad = None
        y, _ = module(xt)
        y.backward(dht)

    return run, lambda: module.weight_hh_l0.grad.numpy()


def _jax_step(kind, jnp, jax):
    """The cell's step in JAX, PyTorch's gate order; `a` is the input part x W_ih^T + b_ih."""
    sig = jax.nn.sigmoid

    def lstm(carry, a, w, b):
        h, c = carry
        i, f, g, o = jnp.split(a + h @ w.T + b, 4, axis=-1)
        c = sig(f) * c + sig(i) * jnp.tanh(g)
        h = sig(o) * jnp.tanh(c)
        return (h, c), h

    def gru(carry, a, w, b):
        (h,) = carry
        ar, az, an = jnp.split(a, 3, axis=-1)
        hr, hz, hn = jnp.split(h @ w.T + b, 3, axis=-1)
        r = sig(ar + hr)
        z = sig(az + hz)
        n = jnp.tanh(an + r * hn)
        h = (1 - z) * n + z * h
        return (h,), h

    def rnn(carry, a, w, b):
        (h,) = carry
        h = jnp.tanh(a + h @ w.T + b)
        return (h,), h

    return {"lstm": lstm, "gru": gru, "rnn": rnn}[kind]


def make_jax(cell, x, dh):
    """The same pass in JAX: ``lax.scan`` over the steps, ``jit(grad)`` of sum(h * dh)."""
    import jax

    if cell.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    kind = cell.spec.name
    step = _jax_step(kind, jnp, jax)
    S = 2 if kind == "lstm" else 1
    params = {k: jnp.asarray(cell.params[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    xj, dhj = jnp.asarray(x), jnp.asarray(dh)
    B, H = x.shape[1], cell.hidden_size

    def loss(p, xs, cot):
        a = xs @ p["weight_ih"].T + p["bias_ih"]
        carry = tuple(jnp.zeros((B, H), xs.dtype) for _ in range(S))
        _, hs = jax.lax.scan(lambda c, at: step(c, at, p["weight_hh"], p["bias_hh"]), carry, a)
        return jnp.sum(hs * cot)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    out = {}

    def run():
        out["g"] = jax.block_until_ready(grad(params, xj, dhj))

    return run, lambda: np.asarray(out["g"][0]["weight_hh"])


def gradflow_lyapunov(cell, x):
    """gradflow's whole Lyapunov spectrum (all S*H exponents)."""
    import gradflow

    return lambda: gradflow.lyapunov_spectrum(cell, x).exponents


def torch_lyapunov(cell, x, threads: int):
    """The textbook method in PyTorch: each step's Jacobian of (h, c) by ``torch.func.jacrev``,
    then ``Q_t R_t = J_t Q_{t-1}`` with ``torch.linalg.qr``; exponents = mean log |diag R|
    after the same transient as gradflow's default (T // 10)."""
    import torch

    torch.set_num_threads(threads)
    dt = torch.float64 if cell.dtype == np.float64 else torch.float32
    H = cell.hidden_size
    p = {k: torch.from_numpy(cell.params[k]) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    xt = torch.from_numpy(x[:, 0])
    T = xt.shape[0]

    def step(s, xv):
        h, c = s[:H], s[H:]
        i, f, g, o = (xv @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]).chunk(4)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.cat([torch.sigmoid(o) * torch.tanh(c), c])

    jac = torch.func.jacrev(step)

    def run():
        with torch.no_grad():
            s = torch.zeros(2 * H, dtype=dt)
            q = torch.eye(2 * H, dtype=dt)
            total = torch.zeros(2 * H, dtype=dt)
            transient = T // 10
            for t in range(T):
                q, r = torch.linalg.qr(jac(s, xt[t]) @ q)
                if t >= transient:
                    total += torch.log(torch.abs(torch.diagonal(r)))
                s = step(s, xt[t])
        return torch.sort(total / (T - transient), descending=True).values.numpy()

    return run
