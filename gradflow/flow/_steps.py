"""Shared plumbing of the flow analyses (private): argument checks, the forward run, and
the one-step Jacobians of a trace produced chunk by chunk, forward or backward in time.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as check
from ..cell import as_cell
from . import _kernels as fk

#: bytes of assembled Jacobians held at once
CHUNK_BYTES = 4 * 2 ** 20

NORMS = ("spectral", "frobenius")


def spectral(norm: str) -> bool:
    """True for the spectral norm, False for Frobenius."""
    return check.choice("norm", norm, NORMS) == "spectral"


def run(cell, x, state0):
    """Validate and run the forward pass: the Trace."""
    return as_cell(cell).forward(x, state0)


def slots(lags: np.ndarray, T: int) -> np.ndarray:
    """(T + 1,) int64: index of each lag in `lags`, -1 where not wanted."""
    out = np.full(T + 1, -1, dtype=np.int64)
    out[lags] = np.arange(len(lags))
    return out


class Steps:
    """One-step Jacobians of a trace, assembled a chunk of steps at a time.

    Attributes
    ----------
    S, G, G1, H, B, T, Sd : int
        State components, gates, stage-one gates, units, batch rows, steps, and the number
        of dense column blocks of each Jacobian.
    """

    def __init__(self, trace):
        self.trace = trace
        cell = trace.cell
        spec = cell.spec
        self.cell = cell
        self.kernels = cell.kernels
        p = trace.kernel_params()
        self.S, self.G, self.G1 = len(spec.state), spec.num_gates, len(spec.stage1)
        self.H, self.D = cell.hidden_size, cell.input_size
        self.T, self.B = trace.length, trace.batch_size
        self.Sd = self.S if spec.stage2 else 1
        self.dtype = cell.dtype
        H, G1 = self.H, self.G1
        self.w1 = np.ascontiguousarray(p["weight_hh"][: G1 * H])
        self.w2 = np.ascontiguousarray(p["weight_hh"][G1 * H:])
        self.w_ih = p["weight_ih"]
        self.prm = trace.unit_params()
        per_step = self.B * self.S * H * self.Sd * H * self.dtype.itemsize
        self.chunk = int(max(1, min(self.T, CHUNK_BYTES // max(per_step, 1))))

    def _buffers(self, n):
        S, G, B, H, dt = self.S, self.G, self.B, self.H, self.dtype
        g2 = G if self.cell.spec.stage2 else 0
        s2 = S if self.cell.spec.stage2 else 0
        return dict(
            jax=np.empty((n, S, G, B, H), dt), jah=np.empty((n, S, G, B, H), dt),
            jsp=np.empty((n, S, S, B, H), dt), rax=np.empty((n, g2, B, H), dt),
            rah=np.empty((n, g2, B, H), dt), rsp=np.empty((n, s2, B, H), dt),
            dense=np.empty((n, B, S * H, self.Sd * H), dt),
            diag=np.zeros((n, B, S, S, H), dt),
        )

    def chunks(self, start: int = 0, stop: int | None = None, *, backward: bool = False,
               inputs: bool = False):
        """Yield ``(t0, dense, diag)`` (or ``(t0, dense, diag, dx)`` with `inputs`) for
        consecutive chunks of array steps in [start, stop), last chunk first when
        `backward`.  The arrays are reused between chunks."""
        stop = self.T if stop is None else stop
        if stop <= start:
            return
        n = min(self.chunk, stop - start)
        buf = self._buffers(n)
        tr, k = self.trace.kernel_arrays(), self.kernels
        starts = list(range(start, stop, n))
        if backward:
            starts.reverse()
        for t0 in starts:
            m = min(n, stop - t0)
            v = {name: a[:m] for name, a in buf.items()}
            k.partials_kernel(tr["ax"], tr["ah1"], tr["ah2"], tr["states"], self.prm, t0, v["jax"],
                              v["jah"], v["jsp"], v["rax"], v["rah"], v["rsp"])
            fk.assemble_kernel(v["jah"], v["jsp"], v["rah"], v["rsp"], self.w1, self.w2,
                               v["dense"], v["diag"])
            if inputs:
                dx = np.empty((m, self.B, self.S * self.H, self.D), self.dtype)
                fk.input_kernel(v["jax"], v["jah"], v["rax"], self.w_ih, self.w2, dx)
                yield t0, v["dense"], v["diag"], dx
            else:
                yield t0, v["dense"], v["diag"]

    def backward_products(self, rows: np.ndarray, blocks: np.ndarray, lags: np.ndarray,
                          spectral: bool, *, snap_lags=None, snap_block=None, dh=None):
        """Propagate the rows `rows` of the identity backward from T through every step,
        renormalised, recording block norms at `lags` (and snapshots at `snap_lags`).

        Returns ``(norms (nb, K, B) float64, snaps, snap_exp, loss_h, loss_s)``; the last
        two are (T, B) float64 when `dh` is given (a loss-gradient backward pass run in
        the same sweep), else None.
        """
        T, B, H, S, Sd = self.T, self.B, self.H, self.S, self.Sd
        SH, R = S * H, len(rows)
        dt = self.dtype
        V = np.zeros((B, R, SH), dt)
        V[:, np.arange(R), rows] = 1.0
        E = np.zeros((B, R), np.int64)
        Vn, tmp = np.empty_like(V), np.empty((B, R, Sd * H), dt)
        slot = slots(lags, T)
        nb = blocks.shape[0]
        out = np.full((nb, len(lags), B), np.nan)
        ust = np.zeros((nb, B, R))
        A = np.empty(R * SH)
        if snap_lags is None:
            snap_slot = np.full(T + 1, -1, np.int64)
            snap_block = np.zeros(4, np.int64)
            snaps = np.empty((0, B, 0, 0))
            snap_exp = np.empty((0, B), np.int64)
        else:
            snap_slot = slots(snap_lags, T)
            r0, r1, c0, c1 = snap_block
            snaps = np.empty((len(snap_lags), B, r1 - r0, c1 - c0))
            snap_exp = np.empty((len(snap_lags), B), np.int64)
        tmin = T - int(lags.max()) if snap_lags is None else T - int(max(lags.max(), snap_lags.max()))
        if dh is not None:
            g = np.zeros((B, 1, SH), dt)
            e = np.full((B, 1), fk.ZERO_EXP, np.int64)
            gn, gtmp = np.empty_like(g), np.empty((B, 1, Sd * H), dt)
            loss_h = np.empty((T, B))
            loss_s = np.empty((T, B))
            start = 0
        else:
            loss_h = loss_s = None
            start = tmin
        if tmin == T:  # only lag 0 wanted
            fk.lagmap_kernel(np.empty((0, B, SH, Sd * H), dt), np.empty((0, B, S, S, H), dt),
                             T, T, V, E, Vn, tmp, blocks, slot, spectral, out, ust, A,
                             snap_slot, snap_block, snaps, snap_exp)
        for t0, dense, diag in self.chunks(start, T, backward=True):
            n = dense.shape[0]
            if t0 + n > tmin:
                lo = max(0, tmin - t0)
                bad = fk.lagmap_kernel(dense[lo:], diag[lo:], t0 + lo, T, V, E, Vn, tmp,
                                       blocks, slot, spectral, out, ust, A, snap_slot,
                                       snap_block, snaps, snap_exp)
                if bad >= 0:
                    check.raise_nonfinite(
                        f"Jacobian product of {self.cell.spec.name!r} (swept back from the "
                        "last step)", bad, "state",
                        "A one-step Jacobian holds a non-finite value: a partial derivative "
                        "is infinite or NaN at this state.")
            if dh is not None:
                bad = fk.lossgrad_kernel(dense, diag, t0, dh, g, e, gn, gtmp, loss_h, loss_s)
                if bad >= 0:
                    check.raise_nonfinite(
                        f"loss-gradient backward pass of {self.cell.spec.name!r}", bad,
                        "state", "A one-step Jacobian holds a non-finite value: a partial "
                        "derivative is infinite or NaN at this state.")
        return out, snaps, snap_exp, loss_h, loss_s
