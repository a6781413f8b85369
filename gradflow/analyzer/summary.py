"""The plain-language findings of an analysis, each computed from its numbers."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["findings", "layer_name", "power", "level", "only_lag0", "at_longest_lag",
           "PATH_LAG"]

#: the lag at which the summary quotes the direct path's share
PATH_LAG = 10


def layer_name(net, layer: int, direction: int) -> str:
    """``"layer 1"`` or ``"layer 1 (reverse)"`` (layers counted from 1)."""
    return f"layer {layer + 1}" + (" (reverse)" if direction else "" if net.num_directions == 1
                                   else " (forward)")


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power(log10_value: float) -> str:
    """A factor given by its log10: ``10⁻¹⁰`` when far from 1, else plain (``0.25``)."""
    if abs(log10_value) >= 3:
        return "10" + f"{log10_value:.0f}".translate(_SUPERSCRIPT)
    return f"{10 ** log10_value:.3g}"


def level(threshold: float) -> str:
    """A relative level such as 1e-8 as ``10⁻⁸``."""
    return power(math.log10(threshold))


def only_lag0(flow, layer: int, direction: int) -> bool:
    """Whether the last output depends on this layer's state at lag 0 only (every lag k >= 1
    exactly zero: the top layer's reverse direction)."""
    later = flow.log10_lag[layer, direction, 1:]
    later = later[~np.isnan(later)]
    return bool(later.size) and bool(np.all(np.isneginf(later)))


def at_longest_lag(flow, layer: int, direction: int) -> float:
    """The median log10 norm at the longest lag where it is defined, relative to lag 0."""
    v = flow.log10_lag[layer, direction]
    k = -1 if np.isfinite(v[-1]).any() or np.isneginf(v[-1]).any() else -2
    return float(np.nanmedian(v[k] - v[0]))


def findings(a) -> list[str]:
    """One sentence per finding: gradient horizons, gates, the direct path, the loss
    gradient's fall over time, the Lyapunov exponents, and the what-if."""
    net, flow = a.network, a.flow
    T = flow.length
    out = []
    for layer, pair in enumerate(net.layers):
        for d, cell in enumerate(pair):
            who = layer_name(net, layer, d)
            h = a.horizons[layer, d]
            finite = h[np.isfinite(h)]
            if np.isnan(h).all():
                out.append(f"{who}: the output at the last step does not depend on this layer's "
                           "state (its lag-0 gradient is exactly zero).")
                continue
            details = f"{cell.spec.name}, H = {cell.hidden_size}"
            text = (f"{who[:-1]}, {details}): " if who.endswith(")") else f"{who} ({details}): ")
            if only_lag0(flow, layer, d):
                text += ("the last output depends on this direction's state at the last step "
                         "only (a reverse direction reaches the last step first): at every lag "
                         "k ≥ 1 the gradient is exactly zero")
            elif finite.size == h.size:
                text += (f"the gradient of the last output with respect to this layer's state "
                         f"falls below {level(a.threshold)} of its lag-0 value after {np.median(finite):.0f} steps (median over "
                         f"{h.size} sequences; {finite.min():.0f} to {finite.max():.0f})")
            elif finite.size:
                text += (f"the gradient of the last output with respect to this layer's state "
                         f"falls below {level(a.threshold)} of its lag-0 value within "
                         f"the {T} steps in {finite.size} of {h.size} sequences (median "
                         f"{np.median(finite):.0f} steps) and stays above it in the others")
            else:
                end = at_longest_lag(flow, layer, d)
                text += (f"the gradient of the last output with respect to this layer's state "
                         f"stays above {level(a.threshold)} of its lag-0 value over "
                         f"all {T} steps (at the longest lag it is {power(end)} of it)")
            share = a.gate_below_half[layer, d]
            if np.isfinite(share):
                gate = cell.spec.forget_gate
                lo, hi = a.paths.saturated_low[layer, d], a.paths.saturated_high[layer, d]
                text += (f"; {100 * share:.0f} % of its {gate} gates are below 0.5, "
                         f"{100 * lo:.0f} % below {a.paths.saturation:g} and {100 * hi:.0f} % "
                         f"above {1 - a.paths.saturation:g}")
            pd = a.shares.paths[layer][d]
            if pd is not None and pd.log10_share is not None:
                k = int(np.searchsorted(pd.lags, PATH_LAG))
                if k < len(pd.lags):
                    s = float(np.nanmedian(pd.log10_share[k]))
                    text += (f"; at lag {int(pd.lags[k])} the direct ({'cell-state' if 'c' in cell.spec.state else 'self'}) "
                             f"path carries {100 * 10 ** s:.3g} % of the layer's own Jacobian "
                             f"(median of the first {a.detail} sequences)")
            out.append(text + ".")
    if flow.log10_grad is not None:
        g = np.nanmedian(flow.log10_grad[:, 0], axis=-1)  # (L, T), forward directions
        drop = g[:, -1] - g[:, 0]
        worst = int(np.argmax(drop))
        if math.isfinite(drop[worst]):
            out.append(f"The gradient of the loss on the hidden state ({a.objective}) is, at "
                       f"the first step, {power(-drop[worst])} of its value at the last step in "
                       f"{layer_name(net, worst, 0)} (median over sequences)"
                       + (f"; in {layer_name(net, 0, 0)}, {power(-drop[0])}" if worst else "")
                       + ".")
    if a.lyapunov is not None:
        lam = float(np.max(np.median(a.lyapunov.exponents[..., 0], axis=-1)))
        kind = ("perturbations of the state shrink" if lam < 0 else
                "perturbations of the state grow: the dynamics are chaotic on this input")
        out.append(f"The largest Lyapunov exponent of the stacked state is {lam:.3g} per step: "
                   f"{kind} (by e^λ per step, a factor {math.exp(lam):.3g}).")
    if a.whatif is not None:
        parts = []
        for layer, pair in enumerate(net.layers):
            for d, cell in enumerate(pair):
                if cell.spec.forget_gate is None or only_lag0(flow, layer, d):
                    continue
                before = _median_horizon(a.horizons[layer, d], T)
                after = _median_horizon(a.whatif.horizons[layer, d], T)
                lag_t = int(flow.lags[-1] if d == 0 else flow.lags[-2])
                parts.append(f"{layer_name(net, layer, d)}: horizon from {before} to {after} "
                             f"steps, gradient at lag {lag_t} from "
                             f"{power(at_longest_lag(flow, layer, d))} to "
                             f"{power(at_longest_lag(a.whatif.flow, layer, d))} of lag 0")
        out.append(f"With every forget-like gate's bias raised by {a.whatif.shift:g}: "
                   + "; ".join(parts) + ".")
    return out


def _median_horizon(h: np.ndarray, T: int) -> str:
    h = h[~np.isnan(h)]
    if not h.size:
        return "n/a"
    m = float(np.median(np.minimum(h, T + 1)))
    return f"more than {T}" if m > T else f"{m:.0f}"
