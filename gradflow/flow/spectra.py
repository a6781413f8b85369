"""Spectra of Jacobian products: singular values at chosen lags, Lyapunov exponents, and
the classic bound for the vanilla RNN.

>>> import numpy as np, gradflow
>>> cell = gradflow.Cell("rnn", input_size=2, hidden_size=6, seed=0)
>>> lyap = gradflow.lyapunov_spectrum(cell, np.zeros((200, 1, 2)), transient=20)
>>> lyap.exponents.shape        # (B, S*H), natural log per step, largest first
(1, 6)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _threads, cells, config
from .. import _validate as check
from ..cell import as_cell
from .._display import Displayed
from ..errors import GradflowError, InvalidArgumentError
from . import _kernels as fk
from . import _steps as steps

__all__ = ["SingularValues", "jacobian_singular_values", "LyapunovSpectrum",
           "lyapunov_spectrum", "PascanuBound", "pascanu_bound"]

_LOG10_2 = math.log10(2.0)


@dataclass(eq=False, repr=False)
class SingularValues(Displayed):
    """Singular values of Jacobian products ``d of_T / d wrt_{T-k}`` at chosen lags.

    Attributes
    ----------
    lags : ndarray, shape (K,), int64
    log10 : ndarray, shape (K, B, n), float64
        log10 of the singular values, largest first (``-inf`` for exact zeros).
    log10_floor : ndarray, shape (K, B), float64
        Singular values below this level are not resolved.  ``method="product"``:
        ``log10 sigma_max + log10(n * eps)`` of the cell's dtype, the rounding floor of
        the product; ``method="qr"``: ``-inf``, each value carries a relative error of
        its own, however far below sigma_max.
    block : tuple of (str, str) or None
        ``(of, wrt)``; None for the full stacked state.
    method : str
        ``"qr"`` or ``"product"`` (see :func:`jacobian_singular_values`).
    """

    lags: np.ndarray
    log10: np.ndarray
    log10_floor: np.ndarray
    block: tuple | None
    method: str = "product"

    _shown = ("block", "method", "lags", "log10", "log10_floor")

    def _frame_columns(self) -> dict:
        """One row per lag, batch row and index i: ``log10`` of sigma_i and whether it is
        above the rounding floor (``resolved``)."""
        K, B, n = self.log10.shape
        lag, b, i = np.meshgrid(self.lags, np.arange(B), np.arange(1, n + 1), indexing="ij")
        return {"lag": lag.ravel(), "batch": b.ravel(), "index": i.ravel(),
                "log10": self.log10.ravel(),
                "resolved": (self.log10 > self.log10_floor[..., None]).ravel()}

    def _plot(self, ax):
        for a, k in enumerate(self.lags):
            v = np.median(self.log10[a], axis=0)
            keep = np.isfinite(v) & (v > float(np.max(self.log10_floor[a])))
            ax.plot(np.arange(1, v.size + 1)[keep], v[keep], marker=".", ms=3, label=f"k = {k}")
        ax.set_xlabel("singular value index i (1 = largest)")
        ax.set_ylabel(r"$\log_{10}\,\sigma_i$")
        ax.legend(fontsize=7, frameon=False)


_SV_METHODS = ("qr", "product")


def jacobian_singular_values(cell, x, lags, state0=None, *, block=("h", "h"),
                             method: str = "qr") -> SingularValues:
    """Singular values of the Jacobian product at each lag in `lags`.

    Parameters
    ----------
    cell : Cell
    x : array_like, shape (T, B, D)
    lags : int or sequence of int
        Lags k in [0, T].
    state0 : array, tuple or dict, optional
    block : (str, str) or None
        ``(of, wrt)`` state components: ``("h", "h")`` gives ``d h_T / d h_{T-k}``;
        None the full state ``d s_T / d s_{T-k}``.
    method : {"qr", "product"}
        ``"qr"`` (default): the product is carried as an orthonormal factor times a
        product of triangular QR factors whose rows keep scales of their own, and the
        singular values come from one-sided Jacobi on those scaled rows, so values any
        number of decades below the largest are measured (one QR factorisation per step
        and a Jacobi SVD per lag).  ``"product"``: the renormalised product itself and
        one SVD per lag (faster; values below ``sigma_max * n * eps`` are rounding, see
        ``log10_floor``).

    Returns
    -------
    SingularValues

    Examples
    --------
    For a linear RNN with ``W_hh = 0.5 I`` every singular value at lag k is ``0.5 ** k``:

    >>> import numpy as np, gradflow
    >>> cell = gradflow.Cell("rnn-linear", input_size=2, hidden_size=3, seed=0)
    >>> cell.params["weight_hh"][:] = 0.5 * np.eye(3)
    >>> sv = gradflow.jacobian_singular_values(cell, np.zeros((20, 1, 2)), lags=[1, 20])
    >>> sv.log10[:, 0].round(5)                     # (K, B, n): lags x batch x index
    array([[-0.30103, -0.30103, -0.30103],
           [-6.0206 , -6.0206 , -6.0206 ]])

    With ``W_hh = diag(0.9, 0.1, 1e-3)`` the values at lag 20 span 58 decades, far beyond
    what one float64 product holds:

    >>> cell.params["weight_hh"][:] = np.diag([0.9, 0.1, 1e-3])
    >>> gradflow.jacobian_singular_values(cell, np.zeros((20, 1, 2)), lags=[20]).log10[0, 0].round(4)
    array([ -0.9151, -20.    , -60.    ])
    """
    as_cell(cell)
    spec = cell.spec
    if block is not None:
        if (not isinstance(block, (tuple, list)) or len(block) != 2
                or any(not isinstance(b, str) or b not in spec.state for b in block)):
            raise InvalidArgumentError(
                f"`block` must be None or a pair of state components of {spec.name!r} "
                f"from {list(spec.state)}; got {block!r}"
            )
        block = tuple(block)
    method = check.choice("method", method, _SV_METHODS)
    trace = steps.run(cell, x, state0)
    st = steps.Steps(trace)
    T, H, S = st.T, st.H, st.S
    lags = check.lags(lags, T)
    if block is None:
        rows = np.arange(S * H)
        snap = np.asarray((0, S * H, 0, S * H), np.int64)
    else:
        a, c = spec.state.index(block[0]), spec.state.index(block[1])
        rows = a * H + np.arange(H)
        snap = np.asarray((0, H, c * H, (c + 1) * H), np.int64)
    if method == "qr":
        log10 = _qr_singular_values(st, rows, int(snap[2]), int(snap[3]), lags)
        floor = np.full(log10.shape[:2], -np.inf)
        return SingularValues(lags=lags, log10=log10, log10_floor=floor, block=block,
                              method=method)
    _, snaps, snap_exp, _, _ = st.backward_products(
        rows, np.zeros((0, 4), np.int64), lags, False, snap_lags=lags, snap_block=snap)
    sv = np.linalg.svd(snaps, compute_uv=False)
    with np.errstate(divide="ignore"):
        log10 = np.log10(sv) + snap_exp[..., None] * _LOG10_2
    n = sv.shape[-1]
    floor = log10[..., 0] + math.log10(n * np.finfo(cell.dtype).eps)
    return SingularValues(lags=lags, log10=log10, log10_floor=floor, block=block,
                          method=method)


def _qr_singular_values(st, rows, c0, c1, lags) -> np.ndarray:
    """log10 singular values (K, B, R) of the columns c0:c1 of the products of the rows
    `rows` of d s_T / d s_{T-k}, by products of QR factors (fk.qr_product_kernel)."""
    T, B, SH, Sd, H = st.T, st.B, st.S * st.H, st.Sd, st.H
    R = len(rows)
    dt = st.dtype
    Qt = np.zeros((B, R, SH), dt)
    Qt[:, np.arange(R), rows] = 1.0
    U = np.zeros((B, R, R))
    U[:, np.arange(R), np.arange(R)] = 0.5   # renormalised: 0.5 * 2**1
    E = np.ones((B, R), np.int64)
    W, tmp = np.empty((B, R, SH), dt), np.empty((B, R, Sd * H), dt)
    slot = steps.slots(lags, T)
    out = np.full((len(lags), B, R), np.nan)
    sweeps = np.zeros((len(lags), B), np.int64)
    blocks = _threads.row_blocks(B, 1 << 30, min_rows=1)
    first_bad = np.full(len(blocks), -1, np.int64)
    tmin = T - int(lags.max())

    def run(t0, dense, diag):
        def block(lo, hi):
            first_bad[blocks.index((lo, hi))] = fk.qr_product_kernel(
                dense, diag, t0, T, Qt, U, E, W, tmp, c0, c1, slot, out, sweeps, lo, hi)

        with _threads.single_threaded_blas(len(blocks) > 1 or SH <= 512):
            _threads.run_blocks(block, blocks)
        bad = int(first_bad.max())
        if bad >= 0:
            check.raise_nonfinite(
                f"Jacobian product of {st.cell.spec.name!r} (swept back from the last step)",
                bad, "state", "A one-step Jacobian holds a non-finite value: a partial "
                "derivative is infinite or NaN at this state.")

    if tmin == T:  # only lag 0 wanted
        run(T, np.empty((0, B, SH, Sd * H), dt), np.empty((0, B, st.S, st.S, H), dt))
    for t0, dense, diag in st.chunks(tmin, T, backward=True):
        run(t0, dense, diag)
    if (sweeps > fk.JACOBI_SWEEPS).any():  # pragma: no cover - not seen in practice
        raise GradflowError(f"one-sided Jacobi did not converge in {fk.JACOBI_SWEEPS} sweeps; "
                            "use method='product'")
    return out


@dataclass(eq=False, repr=False)
class LyapunovSpectrum(Displayed):
    """Lyapunov exponents of the state map along a trajectory (Benettin's QR method).

    Attributes
    ----------
    exponents : ndarray, shape (B, p), float64
        Natural log of growth per step, largest first; ``-inf`` where a direction is
        mapped exactly to zero.
    running : ndarray, shape (N, B, p), float64
        The estimates after 1 .. N steps past the transient (columns in the order of
        `exponents`).
    drift : ndarray, shape (B, p), float64
        ``running[-1] - running[-1 - window]``: the change over the last window.
    converged : ndarray, shape (B,), bool
        ``max |drift| <= tol``.
    transient, window, steps : int
        Steps discarded, window of the drift, steps averaged (N).
    tol : float
    qr_count : ndarray, shape (B,), int64, or None
        QR factorisations done for each sequence (None when not recorded).
    """

    exponents: np.ndarray
    running: np.ndarray
    drift: np.ndarray
    converged: np.ndarray
    transient: int
    window: int
    steps: int
    tol: float
    qr_count: np.ndarray | None = None

    _shown = ("exponents", "converged", "transient", "window", "steps", "tol")

    def _frame_columns(self) -> dict:
        """One row per batch row and exponent: natural log and log10 per step."""
        B, p = self.exponents.shape
        return {"batch": np.repeat(np.arange(B), p), "index": np.tile(np.arange(1, p + 1), B),
                "exponent": self.exponents.ravel(), "log10_per_step": self.log10_per_step.ravel()}

    def _plot(self, ax):
        from ..plot import lyapunov

        lyapunov(self, ax=ax)

    @property
    def log10_per_step(self) -> np.ndarray:
        """The exponents in log10 per step, shape (B, p)."""
        return self.exponents / math.log(10.0)

    @classmethod
    def from_running(cls, running: np.ndarray, *, transient: int, window: int,
                     tol: float, qr_count: np.ndarray | None = None) -> "LyapunovSpectrum":
        """The spectrum from the running means of ``log |R_ii|``.

        Parameters
        ----------
        running : ndarray, shape (N, B, p), float64
            The estimates after 1 .. N steps past the transient, columns in the order of
            the QR iteration; they are sorted here by the last estimate, largest first.
        transient, window : int
        tol : float
        qr_count : ndarray, shape (B,), optional
        """
        N = running.shape[0]
        order = np.argsort(-running[-1], axis=1, kind="stable")
        running = np.take_along_axis(running, order[None], axis=2)
        exponents = running[-1].copy()
        with np.errstate(invalid="ignore"):
            drift = running[-1] - running[-1 - window]
            drift = np.where(np.isneginf(running[-1]) & np.isneginf(running[-1 - window]),
                             0.0, drift)
        converged = np.all(np.abs(drift) <= tol, axis=1)
        return cls(exponents=exponents, running=running, drift=drift, converged=converged,
                   transient=transient, window=window, steps=N, tol=float(tol),
                   qr_count=qr_count)


def qr_schedule(interval, dtype) -> tuple:
    """`interval` (None or a positive int) as the lyapunov kernels' arguments:
    ``(first interval, adapt, log_cond, log_range, max_interval)``."""
    qr = config.lyapunov_qr(dtype)
    if interval is None:
        return 1, True, math.log(qr["condition"]), math.log(qr["range"]), int(qr["max_interval"])
    k = check.positive_int("interval", interval)
    return k, False, math.log(qr["condition"]), math.log(qr["range"]), k


def lyapunov_spectrum(cell, x, state0=None, *, transient: int | None = None,
                      n_exponents: int | None = None, window: int | None = None,
                      tol: float = 1e-3, interval: int | None = None) -> LyapunovSpectrum:
    """All (or the first `n_exponents`) Lyapunov exponents of the full state.

    ``Z <- J_t Z`` every step and ``Q R = Z`` every few steps (Benettin's method with the
    re-orthonormalisation interval of Engelken, Wolf & Abbott 2020); the exponents are
    the sums of ``log |diag R|`` past `transient`, divided by the number of steps.

    Parameters
    ----------
    cell : Cell
    x : array_like, shape (T, B, D)
    state0 : array, tuple or dict, optional
    transient : int, optional
        Steps discarded before averaging, in [0, T - 2] (default T // 10; at least two
        steps are averaged); the vectors are still propagated through them.
    n_exponents : int, optional
        How many exponents (default S*H, all).
    window : int, optional
        Steps over which ``LyapunovSpectrum.drift`` is measured (default N // 10).
    tol : float
        Drift below which an estimate counts as converged.
    interval : int, optional
        Steps between two QR factorisations.  Default: chosen as it goes, per sequence,
        from the growth of the condition number of the propagated vectors over the last
        interval (at most ``gradflow.config.LYAPUNOV_QR``'s `condition` between two
        factorisations, so the exponents agree with a QR at every step to rounding; its
        `range` bounds how far the vectors' entries may grow, and a factorisation also
        comes early when the Jacobians' norms could take them further).  ``1``: a QR at
        every step (the textbook method); a fixed interval longer than the growth allows
        (in float32 above all) loses the smallest exponents to rounding.  Between two
        factorisations the running estimates spread the growth evenly over the steps.

    Returns
    -------
    LyapunovSpectrum
        ``qr_count`` tells how many factorisations each sequence took.
    """
    trace = steps.run(cell, x, state0)
    st = steps.Steps(trace)
    T, B, SH = st.T, st.B, st.S * st.H
    transient, p, window, tol = check.lyapunov_options(T, SH, transient, n_exponents, window, tol)
    k0, adapt, log_cond, log_range, kmax = qr_schedule(interval, cell.dtype)
    N = T - transient
    W = np.zeros((2, B, SH, p), dtype=cell.dtype)
    W[0][:, np.arange(p), np.arange(p)] = 1.0
    cur = np.zeros(B, np.int64)
    since = np.zeros(B, np.int64)
    growth = np.zeros(B)
    intervals = np.full(B, k0, np.int64)
    qrs = np.zeros(B, np.int64)
    sums = np.zeros((B, p))
    running = np.empty((N, B, p))
    # batch rows on the cores; a QR of S*H <= 512 columns is faster on one BLAS thread
    # (256 columns: 2.9 ms against 8.5 ms on two)
    blocks = _threads.row_blocks(B, 1 << 30, min_rows=1)
    first_bad = np.full(len(blocks), -1, np.int64)
    for t0, dense, diag in st.chunks():
        def block(lo, hi):
            first_bad[blocks.index((lo, hi))] = fk.lyapunov_kernel(
                dense, diag, t0, transient, T, W, cur, since, growth, intervals, adapt,
                log_cond, log_range, kmax, sums, running, qrs, lo, hi)

        with _threads.single_threaded_blas(len(blocks) > 1 or SH <= 512):
            _threads.run_blocks(block, blocks)
        bad = int(first_bad[first_bad >= 0].min()) if (first_bad >= 0).any() else -1
        if bad >= 0:
            check.raise_nonfinite(f"Lyapunov QR iteration of {cell.spec.name!r}", bad, "state",
                                  "A one-step Jacobian holds a non-finite value.")
    return LyapunovSpectrum.from_running(running, transient=transient, window=window, tol=tol,
                                         qr_count=qrs)


#: sup |phi'| of the activation of each vanilla RNN of the catalogue
_GAMMA = {"rnn": 1.0, "rnn-relu": 1.0, "rnn-linear": 1.0}


@dataclass(frozen=True)
class PascanuBound:
    """``||d h_t / d h_{t-1}|| <= gamma ||W_hh||_2`` (Pascanu, Mikolov & Bengio 2013).

    Attributes
    ----------
    log10_per_step : float
        ``log10(gamma * ||W_hh||_2)``; the bound at lag k is ``k * log10_per_step``.
    gamma : float
        Bound on the activation's derivative (1 for tanh, ReLU and the identity).
    norm_w : float
        ``||W_hh||_2``.
    """

    log10_per_step: float
    gamma: float
    norm_w: float

    def curve(self, lags) -> np.ndarray:
        """The bound at each lag: ``lags * log10_per_step``, float64 of the shape of `lags`."""
        return np.asarray(lags, dtype=np.float64) * self.log10_per_step

    @property
    def lyapunov_bound(self) -> float:
        """The same bound in natural log per step: an upper bound of every exponent."""
        return self.log10_per_step * math.log(10.0)


def pascanu_bound(cell) -> PascanuBound:
    """The per-step bound ``gamma ||W_hh||_2`` of a vanilla RNN (rnn, rnn-relu, rnn-linear).

    Raises
    ------
    InvalidArgumentError
        For other cells, where the bound does not apply in this form.

    Examples
    --------
    >>> import numpy as np, gradflow
    >>> cell = gradflow.Cell("rnn", input_size=2, hidden_size=4, seed=0)
    >>> cell.params["weight_hh"][:] = 0.5 * np.eye(4)
    >>> bound = gradflow.pascanu_bound(cell)
    >>> bound.norm_w, round(bound.log10_per_step, 5), bound.curve([1, 10]).round(5)
    (0.5, -0.30103, array([-0.30103, -3.0103 ]))
    """
    as_cell(cell)
    name = cell.spec.name
    if name not in _GAMMA or cell.spec != cells.get(name):
        raise InvalidArgumentError(
            f"pascanu_bound applies to the vanilla RNNs {sorted(_GAMMA)}; got cell {name!r}"
        )
    gamma = _GAMMA[name]
    w = cell.checked_params()["weight_hh"]
    norm_w = float(np.linalg.norm(np.asarray(w, np.float64), 2))
    with np.errstate(divide="ignore"):
        log10 = math.log10(gamma * norm_w) if norm_w > 0 else -math.inf
    return PascanuBound(log10_per_step=log10, gamma=gamma, norm_w=norm_w)
