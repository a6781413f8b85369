"""One trial of an experiment: train a net on a task one sequence (or one minibatch) at a
time until a paper's stopping rule holds or the budget ends.

Every net here has logistic output units and the squared error (``Model(output="sigmoid")``
or :class:`~gradflow.train.BlockNet`), so one criterion judges them all: a sequence is
*correct* when its outputs at the sequence end are all within ``β`` of the targets (the
paper's ``ABS(β)``), or by a task's own criterion (the embedded Reber grammar).  The rules:

* :class:`Window` -- the paper's ST3(β): the mean error of the 2,000 most recent training
  sequences is below β and all of them were correct (Exp. 4, 6);
* :class:`Successive` -- 10,000 successive training sequences correct (Exp. 2); the
  sequences to success are those before the first of them;
* :class:`FewWrong` -- fewer than ``n_seq`` of the 2,000 most recent training sequences
  wrong, for each ``n_seq`` in turn, with a test at each (Exp. 5);
* :class:`TestSets` -- every ``check_every`` sequences, a test on fresh sequences: ST1
  (at most so many wrong of 256) and ST2 (ST1 and a small mean absolute error) (Exp. 3);
* :class:`FixedSets` -- every ``check_every`` sequences, every string of a fixed training
  set and a fixed test set processed correctly (Exp. 1).

A training sequence counts as correct or not by the net's outputs *before* the update it
causes (online learning sees each sequence once).
"""

from __future__ import annotations

import math
import time
import zlib
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..errors import NonFiniteError
from ..train.losses import sigmoid
from ..train.optim import clip_by_global_norm
from ..train.tasks import Batch

__all__ = ["Criterion", "Window", "Successive", "FewWrong", "TestSets", "FixedSets",
           "run_trial", "train_step", "evaluate", "trial_seed"]


def trial_seed(base: int, exp: str, trial: int) -> int:
    """The seed of trial `trial` of experiment `exp`: the same for every model (the 1997 net
    with the truncated and with the full gradient starts from the same weights and sees the
    same sequences) and for every selection of experiments."""
    seq = np.random.SeedSequence([int(base), zlib.crc32(exp.encode()), int(trial)])
    return int(seq.generate_state(1)[0] % 2**31)


@dataclass(frozen=True)
class Criterion:
    """When a sequence counts as processed correctly.

    Attributes
    ----------
    beta : float
        Every output at the sequence end within β of its target (``ABS(β)``).
    expected : bool
        Compare with the noise-free target (``batch.expected``, Exp. 3c) instead.
    task : bool
        Use the task's own criterion instead (``task.correct``, Exp. 1).
    """

    beta: float = 0.04
    expected: bool = False
    task: bool = False

    def __call__(self, task, pred: np.ndarray, batch: Batch) -> np.ndarray:
        """(B,) bool from predictions ``σ(out)`` (T, B, K)."""
        if self.task:
            return task.correct(pred, batch)
        target = batch.expected if self.expected else batch.y
        last = batch.lengths - 1
        cols = np.arange(batch.size)
        err = np.abs(pred[last, cols] - target[last, cols])
        return np.all(err < self.beta, axis=-1)


def _errors(pred: np.ndarray, batch: Batch) -> np.ndarray:
    """Each sequence's squared error ``Σ_t Σ_k (σ - y)²`` over its masked steps (B,)."""
    d = (pred - batch.y) * batch.mask[..., None]
    return np.sum(d * d, axis=(0, 2))


def evaluate(model, task, n: int, rng, criterion: Criterion, chunk: int = 256) -> dict:
    """Test on `n` fresh sequences: ``{"total", "wrong", "mse", "mean_abs"}`` at the
    sequence ends (``mean_abs`` against the noise-free target for noisy-target tasks)."""
    wrong, sq, ab, count = 0, 0.0, 0.0, 0
    for start in range(0, n, chunk):
        b = task.batch(min(chunk, n - start), rng)
        pred = sigmoid(model.forward(b.x)[1])
        wrong += int((~criterion(task, pred, b)).sum())
        last, cols = b.lengths - 1, np.arange(b.size)
        p = pred[last, cols]
        sq += float(np.sum((p - b.y[last, cols]) ** 2))
        target = b.expected if b.expected is not None else b.y
        ab += float(np.sum(np.abs(p - target[last, cols])))
        count += p.size
    return {"total": n, "wrong": wrong, "mse": sq / count, "mean_abs": ab / count}


class Rule:
    """A stopping rule: sees every training sequence's correctness and error (before the
    update it causes), may test the net, says when to stop, and records what it found in
    :attr:`found` (``"sequences"``: the training sequences until success)."""

    check_every: int | None = None

    def __init__(self):
        self.found: dict = {}
        self.done = False

    def observe(self, seen: int, ok: np.ndarray, err: np.ndarray) -> None:
        """After `seen` sequences in all, the last ones with correctness `ok` and errors
        `err` (one each)."""

    def check(self, seen: int, model, task, rng, criterion) -> None:
        """A periodic test, every ``check_every`` sequences."""

    def finish(self, model, task, rng, criterion) -> None:
        """After training stopped (success or budget)."""


class Window(Rule):
    """ST3(β): the mean error of the `n` most recent sequences below β, all correct."""

    def __init__(self, beta: float, n: int = 2000, test_size: int = 2560):
        super().__init__()
        self.beta, self.n, self.test_size = beta, n, test_size
        self.recent: deque = deque()        # (wrong, error) of the n most recent
        self.wrong, self.err = 0, 0.0
        # how close a trial came: the fewest wrong in a full window, and when
        self.found["window_fewest_wrong"] = n
        self.found["window_fewest_wrong_at"] = 0

    def observe(self, seen, ok, err):
        base = seen - len(ok)
        for k, (o, e) in enumerate(zip(ok, err)):
            if len(self.recent) == self.n:
                w, old = self.recent.popleft()
                self.wrong -= w
                self.err -= old
            self.recent.append((not o, float(e)))
            self.wrong += not o
            self.err += float(e)
            if len(self.recent) == self.n:
                if self.wrong < self.found["window_fewest_wrong"]:
                    self.found["window_fewest_wrong"] = self.wrong
                    self.found["window_fewest_wrong_at"] = base + k + 1
                if self.wrong == 0 and self.err / self.n < self.beta:
                    self.found["sequences"] = base + k + 1
                    self.done = True
                    return

    def finish(self, model, task, rng, criterion):
        if self.test_size:
            t = evaluate(model, task, self.test_size, rng, criterion)
            self.found.update({"test_wrong": t["wrong"], "test_total": t["total"],
                               "test_mse": t["mse"]})


class Successive(Rule):
    """`n` successive sequences correct; success after the sequences before them."""

    def __init__(self, n: int = 10_000):
        super().__init__()
        self.n = n
        self.run = 0
        self.found["longest_run"] = 0

    def observe(self, seen, ok, err):
        base = seen - len(ok)
        for k, o in enumerate(ok):
            self.run = self.run + 1 if o else 0
            if self.run > self.found["longest_run"]:
                self.found["longest_run"] = self.run
            if self.run >= self.n:
                self.found["sequences"] = base + k + 1 - self.n
                self.done = True
                return


class FewWrong(Rule):
    """Fewer than each of `levels` wrong among the `n` most recent sequences, in turn: at
    each, the training sequences and a test (``wrong_<level>``, ``mse_<level>``)."""

    check_every = 1

    def __init__(self, levels=(140, 13), n: int = 2000, test_size: int = 2560):
        super().__init__()
        self.levels, self.n, self.test_size = list(levels), n, test_size
        self.last = self.levels[-1]
        self.recent: deque = deque(maxlen=n)
        self.wrong = 0
        self.pending: list = []

    def observe(self, seen, ok, err):
        base = seen - len(ok)
        for k, o in enumerate(ok):
            if len(self.recent) == self.n:
                self.wrong -= self.recent[0]
            self.recent.append(not o)
            self.wrong += not o
            while len(self.recent) == self.n and self.levels and self.wrong < self.levels[0]:
                level = self.levels.pop(0)
                self.found[f"sequences_{level}"] = base + k + 1
                self.pending.append(level)
        if not self.levels:
            self.found["sequences"] = self.found[f"sequences_{self.last}"]
            self.done = True

    def check(self, seen, model, task, rng, criterion):
        for level in self.pending:
            t = evaluate(model, task, self.test_size, rng, criterion)
            self.found.update({f"test_wrong_{level}": t["wrong"], f"test_mse_{level}": t["mse"],
                               "test_total": t["total"]})
        self.pending = []


class TestSets(Rule):
    """Every `check_every` sequences, a test on `size` fresh sequences: ST1 when at most
    `max_wrong` are wrong, ST2 when also their mean absolute error is below `max_abs`;
    then a final test on `final_size` sequences."""

    def __init__(self, check_every: int, max_wrong: int = 0, max_abs: float = 0.01,
                 size: int = 256, final_size: int = 2560, st1: bool = True):
        super().__init__()
        self.check_every = check_every
        self.max_wrong, self.max_abs, self.size, self.final_size = max_wrong, max_abs, size, final_size
        self.st1 = st1

    def check(self, seen, model, task, rng, criterion):
        t = evaluate(model, task, self.size, rng, criterion)
        if t["wrong"] <= self.max_wrong:
            if self.st1:
                self.found.setdefault("sequences_st1", seen)
            if t["mean_abs"] < self.max_abs:
                self.found["sequences"] = seen
                self.done = True

    def finish(self, model, task, rng, criterion):
        t = evaluate(model, task, self.final_size, rng, criterion)
        self.found.update({"test_wrong": t["wrong"], "test_total": t["total"],
                           "test_mse": t["mse"], "test_mean_abs": t["mean_abs"]})


class FixedSets(Rule):
    """Every `check_every` sequences, every string of the fixed training and test sets
    (batches) processed correctly."""

    def __init__(self, check_every: int, train: Batch, test: Batch):
        super().__init__()
        self.check_every, self.train, self.test = check_every, train, test

    def check(self, seen, model, task, rng, criterion):
        wrong = 0
        for b in (self.train, self.test):
            pred = sigmoid(model.forward(b.x)[1])
            wrong += int((~criterion(task, pred, b)).sum())
        self.found["set_wrong"] = wrong
        if wrong == 0:
            self.found["sequences"] = seen
            self.done = True


@dataclass
class Grow:
    """Sequential network construction (the paper's Exp. 2a/2b): the memory cell is added
    once the error has stopped decreasing.  Until then the cell's parameters and the
    output units' weights from it stay at zero; the error has stopped decreasing when the
    mean error of the last `window` sequences is less than `drop` below that of the
    `window` before (the output units' error falls like 1/t: by `drop` per `window`
    sequences after about ``window / drop`` of them)."""

    window: int = 200
    drop: float = 0.1
    init_range: float = 0.2
    grown: int | None = None
    errs: list = field(default_factory=list)


def _stream(task, rng, train_set: Batch | None):
    """Training sequences one at a time: ``(x (L, 1, D), batch of one)``."""
    while True:
        if train_set is not None:
            idx = rng.integers(0, train_set.size, size=256)
        else:
            chunk = task.batch(256, rng)
        for k in range(256):
            if train_set is not None:
                b, j = train_set, int(idx[k])
            else:
                b, j = chunk, k
            L = int(b.lengths[j])
            one = Batch(b.x[:L, j:j + 1], b.y[:L, j:j + 1], b.mask[:L, j:j + 1], b.lengths[j:j + 1],
                        None if b.expected is None else b.expected[:L, j:j + 1])
            yield one


def _minibatches(task, rng, size: int, train_set: Batch | None):
    """Training minibatches of `size` sequences, trimmed to the longest."""
    while True:
        if train_set is not None:
            idx = rng.integers(0, train_set.size, size=size)
            b = train_set
            L = int(b.lengths[idx].max())
            yield Batch(b.x[:L, idx], b.y[:L, idx], b.mask[:L, idx], b.lengths[idx], None)
        else:
            b = task.batch(size, rng)
            L = int(b.lengths.max())
            yield Batch(b.x[:L], b.y[:L], b.mask[:L], b.lengths,
                        None if b.expected is None else b.expected[:L])


def train_step(model, batch: Batch, truncate: bool):
    """Forward, squared error and gradients of one batch, on the cell's kernels without the
    checks of ``Cell.forward`` (the parameters were checked when the trial began; a
    diverging net shows in the loss).  Returns ``(loss, predictions, gradients)``."""
    cell = model.cell
    p = cell.params
    x = np.ascontiguousarray(batch.x)
    T, B, _ = x.shape
    S, H = len(cell.spec.state), cell.hidden_size
    states = np.zeros((S, T + 1, B, H))
    arrays = cell.run_forward(x, p, states)
    h = states[0, 1:]
    out = model.readout.forward(h, x)
    pred = sigmoid(out)
    diff = (pred - batch.y) * batch.mask[..., None]
    loss = 0.5 * float(np.sum(diff * diff)) / B
    dout = diff * (pred * (1.0 - pred) / B)
    rg, dh = model.readout.backward(h, dout, x)
    with np.errstate(all="ignore"):
        grads = cell.run_backward(arrays, p, np.ascontiguousarray(dh), np.zeros((S, B, H)),
                                  truncate=truncate)[0]
    grads.update({f"readout.{k}": v for k, v in rg.items()})
    constrain = getattr(model, "constrain", None)
    if constrain is not None:
        constrain(grads)
    return loss, pred, grads


def run_trial(model, task, rule: Rule, criterion: Criterion, optimizer, *, batch_size: int = 1,
              truncate: bool = False, clip: float | None = None, budget: int = 100_000,
              rng=None, train_set: Batch | None = None, grow: Grow | None = None,
              max_seconds: float | None = None, progress=None) -> dict:
    """Train `model` on `task` until `rule` is done or `budget` sequences were seen.

    Returns
    -------
    dict
        ``solved``, ``sequences`` (to success, or the budget), ``seen``, ``seconds``,
        ``sequences_per_second`` and what the rule recorded.
    """
    rng = np.random.default_rng(rng)
    data = (_stream(task, rng, train_set) if batch_size == 1
            else _minibatches(task, rng, batch_size, train_set))
    params = model.params
    grow_frozen = ()
    if grow is not None:
        grow_frozen = [k for k in params if not k.startswith("readout.")] + ["readout.weight"]
        saved = {k: params[k].copy() for k in grow_frozen}
        for k in grow_frozen:
            params[k][...] = 0.0
    seen, next_check, loss = 0, rule.check_every or 0, 0.0
    start = time.perf_counter()
    stopped_by_time = False
    model.cell.checked_params()
    if truncate:
        model.cell.spec.truncation()
    while seen < budget and not rule.done:
        batch = next(data)
        try:
            loss, pred, grads = train_step(model, batch, truncate)
        except NonFiniteError:
            loss = math.nan
        if not math.isfinite(loss):
            break
        ok = criterion(task, pred, batch)
        err = _errors(pred, batch)
        if grow is not None and grow.grown is None:
            for k in grow_frozen:
                grads[k][...] = 0.0
        if clip is not None:
            clip_by_global_norm(grads, clip)
        optimizer.step(params, grads)
        seen += batch.size
        rule.observe(seen, ok, err)
        if grow is not None and grow.grown is None:
            grow.errs.extend(err.tolist())
            w = grow.window
            if len(grow.errs) >= 2 * w and len(grow.errs) % w == 0:
                recent, before = np.mean(grow.errs[-w:]), np.mean(grow.errs[-2 * w:-w])
                if not recent < (1.0 - grow.drop) * before:
                    grow.grown = seen
                    for k in grow_frozen:
                        params[k][...] = saved[k]
        if rule.check_every and (seen >= next_check or rule.done):
            rule.check(seen, model, task, rng, criterion)
            while next_check <= seen:
                next_check += rule.check_every
        if progress is not None:
            progress(batch.size)
        if max_seconds is not None and time.perf_counter() - start > max_seconds:
            stopped_by_time = True
            break
    seconds = time.perf_counter() - start
    rule.finish(model, task, rng, criterion)
    found = dict(rule.found)
    solved = bool(rule.done)
    result = {"solved": solved, "seen": seen, "seconds": seconds,
              "sequences_per_second": seen / max(seconds, 1e-9),
              "stopped_by_time": stopped_by_time, "diverged": not math.isfinite(loss)}
    result.update(found)
    if not solved:
        result["sequences"] = seen
    if grow is not None:
        result["grown_after"] = grow.grown if grow.grown is not None else -1
    return result
