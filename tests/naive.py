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
    if name in ("lstm1997", "lstm1997-nog"):
        return _step_1997(name, ax + ah, state[1])
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


# ---------------------------------------------------------------- Hochreiter & Schmidhuber 1997
# Section 4 and appendix A.1: f the logistic function, h(x) = 2 f(x) - 1, g(x) = 4 f(x) - 2;
# s_c(t) = s_c(t-1) + y_in(t) g(net_c(t)), y_c(t) = y_out(t) h(s_c(t)).  Exp. 2a/2b use no
# output gate, g = f and h the identity.  Gate order of the rows: in, cell input, out.

def _f(x):
    return 1.0 / (1.0 + np.exp(-x))


def _h97(x):
    return 2.0 / (1.0 + np.exp(-x)) - 1.0


def _g97(x):
    return 4.0 / (1.0 + np.exp(-x)) - 2.0


def _step_1997(name, net, s_prev):
    if name == "lstm1997":
        net_in, net_c, net_out = _split(net, 3)
        s = s_prev + _f(net_in) * _g97(net_c)
        return (_f(net_out) * _h97(s), s)
    net_in, net_c = _split(net, 2)
    s = s_prev + _f(net_in) * _f(net_c)
    return (s, s)


def truncated_gradient_1997(params, x, dh, ds_final):
    """The 1997 truncated gradient of ``L = Σ_t <dh_t, y_c(t)> + <ds_final, s(T)>`` for one
    sequence, computed forward in time as the paper's appendix A.1 does it (RTRL-like:
    only ∂s_c(t)/∂w for the weights into the input gate and the cell input are carried,
    eqs. 25 and 27; output-gate weights get f'_out h(s) times the error at the cell
    output, eq. 22).  Cells ``lstm1997``, one sequence: x (T, D), dh (T, H), ds_final (H,).

    Returns the gradients of weight_ih, weight_hh, bias_ih, bias_hh (the two biases get the
    same gradient: both are bias weights of the same net input).
    """
    Wi, Wh, bi, bh = (np.asarray(params[k], dtype=np.float64)
                      for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    H = Wh.shape[1]
    T, D = x.shape
    y_prev = np.zeros(H)
    s = np.zeros(H)
    # sources m of every weight w_lm: the input x(t), the previous outputs y_c(t-1), the bias
    n_src = D + H + 1
    ds_dw_in = np.zeros((H, n_src))     # ∂s_j(t)/∂w_{in_j, m}
    ds_dw_c = np.zeros((H, n_src))      # ∂s_j(t)/∂w_{c_j, m}
    grad = np.zeros((3 * H, n_src))     # rows: in, cell input, out (the order of the params)
    for t in range(T):
        y_src = np.concatenate([x[t], y_prev, [1.0]])
        net = Wi @ x[t] + bi + Wh @ y_prev + bh
        net_in, net_c, net_out = net[:H], net[H:2 * H], net[2 * H:]
        y_in, y_out = _f(net_in), _f(net_out)
        g = _g97(net_c)
        s = s + y_in * g
        # eq. 25 and 27: the derivatives of the internal state, carried forward
        ds_dw_in = ds_dw_in + (g * y_in * (1 - y_in))[:, None] * y_src[None, :]
        ds_dw_c = ds_dw_c + (y_in * 4 * _f(net_c) * (1 - _f(net_c)))[:, None] * y_src[None, :]
        hs = _h97(s)
        e_y = dh[t].copy()                               # error at the cell outputs y_c(t)
        e_s = y_out * 2 * _f(s) * (1 - _f(s)) * e_y      # eq. 23: into the internal state
        if t == T - 1:
            e_s = e_s + ds_final
        e_out = y_out * (1 - y_out) * hs * e_y           # eq. 21
        grad[:H] += e_s[:, None] * ds_dw_in              # eq. 26
        grad[H:2 * H] += e_s[:, None] * ds_dw_c          # eq. 28
        grad[2 * H:] += e_out[:, None] * y_src[None, :]  # eq. 22
        y_prev = y_out * hs
    return {"weight_ih": grad[:, :D], "weight_hh": grad[:, D:D + H],
            "bias_ih": grad[:, -1], "bias_hh": grad[:, -1].copy()}


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
