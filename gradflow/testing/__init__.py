"""Verification: checkers for gradflow's cells and for your own RNN implementations.

>>> import numpy as np, gradflow
>>> from gradflow.testing import check_grads
>>> cell = gradflow.Cell("lstm", input_size=2, hidden_size=3, seed=0)
>>> check_grads(cell, np.ones((3, 1, 2))).passed
True

Every checker returns a :class:`CheckResult` (or a :class:`CheckReport` of several) that
says what was compared, the worst error, where it occurred and the tolerance, and raises
:class:`CheckFailure` (an ``AssertionError``) on failure, with the analytic and the
reference values.

* :func:`check_grads` -- backward pass against central finite differences;
* :func:`check_symbolic` -- compiled kernels against SymPy ``.subs()`` of the equations;
* :func:`check_identities` -- the identities of the gradient-flow literature
  (see :data:`IDENTITIES` for each one's statement and conditions);
* :func:`check_implementation` -- a PyTorch module or a NumPy step function against
  gradflow's cell of the same kind, forward and backward, with diagnoses of common bugs.

Hypothesis strategies live in :mod:`gradflow.testing.strategies` (needs ``hypothesis``).
"""

from __future__ import annotations

from .._lazy import attach
from ._result import CheckFailure, CheckReport, CheckResult

__all__ = [
    "CheckResult", "CheckReport", "CheckFailure",
    "check_grads", "check_symbolic", "check_identities", "check_identity", "IDENTITIES",
    "check_implementation",
]

_NAMES = {
    "check_grads": "gradflow.testing.checks",
    "check_symbolic": "gradflow.testing.checks",
    "check_identities": "gradflow.testing.identities",
    "check_identity": "gradflow.testing.identities",
    "IDENTITIES": "gradflow.testing.identities",
    "check_implementation": "gradflow.testing.implementation",
}

__getattr__, __dir__ = attach(__name__, _NAMES, ("strategies",))
