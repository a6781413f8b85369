"""``gradflow analyze`` and :func:`gradflow.analyze`: the gradient flow of a user's own
trained network — stacked, bidirectional, from PyTorch or Keras — on their data, as
objects and as a report.

What is measured (computed in log space, so that nothing underflows):

* per layer and direction, the lag map ``log10 || d h^L_T / d h^l_{T-k} ||`` and the lag
  at which it falls below `threshold` of its lag-0 value (the layer's gradient horizon);
* the gradient of a loss on every hidden state, over layers x time and units x time: the
  loss of targets through the model's linear readout, a given ``dL/d(output)``, or the
  probe ``s = sum_j h^L_T[j]``;
* the forget-like gate's distribution, its saturated shares, per-unit memory horizons of
  the direct path, and the direct path's share of the layer's Jacobian;
* the Lyapunov spectrum of the stacked state;
* optionally, the same with every forget-like gate's bias shifted (a what-if).
"""

from .core import LOSSES, Analysis, WhatIf, analyze, horizons_of, shift_forget_bias
from .data import read_array
from .models import MODEL_SUFFIXES, LoadedModel, load_model

__all__ = ["analyze", "Analysis", "WhatIf", "load_model", "LoadedModel", "read_array",
           "horizons_of", "shift_forget_bias", "LOSSES", "MODEL_SUFFIXES"]
