"""
A Lyapunov spectrum
===================

The Lyapunov exponents of the state map ``s_t = F(s_{t-1}, x_t)`` are the average rates,
per step, at which the products of one-step Jacobians stretch or shrink the directions of
the state space.  Negative exponents everywhere mean that every gradient vanishes
exponentially with the lag, at least as fast as the largest exponent says; a positive one
means that some gradients explode.  :func:`gradflow.lyapunov_spectrum` estimates all of
them along a trajectory by repeated QR factorisations (Benettin's method).
"""

import matplotlib.pyplot as plt
import numpy as np

import gradflow
from gradflow import plot

T, B, D, H = 2000, 2, 4, 32
x = np.random.default_rng(0).standard_normal((T, B, D))
cells = {
    "rnn": gradflow.Cell("rnn", D, H, seed=0),
    "rnn, orthogonal x 3": gradflow.Cell("rnn", D, H, seed=0, init="orthogonal",
                                         spectral_radius=3.0),
    "lstm": gradflow.Cell("lstm", D, H, seed=0),
    "lstm, forget bias 3": gradflow.Cell("lstm", D, H, seed=0, forget_bias=3.0),
    "gru": gradflow.Cell("gru", D, H, seed=0),
}
spectra = {label: gradflow.lyapunov_spectrum(cell, x, transient=100)
           for label, cell in cells.items()}
print(spectra["lstm"])

# %%
# The spectra
# -----------
# One exponent per state dimension (32 for the RNN and the GRU, 64 for the LSTM's h and
# c), in log10 per step, against its index as a fraction of the state size.

fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
for (label, spectrum), color in zip(spectra.items(), ["C3", "C1", "C0", "C9", "C2"]):
    plot.lyapunov(spectrum, ax=ax, label=label, color=color)
ax.legend(frameon=False)

for label, spectrum in spectra.items():
    top = np.median(spectrum.log10_per_step[:, 0])
    print(f"{label:<20} largest exponent {top:7.3f} decades per step")

# %%
# Against the Pascanu bound
# -------------------------
# For a vanilla RNN, ``||dh_t / dh_{t-1}|| <= gamma ||W_hh||_2`` with ``gamma = 1`` for
# tanh (Pascanu, Mikolov & Bengio 2013): no exponent can exceed ``log(||W_hh||_2)``.

for label in ("rnn", "rnn, orthogonal x 3"):
    bound = gradflow.pascanu_bound(cells[label])
    largest = spectra[label].exponents.max()
    print(f"{label:<20} largest exponent {largest:7.3f} <= bound {bound.lyapunov_bound:7.3f} "
          "(natural log per step)")

# %%
# Convergence
# -----------
# ``running`` holds the estimates after every step past the transient; ``drift`` the
# change over the last window of steps.  The largest exponent settles within a few
# hundred steps.

fig, ax = plt.subplots(figsize=(6.4, 3.2), layout="constrained")
for (label, spectrum), color in zip(spectra.items(), ["C3", "C1", "C0", "C9", "C2"]):
    steps = np.arange(1, spectrum.steps + 1)
    ax.plot(steps, spectrum.running[:, 0, 0] / np.log(10), color=color, label=label)
ax.set_xscale("log")
ax.set_xlabel("steps averaged (past the transient)")
ax.set_ylabel("largest exponent (log10 per step)")
ax.legend(frameon=False, fontsize=8)
