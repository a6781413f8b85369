"""The linear readout and the losses of training, with their closed-form derivatives.

Everything works on float arrays; the cell's derivatives come from its generated kernels.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as check
from ..errors import InvalidArgumentError

__all__ = ["Readout", "mse_loss", "xent_loss", "sse_loss", "loss_fn"]


class Readout:
    """A linear readout ``out_t = h_t W^T + b`` applied at every step, optionally also
    reading the input: ``out_t = h_t W^T + x_t V^T + b`` (``input_size``).

    Parameters
    ----------
    hidden_size, output_size : int
        H and K.
    seed : int or numpy.random.Generator, optional
        Initialisation: uniform in ``[-1/sqrt(H), 1/sqrt(H)]`` (as ``torch.nn.Linear``).
    dtype : numpy dtype
    input_size : int, optional
        D: the outputs also read the input directly (the shortcut connections of the 1997
        nets of Exp. 2a/2b, "each layer receives connections from all layers below").

    Attributes
    ----------
    params : dict
        ``{"weight": (K, H), "bias": (K,)}``, and ``"input": (K, D)`` with `input_size`.
    """

    def __init__(self, hidden_size: int, output_size: int, *, seed=None, dtype=np.float64,
                 input_size: int | None = None):
        H = check.positive_int("hidden_size", hidden_size)
        K = check.positive_int("output_size", output_size)
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        k = 1.0 / math.sqrt(H)
        self.params = {"weight": rng.uniform(-k, k, size=(K, H)).astype(dtype),
                       "bias": rng.uniform(-k, k, size=K).astype(dtype)}
        if input_size is not None:
            D = check.positive_int("input_size", input_size)
            self.params["input"] = rng.uniform(-k, k, size=(K, D)).astype(dtype)

    def forward(self, h: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
        """``h`` (T, B, H) (and ``x`` (T, B, D) with the shortcut) → outputs (T, B, K)."""
        out = h @ self.params["weight"].T + self.params["bias"]
        if "input" in self.params:
            out += x @ self.params["input"].T
        return out

    def backward(self, h: np.ndarray, dout: np.ndarray, x: np.ndarray | None = None
                 ) -> tuple[dict, np.ndarray]:
        """Gradients ``({"weight": (K, H), "bias": (K,)}, dh (T, B, H))`` from
        ``dout`` = dL/d(outputs), shape (T, B, K) (and ``"input": (K, D)`` from ``x``
        with the shortcut)."""
        K, H = self.params["weight"].shape
        d2 = dout.reshape(-1, K)
        grads = {"weight": d2.T @ h.reshape(-1, H), "bias": d2.sum(axis=0)}
        if "input" in self.params:
            grads["input"] = d2.T @ x.reshape(-1, x.shape[-1])
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


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + e^-a)``, computed as ``(1 + tanh(a/2)) / 2`` (no
    overflow for large ``|a|``)."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def sse_loss(out, y, mask) -> tuple[float, np.ndarray]:
    """Half the squared error of logistic output units, summed over the output units and
    the masked steps of each sequence, mean over the sequences: the error of Hochreiter &
    Schmidhuber's (1997) nets, ``E = ½ Σ_t Σ_k (σ(out) - y)²`` per sequence (their
    appendix A.1 writes it without the ½ and folds the 2 into the learning rate).

    Parameters
    ----------
    out : ndarray, shape (T, B, K), float
        Net inputs of the output units; their activations are ``σ(out)``.
    y : ndarray, shape (T, B, K), float
        Targets.
    mask : ndarray, shape (T, B), bool

    Returns
    -------
    loss : float
    dout : ndarray, shape (T, B, K)
        ``(σ - y) σ (1 - σ) / B`` where masked, 0 elsewhere.

    Examples
    --------
    >>> import numpy as np
    >>> from gradflow.train import sse_loss
    >>> out = np.zeros((2, 1, 1))                       # σ(0) = 1/2 at both steps
    >>> loss, dout = sse_loss(out, np.ones((2, 1, 1)), mask=np.array([[True], [True]]))
    >>> loss, dout.ravel()
    (0.25, array([-0.125, -0.125]))
    """
    out, y, mask, _ = check.loss_arrays(out, y, mask)
    B = out.shape[1]
    p = sigmoid(out)
    diff = (p - y) * mask[..., None]
    return float(0.5 * np.sum(diff * diff) / B), diff * (p * (1.0 - p) / B)


def loss_fn(kind: str):
    """The loss function for a task's ``loss`` attribute (``"mse"`` or ``"xent"``), or
    ``"sse"`` for logistic output units (:func:`sse_loss`)."""
    fns = {"mse": mse_loss, "xent": xent_loss, "sse": sse_loss}
    if not isinstance(kind, str) or kind not in fns:
        raise InvalidArgumentError(f"`loss` must be one of {list(fns)}; got {kind!r}")
    return fns[kind]
