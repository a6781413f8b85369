"""Training cells on the long-lag tasks, on gradflow's own kernels (no deep-learning
framework).

A :class:`Model` is a :class:`~gradflow.Cell` with a linear readout (or logistic output
units); :class:`BlockNet` is the 1997 network of memory cell blocks.  :func:`train` runs
minibatch BPTT (or the 1997 truncated gradient) with :class:`Adam` or :class:`SGD`,
clipping by global norm, early stopping on the task's own criterion (the 1997 rule: the
last ``window`` training sequences all correct) and a test on fresh sequences.  The history keeps loss, accuracy,
the gradient norm of every update and, at a few points during training, the gradient
norm ``‖∂L/∂h_{T-lag}‖`` against the lag.

>>> import gradflow
>>> from gradflow import tasks, train
>>> task = tasks.get("adding-uniform", length=10)
>>> cell = gradflow.Cell("gru", task.input_size, 8, seed=0)
>>> result = train.train(cell, task, max_sequences=640, test_size=64, verbose=False)
>>> result.sequences, result.history["loss"].shape
(640, (20,))
"""

from __future__ import annotations

from . import tasks as tasks
from .blocks import BlockNet as BlockNet
from .loop import Model as Model
from .loop import TrainResult as TrainResult
from .loop import evaluate as evaluate
from .loop import initial_biases as initial_biases
from .loop import recipe as recipe
from .loop import train as train
from .losses import Readout as Readout
from .losses import loss_fn as loss_fn
from .losses import mse_loss as mse_loss
from .losses import sse_loss as sse_loss
from .losses import xent_loss as xent_loss
from .optim import SGD as SGD
from .optim import Adam as Adam
from .optim import clip_by_global_norm as clip_by_global_norm
from .optim import global_norm as global_norm
from .probe import lag_curve as lag_curve
from .probe import state_gradient_log10_norms as state_gradient_log10_norms

__all__ = ["recipe", "Model", "BlockNet", "TrainResult", "train", "evaluate", "initial_biases", "SGD",
           "Adam", "Readout", "clip_by_global_norm", "global_norm", "loss_fn", "mse_loss", "xent_loss",
           "sse_loss",
           "lag_curve", "state_gradient_log10_norms"]
