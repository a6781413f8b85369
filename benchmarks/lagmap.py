"""The full lag map of an LSTM, gradflow against PyTorch (and JAX when importable).

The quantity: ``|| d h_T / d h_{T-k} ||`` for every lag k = 0 .. T, for one sequence
(B = 1) of an LSTM with H = 128 over T = 1000 steps, the same weights and input in every
framework, in one process, on the same number of threads.  End to end: forward pass,
Jacobians, norms.

* gradflow: ``gradflow.gradient_flow(cell, x, state=False)``: the product propagated
  backward once, renormalised every step.
* PyTorch: ``torch.nn.LSTMCell`` unrolled, then one batched backward pass
  (``torch.autograd.grad(..., is_grads_batched=True)``: H cotangents through vmap) for the
  Jacobians of h_T with respect to every h_t, then ``torch.linalg.matrix_norm``.
* JAX: the unrolled step in ``lax.scan`` with a zero perturbation of every h_t, and
  ``vmap(vjp)`` over the H cotangents, jitted; then ``jnp.linalg.norm``.

Each is timed after a warm-up; the result is the median.  Where the plain frameworks'
Jacobians underflow to exactly 0 (they multiply un-normalised), the log10 norm is -inf;
gradflow's stays finite.

    python benchmarks/lagmap.py --dtype float32 --repeats 5
    python benchmarks/lagmap.py --dtype float64 --forget-bias -3   # float64 underflow too

``run(dtype=..., repeats=...)`` returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def _median_time(fn, repeats):
    fn()  # warm-up (compilation, caches)
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def _underflow(log10_norms):
    """{first lag with an exact 0 (log10 = -inf) or None, count of such lags}."""
    zero = np.isneginf(log10_norms)
    return {"first_zero_lag": int(np.argmax(zero)) if zero.any() else None,
            "zero_lags": int(zero.sum())}


def _torch_lagmap(torch, cell, x, norm):
    H = cell.hidden_size
    dt = torch.float64 if cell.dtype == np.float64 else torch.float32
    mod = torch.nn.LSTMCell(cell.input_size, H).to(dt)
    with torch.no_grad():
        for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(mod, k).copy_(torch.from_numpy(cell.params[k]))
    xt = torch.from_numpy(x)
    T = x.shape[0]
    eye = torch.eye(H, dtype=dt).reshape(H, 1, H)
    ord_ = 2 if norm == "spectral" else "fro"

    def fn():
        h = torch.zeros(1, H, dtype=dt, requires_grad=True)
        c = torch.zeros(1, H, dtype=dt)
        hs = [h]
        for t in range(T):
            h, c = mod(xt[t], (h, c))
            hs.append(h)
        grads = torch.autograd.grad(hs[-1], hs, grad_outputs=eye, is_grads_batched=True)
        jac = torch.stack([g[:, 0, :] for g in grads])  # (T + 1, H, H): [t] = d h_T / d h_t
        with torch.no_grad():
            # scaled by the largest entry, so that the norm itself cannot underflow
            m = jac.abs().amax(dim=(1, 2), keepdim=True)
            n = torch.linalg.matrix_norm(jac / torch.where(m > 0, m, 1), ord=ord_)
            n = (n.double().log10() + m[:, 0, 0].double().log10()).flip(0)  # lag k = T - t
        return n.numpy()

    return fn


def _jax_lagmap(jax, cell, x, norm):
    jnp = jax.numpy
    H = cell.hidden_size
    p = {k: jnp.asarray(v) for k, v in cell.params.items()}
    xs = jnp.asarray(x[:, 0])
    T = xs.shape[0]
    dt = xs.dtype
    ord_ = 2 if norm == "spectral" else "fro"

    def step(carry, inp):
        h, c = carry
        xt, dlt = inp
        h = h + dlt  # a zero perturbation of h_{t-1}: its cotangent is d h_T / d h_{t-1}
        a = p["weight_ih"] @ xt + p["bias_ih"] + p["weight_hh"] @ h + p["bias_hh"]
        i, f, g, o = jnp.split(a, 4)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), None

    def final_h(deltas):
        (h, _), _ = jax.lax.scan(step, (deltas[0] * 0, deltas[0] * 0), (xs, deltas[:T]))
        return h + deltas[T]

    def lagmap():
        deltas = jnp.zeros((T + 1, H), dt)
        _, vjp = jax.vjp(final_h, deltas)
        jac = jax.vmap(lambda v: vjp(v)[0])(jnp.eye(H, dtype=dt))  # (H, T + 1, H)
        jac = jnp.transpose(jac, (1, 0, 2))  # [t] = d h_T / d h_t
        m = jnp.max(jnp.abs(jac), axis=(1, 2), keepdims=True)
        n = jnp.linalg.norm(jac / jnp.where(m > 0, m, 1), ord=ord_, axis=(1, 2))
        return n[::-1], m[::-1, 0, 0]

    f = jax.jit(lagmap)

    def fn():
        n, m = f()
        n, m = np.asarray(n, np.float64), np.asarray(m.block_until_ready(), np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(m > 0, np.log10(n) + np.log10(np.where(m > 0, m, 1)), -np.inf)

    return fn


def run(dtype: str = "float64", repeats: int = 5, *, hidden: int = 128, length: int = 1000,
        norm: str = "frobenius", threads: int = 1, seed: int = 0, jax: bool = True,
        forget_bias: float | None = None) -> dict:
    """Time the full lag map in gradflow, PyTorch and (if importable) JAX.

    Returns
    -------
    dict
        Configuration, ``seconds`` (median per framework), ``ratio`` (framework time /
        gradflow time), ``underflow`` per framework (first lag whose norm is exactly 0 and
        the number of such lags), gradflow's smallest log10 norm, and the largest
        difference of the log10 norms from gradflow's at the lags where the framework's
        norm is at least 100 times the dtype's smallest normal number.
    """
    import scipy.linalg.cython_blas  # noqa: F401  (Numba's BLAS: loaded before the limit)
    from threadpoolctl import threadpool_limits

    import gradflow

    dt = np.dtype(dtype)
    cell = gradflow.Cell("lstm", hidden, hidden, seed=seed, dtype=dt, forget_bias=forget_bias)
    x = np.random.default_rng(seed).standard_normal((length, 1, hidden)).astype(dt)
    result = {"cell": "lstm", "B": 1, "H": hidden, "T": length, "dtype": dt.name,
              "norm": norm, "threads": threads, "repeats": repeats, "forget_bias": forget_bias,
              "seconds": {}, "ratio": {}, "underflow": {}, "max_abs_diff_log10": {},
              "median_abs_diff_log10": {},
              "first_inaccurate_lag": {}}
    curves = {}
    with threadpool_limits(threads):
        t, flow = _median_time(lambda: gradflow.gradient_flow(cell, x, state=False, norm=norm),
                               repeats)
        result["seconds"]["gradflow"] = t
        curves["gradflow"] = flow.log10_h[:, 0]
        t_full, _ = _median_time(lambda: gradflow.gradient_flow(cell, x, state=True, norm=norm),
                                 repeats)
        result["seconds"]["gradflow_with_full_state"] = t_full
        try:
            import torch
        except ImportError:  # pragma: no cover
            torch = None
        if torch is not None:
            torch.set_num_threads(threads)
            t, curves["pytorch"] = _median_time(_torch_lagmap(torch, cell, x, norm), repeats)
            result["seconds"]["pytorch"] = t
        if jax:
            if threads == 1 and "jax" not in sys.modules:
                # XLA keeps its own thread pool: hold it to one thread like the others
                os.environ.setdefault(
                    "XLA_FLAGS",
                    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
            try:
                import jax as jax_mod

                if dt == np.float64:
                    jax_mod.config.update("jax_enable_x64", True)
            except ImportError:
                jax_mod = None
            if jax_mod is not None:
                t, curves["jax"] = _median_time(_jax_lagmap(jax_mod, cell, x, norm), repeats)
                result["seconds"]["jax"] = t
    g = curves["gradflow"]
    result["gradflow_all_finite"] = bool(np.all(np.isfinite(g)))
    result["gradflow_min_log10"] = float(np.min(g))
    for name, curve in curves.items():
        result["underflow"][name] = _underflow(curve)
        if name != "gradflow":
            result["ratio"][name] = result["seconds"][name] / result["seconds"]["gradflow"]
            # where the framework's norm is a normal number of the dtype (no underflow yet)
            diff = np.abs(curve - g)
            bad = ~(diff <= 1e-3)
            result["first_inaccurate_lag"][name] = int(np.argmax(bad)) if bad.any() else None
            ok = ~bad
            result["max_abs_diff_log10"][name] = float(np.max(diff[ok])) if ok.any() else None
            result["median_abs_diff_log10"][name] = float(np.median(diff[ok])) if ok.any() else None
    return result


def _main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--length", type=int, default=1000)
    p.add_argument("--norm", default="frobenius", choices=["frobenius", "spectral"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--forget-bias", type=float, default=None,
                   help="set the forget gate's bias (negative: faster vanishing)")
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args()
    r = run(a.dtype, a.repeats, hidden=a.hidden, length=a.length, norm=a.norm,
            threads=a.threads, jax=not a.no_jax, forget_bias=a.forget_bias)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    fb = "" if r["forget_bias"] is None else f", forget bias {r['forget_bias']}"
    print(f"lag map of an LSTM, B=1, H={r['H']}, T={r['T']}, {r['dtype']}, {r['norm']} norm{fb}, "
          f"{r['threads']} thread(s), median of {r['repeats']}:")
    for name, s in r["seconds"].items():
        ratio = r["ratio"].get(name)
        extra = f"  ({ratio:.1f}x gradflow's time)" if ratio else ""
        print(f"  {name:26s} {s * 1e3:9.1f} ms{extra}")
    for name, u in r["underflow"].items():
        where = ("finite at every lag" if u["first_zero_lag"] is None else
                 f"0 from lag {u['first_zero_lag']} ({u['zero_lags']} lags)")
        print(f"  {name:26s} {where}")
    print(f"  gradflow's smallest norm: 1e{r['gradflow_min_log10']:.1f}")
    for name, d in r["max_abs_diff_log10"].items():
        lag = r["first_inaccurate_lag"][name]
        med = r["median_abs_diff_log10"][name]
        print(f"  {name}: |log10 {name} - log10 gradflow| <= {d:.1e} (median {med:.1e}) up to lag "
              f"{r['T'] if lag is None else lag - 1}" + ("" if lag is None else
              f"; from lag {lag} they differ by more than 1e-3 (underflow in {name})"))


if __name__ == "__main__":
    _main()
