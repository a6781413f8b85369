"""Slow, obvious NumPy forward passes of every catalogue cell, written from the papers.

An independent reference: nothing here is generated from gradflow's equations.
Parameters use PyTorch's names, shapes and gate order (``weight_ih (G*H, D)`` ...).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def sigmoid(a):
    return expit(a)


def _split(v, n):
    return np.split(v, n, axis=-1)


def step(name, p, x, state):
    """One step for a batch: x (B, D), state tuple of (B, H) arrays -> new state tuple."""
    Wi, Wh, bi, bh = p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"]
    h = state[0]
    ax = x @ Wi.T + bi
    G = Wi.shape[0] // h.shape[1]
    if name in ("gru-cho", "mgu"):
        ah = None
    else:
        ah = h @ Wh.T + bh
    if name == "rnn":
        return (np.tanh(ax + ah),)
    if name == "rnn-relu":
        return (np.maximum(ax + ah, 0.0),)
    if name == "rnn-linear":
        return (ax + ah,)
    if name.startswith("lstm"):
        c = state[1]
        a = _split(ax + ah, G)
        if name == "lstm-peephole":
            ai, af, ag, ao = a
            i = sigmoid(ai + p["peephole_i"] * c)
            f = sigmoid(af + p["peephole_f"] * c)
            g = np.tanh(ag)
            c2 = f * c + i * g
            o = sigmoid(ao + p["peephole_o"] * c2)
            return (o * np.tanh(c2), c2)
        if name == "lstm-nfg":
            ai, ag, ao = a
            c2 = c + sigmoid(ai) * np.tanh(ag)
            return (sigmoid(ao) * np.tanh(c2), c2)
        if name == "lstm-cifg":
            af, ag, ao = a
            f = sigmoid(af)
            c2 = f * c + (1 - f) * np.tanh(ag)
            return (sigmoid(ao) * np.tanh(c2), c2)
        if name == "lstm-nig":
            af, ag, ao = a
            c2 = sigmoid(af) * c + np.tanh(ag)
            return (sigmoid(ao) * np.tanh(c2), c2)
        if name == "lstm-nog":
            ai, af, ag = a
            c2 = sigmoid(af) * c + sigmoid(ai) * np.tanh(ag)
            return (np.tanh(c2), c2)
        ai, af, ag, ao = a
        i, f, o = sigmoid(ai), sigmoid(af), sigmoid(ao)
        g = ag if name == "lstm-niaf" else np.tanh(ag)
        c2 = f * c + i * g
        if name == "lstm-noaf":
            return (o * c2, c2)
        return (o * np.tanh(c2), c2)
    if name == "gru":
        xr, xz, xn = _split(ax, 3)
        hr, hz, hn = _split(ah, 3)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        return ((1 - z) * n + z * h,)
    if name == "gru-cho":
        H = h.shape[1]
        xr, xz, xn = _split(ax, 3)
        hr, hz = _split(h @ Wh[: 2 * H].T + bh[: 2 * H], 2)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = np.tanh(xn + (r * h) @ Wh[2 * H:].T + bh[2 * H:])
        return ((1 - z) * n + z * h,)
    if name == "mgu":
        H = h.shape[1]
        xf, xn = _split(ax, 2)
        f = sigmoid(xf + h @ Wh[:H].T + bh[:H])
        n = np.tanh(xn + (f * h) @ Wh[H:].T + bh[H:])
        return ((1 - f) * h + f * n,)
    raise KeyError(name)


def forward(name, params, x, state0):
    """All states: returns an array (S, T + 1, B, H); x is (T, B, D)."""
    state = tuple(np.asarray(s, dtype=np.float64) for s in state0)
    out = [state]
    for t in range(x.shape[0]):
        state = step(name, params, x[t], state)
        out.append(state)
    return np.stack([np.stack([s[k] for s in out]) for k in range(len(state0))])


def central_differences(fun, arr, eps=1e-6):
    """d fun() / d arr by central differences, perturbing each entry of `arr` in place."""
    grad = np.empty_like(arr)
    for i in np.ndindex(arr.shape):  # index in place: works for views that are not contiguous
        old = arr[i]
        arr[i] = old + eps
        up = fun()
        arr[i] = old - eps
        down = fun()
        arr[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad
