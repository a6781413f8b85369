"""
A user-defined cell
===================

A new cell is a few lines of equations.  :func:`gradflow.define_cell` parses them (a
whitelist of names, numbers, arithmetic and the functions ``sigmoid, tanh, relu, step,
exp, log``; nothing is evaluated as Python), SymPy derives every partial derivative and
the one-step Jacobian, and the same expressions are compiled into the cell's kernels.

Here: a tanh RNN with a leak rate per unit, ``r = sigmoid(leak)``, a learnable vector of
length H beside the usual weights.
"""

import matplotlib.pyplot as plt
import numpy as np

import gradflow
from gradflow import plot

leaky = gradflow.define_cell(
    "leaky-rnn",
    gates="a",
    params="leak",
    equations="""
        r = sigmoid(leak)
        h = (1 - r)*h_prev + r*tanh(ax_a + ah_a)
    """,
    description="tanh RNN with a leak rate per unit",
    latex_names={"leak": r"\ell"},
)
print(leaky)

# %%
# What SymPy derived
# ------------------
# ``ax_a`` and ``ah_a`` are the input and recurrent pre-activations of gate ``a``
# (``x_t W_ia^T + b_ia`` and ``h_{t-1} W_ha^T + b_ha``).  The one-step Jacobian is a sum
# of ``diag(...)`` factors and weight matrices; its direct edge is ``diag(1 - r)``.

jacobian = leaky.jacobian()
for (of, wrt), block in jacobian.items():
    print(f"d{of}_t/d{wrt}_(t-1) =", block)
print("direct edge:", jacobian[("h", "h")].direct)

# %%
# The equations in LaTeX (what :meth:`~gradflow.symbolic.CellSpec.latex` returns):
print(leaky.latex())

# %%
# For a small number of units the Jacobian is also an explicit SymPy matrix, in terms of
# the entries of the weights, the input and the previous state (one unit here):
print(leaky.jacobian(hidden_size=1))

# %%
# The cell at work
# ----------------
# ``gradflow.Cell("leaky-rnn", ...)`` builds it like a catalogue cell (its kernels are
# compiled on first use and cached).  Its parameters are PyTorch's four plus ``leak``,
# shape ``(H,)``.  A leak of -3 (``r`` = 0.047) makes a slow integrator; 0 gives
# ``r = 1/2``; the plain tanh RNN is ``r = 1``.

T, B, D, H = 100, 16, 4, 32
x = np.random.default_rng(0).standard_normal((T, B, D))
flows = {"rnn": gradflow.gradient_flow(gradflow.Cell("rnn", D, H, seed=0), x)}
for leak in (0.0, -3.0):
    cell = gradflow.Cell("leaky-rnn", D, H, seed=0)
    cell.params["leak"][:] = leak
    flows[f"leaky-rnn, leak {leak:g}"] = gradflow.gradient_flow(cell, x)
print({name: shape for name, shape in cell.param_shapes().items()})

fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
for (label, flow), color in zip(flows.items(), ["C3", "C1", "C0"]):
    plot.lag_map(flow, ax=ax, label=label, color=color)
ax.legend(frameon=False)

# %%
# Because the cell has a direct self edge, the analyses that need one apply too: the
# direct path ``prod (1 - r)`` of :func:`gradflow.path_decomposition` is exactly
# ``k log10(1 - sigmoid(leak))`` at lag k.

paths = gradflow.path_decomposition(cell, x, total=False)
expected = 10 * np.log10(1 - 1 / (1 + np.exp(3.0)))
print(f"log10 path at lag 10: {paths.log10_path[10, 0]:.6f} (closed form {expected:.6f})")
