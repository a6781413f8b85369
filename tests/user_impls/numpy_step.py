"""Step functions in NumPy: ``step(x_t, state, params) -> state``.

``x_t`` is ``(B, D)``, ``state`` a tuple ``(h,)`` or ``(h, c)`` of ``(B, H)`` arrays and
``params`` a dict with PyTorch's names, shapes and gate order.
"""

from __future__ import annotations

import numpy as np


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def lstm_step(x, state, p):
    h, c = state
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    ai, af, ag, ao = np.split(a, 4, axis=1)
    c = _sigmoid(af) * c + _sigmoid(ai) * np.tanh(ag)
    return _sigmoid(ao) * np.tanh(c), c


def lstm_step_no_output_tanh(x, state, p):
    h, c = state
    a = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    ai, af, ag, ao = np.split(a, 4, axis=1)
    c = _sigmoid(af) * c + _sigmoid(ai) * np.tanh(ag)
    return _sigmoid(ao) * c, c


def gru_step(x, state, p):
    (h,) = state
    xr, xz, xn = np.split(x @ p["weight_ih"].T + p["bias_ih"], 3, axis=1)
    hr, hz, hn = np.split(h @ p["weight_hh"].T + p["bias_hh"], 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return ((1 - z) * n + z * h,)


def rnn_step(x, state, p):
    (h,) = state
    return (np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]),)


def make_lstm_step():
    """A zero-argument factory, for ``gradflow verify module:function``."""
    return lstm_step
