"""The linear readout and the losses of training, with their closed-form derivatives.

Everything works on float arrays; the cell's derivatives come from its generated kernels.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as check
from ..errors import InvalidArgumentError

__all__ = ["Readout", "mse_loss", "xent_loss", "loss_fn"]


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

    Examples
    --------
    Only the masked step counts:

    >>> import numpy as np
    >>> from gradflow.train import mse_loss
    >>> out = np.array([[[0.5]], [[1.0]]])              # (T, B, K) = (2, 1, 1)
    >>> y = np.array([[[0.0]], [[2.0]]])
    >>> loss, dout = mse_loss(out, y, mask=np.array([[False], [True]]))
    >>> loss, dout.ravel()
    (1.0, array([ 0., -2.]))
    """
    out, y, mask, n = check.loss_arrays(out, y, mask)
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
    out, y, mask, n = check.loss_arrays(out, y, mask)
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
