"""``gradflow.analyze``: measure the gradient flow of a trained network on data (what is
measured: see :mod:`gradflow.analyzer`).  The same model, data and seed give the same
numbers."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from .._display import Displayed
from ..errors import InvalidArgumentError, ShapeError
from .data import inputs as _inputs
from .data import random_inputs
from .models import LoadedModel, load_model

__all__ = ["analyze", "Analysis", "WhatIf", "LOSSES", "horizons_of"]

LOSSES = ("mse", "cross-entropy")
log = logging.getLogger("gradflow")


def horizons_of(log10_lag: np.ndarray, lags: np.ndarray, threshold: float) -> np.ndarray:
    """The first lag at which each curve of ``log10_lag`` (..., K, B) falls below
    `threshold` times its lag-0 value; ``inf`` when none does, NaN when the lag-0 value is
    not finite (a layer the output does not depend on)."""
    v = np.asarray(log10_lag, dtype=np.float64)
    v0 = v[..., :1, :]
    below = np.where(np.isnan(v), False, v < v0 + math.log10(threshold))
    first = np.where(below.any(axis=-2), lags[np.argmax(below, axis=-2)], np.inf)
    return np.where(np.isfinite(v0[..., 0, :]), first, np.nan)


@dataclass(eq=False, repr=False)
class WhatIf(Displayed):
    """The flow with every forget-like gate's bias shifted by `shift`.

    Attributes
    ----------
    shift : float
    network : Network
        The shifted copy.
    flow : NetworkFlow
    paths : NetworkPaths
    horizons : ndarray, shape (L, dirs, B)
    """

    shift: float
    network: object
    flow: object
    paths: object
    horizons: np.ndarray
    _shown = ("shift", "horizons")

    def _frame_columns(self) -> dict:
        return _horizon_columns(self.horizons)


@dataclass(eq=False, repr=False)
class Analysis(Displayed):
    """What :func:`analyze` measured; ``report(out)`` writes it as a report.

    Attributes
    ----------
    model : LoadedModel
    x : ndarray
        The input, in the network's layout.
    inputs : str
        Where the input came from, in words (a file, or labelled random inputs).
    objective : str
        What the loss gradients are of, in words.
    loss : float or None
        The loss of the targets (None without targets).
    flow : NetworkFlow
        Lag maps and loss gradients (per unit too).
    paths : NetworkPaths
        Direct paths, per-unit horizons and gates of every sequence (without the total
        Jacobians).
    shares : NetworkPaths
        The same with the total Jacobians, whose ``log10_share`` is the direct path's share,
        on the first `detail` sequences.
    lyapunov : NetworkLyapunov or None
        On the first `detail` sequences.
    detail : int
        How many sequences the shares and the Lyapunov spectrum use (they cost more per
        sequence than the rest).
    horizons : ndarray, shape (L, dirs, B)
        Each layer's gradient horizon at `threshold` (see :func:`horizons_of`).
    gate_below_half : ndarray, shape (L, dirs)
        Share of the forget-like gate's values below 0.5 (NaN without such a gate).
    threshold : float
    whatif : WhatIf or None
    summary : list of str
        Plain-language findings, each computed from the numbers above.
    seed : int
    """

    model: LoadedModel
    x: np.ndarray
    inputs: str
    objective: str
    loss: float | None
    flow: object
    paths: object
    shares: object
    lyapunov: object
    detail: int
    horizons: np.ndarray
    gate_below_half: np.ndarray
    threshold: float
    whatif: WhatIf | None
    summary: list = field(default_factory=list)
    seed: int = 0
    _shown = ("inputs", "objective", "loss", "threshold")

    @property
    def network(self):
        return self.model.network

    def _frame_columns(self) -> dict:
        """The lag maps in long form: layer, direction, lag, sequence, log10 norm."""
        v = self.flow.log10_lag  # (L, dirs, K, B)
        L, D, K, B = v.shape
        idx = np.indices(v.shape).reshape(4, -1)
        return {"layer": idx[0], "direction": idx[1], "lag": self.flow.lags[idx[2]],
                "sequence": idx[3], "log10_norm": v.ravel()}

    def _plot(self, ax) -> None:
        from ..plot import lag_map

        for layer, pair in enumerate(self.network.layers):
            for d in range(len(pair)):
                v = self.flow.log10_lag[layer, d]
                ok = np.isfinite(v).all(axis=1)
                if ok.sum() > 1:
                    lag_map(v[ok], self.flow.lags[ok], ax=ax,
                            label=f"layer {layer + 1}" + (" reverse" if d else ""))
        ax.legend(frameon=False, fontsize=7)

    def report(self, out, *, formats=("md", "html"), progress: bool = False) -> list:
        """Write the analysis as a report (Markdown and a self-contained HTML page, figures
        and their data) into `out`, replacing an earlier report there as a whole; returns
        the files written."""
        from .sections import write

        return write(self, out, formats=formats, progress=progress)

    def __repr__(self) -> str:
        net = self.network
        return (f"Analysis({net!r}, T={self.flow.length}, B={self.horizons.shape[-1]}, "
                f"objective={self.objective!r}, summary={len(self.summary)} findings)")


def _horizon_columns(h: np.ndarray) -> dict:
    idx = np.indices(h.shape).reshape(3, -1)
    return {"layer": idx[0], "direction": idx[1], "sequence": idx[2], "horizon": h.ravel()}


def analyze(model, x=None, *, targets=None, loss: str = "mse", readout: str | None = None,
            doutput=None, layout: str | None = None, name: str | None = None,
            kind: str | None = None, batch_first: bool | None = None, length: int = 200,
            batch: int = 8, seed: int = 0, threshold: float = 1e-8,
            forget_bias: float | None = None, exponents: int = 16, lyapunov: bool = True,
            detail: int = 4,
            trust_pickle: bool = False, progress: bool = False,
            inputs_label: str | None = None) -> Analysis:
    """Analyse the gradient flow of `model` on `x` (see the module documentation).

    Parameters
    ----------
    model : path, Network, Cell, torch.nn.Module, keras.Model, dict or LoadedModel
        See :func:`gradflow.analyzer.load_model` (`name`, `kind`, `batch_first`, `readout`
        and `trust_pickle` are passed to it).
    x : array_like, optional
        Input sequences, ``(T, B, D)`` or ``(B, T, D)`` as `layout` says (default: the
        model's layout; a 2-D array is one sequence).  Without it: standard normal inputs
        of the model's input size, `length` steps, `batch` sequences, from `seed`.
    targets : array_like, optional
        With a readout: ``(B, K)`` (the last step's targets) or per step, in `x`'s layout;
        for ``loss="cross-entropy"`` class indices ``(B,)`` / per step, or distributions.
        Without a readout, targets for the network's output itself (MSE).
    loss : {"mse", "cross-entropy"}
    readout : str, optional
        The model's linear layer that maps the network's output to the targets' space.
    doutput : array_like, optional
        ``dL/d(output)`` directly, shaped like the network's output (instead of targets).
    threshold : float
        The horizon's level, relative to lag 0 (default 1e-8).
    forget_bias : float, optional
        Shift every forget-like gate's bias (LSTM f, GRU z) by this much and measure again.
    exponents : int
        How many Lyapunov exponents (the largest); ``lyapunov=False`` skips them.
    detail : int
        The direct path's share (total Jacobians) and the Lyapunov spectrum are measured on
        the first `detail` sequences (default 4): they cost far more per sequence.
    progress : bool
        A progress bar of the stages on stderr.
    inputs_label : str, optional
        How the report names the inputs (default: their shape, or "random ...").

    Returns
    -------
    Analysis
    """
    from tqdm.auto import tqdm

    from ..flow import network_flow, network_lyapunov, network_paths

    seed = check.seed("seed", seed) or 0
    threshold = check.real("threshold", threshold, minimum=0.0)
    if not 0.0 < threshold < 1.0:
        raise InvalidArgumentError(f"`threshold` must be in (0, 1); got {threshold}")
    loss = check.choice("loss", loss, LOSSES)
    exponents = check.positive_int("exponents", exponents)
    detail = check.positive_int("detail", detail)
    if forget_bias is not None:
        forget_bias = check.real("forget_bias", forget_bias)
    loaded = load_model(model, name=name, kind=kind, batch_first=batch_first, readout=readout,
                        trust_pickle=trust_pickle)
    net = loaded.network
    if forget_bias is not None and all(c.spec.forget_gate is None for p in net.layers for c in p):
        raise InvalidArgumentError(f"`forget_bias` was given, but no layer of the model has a "
                                   f"forget-like gate ({sorted({c.spec.name for p in net.layers for c in p})})")
    if x is None:
        x = random_inputs(net, length=length, batch=batch, seed=seed)
        label = inputs_label or (f"random inputs: {batch} sequences of {length} steps, standard "
                                 f"normal, seed {seed} (no data given)")
    else:
        x = _inputs(x, net, layout=layout)
        T, B = (x.shape[1], x.shape[0]) if net.batch_first else x.shape[:2]
        label = inputs_label or f"{B} sequences of {T} steps"
    stages = ["forward pass and loss", "lag maps and loss gradients", "paths and gates"]
    stages += ["Lyapunov spectrum"] if lyapunov else []
    stages += ["what-if: forget-gate bias"] if forget_bias is not None else []
    bar = tqdm(total=len(stages), desc="gradflow analyze", unit="stage", disable=not progress,
               leave=False, dynamic_ncols=True)

    def stage(k):
        bar.set_description(f"gradflow analyze: {stages[k]}")

    try:
        stage(0)
        trace = net.forward(x)
        dout, objective, loss_value = _objective(loaded, trace, targets, loss, doutput, layout)
        dout = np.ascontiguousarray((dout.swapaxes(0, 1) if net.batch_first else dout)
                                    .astype(net.dtype))  # the network's layout and dtype
        bar.update()
        stage(1)
        flow = network_flow(net, x, doutput=dout, units=True)
        bar.update()
        stage(2)
        paths = network_paths(net, x, lags=flow.lags, threshold=threshold, total=False)
        few = x[:detail] if net.batch_first else x[:, :detail]
        shares = network_paths(net, few, lags=flow.lags, threshold=threshold)
        below_half = _gate_shares(trace)
        bar.update()
        lyap = None
        if lyapunov:
            stage(3)
            n = min(exponents, min(sum(c.hidden_size * len(c.spec.state) for c in p)
                                   for p in zip(*net.layers)))
            lyap = network_lyapunov(net, few, n_exponents=n)
            bar.update()
        horizons = horizons_of(flow.log10_lag, flow.lags, threshold)
        whatif = None
        if forget_bias is not None:
            stage(len(stages) - 1)
            shifted = shift_forget_bias(net, forget_bias)
            wflow = network_flow(shifted, x, doutput=dout, units=False)
            wpaths = network_paths(shifted, x, lags=flow.lags, threshold=threshold,
                                   total=False)
            whatif = WhatIf(forget_bias, shifted, wflow, wpaths,
                            horizons_of(wflow.log10_lag, wflow.lags, threshold))
            bar.update()
    finally:
        bar.close()
    result = Analysis(model=loaded, x=x, inputs=label, objective=objective, loss=loss_value,
                      flow=flow, paths=paths, shares=shares, lyapunov=lyap,
                      detail=min(detail, flow.log10_lag.shape[-1]), horizons=horizons,
                      gate_below_half=below_half, threshold=threshold, whatif=whatif, seed=seed)
    from .summary import findings

    result.summary = findings(result)
    return result


def shift_forget_bias(net, shift: float):
    """A copy of `net` whose forget-like gates' biases (``bias_ih`` rows of
    ``spec.forget_gate``) are raised by `shift`; cells without such a gate are unchanged."""
    out = net.copy()
    for pair in out.layers:
        for cell in pair:
            if cell.spec.forget_gate is not None:
                rows = cell.gate_slice(cell.spec.forget_gate)
                cell.params["bias_ih"][rows] += np.asarray(shift, dtype=cell.dtype)
    return out


def _gate_shares(trace) -> np.ndarray:
    """Share of each layer's forget-like gate values below 0.5, (L, dirs)."""
    out = np.full((len(trace.traces), len(trace.traces[0])), np.nan)
    for layer, pair in enumerate(trace.traces):
        for d, tr in enumerate(pair):
            gate = trace.network.layers[layer][d].spec.forget_gate
            if gate is not None:
                out[layer, d] = float(np.mean(tr.intermediate(gate) < 0.5))
    return out


def _objective(loaded: LoadedModel, trace, targets, loss: str, doutput, layout):
    """``dL/d(output)`` (time-major), what it is of, and the loss value."""
    from ..train.losses import mse_loss, xent_loss

    net = loaded.network
    out = trace.output  # (T, B, F), time-major here
    if net.batch_first:
        out = out.swapaxes(0, 1)
    T, B, F = out.shape
    if doutput is not None and targets is not None:
        raise InvalidArgumentError("give `targets` or `doutput`, not both")
    if doutput is not None:
        d = np.asarray(doutput, dtype=np.float64)
        want = (B, T, F) if net.batch_first else (T, B, F)
        if d.shape != want:
            raise ShapeError(f"`doutput` has shape {d.shape}; expected the network output's "
                             f"{want}")
        if not np.isfinite(d).all():
            raise InvalidArgumentError("`doutput` holds NaN or infinite values")
        return (d.swapaxes(0, 1) if net.batch_first else d), "the given dL/d(output)", None
    if targets is None:
        d = np.zeros((T, B, F))
        d[-1] = 1.0
        return d, "the probe s = Σ_j h^L_T[j], as no targets were given", None
    y = np.asarray(targets)
    batch_first = net.batch_first if layout is None else layout == "btd"
    if loaded.readout is not None:
        W, b = loaded.readout
        logits = out.astype(np.float64) @ W.T + b
    else:
        if loss != "mse":
            raise InvalidArgumentError("`loss` 'cross-entropy' needs a readout (readout=...)")
        W, logits = None, out.astype(np.float64)
    K = logits.shape[-1]
    last = y.ndim == (1 if loss == "cross-entropy" and y.dtype.kind in "iu" else 2)
    if loss == "cross-entropy" and y.dtype.kind in "iu":
        if (y < 0).any() or (y >= K).any():
            raise InvalidArgumentError(f"`targets` holds class indices outside [0, {K})")
        y = np.eye(K)[y]
    y = y.astype(np.float64)
    if not np.isfinite(y).all():
        raise InvalidArgumentError("`targets` holds NaN or infinite values")
    if last:
        if y.shape != (B, K):
            raise ShapeError(f"`targets` has shape {y.shape}; expected (B, K) = {(B, K)} for "
                             "the last step, or one per step")
        mask = np.zeros((T, B), dtype=bool)
        mask[-1] = True
        full = np.zeros((T, B, K))
        full[-1] = y
    else:
        full = y.swapaxes(0, 1) if batch_first else y
        if full.shape != (T, B, K):
            order = "(B, T, K)" if batch_first else "(T, B, K)"
            raise ShapeError(f"`targets` has shape {y.shape}; expected {order} with T = {T}, "
                             f"B = {B}, K = {K}, or (B, K) for the last step")
        mask = np.ones((T, B), dtype=bool)
    fn = mse_loss if loss == "mse" else xent_loss
    value, dlogits = fn(logits, full, mask)
    d = dlogits @ W if W is not None else dlogits
    where = "the last step" if last else "every step"
    via = "through the readout" if W is not None else "on the network's output"
    return d, f"the {loss} loss of the targets at {where}, {via}", float(value)
