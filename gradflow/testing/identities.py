"""The identities of the gradient-flow literature, each with the conditions it needs.

Each :class:`Identity` compares what gradflow computes (one-step Jacobians from the
backward pass and, when available, from :func:`gradflow.state_jacobians`; gradients from
:meth:`~gradflow.Cell.backward`) with an independent reference: a closed form evaluated in NumPy
from the parameters and the states, central finite differences, or PyTorch autograd.
The closed forms (in :mod:`gradflow.testing._references`) are *references to check
against*, written from the papers; no computation of gradflow uses them.

>>> from gradflow.testing import IDENTITIES
>>> print(IDENTITIES["cell-path"].conditions)
any weights and inputs; LSTMs with a forget gate f and no peepholes
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import _validate as check
from ..errors import InvalidArgumentError
from ._numeric import draw_case
from ._references import (
    adjoint, cell_path, cifg, finite_differences, gru_leak, gru_update, lstm_blocks, mgu_leak,
    nfg_cec, peephole_edge, Point, rnn_bound, rnn_step, pytorch, total_cell_path,
)
from ._result import INCONCLUSIVE, CheckReport, CheckResult

__all__ = ["Identity", "IDENTITIES", "check_identity", "check_identities", "applicable"]

_LSTM_F = ("lstm", "lstm-cifg", "lstm-nig", "lstm-nog", "lstm-niaf", "lstm-noaf")


@dataclass(frozen=True)
class Identity:
    """One identity: what it states, when it holds, and which cells it is about.

    Attributes
    ----------
    key : str
        Short name (``"cell-path"``).
    statement : str
        The identity.
    conditions : str
        When it holds.
    cells : tuple of str
        Catalogue cells it applies to (empty: every cell).
    reference : str
        The independent reference it is checked against.
    zero_recurrence : bool
        The identity needs ``weight_hh = 0`` (:meth:`prepare` sets it).
    """

    key: str
    statement: str
    conditions: str
    cells: tuple
    reference: str
    run: Callable
    zero_recurrence: bool = False

    def applies_to(self, name: str) -> bool:
        return not self.cells or name in self.cells

    def prepare(self, cell):
        """A copy of `cell` that meets the identity's conditions (``weight_hh = 0`` ...)."""
        new = cell.copy()
        if self.zero_recurrence:
            new.params["weight_hh"][:] = 0.0
        return new



IDENTITIES: dict[str, Identity] = {i.key: i for i in [
    Identity("rnn-step", "vanilla RNN: d h_t / d h_{t-1} = diag(phi'(a_t)) W_hh",
             "any weights and inputs (ReLU: phi'(0) = 0)", ("rnn", "rnn-relu", "rnn-linear"),
             "closed form in NumPy from the parameters", rnn_step),
    Identity("rnn-bound", "vanilla RNN: ||d h_T / d h_k||_2 <= (gamma ||W_hh||_2)^(T-k)",
             "gamma = sup|phi'| = 1 for tanh, ReLU, linear; any weights and inputs",
             ("rnn", "rnn-relu", "rnn-linear"), "spectral norm of W_hh (NumPy)", rnn_bound),
    Identity("lstm-blocks", "LSTM one step: dc/dc = diag(f); dc/dh = diag(c_prev f(1-f)) U_f + "
             "diag(g i(1-i)) U_i + diag(i(1-g^2)) U_g; dh/dc = diag(o(1-tanh^2 c)) diag(f); "
             "dh/dh = diag(tanh c o(1-o)) U_o + diag(o(1-tanh^2 c)) dc/dh",
             "any weights and inputs; the LSTM without peepholes", ("lstm",),
             "closed forms in NumPy from the parameters", lstm_blocks),
    Identity("cell-path", "cell-state path: prod_t d c_t/d c_{t-1} (direct edges) = diag(prod_t f_t)",
             "any weights and inputs; LSTMs with a forget gate f and no peepholes", _LSTM_F,
             "product of f = sigmoid(a_f) computed in NumPy (log space); SymPy for the edge",
             cell_path),
    Identity("total-cell-path", "total d c_T / d c_k = diag(prod_{t>k} f_t)",
             "W_hh = 0 (no path through h); LSTMs with a forget gate and no peepholes", _LSTM_F,
             "product of f in NumPy (log space)", total_cell_path, zero_recurrence=True),
    Identity("peephole-edge", "peephole LSTM: dc/dc_prev = diag(f + c_prev p_f f(1-f) + g p_i i(1-i)); "
             "dh/dc_prev = diag(tanh(c) o(1-o) p_o + o(1-tanh^2 c)) dc/dc_prev",
             "any weights and inputs", ("lstm-peephole",), "closed form in NumPy", peephole_edge),
    Identity("nfg-cec", "no forget gate: the direct edge d c_t / d c_{t-1} = I (the CEC)",
             "any weights and inputs", ("lstm-nfg",), "the identity matrix, exactly", nfg_cec),
    Identity("cifg-coupling", "CIFG: i = 1 - f, so c_t = f c_{t-1} + (1 - f) g and dc/dc = diag(f)",
             "any weights and inputs", ("lstm-cifg",), "NumPy from the parameters", cifg),
    Identity("gru-update", "GRU: h_t = (1 - z) n + z h_{t-1}",
             "any weights and inputs; PyTorch (reset after the matmul) and Cho conventions",
             ("gru", "gru-cho"), "NumPy from the parameters", gru_update),
    Identity("gru-leak", "GRU leak path: the direct edge of d h_t/d h_{t-1} is diag(z); "
             "with W_hh = 0 it is the whole one-step Jacobian",
             "SymPy part: any weights; numeric part: W_hh = 0", ("gru", "gru-cho"),
             "SymPy simplification; z in NumPy", gru_leak, zero_recurrence=True),
    Identity("mgu-leak", "minimal gated unit: h_t = (1 - f) h_{t-1} + f n, so the direct edge of "
             "d h_t/d h_{t-1} is diag(1 - f); with W_hh = 0 it is the whole one-step Jacobian",
             "SymPy part: any weights; numeric part: W_hh = 0", ("mgu",),
             "SymPy simplification; f in NumPy", mgu_leak, zero_recurrence=True),
    Identity("finite-differences", "backward pass = central finite differences",
             "the cell is differentiable at the point; float64 differences", (),
             "central differences of the forward pass", finite_differences),
    Identity("adjoint", "JVP and VJP are adjoint: <J v, w> = <v, J^T w>",
             "any weights, inputs, directions v and cotangents w", (),
             "Cell.backward (VJP) against tangent propagation (JVP)", adjoint),
    Identity("pytorch", "float64 forward and gradients = PyTorch autograd",
             "float64; the cells PyTorch has (rnn, rnn-relu, lstm, gru)",
             ("rnn", "rnn-relu", "lstm", "gru"), "torch.nn.RNN/LSTM/GRU autograd", pytorch),
]}


def applicable(cell_name) -> list[str]:
    """Keys of the identities that apply to catalogue cell `cell_name`."""
    from ..cells import get

    name = get(cell_name).name
    return [k for k, i in IDENTITIES.items() if i.applies_to(name)]


def _identity(key) -> Identity:
    if key not in IDENTITIES:
        raise InvalidArgumentError(f"`identity` {key!r} is unknown; expected one of {list(IDENTITIES)}")
    return IDENTITIES[key]


def check_identity(key: str, cell, x, state0=None, *, method: str = "both",
                   raise_on_failure: bool = True, result: CheckResult | None = None) -> CheckResult:
    """Check one identity at one point (a cell, an input and an initial state).

    Parameters
    ----------
    key : str
        A key of :data:`IDENTITIES`.
    cell : Cell
        Must meet the identity's conditions (use ``IDENTITIES[key].prepare(cell)``).
    x : ndarray, shape (T, B, D)
    state0 : array, tuple or dict, optional
    method : {"both", "vjp", "flow"}
        Where the one-step Jacobians come from: the backward pass's rows, and/or
        :func:`gradflow.state_jacobians` (skipped when not available).
    result : CheckResult, optional
        Accumulate into this result (several examples of one property).

    Returns
    -------
    CheckResult

    Raises
    ------
    InvalidArgumentError
        If the identity does not apply to the cell or its conditions are not met.
    CheckFailure
        If the identity does not hold.
    """
    ident = _identity(key)
    if method not in ("both", "vjp", "flow"):
        raise InvalidArgumentError(f"`method` must be 'both', 'vjp' or 'flow'; got {method!r}")
    name = cell.spec.name
    if not ident.applies_to(name):
        raise InvalidArgumentError(
            f"identity {key!r} is about the cells {list(ident.cells)}; got {name!r}")
    if ident.zero_recurrence and np.any(cell.params["weight_hh"] != 0):
        raise InvalidArgumentError(
            f"identity {key!r} holds only when W_hh = 0 ({ident.conditions}); pass "
            f"IDENTITIES[{key!r}].prepare(cell)")
    res = result if result is not None else CheckResult(
        key, ident.statement, ident.conditions)
    res.examples += 1
    ident.run(res, Point(cell, x, state0, method))
    return res.raise_if_failed() if raise_on_failure else res


def check_identities(cell_name, *, identities=None, examples: int = 10, seed: int = 0,
                     method: str = "both", max_length: int = 6, max_hidden: int = 4,
                     dtype=np.float64, raise_on_failure: bool = True) -> CheckReport:
    """Check every identity that applies to a catalogue cell on random examples.

    Each example draws sizes, weights (PyTorch's initialisation times a scale in
    [0.5, 2]), a forget-gate bias in [-1, 3], an input and an initial state from
    ``numpy.random.default_rng(seed)``; identities that need ``W_hh = 0`` get it.

    Parameters
    ----------
    cell_name : str or CellSpec
    identities : sequence of str, optional
        Keys of :data:`IDENTITIES`; default every one that applies.
    examples : int
        Examples per identity (the finite-difference and PyTorch checks run on
        ``max(1, examples // 4)`` of them).
    seed : int
    method : {"both", "vjp", "flow"}
    max_length, max_hidden : int
        Largest sequence length and hidden size drawn.
    dtype : numpy.float64 or numpy.float32

    Returns
    -------
    CheckReport
        One :class:`CheckResult` per identity.

    Examples
    --------
    >>> from gradflow.testing import check_identities
    >>> report = check_identities("gru", examples=2)
    >>> [r.name for r in report]
    ['gru-update', 'gru-leak', 'finite-differences', 'adjoint', 'pytorch']
    """
    from ..cells import get

    spec = get(cell_name)
    examples = check.positive_int("examples", examples)
    max_length = check.positive_int("max_length", max_length)
    max_hidden = check.positive_int("max_hidden", max_hidden)
    dtype = check.float_dtype("dtype", dtype)
    keys = applicable(spec) if identities is None else list(identities)
    for k in keys:
        ident = _identity(k)
        if not ident.applies_to(spec.name):
            raise InvalidArgumentError(
                f"identity {k!r} does not apply to {spec.name!r}; applicable: {applicable(spec)}")
    report = CheckReport(subject=f"identities of {spec.name!r}")
    rng = np.random.default_rng(seed)
    for k in keys:
        ident = IDENTITIES[k]
        res = CheckResult(k, ident.statement, ident.conditions)
        n = max(1, examples // 4) if k in ("finite-differences", "pytorch") else examples
        case_dtype = np.float64 if k == "pytorch" else dtype
        for e in range(n):
            cell, x, s0 = draw_case(spec, rng, dtype=case_dtype, max_length=max_length,
                                    max_hidden=max_hidden, zero_recurrence=ident.zero_recurrence)
            before = res.ratio
            check_identity(k, cell, x, s0, method=method, raise_on_failure=False, result=res)
            if res.ratio > before:
                res.where = {"example": e, **res.where}
            if res.verdict == INCONCLUSIVE:
                break
        report.append(res)
    return report.raise_if_failed() if raise_on_failure else report
