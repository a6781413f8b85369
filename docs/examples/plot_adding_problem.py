"""
The adding problem
==================

The adding problem of Hochreiter & Schmidhuber (1997, Exp. 4): each step holds a value
in [-1, 1] and a marker; at the end of the sequence the net must output
``0.5 + (X1 + X2) / 4`` for the two marked values, the first among the first ten steps.
A sequence counts as correct when the error is below 0.04, and training stops when the
last ``window`` training sequences were all correct and their mean loss is below 0.01
(the paper's rule).

:func:`gradflow.train.train` trains a cell with a linear readout on gradflow's own
kernels.  Sequences of length 20 (to 22) keep this example short; ``gradflow train
adding --cell lstm --length 100`` runs the paper's setting.
"""

import matplotlib.pyplot as plt

import gradflow
from gradflow import plot, train

task = train.tasks.get("adding", length=20)
print(task)
print("chance:", task.chance)

# %%
# The recipe
# ----------
# :func:`gradflow.train.recipe` gives the settings gradflow trains with by default: the
# same for every cell but the gate biases at initialisation (forget-gate bias 3 for LSTMs
# and GRUs, input-gate bias -3 for LSTMs).  For this short task we take batches of 8 at a
# learning rate of 0.02 and a window of 500 sequences, with a budget of 6,000.

results = {}
for name in ("lstm", "gru", "rnn"):
    settings = train.recipe(name)
    cell = gradflow.Cell(name, task.input_size, settings["hidden_size"], seed=0,
                         forget_bias=settings["forget_bias"])
    train.initial_biases(cell, input_bias=settings["input_bias"])
    results[name] = train.train(
        cell, task, batch_size=8, lr=0.02, clip=settings["clip"], window=500,
        max_sequences=6000, test_size=1000, probes=4, verbose=False)
    r = results[name]
    print(f"{name:<4} solved: {r.solved!s:<5} after {r.sequences:5,} sequences; "
          f"test: {r.test['wrong']:4} wrong of {r.test['total']:,}, loss {r.test['loss']:.2g}")

# %%
# Training curves
# ---------------
# The training loss (a running mean over 20 updates) against the sequences seen.  The
# tanh RNN stays at the loss of always answering the mean.

fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
for name, result in results.items():
    plot.training_curves(result, ax=ax, color=plot.cell_color(name), label=name)
ax.axhline(task.chance["loss"], color="0.5", lw=0.8, ls=":", label="always 0.5")
ax.legend(frameon=False)

# %%
# The gradient during training
# ----------------------------
# At a few points during training, ``history`` records the median of
# ``log10 ||dL_end / dh_{end - lag}||`` over a fixed batch of probe sequences: how much
# the loss at the last step reaches back to each earlier step.

lstm = results["lstm"].history
fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
for seen, curve in zip(lstm["probe_sequences"], lstm["probe_log10_grad"]):
    plot.lag_map(curve, lstm["probe_lags"], ax=ax, label=f"after {seen:,} sequences")
ax.set_ylabel(r"$\log_{10}\,\|\partial L_{end}/\partial h_{end-k}\|$")
ax.set_title("lstm")
ax.legend(frameon=False)
