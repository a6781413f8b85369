"""``gradflow analyze`` and :func:`gradflow.analyze`: the gradient flow of a user's own
trained network — stacked, bidirectional, from PyTorch or Keras — on their data, as
objects and as a report.  See :mod:`gradflow.analyzer.core`."""

from .core import LOSSES, Analysis, WhatIf, analyze, horizons_of, shift_forget_bias
from .data import read_array
from .models import MODEL_SUFFIXES, LoadedModel, load_model

__all__ = ["analyze", "Analysis", "WhatIf", "load_model", "LoadedModel", "read_array",
           "horizons_of", "shift_forget_bias", "LOSSES", "MODEL_SUFFIXES"]
