"""Optimizers and gradient clipping.

They work on dicts of float arrays ``{name: ndarray}`` and change parameters and gradients
in place where they say so.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as check
from ..errors import InvalidArgumentError

__all__ = ["SGD", "Adam", "make_optimizer", "global_norm", "clip_by_global_norm"]


def global_norm(grads: dict) -> float:
    """``sqrt(Σ ‖g‖²)`` over every array in `grads`."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_by_global_norm(grads: dict, max_norm: float | None) -> float:
    """Rescale every gradient in place by ``min(1, max_norm / ‖g‖)`` (``‖g‖`` the global
    norm), as ``torch.nn.utils.clip_grad_norm_``; returns the norm before clipping.

    ``max_norm=None`` leaves the gradients unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from gradflow.train import clip_by_global_norm
    >>> grads = {"weight": np.array([3.0, 0.0]), "bias": np.array([4.0])}
    >>> clip_by_global_norm(grads, 1.0)
    5.0
    >>> grads
    {'weight': array([0.6, 0. ]), 'bias': array([0.8])}
    """
    norm = global_norm(grads)
    if max_norm is None:
        return norm
    max_norm = check.real("max_norm", max_norm)
    if not max_norm > 0:
        raise InvalidArgumentError(f"`max_norm` must be a positive finite number or None; got {max_norm!r}")
    if norm > max_norm:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


def _learning_rate(lr) -> float:
    lr = check.real("lr", lr)
    if not lr > 0:
        raise InvalidArgumentError(f"`lr` must be a positive finite number; got {lr!r}")
    return lr


class SGD:
    """Stochastic gradient descent, optionally with (heavy-ball) momentum:
    ``v ← μ v + g``, ``p ← p - lr v`` (PyTorch's convention)."""

    def __init__(self, lr: float = 0.1, momentum: float = 0.0):
        lr = _learning_rate(lr)
        momentum = check.real("momentum", momentum, minimum=0.0)
        if not momentum < 1.0:
            raise InvalidArgumentError(f"`momentum` must be in [0, 1); got {momentum!r}")
        self.lr, self.momentum = float(lr), float(momentum)
        self.velocity: dict = {}

    def state(self) -> tuple[dict, dict]:
        """What a resumed run needs: ``(arrays, numbers)`` (the momentum buffers)."""
        return {f"velocity/{k}": v for k, v in self.velocity.items()}, {}

    def restore(self, arrays: dict, numbers: dict) -> None:
        """Continue from :meth:`state`."""
        self.velocity = {k.split("/", 1)[1]: np.array(v) for k, v in arrays.items()
                         if k.startswith("velocity/")}

    def step(self, params: dict, grads: dict) -> None:
        """Update `params` in place from `grads` (same keys)."""
        for name, g in grads.items():
            if self.momentum:
                v = self.velocity.setdefault(name, np.zeros_like(g))
                v *= self.momentum
                v += g
                g = v
            params[name] -= self.lr * g


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction, PyTorch's defaults:
    ``m ← β1 m + (1-β1) g``, ``v ← β2 v + (1-β2) g²``,
    ``p ← p - lr m̂ / (sqrt(v̂) + ε)`` with ``m̂ = m / (1-β1^t)``, ``v̂ = v / (1-β2^t)``."""

    def __init__(self, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8):
        lr = _learning_rate(lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise InvalidArgumentError(f"`betas` must be a pair of numbers in [0, 1); got {betas!r}")
        b1, b2 = (check.real("betas", b, minimum=0.0) for b in betas)
        if not (b1 < 1.0 and b2 < 1.0):
            raise InvalidArgumentError(f"`betas` must both lie in [0, 1); got {betas!r}")
        eps = check.real("eps", eps, minimum=0.0)
        self.lr, self.b1, self.b2, self.eps = float(lr), float(b1), float(b2), float(eps)
        self.t = 0
        self.m: dict = {}
        self.v: dict = {}

    def state(self) -> tuple[dict, dict]:
        """What a resumed run needs: ``(arrays, numbers)`` (the moments and the step)."""
        arrays = {f"m/{k}": v for k, v in self.m.items()}
        arrays.update({f"v/{k}": v for k, v in self.v.items()})
        return arrays, {"t": self.t}

    def restore(self, arrays: dict, numbers: dict) -> None:
        """Continue from :meth:`state`."""
        self.m = {k[2:]: np.array(v) for k, v in arrays.items() if k.startswith("m/")}
        self.v = {k[2:]: np.array(v) for k, v in arrays.items() if k.startswith("v/")}
        self.t = int(numbers["t"])

    def step(self, params: dict, grads: dict) -> None:
        """Update `params` in place from `grads` (same keys)."""
        self.t += 1
        c1 = 1.0 - self.b1 ** self.t
        c2 = 1.0 - self.b2 ** self.t
        for name, g in grads.items():
            m = self.m.setdefault(name, np.zeros_like(g))
            v = self.v.setdefault(name, np.zeros_like(g))
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * g * g
            params[name] -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def make_optimizer(name, lr: float):
    """``"adam"`` or ``"sgd"`` (or an optimizer object, returned as is)."""
    if hasattr(name, "step"):
        return name
    if isinstance(name, str) and name == "adam":
        return Adam(lr)
    if isinstance(name, str) and name == "sgd":
        return SGD(lr)
    raise InvalidArgumentError(f"`optimizer` must be 'adam', 'sgd' or an object with .step; got {name!r}")
