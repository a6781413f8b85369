"""The classic long-lag tasks: generators, success criteria and chance baselines.

Every task makes time-major batches: inputs ``x`` of shape ``(T, B, D)``, targets ``y``
of shape ``(T, B, K)`` and a boolean ``mask`` of shape ``(T, B)`` that says where the
loss applies.  Sequences of different lengths are right-padded with zeros and the mask is
False on the padding, so the outputs after a sequence's end never reach the loss; a
batch is therefore equivalent to processing each sequence on its own.

Tasks (see :func:`names`, :func:`get`):

``adding``
    Hochreiter & Schmidhuber 1997, Exp. 4: pairs (value in [-1, 1], marker in
    {-1, 0, 1}), target ``0.5 + (X1 + X2) / 4`` at the end; correct if ``|error| < 0.04``.
``adding-uniform``
    The later form: values U[0, 1], one marker in each half, target ``X1 + X2``;
    predicting the mean gives MSE 1/6; solved when the MSE is below 0.01.
``temporal-order``
    1997 Exp. 6a (6b with ``order=3``): classify the order of X/Y symbols hidden in noise.
``copy``
    Memorise 10 symbols over a lag of T; memoryless baseline cross-entropy
    ``10 ln 8 / (T + 20)``.
``long-lag``
    1997 Exp. 2a: the noise-free sequences (y, a1 .. a_{p-1}, y) / (x, a1 .. a_{p-1}, x);
    Exp. 2b with ``random=True`` (the middle symbols random).
``distractors``
    1997 Exp. 2c: remember the second symbol over at least q random distractor symbols
    (p of them) until a trigger.
``two-sequence``
    1997 Exp. 3a/3b/3c: Bengio et al.'s 2-sequence problem, noise and signal on one
    input line (noise on the signal too, or noisy real-valued targets).
``multiplication``
    1997 Exp. 5: like ``adding``, with values in [0, 1] and the product as target.
``reber``
    The embedded Reber grammar (1997 Exp. 1): predict the next symbol(s).

>>> from gradflow import tasks
>>> task = tasks.get("adding", length=100)
>>> batch = task.batch(4, seed=0)
>>> batch.x.shape, batch.y.shape, batch.mask.shape, int(batch.mask.sum())
((110, 4, 2), (110, 4, 1), (110, 4), 4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _validate as check
from ..errors import InvalidArgumentError

__all__ = ["Batch", "Task", "get", "names", "Adding", "AddingUniform", "TemporalOrder",
           "Copy", "LongLag", "Distractors", "TwoSequence", "Multiplication", "EmbeddedReber"]


@dataclass
class Batch:
    """One batch of a task.

    Attributes
    ----------
    x : ndarray, shape (T, B, D), float64
        Time-major inputs, zero after each sequence's end.
    y : ndarray, shape (T, B, K), float64
        Targets: real values (``loss == "mse"``) or probability vectors over K classes
        (``loss == "xent"``; one-hot, or uniform over the legal symbols for ``reber``).
    mask : ndarray, shape (T, B), bool
        Where the loss applies.
    lengths : ndarray, shape (B,), int64
        Each sequence's length.
    expected : ndarray, shape (T, B, K), float64, or None
        Tasks with noisy targets (``two-sequence`` with ``noisy_target=True``): the
        noise-free target, which a perfect net outputs and the criterion compares with.
        None for the others.
    """

    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    expected: np.ndarray | None = None

    @property
    def size(self) -> int:
        return self.x.shape[1]


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        seed = check.positive_int("seed", seed, minimum=0)
    return np.random.default_rng(seed)


def _option(name: str, value, kind: str, low=None, high=None):
    """Validate a task option: an int (``kind="int"``) or a float within [low, high]."""
    if kind == "int":
        value = check.positive_int(name, value, minimum=low if low is not None else 1)
        if high is not None and value > high:
            raise InvalidArgumentError(f"`{name}` must be <= {high}; got {value}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InvalidArgumentError(f"`{name}` must be a number; got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise InvalidArgumentError(f"`{name}` must be a finite number in [{low}, {high}]; got {value}")
    return value


class Task:
    """Base class: a task makes batches and judges outputs.

    Attributes
    ----------
    name : str
    input_size, output_size : int
        D and K.
    loss : {"mse", "xent"}
        Squared error on linear outputs, or cross-entropy over a softmax of the outputs.
    max_length : int
        T of every batch (the longest possible sequence).
    stop_loss : float
        Early stopping also needs the mean training loss over the window below this.
    chance : dict
        What a net without long-lag memory achieves: ``{"loss": float or None,
        "accuracy": float, "note": str}``.
    paper : dict or None
        The 1997 result for this setting, when the paper has one.
    """

    name = ""
    loss = "mse"
    stop_loss = 0.01

    def batch(self, batch_size: int, seed=None) -> Batch:
        """A batch of `batch_size` sequences from `seed` (int, None or a numpy Generator)."""
        batch_size = check.positive_int("batch_size", batch_size)
        # inputs, targets and mask: (T, B, D + K + 1) numbers
        check.fits_in_memory(
            "the batch", self.max_length * batch_size * (self.input_size + self.output_size + 1) * 8,
            f"T={self.max_length}, batch_size={batch_size}")
        return self._make(batch_size, _rng(seed))

    def predictions(self, out: np.ndarray) -> np.ndarray:
        """What the net predicts from raw outputs ``(T, B, K)``: the outputs themselves
        (``mse``) or softmax probabilities (``xent``)."""
        if self.loss == "mse":
            return out
        z = out - out.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    def correct(self, out: np.ndarray, batch: Batch) -> np.ndarray:
        """Per-sequence success, shape (B,) bool, from raw outputs ``out`` (T, B, K)."""
        raise NotImplementedError

    def options(self) -> dict:
        return {}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"


def _all_masked(ok: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T, B) per-step success → (B,): every masked step succeeded."""
    return np.all(ok | ~mask, axis=0)


class Adding(Task):
    """The adding problem in the form of Hochreiter & Schmidhuber 1997, Exp. 4.

    Each step holds a pair (value ∈ U[-1, 1], marker).  One of the first ten pairs and
    one more of the first ``T/2 - 1`` pairs are marked 1; the first and last pairs are
    marked -1 unless marked 1 (when the first pair is marked, its value is set to 0).  Lengths are uniform in ``[T, T + T/10]`` (``variable_length=True``, the paper's
    setting) or all T.  The target at the last step is ``0.5 + (X1 + X2) / 4``; a
    sequence is correct if ``|error| < tolerance`` (0.04).
    """

    name = "adding"
    loss = "mse"
    stop_loss = 0.01
    input_size = 2
    output_size = 1

    def __init__(self, length: int = 100, *, variable_length: bool = True, tolerance: float = 0.04):
        self.length = _option("length", length, "int", low=20)
        self.variable_length = bool(variable_length)
        self.tolerance = _option("tolerance", tolerance, "float", 0.0, 1.0)
        self.max_length = self.length + (self.length // 10 if self.variable_length else 0)
        # P(pair 0 is marked), when its value is 0 and the sum holds one U[-1, 1] term
        n = self.length // 2 - 1
        p0 = 0.1 + sum(0.1 / (n - (i1 < n)) for i1 in range(1, 10))
        # predicting the mean 0.5: MSE = Var((X1 + X2) / 4) = (2 - p0) (1/3) / 16
        self.chance = {"loss": (2.0 - p0) / 3.0 / 16.0,
                       "accuracy": p0 * min(4.0 * self.tolerance, 1.0) + (1 - p0) * _adding_chance(self.tolerance),
                       "note": "always output 0.5 (the mean target)"}
        self.paper = _PAPER_ADDING.get(self.length) if self.variable_length else None

    def options(self):
        return {"length": self.length, "variable_length": self.variable_length, "tolerance": self.tolerance}

    def _make(self, B, rng):
        x, lengths, first, second = _marked_pairs(self, B, rng, -1.0, 1.0, 0.0)
        Tm = self.max_length
        cols = np.arange(B)
        y = np.zeros((Tm, B, 1))
        mask = np.zeros((Tm, B), dtype=bool)
        y[lengths - 1, cols, 0] = 0.5 + (x[first, cols, 0] + x[second, cols, 0]) / 4.0
        mask[lengths - 1, cols] = True
        return Batch(x, y, mask, lengths)

    def correct(self, out, batch):
        err = np.abs(out[..., 0] - batch.y[..., 0])
        return _all_masked(err < self.tolerance, batch.mask)


def _marked_pairs(task, B, rng, low, high, first_value):
    """The inputs of the adding and multiplication problems (1997 Exp. 4 and 5): pairs
    (value in U[low, high], marker); one of the first ten pairs and one more of the first
    ``T/2 - 1`` marked 1, the first and last pairs -1 unless marked 1, and the value of the
    first pair set to `first_value` when it is marked.  Returns ``x (Tm, B, 2)``, the
    lengths (B,) and the two marked positions (B,) each."""
    T, Tm = task.length, task.max_length
    lengths = (rng.integers(T, Tm + 1, size=B) if task.variable_length
               else np.full(B, T)).astype(np.int64)
    x = np.zeros((Tm, B, 2))
    first = np.empty(B, dtype=np.int64)
    second = np.empty(B, dtype=np.int64)
    n = T // 2 - 1
    for b in range(B):
        L = int(lengths[b])
        x[:L, b, 0] = rng.uniform(low, high, size=L)
        x[0, b, 1] = -1.0
        x[L - 1, b, 1] = -1.0
        i1 = int(rng.integers(0, 10))
        # one of the positions < n other than i1
        k = int(rng.integers(0, n - 1 if i1 < n else n))
        i2 = k + (k >= i1) if i1 < n else k
        if 0 in (i1, i2):
            x[0, b, 0] = first_value
        x[i1, b, 1] = 1.0
        x[i2, b, 1] = 1.0
        first[b], second[b] = i1, i2
    return x, lengths, first, second


def _adding_chance(tol: float) -> float:
    """P(|(X1 + X2)/4| < tol) for X1, X2 ~ U[-1, 1]: the sum s = X1 + X2 is triangular
    on [-2, 2] with density (2 - |s|)/4; |s| < 4 tol has probability 1 - (1 - 2 tol)^2."""
    a = min(4.0 * tol, 2.0)
    return 1.0 - (1.0 - a / 2.0) ** 2


#: Hochreiter & Schmidhuber 1997, Table 7 (adding): T -> wrong of 2,560 test sequences,
#: training sequences until the stopping rule held.
_PAPER_ADDING = {
    100: {"wrong": 1, "test": 2560, "sequences": 74_000},
    500: {"wrong": 0, "test": 2560, "sequences": 209_000},
    1000: {"wrong": 1, "test": 2560, "sequences": 853_000},
}


class Multiplication(Adding):
    """The multiplication problem, Hochreiter & Schmidhuber 1997, Exp. 5.

    As :class:`Adding`, but the values are uniform in [0, 1], the value of the first pair
    is set to 1.0 when that pair is marked, and the target at the last step is the product
    ``X1 * X2``.  A sequence is correct if ``|error| < tolerance`` (0.04).  Predicting the
    mean target gives an MSE of about 0.05.
    """

    name = "multiplication"
    stop_loss = 0.01

    def __init__(self, length: int = 100, *, variable_length: bool = True, tolerance: float = 0.04):
        super().__init__(length, variable_length=variable_length, tolerance=tolerance)
        n = self.length // 2 - 1
        p0 = 0.1 + sum(0.1 / (n - (i1 < n)) for i1 in range(1, 10))
        # X1 X2 with X1 = 1 when the first pair is marked: a mixture of U[0, 1] (p0) and the
        # product of two uniforms, whose density is -ln z on (0, 1)
        mean = p0 / 2 + (1 - p0) / 4
        second = p0 / 3 + (1 - p0) / 9
        tol = self.tolerance

        def cdf(z):           # P(X1 X2 <= z) for two independent U[0, 1]
            z = min(max(z, 0.0), 1.0)
            return 0.0 if z == 0.0 else z - z * math.log(z)

        lo, hi = mean - tol, mean + tol
        hit = p0 * (min(hi, 1.0) - max(lo, 0.0)) + (1 - p0) * (cdf(hi) - cdf(lo))
        self.chance = {"loss": second - mean ** 2, "accuracy": hit,
                       "note": "always output the mean target"}
        self.paper = ({"wrong": 14, "test": 2560, "sequences": 1_273_000}
                      if self.length == 100 and self.variable_length else None)

    def _make(self, B, rng):
        x, lengths, first, second = _marked_pairs(self, B, rng, 0.0, 1.0, 1.0)
        Tm = self.max_length
        cols = np.arange(B)
        y = np.zeros((Tm, B, 1))
        mask = np.zeros((Tm, B), dtype=bool)
        y[lengths - 1, cols, 0] = x[first, cols, 0] * x[second, cols, 0]
        mask[lengths - 1, cols] = True
        return Batch(x, y, mask, lengths)


class AddingUniform(Task):
    """The adding problem as in later work: values U[0, 1], markers 0/1, one marked
    position uniform in each half of a length-T sequence; target ``X1 + X2`` at the
    last step.  Predicting the mean 1 gives MSE 1/6 ≈ 0.167; solved when the MSE is
    below ``threshold`` (0.01).  A sequence counts as correct if ``|error| < tolerance``.
    """

    name = "adding-uniform"
    loss = "mse"
    input_size = 2
    output_size = 1

    def __init__(self, length: int = 100, *, threshold: float = 0.01, tolerance: float = 0.04):
        self.length = self.max_length = _option("length", length, "int", low=2)
        self.stop_loss = self.threshold = _option("threshold", threshold, "float", 0.0, 1.0)
        self.tolerance = _option("tolerance", tolerance, "float", 0.0, 2.0)
        self.chance = {"loss": 1.0 / 6.0, "accuracy": None, "note": "always output 1 (the mean target)"}
        self.paper = None

    def options(self):
        return {"length": self.length, "threshold": self.threshold, "tolerance": self.tolerance}

    def _make(self, B, rng):
        T = self.length
        half = T // 2
        x = np.zeros((T, B, 2))
        x[:, :, 0] = rng.uniform(0.0, 1.0, size=(T, B))
        i1 = rng.integers(0, half, size=B)
        i2 = rng.integers(half, T, size=B)
        cols = np.arange(B)
        x[i1, cols, 1] = 1.0
        x[i2, cols, 1] = 1.0
        y = np.zeros((T, B, 1))
        y[T - 1, :, 0] = x[i1, cols, 0] + x[i2, cols, 0]
        mask = np.zeros((T, B), dtype=bool)
        mask[T - 1] = True
        return Batch(x, y, mask, np.full(B, T, dtype=np.int64))

    def correct(self, out, batch):
        err = np.abs(out[..., 0] - batch.y[..., 0])
        return _all_masked(err < self.tolerance, batch.mask)


class TemporalOrder(Task):
    """The temporal-order problem, Hochreiter & Schmidhuber 1997, Exp. 6a (``order=2``)
    and 6b (``order=3``).

    Symbols are one-hot over ``a b c d X Y E B`` (D = 8).  A sequence starts with E,
    ends with B, and holds random symbols from {a, b, c, d} except at ``order`` positions
    that hold X or Y.  For T = 100: lengths in [100, 110]; 6a: t1 ∈ [10, 20],
    t2 ∈ [50, 60]; 6b: t1 ∈ [10, 20], t2 ∈ [33, 43], t3 ∈ [66, 76] (1-based); other T
    scale these ranges by T/100.  The class (4 or 8 of them) is the X/Y pattern in order,
    the target at the last step; a sequence is correct if every output's absolute error
    is below 0.3 (here: of the softmax probabilities against the one-hot target).
    """

    name = "temporal-order"
    loss = "xent"
    stop_loss = 0.1
    input_size = 8
    SYMBOLS = "abcdXYEB"

    def __init__(self, length: int = 100, *, order: int = 2, variable_length: bool = True,
                 tolerance: float = 0.3):
        self.length = _option("length", length, "int", low=20)
        self.order = _option("order", order, "int", low=2, high=3)
        self.variable_length = bool(variable_length)
        self.tolerance = _option("tolerance", tolerance, "float", 0.0, 1.0)
        self.output_size = 2 ** self.order
        self.max_length = self.length + (self.length // 10 if self.variable_length else 0)
        starts = (10, 50) if self.order == 2 else (10, 33, 66)
        s = self.length / 100.0
        # 1-based paper positions [a, a + 10] scaled, as 0-based inclusive ranges
        self.windows = [(max(1, round(a * s) - 1), max(1, round((a + 10) * s) - 1)) for a in starts]
        self.chance = {"loss": math.log(self.output_size), "accuracy": 0.0,
                       "note": f"uniform over {self.output_size} classes (every probability "
                               f"{1 / self.output_size:.3g}: no class reaches {1 - self.tolerance:.2g})"}
        self.paper = ({2: {"wrong": 1, "test": 2560, "sequences": 31_390},
                       3: {"wrong": 2, "test": 2560, "sequences": 571_100}}[self.order]
                      if self.length == 100 and self.variable_length else None)

    def options(self):
        return {"length": self.length, "order": self.order, "variable_length": self.variable_length,
                "tolerance": self.tolerance}

    def _make(self, B, rng):
        T, Tm, K = self.length, self.max_length, self.output_size
        lengths = rng.integers(T, Tm + 1, size=B) if self.variable_length else np.full(B, T)
        x = np.zeros((Tm, B, 8))
        y = np.zeros((Tm, B, K))
        mask = np.zeros((Tm, B), dtype=bool)
        for b in range(B):
            L = int(lengths[b])
            sym = rng.integers(0, 4, size=L)
            sym[0], sym[L - 1] = 6, 7
            cls = 0
            for lo, hi in self.windows:
                t = int(rng.integers(lo, hi + 1))
                which = int(rng.integers(0, 2))       # 0: X, 1: Y
                sym[t] = 4 + which
                cls = 2 * cls + which
            x[np.arange(L), b, sym] = 1.0
            y[L - 1, b, cls] = 1.0
            mask[L - 1, b] = True
        return Batch(x, y, mask, lengths.astype(np.int64))

    def correct(self, out, batch):
        p = self.predictions(out)
        ok = np.all(np.abs(p - batch.y) < self.tolerance, axis=-1)
        return _all_masked(ok, batch.mask)


class Copy(Task):
    """The copy (memory) task: read 10 symbols from an alphabet of 8, wait T steps, write
    them back.

    Inputs are one-hot over 10 symbols (8 letters, blank = 8, delimiter = 9): the 10
    letters, ``T - 1`` blanks, the delimiter, 10 blanks (``T + 20`` steps).  The target is
    blank (class 8 of K = 9) for the first ``T + 10`` steps and the 10 letters after.
    The loss is the mean cross-entropy over all steps; a net that writes blanks and then
    guesses uniformly scores ``10 ln 8 / (T + 20)``.  A sequence is correct when every
    step's most probable class is the target.
    """

    name = "copy"
    loss = "xent"
    input_size = 10
    output_size = 9
    N = 10

    def __init__(self, length: int = 100):
        self.length = _option("length", length, "int", low=1)
        self.max_length = self.length + 2 * self.N
        base = self.N * math.log(8) / self.max_length
        self.stop_loss = 0.1 * base
        self.chance = {"loss": base, "accuracy": 8.0 ** -self.N,
                       "note": "blanks, then uniform guesses over the 8 letters"}
        self.paper = None

    def options(self):
        return {"length": self.length}

    def _make(self, B, rng):
        T, Tm, N = self.length, self.max_length, self.N
        letters = rng.integers(0, 8, size=(N, B))
        inp = np.full((Tm, B), 8)
        inp[:N] = letters
        inp[N + T - 1] = 9
        tgt = np.full((Tm, B), 8)
        tgt[Tm - N:] = letters
        x = np.zeros((Tm, B, 10))
        y = np.zeros((Tm, B, 9))
        t_idx, b_idx = np.meshgrid(np.arange(Tm), np.arange(B), indexing="ij")
        x[t_idx, b_idx, inp] = 1.0
        y[t_idx, b_idx, tgt] = 1.0
        return Batch(x, y, np.ones((Tm, B), dtype=bool), np.full(B, Tm, dtype=np.int64))

    def correct(self, out, batch):
        ok = out.argmax(axis=-1) == batch.y.argmax(axis=-1)
        return _all_masked(ok, batch.mask)


class LongLag(Task):
    """The long time lag task, Hochreiter & Schmidhuber 1997, Exp. 2a (``random=False``)
    and 2b (``random=True``).

    ``p + 1`` symbols one-hot (``a_1 .. a_{p-1}`` = 0 .. p-2, ``x`` = p-1, ``y`` = p).
    Exp. 2a: the sequences ``(y, a_1, ..., a_{p-1}, y)`` and ``(x, a_1, ..., a_{p-1}, x)``,
    equally likely.  Exp. 2b: the middle ``p - 1`` symbols are drawn at random from
    ``a_1 .. a_{p-1}``, so only the last symbol is predictable.  At each of the p steps the
    net predicts the next symbol; only the last prediction needs memory, over a lag of p.
    A sequence is correct when every predictable step's most probable class is the next
    symbol (2a: every step; 2b: the last).  Without memory, 2a: cross-entropy
    ``ln 2 / p`` (perfect on the deterministic steps, a coin flip at the end), half the
    sequences.
    """

    name = "long-lag"
    loss = "xent"
    stop_loss = 0.01

    def __init__(self, length: int = 100, *, random: bool = False):
        self.length = self.max_length = _option("length", length, "int", low=2)
        self.random = check.flag("random", random)
        p = self.length
        self.input_size = self.output_size = p + 1
        if self.random:
            # uniform guesses over the p - 1 symbols in the middle, a coin flip at the end
            loss = ((p - 1) * math.log(p - 1) + math.log(2)) / p if p > 1 else math.log(2)
            self.stop_loss = loss + 0.01
            self.chance = {"loss": loss, "accuracy": 0.5,
                           "note": "uniform guesses in the middle, a coin flip at the last step"}
            self.paper = {"wrong": None, "test": None, "sequences": 5_680} if p == 100 else None
        else:
            self.chance = {"loss": math.log(2) / p, "accuracy": 0.5,
                           "note": "the deterministic steps right, a coin flip at the last"}
            self.paper = {"wrong": None, "test": None, "sequences": 5_040} if p == 100 else None

    def options(self):
        return {"length": self.length, "random": self.random}

    def _make(self, B, rng):
        p = self.length
        first = np.where(rng.integers(0, 2, size=B) == 1, p, p - 1)
        seq = np.empty((p + 1, B), dtype=np.int64)
        seq[0] = first
        if self.random:
            seq[1:p] = rng.integers(0, p - 1, size=(p - 1, B))
        else:
            seq[1:p] = np.arange(p - 1)[:, None]
        seq[p] = first
        x = np.zeros((p, B, p + 1))
        y = np.zeros((p, B, p + 1))
        t_idx, b_idx = np.meshgrid(np.arange(p), np.arange(B), indexing="ij")
        x[t_idx, b_idx, seq[:p]] = 1.0
        y[t_idx, b_idx, seq[1:]] = 1.0
        return Batch(x, y, np.ones((p, B), dtype=bool), np.full(B, p, dtype=np.int64))

    def correct(self, out, batch):
        ok = out.argmax(axis=-1) == batch.y.argmax(axis=-1)
        if self.random:
            return ok[-1]
        return _all_masked(ok, batch.mask)


class Distractors(Task):
    """Very long time lags without local regularities, Hochreiter & Schmidhuber 1997,
    Exp. 2c.

    ``p + 4`` symbols one-hot: the distractors ``a_1 .. a_p`` (0 .. p-1), the trigger
    ``e`` (p), ``b`` (p+1), ``x`` (p+2) and ``y`` (p+3).  A sequence is ``b``, then ``x`` or
    ``y`` (equally likely), then ``q`` random distractors, then more random distractors
    while a coin with probability 9/10 says so, then ``e``; at ``e`` the net must name the
    second symbol (2 outputs, x and y): it stores it for at least ``q + 1`` steps.  The
    sequence (without its final, predicted symbol) has ``q + k + 3`` steps, k geometric
    (mean 9): the mean length of the paper's sequences, counting the final symbol, is
    ``q + 13`` (the paper prints q + 14, though its own sum gives q + 13).  k is capped at
    250 (a chance of 0.9**250 ≈ 4e-12); a batch is padded to its longest sequence.
    Correct if the most probable output is the second symbol; the paper's criterion, an
    absolute error below 0.2 on both outputs, is stricter.  Without memory: a coin flip,
    cross-entropy ln 2.
    """

    name = "distractors"
    loss = "xent"
    stop_loss = 0.05
    output_size = 2
    MAX_EXTRA = 250

    def __init__(self, length: int = 100, *, distractors: int | None = None):
        self.length = _option("length", length, "int", low=1)
        p = self.length if distractors is None else distractors
        self.distractors = _option("distractors", p, "int", low=1)
        self.input_size = self.distractors + 4
        self.max_length = self.length + 3 + self.MAX_EXTRA
        self.chance = {"loss": math.log(2), "accuracy": 0.5, "note": "a coin flip"}
        self.paper = ({"wrong": None, "test": None, "sequences": _PAPER_2C[(self.length, self.distractors)]}
                      if (self.length, self.distractors) in _PAPER_2C else None)

    def options(self):
        return {"length": self.length, "distractors": self.distractors}

    def _make(self, B, rng):
        q, p = self.length, self.distractors
        extra = np.minimum(rng.geometric(0.1, size=B) - 1, self.MAX_EXTRA)
        lengths = (q + extra + 3).astype(np.int64)
        Tm = int(lengths.max())
        which = rng.integers(0, 2, size=B)            # 0: x, 1: y
        x = np.zeros((Tm, B, p + 4))
        y = np.zeros((Tm, B, 2))
        mask = np.zeros((Tm, B), dtype=bool)
        for b in range(B):
            L = int(lengths[b])
            sym = np.empty(L, dtype=np.int64)
            sym[0], sym[1] = p + 1, p + 2 + which[b]
            sym[2:L - 1] = rng.integers(0, p, size=L - 3)
            sym[L - 1] = p
            x[np.arange(L), b, sym] = 1.0
            y[L - 1, b, which[b]] = 1.0
            mask[L - 1, b] = True
        return Batch(x, y, mask, lengths)

    def correct(self, out, batch):
        ok = out.argmax(axis=-1) == batch.y.argmax(axis=-1)
        return _all_masked(ok, batch.mask)


#: Hochreiter & Schmidhuber 1997, Table 3 (Exp. 2c): (q, p) -> mean training sequences
#: until success (20 trials each)
_PAPER_2C = {(50, 50): 30_000, (100, 100): 31_000, (200, 200): 33_000, (500, 500): 38_000,
             (1000, 1000): 49_000, (1000, 500): 49_000, (1000, 200): 75_000,
             (1000, 100): 135_000, (1000, 50): 203_000}


class TwoSequence(Task):
    """Noise and signal on the same input line: Bengio et al.'s (1994) 2-sequence problem
    as Hochreiter & Schmidhuber 1997 pose it, Exp. 3a, 3b (``noisy_signal=True``) and 3c
    (``noisy_target=True``).

    One input line.  Two classes, equally likely; the first ``n`` values are 1.0 (class 1)
    or -1.0 (class 2), the rest Gaussian noise of mean 0 and variance 0.2; lengths uniform
    in ``[T, T + T/10]``.  3b adds the same noise to the first ``n`` values.  The target at
    the last step is 1.0 for class 1 and 0.0 for class 2; correct if the absolute error is
    below 0.2.  3c: targets 0.2 (class 1) and 0.8 (class 2) plus Gaussian noise of variance
    0.1; the net must learn the expected target, and a sequence is correct if its output
    is within 0.1 of the noise-free target (``batch.expected``).
    """

    name = "two-sequence"
    loss = "mse"
    stop_loss = 0.01
    input_size = 1
    output_size = 1
    NOISE = 0.2          # variance of the input noise
    TARGET_NOISE = 0.1   # variance of the target noise (3c)

    def __init__(self, length: int = 100, *, n: int = 3, noisy_signal: bool = False,
                 noisy_target: bool = False):
        self.length = _option("length", length, "int", low=4)
        self.n = _option("n", n, "int", low=1, high=self.length - 1)
        self.noisy_signal = check.flag("noisy_signal", noisy_signal)
        self.noisy_target = check.flag("noisy_target", noisy_target)
        self.max_length = self.length + self.length // 10
        self.tolerance = 0.1 if self.noisy_target else 0.2
        if self.noisy_target:
            self.targets = (0.2, 0.8)
            self.stop_loss = self.TARGET_NOISE + 0.01
            self.chance = {"loss": 0.09 + self.TARGET_NOISE, "accuracy": 0.0,
                           "note": "always output 0.5 (the mean target); the noise alone "
                                   f"costs {self.TARGET_NOISE}"}
        else:
            self.targets = (1.0, 0.0)
            self.chance = {"loss": 0.25, "accuracy": 0.0,
                           "note": "always output 0.5 (the mean target)"}
        variant = "c" if self.noisy_target else ("b" if self.noisy_signal else "a")
        self.paper = _PAPER_3.get((variant, self.length, self.n))

    def options(self):
        return {"length": self.length, "n": self.n, "noisy_signal": self.noisy_signal,
                "noisy_target": self.noisy_target}

    def _make(self, B, rng):
        T, Tm, n = self.length, self.max_length, self.n
        lengths = rng.integers(T, Tm + 1, size=B).astype(np.int64)
        cls = rng.integers(0, 2, size=B)                 # 0: class 1, 1: class 2
        sd = math.sqrt(self.NOISE)
        x = np.zeros((Tm, B, 1))
        y = np.zeros((Tm, B, 1))
        clean = np.zeros((Tm, B, 1))
        mask = np.zeros((Tm, B), dtype=bool)
        for b in range(B):
            L = int(lengths[b])
            x[:L, b, 0] = rng.normal(0.0, sd, size=L)
            signal = 1.0 if cls[b] == 0 else -1.0
            if self.noisy_signal:
                x[:n, b, 0] += signal
            else:
                x[:n, b, 0] = signal
            target = self.targets[cls[b]]
            clean[L - 1, b, 0] = target
            y[L - 1, b, 0] = target + (rng.normal(0.0, math.sqrt(self.TARGET_NOISE))
                                       if self.noisy_target else 0.0)
            mask[L - 1, b] = True
        return Batch(x, y, mask, lengths, expected=clean if self.noisy_target else None)

    def correct(self, out, batch):
        target = batch.expected if batch.expected is not None else batch.y
        return _all_masked(np.abs(out[..., 0] - target[..., 0]) < self.tolerance, batch.mask)


#: Hochreiter & Schmidhuber 1997, Tables 4-6 (Exp. 3a/3b/3c): (variant, T, N) -> test
#: sequences wrong (the fraction of 2,560 times 2,560), and training sequences until the
#: stopping criterion ST2 (3a/3b) or the criterion of 3c held (means of 10 trials)
_PAPER_3 = {("a", 100, 3): {"wrong": round(0.000195 * 2560, 1), "test": 2560, "sequences": 39_850},
            ("a", 100, 1): {"wrong": round(0.000117 * 2560, 1), "test": 2560, "sequences": 64_330},
            ("a", 1000, 3): {"wrong": round(0.000078 * 2560, 1), "test": 2560, "sequences": 452_460},
            ("b", 100, 3): {"wrong": round(0.00828 * 2560, 1), "test": 2560, "sequences": 43_250},
            ("b", 100, 1): {"wrong": round(0.01500 * 2560, 1), "test": 2560, "sequences": 78_430},
            ("b", 1000, 1): {"wrong": round(0.01207 * 2560, 1), "test": 2560, "sequences": 485_080},
            ("c", 100, 3): {"wrong": round(0.00558 * 2560, 1), "test": 2560, "sequences": 269_650},
            ("c", 100, 1): {"wrong": round(0.00441 * 2560, 1), "test": 2560, "sequences": 565_640}}


#: Reber grammar: state -> [(symbol, next state)]; None ends the string.
REBER = {
    0: [("B", 1)],
    1: [("T", 2), ("P", 3)],
    2: [("S", 2), ("X", 4)],
    3: [("T", 3), ("V", 5)],
    4: [("X", 3), ("S", 6)],
    5: [("P", 4), ("V", 6)],
    6: [("E", None)],
}


def reber_string(rng: np.random.Generator) -> str:
    """A string of the (plain) Reber grammar, e.g. ``"BTSSXXTVVE"``."""
    out, state = [], 0
    while state is not None:
        sym, state = REBER[state][int(rng.integers(0, len(REBER[state])))]
        out.append(sym)
    return "".join(out)


def _reber_legal(s: str) -> list[set]:
    """For each prefix s[:k+1] of a Reber string, the set of symbols that may follow."""
    state, legal = 0, []
    for ch in s:
        state = dict(REBER[state])[ch]
        legal.append({c for c, _ in REBER[state]} if state is not None else set())
    return legal


class EmbeddedReber(Task):
    """The embedded Reber grammar (Hochreiter & Schmidhuber 1997, Exp. 1).

    Strings ``B T <Reber> T E`` or ``B P <Reber> P E``; symbols one-hot over ``BTSXPVE``
    (D = K = 7).  At every step the target is uniform over the symbols that may follow;
    a string is processed correctly when, at every step, the k most probable outputs are
    the k legal next symbols (the 1997 criterion: "the output unit(s) corresponding to
    the possible next symbol(s) is (are) always the most active ones").  Only the
    second-to-last symbol needs memory: it repeats the second symbol, a lag of the inner
    string's length.  Fresh strings are drawn for every batch (the paper used a fixed
    set of 256).
    """

    name = "reber"
    loss = "xent"
    #: the cross-entropy against the uniform targets cannot fall below the entropy of the
    #: grammar's choices (about 0.45 per step); the window of correct strings decides
    stop_loss = 1.0
    SYMBOLS = "BTSXPVE"
    input_size = output_size = 7

    def __init__(self, max_length: int = 40):
        self.max_length = _option("max_length", max_length, "int", low=12)
        self.length = self.max_length
        self.chance = {"loss": None, "accuracy": 0.5,
                       "note": "the inner grammar right, a coin flip for the penultimate symbol"}
        self.paper = {"wrong": 0, "test": 256, "sequences": 8_440}

    def options(self):
        return {"max_length": self.max_length}

    def strings(self, n: int, rng) -> list[str]:
        """`n` embedded Reber strings (``"BTBTXSETE"`` ...) of at most ``max_length + 1``
        symbols, from `rng` (a numpy Generator)."""
        out = []
        while len(out) < n:
            inner = reber_string(rng)
            if len(inner) + 4 > self.max_length + 1:
                continue
            w = "TP"[int(rng.integers(0, 2))]
            out.append("B" + w + inner + w + "E")
        return out

    def _make(self, B, rng):
        return self._batch(self.strings(B, rng))

    def batch_of(self, strs) -> Batch:
        """The batch of the given strings (from :meth:`strings`): a fixed training or test
        set, as the paper's 256 + 256 strings.

        Raises
        ------
        InvalidArgumentError
            For a string that is not an embedded Reber string of at most
            ``max_length + 1`` symbols.
        """
        strs = list(strs)
        for s in strs:
            ok = (isinstance(s, str) and 5 <= len(s) <= self.max_length + 1 and s[:2] in ("BT", "BP")
                  and s[-2:] == s[1] + "E")
            if ok:
                try:
                    ok = _reber_legal(s[2:-2])[-1] == set()
                except (KeyError, IndexError):
                    ok = False
            if not ok:
                raise InvalidArgumentError(
                    f"`strs` holds {s!r:.60}, which is not an embedded Reber string of at most "
                    f"{self.max_length + 1} symbols (B, T or P, a Reber string, the same T or P, E)")
        if not strs:
            raise InvalidArgumentError("`strs` is empty; give at least one string")
        return self._batch(strs)

    def _batch(self, strs) -> Batch:
        B = len(strs)
        Tm, idx = self.max_length, {c: k for k, c in enumerate(self.SYMBOLS)}
        x = np.zeros((Tm, B, 7))
        y = np.zeros((Tm, B, 7))
        mask = np.zeros((Tm, B), dtype=bool)
        lengths = np.empty(B, dtype=np.int64)
        for b, s in enumerate(strs):
            inner = _reber_legal(s[2:-2])
            legal = [{"T", "P"}, {"B"}] + inner[:-1] + [{s[1]}, {"E"}]
            # legal[k]: symbols that may follow s[:k+1]; the last symbol E has no target
            L = len(s) - 1
            lengths[b] = L
            for k in range(L):
                x[k, b, idx[s[k]]] = 1.0
                for c in legal[k]:
                    y[k, b, idx[c]] = 1.0 / len(legal[k])
            mask[:L, b] = True
        return Batch(x, y, mask, lengths)

    def correct(self, out, batch):
        legal = batch.y > 0
        k = legal.sum(axis=-1)                                  # (T, B)
        # the k-th largest output must beat every illegal one
        big = np.where(legal, out, np.inf).min(axis=-1)
        small = np.where(legal, -np.inf, out).max(axis=-1)
        return _all_masked((big > small) | (k == 0), batch.mask)


_REGISTRY = {
    "adding": Adding,
    "adding-uniform": AddingUniform,
    "temporal-order": TemporalOrder,
    "copy": Copy,
    "long-lag": LongLag,
    "distractors": Distractors,
    "two-sequence": TwoSequence,
    "multiplication": Multiplication,
    "reber": EmbeddedReber,
}


def names() -> list[str]:
    """The task names :func:`get` knows."""
    return list(_REGISTRY)


def get(name: str, **options) -> Task:
    """A task by name, e.g. ``get("adding", length=100)``.

    Raises
    ------
    InvalidArgumentError
        For an unknown name or an option the task does not take, or a bad value.
    """
    if isinstance(name, Task):
        if options:
            raise InvalidArgumentError("options were given with a Task instance; pass a name instead")
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise InvalidArgumentError(f"`name` {name!r:.60} is not a task; expected one of {names()}")
    cls = _REGISTRY[name]
    import inspect

    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidArgumentError(
            f"task {name!r} takes no option(s) {unknown}; it takes {allowed}"
        )
    return cls(**options)
