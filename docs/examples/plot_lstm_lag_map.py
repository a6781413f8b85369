"""
Lag map of an LSTM
==================

How far back does the gradient of an LSTM reach?  :func:`gradflow.gradient_flow` runs the
cell over a batch of sequences and measures ``log10 ||dh_T / dh_{T-k}||`` for every lag
``k`` at once: one backward sweep through the one-step Jacobians, renormalised at every
step, so that a norm of 1e-40 is reported as -40 instead of underflowing to zero.

We compare an LSTM at PyTorch's initialisation with the same LSTM whose forget-gate bias
starts at 1 and at 3, and with a tanh RNN.
"""

import matplotlib.pyplot as plt
import numpy as np

import gradflow
from gradflow import plot

T, B, D, H = 100, 16, 4, 32
x = np.random.default_rng(0).standard_normal((T, B, D))  # time-major (T, B, D)

# %%
# One lag map per cell
# --------------------
# ``forget_bias`` sets the forget gate's rows of ``bias_ih`` (and zeroes those of
# ``bias_hh``); everything else is PyTorch's uniform initialisation from the same seed.

cells = {
    "rnn": gradflow.Cell("rnn", D, H, seed=0),
    "lstm": gradflow.Cell("lstm", D, H, seed=0),
    "lstm, forget bias 1": gradflow.Cell("lstm", D, H, seed=0, forget_bias=1.0),
    "lstm, forget bias 3": gradflow.Cell("lstm", D, H, seed=0, forget_bias=3.0),
}
flows = {label: gradflow.gradient_flow(cell, x) for label, cell in cells.items()}

flow = flows["lstm"]
print(flow)
print("lags", flow.lags.shape, "log10_h", flow.log10_h.shape)  # (T + 1,) and (T + 1, B)

# %%
# The median over the batch, with the 10 %-90 % band, against the lag.  The tanh RNN
# and the LSTM at PyTorch's initialisation both lose a fixed number of decades per step;
# a forget-gate bias of 3 keeps the gate near 1 and the gradient near its lag-0 size.

fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
colors = ["C3", "C0", "C9", "C2"]
for (label, flow), color in zip(flows.items(), colors):
    plot.lag_map(flow, ax=ax, label=label, color=color)
ax.legend(frameon=False)
ax.set_title(f"H = {H}, T = {T}, {B} sequences of standard normal inputs")

# %%
# Decay rates and memory horizons
# -------------------------------
# The slope of the median curve is the decay per step in decades;
# :func:`gradflow.memory_horizon` gives, for each sequence, the first lag at which the
# norm falls below a threshold times its lag-0 value (``inf`` when no measured lag does).

for label, flow in flows.items():
    median = np.median(flow.log10_h, axis=1)
    per_step = (median[T] - median[10]) / (T - 10)
    horizon = gradflow.memory_horizon(flow, threshold=1e-3)
    print(f"{label:<20}  log10 norm at lag {T}: {median[T]:8.2f}   "
          f"decades per step: {per_step:6.3f}   "
          f"median horizon (1e-3): {np.median(horizon)}")

# %%
# Nothing here underflows: a norm that is exactly zero in floating point would be
# ``-inf`` (a weight matrix of zeros, or gates saturated so far that their derivative
# rounds to 0), never a tiny norm rounded away.  The rows of ``log10_state`` hold the
# same measure for the whole state (h and c stacked), where the LSTM's cell-state path
# shows: the norm of ``ds_T / ds_{T-k}`` stays larger than that of the h-block.

lstm = flows["lstm, forget bias 3"]
print("h-block at lag 100:", np.median(lstm.log10_h[T]).round(2),
      " whole state:", np.median(lstm.log10_state[T]).round(2))
