"""Lag maps: the one-step state Jacobians of a sequence, the norms of their products at
every lag, and the norms of a loss gradient at every step.

The Jacobians are assembled from the generated ``partials_units`` and the cell's weights;
products are renormalised after every step by exact powers of two (see
``gradflow.flow._kernels``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from .._display import Displayed
from ..errors import InvalidArgumentError
from . import _steps as steps

__all__ = ["StateJacobians", "GradientFlow", "state_jacobians", "gradient_flow"]


@dataclass(eq=False, repr=False)
class StateJacobians(Displayed):
    """One-step Jacobians of the stacked state over a whole sequence.

    The state is the concatenation of the components in ``state`` order (``("h", "c")``
    for LSTMs), each of H units, so S*H numbers per batch row.

    Attributes
    ----------
    full : ndarray, shape (T, B, S*H, S*H), the cell's dtype
        ``full[t - 1, b] = d s_t / d s_{t-1}`` for t = 1 .. T.
    input : ndarray, shape (T, B, S*H, D), the cell's dtype
        ``input[t - 1, b] = d s_t / d x_t``.
    state : tuple of str
        Component names, in stacking order.
    hidden_size : int
        H, the number of units.
    """

    full: np.ndarray
    input: np.ndarray
    state: tuple
    hidden_size: int

    _shown = ("state", "hidden_size", "full", "input")

    def _frame_columns(self) -> dict:
        T, B, N, M = self.full.shape
        t, b, i, j = np.meshgrid(np.arange(1, T + 1), np.arange(B), np.arange(N), np.arange(M),
                                 indexing="ij")
        return {"t": t.ravel(), "batch": b.ravel(), "row": i.ravel(), "column": j.ravel(),
                "value": self.full.ravel()}

    def block(self, of: str, wrt: str) -> np.ndarray:
        """``d of_t / d wrt_{t-1}``, shape (T, B, H, H) (a view of ``full``).

        Parameters
        ----------
        of, wrt : str
            State component names, e.g. ``block("c", "c")`` for an LSTM's cell path.
        """
        a, c = self._index("of", of), self._index("wrt", wrt)
        H = self.hidden_size
        return self.full[:, :, a * H:(a + 1) * H, c * H:(c + 1) * H]

    def _index(self, arg, name):
        if not isinstance(name, str) or name not in self.state:
            raise InvalidArgumentError(
                f"`{arg}` {name!r} is not a state component; expected one of {list(self.state)}"
            )
        return self.state.index(name)


def state_jacobians(cell, x, state0=None) -> StateJacobians:
    """The full one-step state Jacobians ``d s_t / d s_{t-1}`` and ``d s_t / d x_t``.

    Parameters
    ----------
    cell : Cell
    x : array_like, shape (T, B, D)
        Input sequence, of the cell's dtype.
    state0 : array, tuple or dict, optional
        Initial state, as for :meth:`Cell.forward`.

    Returns
    -------
    StateJacobians
        ``.full`` (T, B, S*H, S*H), ``.input`` (T, B, S*H, D), ``.block(of, wrt)``.

    Raises
    ------
    NonFiniteError
        If a Jacobian holds an infinite or NaN entry, with the step and the component.

    Examples
    --------
    An LSTM's direct cell-state block is ``diag(f_t)``:

    >>> import numpy as np, gradflow
    >>> cell = gradflow.Cell("lstm", input_size=2, hidden_size=3, seed=0)
    >>> x = np.ones((5, 1, 2))
    >>> jac = gradflow.state_jacobians(cell, x)
    >>> jac.full.shape, jac.input.shape
    ((5, 1, 6, 6), (5, 1, 6, 2))
    >>> f = cell.forward(x).intermediate("f")        # the forget gate, (T, B, H)
    >>> np.array_equal(jac.block("c", "c"), f[..., None] * np.eye(3))
    True
    """
    trace = steps.run(cell, x, state0)
    st = steps.Steps(trace)
    T, B, H, S, Sd = st.T, st.B, st.H, st.S, st.Sd
    full = np.zeros((T, B, S * H, S * H), dtype=cell.dtype)
    dx = np.empty((T, B, S * H, st.D), dtype=cell.dtype)
    idx = np.arange(H)
    for t0, dense, diag, dxc in st.chunks(inputs=True):
        n = dense.shape[0]
        full[t0:t0 + n, :, :, :Sd * H] = dense
        for a in range(S):
            for c in range(Sd, S):
                full[t0:t0 + n, :, a * H + idx, c * H + idx] = diag[:, :, a, c, :]
        dx[t0:t0 + n] = dxc
    bad = check.first_nonfinite(full)
    if bad is not None:
        comp = [s for a, s in enumerate(cell.spec.state)
                if not np.isfinite(full[bad, :, a * H:(a + 1) * H]).all()]
        check.raise_nonfinite(f"one-step Jacobian of {cell.spec.name!r}", bad, comp[0],
                              "A partial derivative is infinite or NaN at this state.")
    return StateJacobians(full=full, input=dx, state=tuple(cell.spec.state), hidden_size=H)


def _quantile_summary(values: np.ndarray, quantiles) -> dict:
    """{"median": (K,), "quantiles": (Q, K)} of values (K, B) over the batch axis."""
    with np.errstate(invalid="ignore"):
        return {
            "median": np.median(values, axis=1),
            "quantiles": np.quantile(values, quantiles, axis=1),
        }


@dataclass(eq=False, repr=False)
class GradientFlow(Displayed):
    """How far back the gradient reaches: log10 norms of Jacobian products over lags.

    Attributes
    ----------
    lags : ndarray, shape (K,), int64
        Lags k, sorted.
    log10_h : ndarray, shape (K, B), float64
        ``log10 || d h_T / d h_{T-k} ||`` (the h-block of the state Jacobian product).
    log10_state : ndarray, shape (K, B), float64, or None
        ``log10 || d s_T / d s_{T-k} ||`` of the full stacked state (None when
        ``state=False`` was asked).
    log10_loss_grad : ndarray, shape (T, B), float64, or None
        ``log10 || dL/dh_t ||`` for t = 1 .. T, the total gradient (through the future
        and from ``dh[t-1]``), when `dh` was given.
    log10_loss_grad_state : ndarray, shape (T, B), float64, or None
        The same for the whole state ``dL/ds_t``.
    norm : str
        ``"spectral"`` or ``"frobenius"``.
    length : int
        T, the number of steps.
    cell_name : str
        The cell's catalogue name.

    Notes
    -----
    ``-inf`` means the product is exactly zero in the cell's dtype, never that it
    underflowed (products are renormalised as they are accumulated).  A product is exactly
    zero when a one-step Jacobian annihilates it: a weight matrix of zeros, or gates
    saturated so far that their derivative is exactly 0 in floating point.  The latter
    happens at finite inputs: ``sigmoid(a)`` rounds to 1 for ``a`` above about 37 in
    float64 (17 in float32), so ``sigmoid'(a) = sigmoid(a) (1 - sigmoid(a))`` is 0, and
    ``tanh'(a) = 1 - tanh(a)**2`` is 0 for ``|a|`` above about 19 (9 in float32); PyTorch's
    autograd computes these derivatives the same way.
    """

    lags: np.ndarray
    log10_h: np.ndarray
    log10_state: np.ndarray | None
    log10_loss_grad: np.ndarray | None
    log10_loss_grad_state: np.ndarray | None
    norm: str
    length: int
    cell_name: str = field(default="")

    _shown = ("cell_name", "length", "norm", "lags", "log10_h", "log10_state", "log10_loss_grad")

    def _frame_columns(self) -> dict:
        """One row per lag and batch row: ``lag, batch, log10_h`` (and ``log10_state``)."""
        K, B = self.log10_h.shape
        cols = {"lag": np.repeat(self.lags, B), "batch": np.tile(np.arange(B), K),
                "log10_h": self.log10_h.ravel()}
        if self.log10_state is not None:
            cols["log10_state"] = self.log10_state.ravel()
        return cols

    def loss_frame(self):
        """``log10_loss_grad`` as a tidy DataFrame: ``t, batch, log10_loss_grad`` (and
        ``log10_loss_grad_state``); needs the flow to have been computed with `dh`."""
        from .._display import pandas

        if self.log10_loss_grad is None:
            raise InvalidArgumentError("this flow has no loss gradients: pass dh to gradient_flow")
        T, B = self.log10_loss_grad.shape
        cols = {"t": np.repeat(np.arange(1, T + 1), B), "batch": np.tile(np.arange(B), T),
                "log10_loss_grad": self.log10_loss_grad.ravel()}
        if self.log10_loss_grad_state is not None:
            cols["log10_loss_grad_state"] = self.log10_loss_grad_state.ravel()
        return pandas().DataFrame(cols)

    def _plot(self, ax):
        from ..plot import lag_map

        lag_map(self, ax=ax, label=self.cell_name or None)

    def summary(self, quantiles=(0.1, 0.25, 0.5, 0.75, 0.9)) -> dict:
        """Median and quantiles across the batch.

        Returns
        -------
        dict
            ``{"lags": (K,), "quantiles": (Q,), "log10_h": {"median": (K,), "quantiles":
            (Q, K)}, "log10_state": ..., "log10_loss_grad": {... (T,) ...}}`` with the
            entries that were computed.
        """
        q = check.quantiles("quantiles", quantiles)
        out = {"lags": self.lags, "quantiles": q}
        for name in ("log10_h", "log10_state", "log10_loss_grad", "log10_loss_grad_state"):
            value = getattr(self, name)
            if value is not None:
                out[name] = _quantile_summary(value, q)
        return out


def gradient_flow(cell, x, state0=None, *, dh=None, lags=None, norm: str = "spectral",
                  state: bool = True) -> GradientFlow:
    """Norms of ``d h_T / d h_{T-k}`` for every lag k, and of ``dL/dh_t`` for a loss.

    The product ``J_T J_{T-1} ... J_{T-k+1}`` is propagated backward from T once, as a
    matrix, renormalised after every step; the norms at all lags come out of that one
    sweep.

    Parameters
    ----------
    cell : Cell
    x : array_like, shape (T, B, D)
    state0 : array, tuple or dict, optional
        Initial state, as for :meth:`Cell.forward`.
    dh : array_like, shape (T, B, H), optional
        ``dL/dh_t`` from outside the recurrence; gives ``GradientFlow.log10_loss_grad``
        from one backward pass.
    lags : sequence of int, optional
        Lags in [0, T] (default: all).  Steps beyond the largest lag are not visited
        (unless `dh` is given).
    norm : {"spectral", "frobenius"}
    state : bool
        Also the norm of the full state product (rows of every component: costs S times
        the h rows alone).

    Returns
    -------
    GradientFlow

    Examples
    --------
    A linear RNN whose recurrent matrix is ``0.5 I`` halves the gradient at every step, so
    ``log10 ||d h_T / d h_{T-k}|| = k log10(0.5)``:

    >>> import numpy as np, gradflow
    >>> cell = gradflow.Cell("rnn-linear", input_size=2, hidden_size=4, seed=0)
    >>> cell.params["weight_hh"][:] = 0.5 * np.eye(4)
    >>> flow = gradflow.gradient_flow(cell, np.zeros((100, 1, 2)))
    >>> flow.log10_h[[1, 10, 100], 0].round(5)
    array([ -0.30103,  -3.0103 , -30.103  ])
    """
    spectral = steps.spectral(norm)
    trace = steps.run(cell, x, state0)
    st = steps.Steps(trace)
    T, B, H, S = st.T, st.B, st.H, st.S
    lags = check.lags(lags, T)
    if dh is not None:
        dh = check.array("dh", dh, dtype=cell.dtype, shape=(T, B, H),
                         hint="dh must be (T, B, H), like the trace's h")
    state = check.flag("state", state)
    R = S * H if state else H
    blocks = [(0, H, 0, H)] + ([(0, R, 0, S * H)] if state and S > 1 else [])
    out, _, _, loss_h, loss_s = st.backward_products(
        np.arange(R), np.asarray(blocks, np.int64), lags, spectral, dh=dh)
    log10_state = None
    if state:
        log10_state = out[1] if S > 1 else out[0].copy()
    return GradientFlow(lags=lags, log10_h=out[0], log10_state=log10_state,
                        log10_loss_grad=loss_h, log10_loss_grad_state=loss_s, norm=norm,
                        length=T, cell_name=cell.spec.name)
