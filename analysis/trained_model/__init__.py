"""A character-level language model trained on Python's own help texts: the model before
and after training (``torch.save`` state dicts, read by gradflow without PyTorch), the
evaluation sequences, and the script that made them.

Files (installed with the package):

* ``lstm_initial.pt``, ``lstm_trained.pt``: a 2-layer LSTM (``lstm.*``, batch-first,
  one-hot inputs) and its linear readout (``head.*``), at initialisation and trained;
* ``eval.npz``: ``codes`` (N, T + 1) the held-out sequences as character codes, ``x``
  (N, T, VOCAB) their one-hot inputs and ``targets`` (N, T) the next characters;
* ``training.json``: the settings, the losses during training, the time it took, the
  versions, and the SHA-256 of the texts.

``python -m gradflow.studies.trained_model.train`` makes them again (PyTorch, a few
minutes on one CPU core); :mod:`.corpus` is the data preparation, without PyTorch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["FILES", "path"]

#: the committed files, by role
FILES = {"initial": "lstm_initial.pt", "trained": "lstm_trained.pt", "data": "eval.npz",
         "log": "training.json"}


def path(role: str) -> Path:
    """The installed file of `role` (a key of :data:`FILES`)."""
    if role not in FILES:
        raise KeyError(f"{role!r} is not one of {sorted(FILES)}")
    return Path(str(resources.files(__name__) / FILES[role]))
