"""
The forget-gate path
====================

An LSTM's cell state reaches back along ``c_t = f_t * c_{t-1} + i_t * g_t``: the product
of the direct edges ``dc_t / dc_{t-1}`` from step ``T - k`` to ``T`` is ``diag(prod f)``.
:func:`gradflow.path_decomposition` measures that direct path per unit (summed in log
space, so it never underflows) beside the total ``dc_T / dc_{T-k}``, which also runs
through the recurrent weights.

Here the same LSTM is started with forget-gate biases 0, 1, 3 and 5.
"""

import matplotlib.pyplot as plt
import numpy as np

import gradflow
from gradflow import plot

T, B, D, H = 100, 16, 4, 32
x = np.random.default_rng(0).standard_normal((T, B, D))
biases = [0.0, 1.0, 3.0, 5.0]
paths = {}
for b in biases:
    cell = gradflow.Cell("lstm", D, H, seed=0, forget_bias=b)
    paths[b] = gradflow.path_decomposition(cell, x)

print(paths[1.0])

# %%
# The direct path and the total
# -----------------------------
# Dashed: the direct path ``diag(prod f)`` (its largest unit: the spectral norm of a
# diagonal matrix); solid: the total ``dc_T / dc_{T-k}``.  With a small bias the gate
# sits near ``sigmoid(0) = 0.5`` and the path loses about 0.3 decades per step; at 3 and
# 5 it barely decays.  The total stays above the direct path: here the paths through
# ``h`` add to it rather than cancel it.

fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
for b, color in zip(biases, ["C3", "C1", "C2", "C0"]):
    plot.path_decomposition(paths[b], ax=ax, color=color, label=f"bias {b:g}:")
ax.legend(frameon=False, ncol=2)

# %%
# How much of the gradient the path carries
# -----------------------------------------
# ``log10_share`` is ``log10_path - log10_total``: 0 where the direct path is the whole
# gradient.

for b in biases:
    share = np.median(paths[b].log10_share, axis=1)
    print(f"forget bias {b:g}: log10 share at lags 10, 50, 100: "
          f"{share[10]:6.2f} {share[50]:6.2f} {share[100]:6.2f}")

# %%
# Memory horizons per unit
# ------------------------
# ``log10_path_units`` holds each unit's path, shape ``(K, B, H)``.  Given an array of
# log10 norms, :func:`gradflow.memory_horizon` finds the first lag where each column
# falls below 1 % of its lag-0 value; units whose path never does within 100 steps are
# counted apart.

fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
for b, color in zip(biases, ["C3", "C1", "C2", "C0"]):
    units = paths[b].log10_path_units[:, 0, :]        # first sequence: (K, H)
    horizon = gradflow.memory_horizon(units, threshold=1e-2)
    plot.horizons(horizon, ax=ax, color=color, label=f"bias {b:g}")
ax.legend(frameon=False)
