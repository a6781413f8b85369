"""Gradient flow over depth and time for a :class:`~gradflow.Network`: lag maps of every
layer seen from the output, loss gradients on every layer's hidden state, per-layer path
decompositions and gate statistics, and Lyapunov spectra of the stacked state.

The Jacobians are each layer's own, from its cell's generated kernels
(the flow package's ``Steps``): ``d s_t / d s_{t-1}`` and ``d s_t / d x_t``;
nothing is differentiated here.  Adjoints (rows of Jacobian products and loss gradients)
are carried as float64 mantissas with an int64 exponent per row, renormalised by exact
powers of two after every step, with exponents aligned when two contributions are added:
a norm of 1e-4000 is reported as log10 = -4000, in float32 as in float64.

>>> import numpy as np, gradflow
>>> net = gradflow.Network("lstm", input_size=2, hidden_size=4, num_layers=2,
...                        bidirectional=True, seed=0)
>>> x = np.random.default_rng(0).standard_normal((10, 3, 2))
>>> flow = gradflow.network_flow(net, x, doutput=np.ones((10, 3, 8)))
>>> flow.log10_lag.shape, flow.log10_grad.shape       # (L, dirs, K, B), (L, dirs, T, B)
((2, 2, 11, 3), (2, 2, 10, 3))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _threads
from .. import _validate as check
from ..cell import Trace
from ..errors import InvalidArgumentError
from ..network import Network
from . import _kernels as fk
from . import _steps as steps
from .paths import memory_horizon, path_decomposition, self_edges
from .spectra import LyapunovSpectrum, qr_schedule

__all__ = ["NetworkFlow", "network_flow", "NetworkPaths", "network_paths",
           "NetworkLyapunov", "network_lyapunov"]

#: bytes the stored adjoints of a group of batch rows may take; larger batches are swept
#: a group of rows at a time
ADJOINT_BYTES = 2 ** 30

_ZERO = fk.ZERO_EXP
_NET_HINT = "Build one with gradflow.Network(cell, input_size, hidden_size, num_layers)"


# ---------------------------------------------------------------------- helpers
def _f64(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == np.float64 else a.astype(np.float64)


def _rows(trace: Trace, lo: int, hi: int) -> Trace:
    """The trace of batch rows lo:hi (a copy)."""
    a = trace.kernel_arrays()
    return Trace(trace.cell, a["x"][:, lo:hi], a["states"][:, :, lo:hi], a["ax"][:, lo:hi],
                 a["ah1"][:, lo:hi], a["ah2"][:, lo:hi], a["u"][:, lo:hi],
                 params=trace.kernel_params())


def _direction(d: int) -> str:
    return "reverse" if d else "forward"


# ---------------------------------------------------------------------- network_flow
@dataclass(eq=False)
class NetworkFlow:
    """Gradient flow through a network's layers and time.

    Times are the sequence's (1 .. T) for both directions; a reverse direction's state
    at time t is the one after it read x_t.  ``-inf`` means exactly zero (no path, or a
    Jacobian that annihilates the product), never an underflow.

    Attributes
    ----------
    lags : ndarray, shape (K,), int64
        Lags k in [0, T], sorted.
    log10_lag : ndarray, shape (L, dirs, K, B), float64
        ``log10 || d h^L_T / d h^{l,d}_{T-k} ||``: h^L_T is the output at the last step
        (every unit, both directions), h^{l,d}_t layer l's direction d hidden state at time
        t (a partial derivative: the layer's other state components, an LSTM's c, held).
        Lag T is the forward direction's initial state; a reverse direction has no state
        at time 0, and its entry at lag T is NaN.
    log10_grad : ndarray, shape (L, dirs, T, B), float64, or None
        ``log10 || dL/dh^{l,d}_t ||`` for t = 1 .. T, the total gradient of the loss whose
        gradient on the output is `doutput` (through the layer's own recurrence and
        through the layers above).  None without `doutput`.
    log10_grad_units : tuple of L ndarrays of shape (dirs, T, B, H_l), or None
        ``log10 |dL/dh^{l,d}_t[j]|`` per unit (with ``units=True``).  Each unit is resolved
        down to 2**-1074 of the largest entry of its layer's state gradient at that step.
    norm : str
        ``"spectral"`` or ``"frobenius"`` (of the lag blocks; the gradients are vectors).
    length : int
        T.
    hidden_sizes : tuple of int
        H_l of each layer.
    """

    lags: np.ndarray
    log10_lag: np.ndarray
    log10_grad: np.ndarray | None
    log10_grad_units: tuple | None
    norm: str
    length: int
    hidden_sizes: tuple

    def __repr__(self) -> str:
        L, dirs, K, B = self.log10_lag.shape
        extra = "" if self.log10_grad is None else \
            f", log10_grad={self.log10_grad.shape}" + ("" if self.log10_grad_units is None
                                                       else ", units")
        return (f"NetworkFlow(layers={L}, directions={dirs}, T={self.length}, B={B}, "
                f"log10_lag={self.log10_lag.shape}{extra}, norm={self.norm!r})")


def _doutput(net: Network, doutput, T: int, B: int) -> np.ndarray:
    """`doutput` in the user's layout, as a time-major (T, B, dirs*H_L) array."""
    shape = (B, T, net.output_size) if net.batch_first else (T, B, net.output_size)
    d = check.array("doutput", doutput, dtype=net.dtype, shape=shape,
                    hint="doutput must be shaped like the network's output")
    return np.ascontiguousarray(d.swapaxes(0, 1)) if net.batch_first else d


def network_flow(net, x, state0=None, *, doutput=None, lags=None, norm: str = "spectral",
                 units: bool = False) -> NetworkFlow:
    """Norms of ``d h^L_T / d h^{l,d}_{T-k}`` for every layer, direction and lag, and of
    ``dL/dh^{l,d}_t`` for every layer, direction and time.

    One adjoint sweep from the top layer down: the rows of the output at T (and one row
    for the loss) run back through each direction's own steps, picking up at every step
    what flows into the layer's output from above, and pass on through ``d s_t / d x_t``
    what flows into the layer below (the two directions' shares added).  Every row is
    renormalised after every step by an exact power of two.

    Parameters
    ----------
    net : Network
    x : array_like, shape (T, B, D), or (B, T, D) when ``net.batch_first``
    state0 : optional
        Initial states, as :meth:`Network.forward` takes them.
    doutput : array_like, shaped like the network's output, optional
        dL/d(output) at every step; gives ``NetworkFlow.log10_grad``.
    lags : sequence of int, optional
        Lags in [0, T] (default all).
    norm : {"spectral", "frobenius"}
    units : bool
        Also the per-unit gradients (needs `doutput`).

    Returns
    -------
    NetworkFlow

    Notes
    -----
    Time O(T * sum_l dirs * (R S_l H_l (H_l + D_l))) for R = dirs * H_L (+ 1 with
    `doutput`) rows; memory two layers' stored adjoints, ``2 * dirs * T * R * H * 8``
    bytes per batch row (rows are swept in groups that fit ``ADJOINT_BYTES`` (1 GiB)).  A
    one-layer unidirectional network gives :func:`gradflow.gradient_flow`'s ``log10_h``.
    """
    check.instance("net", net, Network, _NET_HINT)
    spectral = steps.spectral(norm)
    units = check.flag("units", units)
    if units and doutput is None:
        raise InvalidArgumentError("`units=True` needs `doutput`: the per-unit values are "
                                   "those of the loss gradient")
    trace = net.forward(x, state0)
    T, B = trace.length, trace.batch_size
    lags = check.lags(lags, T)
    dout = None if doutput is None else _doutput(net, doutput, T, B)
    L, dirs, sizes = net.num_layers, net.num_directions, net.hidden_sizes
    R = dirs * sizes[-1] + (dout is not None)
    per_row = 2 * dirs * T * R * (max(sizes) + 1) * 8
    check.fits_in_memory("the stored adjoints of one batch row", per_row,
                         f"T={T}, rows={R}, H={max(sizes)}")
    group = int(max(1, min(B, ADJOINT_BYTES // per_row)))
    lag_out = np.full((L, dirs, len(lags), B), np.nan)
    grad = None if dout is None else np.empty((L, dirs, T, B))
    unit_out = tuple(np.empty((dirs, T, B, h)) for h in sizes) if units else None
    for lo in range(0, B, group):
        hi = min(B, lo + group)
        traces = trace.traces if (lo, hi) == (0, B) else \
            tuple(tuple(_rows(tr, lo, hi) for tr in pair) for pair in trace.traces)
        lg, gr, un = _sweep(traces, None if dout is None else dout[:, lo:hi], lags, spectral,
                            units)
        lag_out[..., lo:hi] = lg
        if gr is not None:
            grad[..., lo:hi] = gr
        for u, part in zip(unit_out or (), un or ()):
            u[:, :, lo:hi] = part
    return NetworkFlow(lags=lags, log10_lag=lag_out, log10_grad=grad,
                       log10_grad_units=unit_out, norm=norm, length=T,
                       hidden_sizes=tuple(sizes))


def _top(T, B, dirs, H, dout):
    """What flows into the top layer's output: (dirs, T, B, R, H) mantissas and
    (dirs, T, B, R) exponents indexed by each direction's own step, and (dirs, T) which
    steps carry any.  Rows 0 .. dirs*H - 1 are the output's units at the last step (the
    identity, in the direction's columns); row dirs*H, with `dout`, the loss."""
    R0 = dirs * H
    R = R0 + (dout is not None)
    Gm = np.zeros((dirs, T, B, R, H))
    Ge = np.full((dirs, T, B, R), _ZERO, np.int64)
    live = np.zeros((dirs, T), bool)
    for d in range(dirs):
        s = T - 1 if d == 0 else 0            # the direction's step that makes h_T
        Gm[d, s, :, d * H + np.arange(H), np.arange(H)] = 1.0
        Ge[d, s, :, d * H:(d + 1) * H] = 0
        live[d, s] = True
        if dout is not None:
            part = dout[:, :, d * H:(d + 1) * H].astype(np.float64)
            part = part[::-1] if d else part         # in the direction's own order
            m = np.max(np.abs(part), axis=-1)
            e = np.frexp(m)[1].astype(np.int64)
            Gm[d, :, :, R0] = np.ldexp(part, -e[..., None])
            Ge[d, :, :, R0] = np.where(m > 0, e, _ZERO)
            live[d] = True
    return Gm, Ge, live


def _sweep(traces, dout, lags, spectral, units):
    """The adjoint sweep for one group of batch rows: (lag (L, dirs, K, B), grad
    (L, dirs, T, B) or None, per-layer units (dirs, T, B, H_l) or None)."""
    L, dirs = len(traces), len(traces[0])
    T, B = traces[0][0].length, traces[0][0].batch_size
    sizes = [pair[0].cell.hidden_size for pair in traces]
    loss = dout is not None
    R0 = dirs * sizes[-1]
    slot = steps.slots(lags, T)
    # a unidirectional stack without a loss needs only the steps the largest lag reaches
    start = max(0, T - int(lags.max()) - 1) if dirs == 1 and not loss else 0
    lag = np.full((L, dirs, len(lags), B), np.nan)
    grad = np.empty((L, dirs, T, B)) if loss else None
    unit = [np.empty((dirs, T, B, h)) for h in sizes] if units else None
    Gm, Ge, live = _top(T, B, dirs, sizes[-1], dout)
    R = Gm.shape[3]
    for layer in range(L - 1, -1, -1):
        if layer > 0:
            below_m = np.zeros((dirs, T, B, R, sizes[layer - 1]))
            below_e = np.full((dirs, T, B, R), _ZERO, np.int64)
        else:
            below_m, below_e = np.empty((0, 0, 0, 0, 0)), np.empty((0, 0, 0, 0), np.int64)
        for d in range(dirs):
            out = (lag[layer, d], grad[layer, d] if loss else np.empty((0, 0)),
                   unit[layer][d] if units else np.empty((0, 0, 0)))
            _sweep_direction(traces[layer][d], layer, d, start, Gm[d], Ge[d], live[d], slot,
                             spectral, R0, loss, out, below_m, below_e)
        if layer > 0:
            Gm, Ge = below_m, below_e
            live = np.zeros((dirs, T), bool)
            live[:, start:] = True                   # start > 0 only for one direction
    return lag, grad, unit


def _sweep_direction(trace, layer, d, start, Gm, Ge, live, slot, spectral, R0, loss, out,
                     below_m, below_e):
    """Run one direction's adjoint back over its steps start .. T-1 (its own order)."""
    st = steps.Steps(trace)
    T, B, H, S = st.T, st.B, st.H, st.S
    R = Gm.shape[2]
    V = np.zeros((B, R, S * H))
    E = np.full((B, R), _ZERO, np.int64)
    Vn = np.empty_like(V)
    lag_out, grad_out, unit_out = out
    ustate = np.zeros((B, R0))
    blk = np.asarray((0, R0, 0, H), np.int64)
    has_below = below_m.shape[0] > 0
    # batch rows on the cores, each block's products on one BLAS thread: the matrices
    # (R x S*H by S*H x H or D) are too small for a threaded BLAS to pay
    blocks = _threads.row_blocks(B, 1 << 30, min_rows=1)
    first_bad = np.full(len(blocks), -1, np.int64)
    for t0, dense, diag, *dx in st.chunks(start, T, backward=True, inputs=has_below):
        dense, diag = _f64(dense), _f64(diag)
        dx = _f64(dx[0]) if dx else np.empty(dense.shape[:3] + (0,))
        args = (dense, diag, dx, t0, T, d, Gm, Ge, live, V, E, Vn, slot, blk, spectral,
                lag_out, ustate, R0, loss, grad_out, unit_out, below_m, below_e)

        def block(lo, hi):
            first_bad[blocks.index((lo, hi))] = fk.adjoint_kernel(*args, lo, hi)

        with _threads.single_threaded_blas():
            _threads.run_blocks(block, blocks)
        if (first_bad >= 0).any():
            check.raise_nonfinite(
                f"adjoint sweep of layer {layer} ({_direction(d)}, {trace.cell.spec.name!r})",
                int(first_bad[first_bad >= 0][0]), "state",
                "A one-step Jacobian (d s_t / d s_(t-1) or d s_t / d x_t) holds a "
                "non-finite value.")
    lag_index = T - start if d == 0 else -1          # the state reached: s_start
    if 0 <= lag_index <= T and slot[lag_index] >= 0:
        A = np.empty(R0 * H)
        for b in range(B):
            lag_out[slot[lag_index], b] = fk.log10_norm(V[b], E[b], blk, spectral, A, ustate[b])


# ---------------------------------------------------------------------- network_paths
@dataclass(eq=False)
class NetworkPaths:
    """Direct-edge paths, memory horizons and gate statistics of every layer.

    Each layer's direction is analysed as its own cell on its own input (what the layer
    below gave it), in its own time: for a reverse direction, lag k separates states k
    steps apart in its reading order (from the last step back to the first).

    Attributes
    ----------
    paths : tuple of tuple of PathDecomposition or None
        ``paths[l][d]``: :func:`gradflow.path_decomposition` of layer l's direction d;
        None for a cell without a direct self edge (the vanilla RNNs).
    horizons : tuple of tuple of ndarray of shape (B, H_l), or None
        Per unit, the first lag at which the unit's direct path falls below `threshold`
        (:func:`gradflow.memory_horizon` of ``log10_path_units``; ``inf`` if it never does
        within the lags).
    gates : tuple of tuple of str or None
        The forget-like gate of each cell (``spec.forget_gate``: f for LSTMs and the MGU,
        z for GRUs), None when it has none.
    quantiles : ndarray, shape (Q,)
    gate_quantiles : ndarray, shape (L, dirs, Q), float64
        Quantiles of the gate's values over every step, batch row and unit (NaN without
        a gate).
    saturated_low, saturated_high : ndarray, shape (L, dirs), float64
        Shares of gate values below `saturation` and above ``1 - saturation``.
    saturation, threshold : float
    """

    paths: tuple
    horizons: tuple
    gates: tuple
    quantiles: np.ndarray
    gate_quantiles: np.ndarray
    saturated_low: np.ndarray
    saturated_high: np.ndarray
    saturation: float
    threshold: float

    def __repr__(self) -> str:
        L, dirs = self.saturated_low.shape
        comps = sorted({p.component for pair in self.paths for p in pair if p is not None})
        return (f"NetworkPaths(layers={L}, directions={dirs}, components={comps}, "
                f"gates={sorted({g for pair in self.gates for g in pair if g})}, "
                f"saturation={self.saturation})")


def network_paths(net, x, state0=None, *, lags=None, norm: str = "spectral",
                  total: bool = True, threshold: float = 1e-3, saturation: float = 0.05,
                  quantiles=(0.05, 0.25, 0.5, 0.75, 0.95)) -> NetworkPaths:
    """Per layer and direction: the direct-edge path decomposition, per-unit memory
    horizons, and the distribution of the forget-like gate.

    Parameters
    ----------
    net : Network
    x : array_like, shape (T, B, D), or (B, T, D) when ``net.batch_first``
    state0 : optional
        Initial states, as :meth:`Network.forward` takes them.
    lags : sequence of int, optional
        Lags in [0, T], including 0 (the horizons' reference); default all.
    norm : {"spectral", "frobenius"}
    total : bool
        Also each layer's total Jacobian product (:func:`gradflow.path_decomposition`).
    threshold : float
        Relative level of the memory horizons, > 0.
    saturation : float
        A gate value below `saturation` or above ``1 - saturation`` counts as saturated;
        in [0, 0.5].
    quantiles : sequence of float
        In [0, 1].

    Returns
    -------
    NetworkPaths
    """
    check.instance("net", net, Network, _NET_HINT)
    steps.spectral(norm)
    thr = check.real("threshold", threshold)
    if not thr > 0:
        raise InvalidArgumentError(f"`threshold` must be a finite number > 0; got {threshold!r}")
    sat = check.real("saturation", saturation, minimum=0.0, maximum=0.5)
    q = check.quantiles("quantiles", quantiles)
    trace = net.forward(x, state0)
    T = trace.length
    lags = check.lags(lags, T)
    if lags[0] != 0:
        raise InvalidArgumentError(f"`lags` must include 0, the horizons' reference; got "
                                   f"lags from {lags[0]} to {lags[-1]}")
    L, dirs = net.num_layers, net.num_directions
    paths, horizons, gates = [], [], []
    gq = np.full((L, dirs, len(q)), np.nan)
    low = np.full((L, dirs), np.nan)
    high = np.full((L, dirs), np.nan)
    for layer in range(L):
        inp = trace.layer_input(layer)
        p_row, h_row, g_row = [], [], []
        for d, tr in enumerate(trace.traces[layer]):
            cell = tr.cell
            pd = hz = None
            if self_edges(cell.spec):
                seq = np.ascontiguousarray(inp[::-1]) if d else inp
                pd = path_decomposition(cell, seq, dict(tr.initial), lags=lags, norm=norm,
                                        total=total)
                K, B, H = pd.log10_path_units.shape
                hz = memory_horizon(pd.log10_path_units.reshape(K, B * H), lags=pd.lags,
                                    threshold=thr).reshape(B, H)
            gate = cell.spec.forget_gate
            if gate is not None:
                values = tr.intermediate(gate).astype(np.float64)
                gq[layer, d] = np.quantile(values, q)
                low[layer, d] = np.mean(values < sat)
                high[layer, d] = np.mean(values > 1.0 - sat)
            p_row.append(pd)
            h_row.append(hz)
            g_row.append(gate)
        paths.append(tuple(p_row))
        horizons.append(tuple(h_row))
        gates.append(tuple(g_row))
    return NetworkPaths(paths=tuple(paths), horizons=tuple(horizons), gates=tuple(gates),
                        quantiles=q, gate_quantiles=gq, saturated_low=low,
                        saturated_high=high, saturation=sat, threshold=thr)


# ---------------------------------------------------------------------- network_lyapunov
@dataclass(eq=False)
class NetworkLyapunov:
    """Lyapunov spectra of a network's stacked state, one per direction.

    Attributes
    ----------
    spectra : tuple of LyapunovSpectrum
        ``spectra[d]``: the exponents of direction d's stack (every layer's state of that
        direction, layer 0 first), in that direction's time order.
    state_sizes : tuple of int
        S_l * H_l of each layer: the stacked state has ``sum(state_sizes)`` numbers.
    """

    spectra: tuple
    state_sizes: tuple

    @property
    def exponents(self) -> np.ndarray:
        """The exponents of every direction, shape (dirs, B, p), natural log per step,
        largest first."""
        return np.stack([s.exponents for s in self.spectra])

    def __repr__(self) -> str:
        return (f"NetworkLyapunov(directions={len(self.spectra)}, state_sizes="
                f"{list(self.state_sizes)}, exponents={self.exponents.shape})")


def _each_step(st, inputs):
    """The steps of a Steps in order: (dense, diag, dx or None) per step, float64."""
    for _, dense, diag, *dx in st.chunks(inputs=inputs):
        dense, diag = _f64(dense), _f64(diag)
        dx = _f64(dx[0]) if dx else None
        for k in range(dense.shape[0]):
            yield dense[k], diag[k], None if dx is None else dx[k]


def network_lyapunov(net, x, state0=None, *, transient: int | None = None,
                     n_exponents: int | None = None, window: int | None = None,
                     tol: float = 1e-3, interval: int | None = None) -> NetworkLyapunov:
    """Lyapunov exponents of the stacked state of a network (Benettin's QR method).

    A unidirectional stack is one recurrence in time whose state is every layer's state.
    Its one-step Jacobian is block lower-triangular in the layers: layer l at step t
    depends on its own state at t - 1 (``J^l_t``) and, through its input h^{l-1}_t, on
    the states of the layers below at t - 1.  ``J Q`` is assembled layer by layer,
    ``Z^l = J^l_t Q^l + (d s^l_t / d x^l_t) Z^{l-1}_h``, from each layer's generated
    Jacobians, and ``Q R = Z`` every few steps, as in :func:`gradflow.lyapunov_spectrum`
    (the same interval rule, in float64).

    A bidirectional network has a spectrum per direction: the stack of that direction's
    layers in that direction's time order, the other direction's outputs held as inputs
    (they are computed in the opposite order, so they do not belong to the same
    recurrence).

    Parameters
    ----------
    net : Network
    x : array_like, shape (T, B, D), or (B, T, D) when ``net.batch_first``
    state0 : optional
    transient, n_exponents, window, tol, interval
        As for :func:`gradflow.lyapunov_spectrum` (``n_exponents`` of ``sum S_l H_l``).

    Returns
    -------
    NetworkLyapunov
        For a one-layer network, ``spectra[0]`` is :func:`gradflow.lyapunov_spectrum`'s.
    """
    check.instance("net", net, Network, _NET_HINT)
    trace = net.forward(x, state0)
    T, B = trace.length, trace.batch_size
    cells = [pair[0].cell for pair in trace.traces]
    sizes = [len(c.spec.state) * c.hidden_size for c in cells]
    N = sum(sizes)
    transient, p, window, tol = check.lyapunov_options(T, N, transient, n_exponents, window, tol)
    offs = np.concatenate([[0], np.cumsum(sizes)])
    k0, adapt, log_cond, log_range, kmax = qr_schedule(interval, np.float64)
    spectra = []
    for d in range(net.num_directions):
        Q = np.zeros((B, N, p))
        Q[:, np.arange(p), np.arange(p)] = 1.0
        Z = np.empty_like(Q)
        sums = np.zeros((B, p))
        running = np.empty((T - transient, B, p))
        since = np.zeros(B, np.int64)
        intervals = np.full(B, k0, np.int64)
        qrs = np.zeros(B, np.int64)
        gens = [_each_step(steps.Steps(pair[d]), layer > 0)
                for layer, pair in enumerate(trace.traces)]
        # a QR of a few hundred columns is faster on one BLAS thread (as in
        # lyapunov_spectrum)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), \
                _threads.single_threaded_blas(N <= 512):
            for t, per_layer in enumerate(zip(*gens)):
                for layer, (dense, diag, dx) in enumerate(per_layer):
                    H = cells[layer].hidden_size
                    S, Sd = diag.shape[1], dense.shape[-1] // H
                    rows = slice(offs[layer], offs[layer + 1])
                    Ql, Zl = Q[:, rows], Z[:, rows]
                    np.matmul(dense, Ql[:, :Sd * H], out=Zl)
                    for a in range(S):
                        for c in range(Sd, S):
                            Zl[:, a * H:(a + 1) * H] += (diag[:, a, c, :, None]
                                                         * Ql[:, c * H:(c + 1) * H])
                    if layer > 0:
                        Hb = cells[layer - 1].hidden_size
                        zh = Z[:, offs[layer - 1]:offs[layer - 1] + Hb]   # d h^{l-1}_t
                        Zl += np.matmul(dx[:, :, d * Hb:(d + 1) * Hb], zh)
                if not np.isfinite(Z).all():
                    check.raise_nonfinite(
                        f"Lyapunov QR iteration of the network ({_direction(d)})",
                        t if d == 0 else T - 1 - t, "state",
                        "A one-step Jacobian holds a non-finite value.")
                Q, Z = Z, Q
                since += 1
                # a factorisation where due, or before the vectors' entries could overflow
                top = np.log(np.abs(Q).max(axis=(1, 2)))
                for b in np.flatnonzero((since >= intervals) | (top >= 0.5 * log_range)
                                        | (t == transient - 1) | (t == T - 1)):
                    logs, logc = fk.reorthonormalise(Q[b], t, transient, since[b], sums[b],
                                                     running[:, b])
                    qrs[b] += 1
                    if adapt:
                        intervals[b] = fk.qr_interval(logs, logc, since[b], log_cond,
                                                      log_range, kmax)
                    since[b] = 0
        spectra.append(LyapunovSpectrum.from_running(running, transient=transient,
                                                     window=window, tol=tol, qr_count=qrs))
    return NetworkLyapunov(spectra=tuple(spectra), state_sizes=tuple(sizes))
