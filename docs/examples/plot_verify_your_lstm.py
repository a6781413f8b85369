"""
Verifying your own LSTM
=======================

:func:`gradflow.testing.check_implementation` compares an RNN you wrote with gradflow's
cell of the same kind: forward pass, gradients, how the two biases enter, that the output
stays bounded, and, when the forward pass disagrees, a diagnosis of the usual bugs (gate
blocks read in another order, a bias counted twice or missing, a neighbouring cell).

Your implementation can be a PyTorch module or, as here, a NumPy step function
``step(x_t, state, params) -> state``: ``x_t`` is ``(B, D)``, ``state`` the tuple
``(h, c)`` of ``(B, H)`` arrays, and ``params`` a dict with PyTorch's names, shapes and
gate order (i, f, g, o).  Its gradients are taken by central finite differences.
"""

import numpy as np

from gradflow.testing import check_implementation


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def lstm_step(x_t, state, params):
    """One step of an LSTM, as ``torch.nn.LSTM`` computes it."""
    h, c = state
    a = (x_t @ params["weight_ih"].T + params["bias_ih"]
         + h @ params["weight_hh"].T + params["bias_hh"])
    i, f, g, o = np.split(a, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return h, c


# %%
# The check draws random weights, inputs and initial states; it raises
# :class:`~gradflow.testing.CheckFailure` (an ``AssertionError``) when a property fails,
# so it can sit in a test as it is.  This one passes:

report = check_implementation(lstm_step, kind="lstm", examples=5)
print(report.table())

# %%
# A bug
# -----
# The same step with the gate blocks split in the order i, f, o, g (a common slip when
# porting weights between libraries).  With ``raise_on_failure=False`` the report is
# returned instead of raised, and says what broke and why.


def lstm_step_wrong_order(x_t, state, params):
    h, c = state
    a = (x_t @ params["weight_ih"].T + params["bias_ih"]
         + h @ params["weight_hh"].T + params["bias_hh"])
    i, f, o, g = np.split(a, 4, axis=1)  # the bug: PyTorch's order is i, f, g, o
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h = sigmoid(o) * np.tanh(c)
    return h, c


report = check_implementation(lstm_step_wrong_order, kind="lstm", examples=5,
                              raise_on_failure=False)
print(report.table())
print()
print("passed:", report.passed)
print("failed:", [result.name for result in report.failed])

# %%
# Each row is a :class:`~gradflow.testing.CheckResult`, with the worst element found:
# both values, where it sits and the tolerance.

print(report["forward"])
print()
print(report["gate order"].note)

# %%
# The same check runs from the command line, on a function or ``nn.Module`` in a file
# or module of yours, and exits with status 1 when a property fails:
#
# .. code-block:: bash
#
#    gradflow verify my_lstm.py:lstm_step --kind lstm
