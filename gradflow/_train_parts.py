"""Pieces of training: the linear readout, the losses, the optimizers, clipping.

Everything works on dicts of float arrays ``{name: ndarray}`` and changes them in place
where it says so.  Derivatives here are those of the readout and of the losses (closed
forms); the cell's come from its generated kernels.
"""

from __future__ import annotations

import math

import numpy as np

from . import _validate as check
from .errors import InvalidArgumentError, ShapeError

__all__ = ["Readout", "mse_loss", "xent_loss", "loss_fn", "SGD", "Adam", "make_optimizer",
           "global_norm", "clip_by_global_norm"]


class Readout:
    """A linear readout ``out_t = h_t W^T + b`` applied at every step.

    Parameters
    ----------
    hidden_size, output_size : int
        H and K.
    seed : int or numpy.random.Generator, optional
        Initialisation: uniform in ``[-1/sqrt(H), 1/sqrt(H)]`` (as ``torch.nn.Linear``).
    dtype : numpy dtype

    Attributes
    ----------
    params : dict
        ``{"weight": (K, H), "bias": (K,)}``.
    """

    def __init__(self, hidden_size: int, output_size: int, *, seed=None, dtype=np.float64):
        H = check.positive_int("hidden_size", hidden_size)
        K = check.positive_int("output_size", output_size)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k = 1.0 / math.sqrt(H)
        self.params = {"weight": rng.uniform(-k, k, size=(K, H)).astype(dtype),
                       "bias": rng.uniform(-k, k, size=K).astype(dtype)}

    def forward(self, h: np.ndarray) -> np.ndarray:
        """``h`` (T, B, H) → outputs (T, B, K)."""
        return h @ self.params["weight"].T + self.params["bias"]

    def backward(self, h: np.ndarray, dout: np.ndarray) -> tuple[dict, np.ndarray]:
        """Gradients ``({"weight": (K, H), "bias": (K,)}, dh (T, B, H))`` from
        ``dout`` = dL/d(outputs), shape (T, B, K)."""
        K, H = self.params["weight"].shape
        d2 = dout.reshape(-1, K)
        grads = {"weight": d2.T @ h.reshape(-1, H), "bias": d2.sum(axis=0)}
        return grads, dout @ self.params["weight"]


def _check_loss_args(out, y, mask):
    out = np.asarray(out)
    if out.ndim != 3:
        raise ShapeError(f"`out` must have shape (T, B, K); got {out.shape}")
    y = check.array("y", y, dtype=out.dtype, shape=out.shape)
    mask = np.asarray(mask)
    if mask.shape != out.shape[:2]:
        raise ShapeError(f"`mask` must have shape (T, B) = {out.shape[:2]}; got {mask.shape}")
    mask = mask.astype(bool)
    n = int(mask.sum())
    if n == 0:
        raise InvalidArgumentError("`mask` selects no step: the loss would be empty")
    return out, y, mask, n


def mse_loss(out, y, mask) -> tuple[float, np.ndarray]:
    """Mean squared error over the masked steps.

    ``L = (1/N) Σ_{(t,b) masked} (1/K) Σ_k (out - y)²`` with N the number of masked steps.

    Parameters
    ----------
    out, y : ndarray, shape (T, B, K), float
    mask : ndarray, shape (T, B), bool

    Returns
    -------
    loss : float
    dout : ndarray, shape (T, B, K)
        dL/d(out), zero where the mask is False.
    """
    out, y, mask, n = _check_loss_args(out, y, mask)
    K = out.shape[-1]
    diff = (out - y) * mask[..., None]
    return float(np.sum(diff * diff) / (n * K)), diff * (2.0 / (n * K))


def xent_loss(out, y, mask) -> tuple[float, np.ndarray]:
    """Cross-entropy of ``softmax(out)`` against target distributions, mean over the
    masked steps: ``L = -(1/N) Σ_{(t,b) masked} Σ_k y_k log softmax(out)_k``.

    Parameters
    ----------
    out : ndarray, shape (T, B, K), float
        Logits.
    y : ndarray, shape (T, B, K), float
        Target probabilities (rows sum to 1 where masked; one-hot for a single class).
    mask : ndarray, shape (T, B), bool

    Returns
    -------
    loss : float
    dout : ndarray, shape (T, B, K)
        ``(softmax(out) · Σ_k y_k - y) / N`` where masked, 0 elsewhere.
    """
    out, y, mask, n = _check_loss_args(out, y, mask)
    z = out - out.max(axis=-1, keepdims=True)
    logz = np.log(np.exp(z).sum(axis=-1, keepdims=True))
    logp = z - logz
    m = mask[..., None]
    loss = -float(np.sum(np.where(m, y * logp, 0.0))) / n
    dout = np.where(m, np.exp(logp) * y.sum(axis=-1, keepdims=True) - y, 0.0) / n
    return loss, dout


def loss_fn(kind: str):
    """The loss function for a task's ``loss`` attribute (``"mse"`` or ``"xent"``)."""
    fns = {"mse": mse_loss, "xent": xent_loss}
    if not isinstance(kind, str) or kind not in fns:
        raise InvalidArgumentError(f"`loss` must be one of {list(fns)}; got {kind!r}")
    return fns[kind]


def global_norm(grads: dict) -> float:
    """``sqrt(Σ ‖g‖²)`` over every array in `grads`."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_by_global_norm(grads: dict, max_norm: float | None) -> float:
    """Rescale every gradient in place by ``min(1, max_norm / ‖g‖)`` (``‖g‖`` the global
    norm), as ``torch.nn.utils.clip_grad_norm_``; returns the norm before clipping.

    ``max_norm=None`` leaves the gradients unchanged.
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
