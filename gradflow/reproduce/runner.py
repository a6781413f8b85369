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

A long trial can be checkpointed (``run_trial(checkpoint=...)``): every so often its whole
state -- weights, optimizer, the rule's counts, the random generator and the place in the
stream of training sequences -- is written to one ``.npz`` file (arrays and a JSON
header; nothing is unpickled when it is read), and a trial started again with the same
file continues where it stopped, exactly as if it had not been interrupted.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
import zipfile
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import GradflowWarning, NonFiniteError
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
    #: the attributes (besides found and done) that a checkpoint keeps
    _counts: tuple = ()

    def __init__(self):
        self.found: dict = {}
        self.done = False

    def state(self) -> dict:
        """The rule's counts, as JSON values (for a checkpoint)."""
        out = {"found": self.found, "done": self.done}
        for name in self._counts:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, deque) else value
        return out

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state`."""
        self.found, self.done = dict(state["found"]), bool(state["done"])
        for name in self._counts:
            now, value = getattr(self, name), state[name]
            if isinstance(now, deque):
                value = deque((tuple(v) if isinstance(v, list) else v for v in value),
                              maxlen=now.maxlen)
            setattr(self, name, value)

    def observe(self, seen: int, ok: np.ndarray, err: np.ndarray) -> None:
        """After `seen` sequences in all, the last ones with correctness `ok` and errors
        `err` (one each)."""

    def check(self, seen: int, model, task, rng, criterion) -> None:
        """A periodic test, every ``check_every`` sequences."""

    def finish(self, model, task, rng, criterion) -> None:
        """After training stopped (success or budget)."""


class Window(Rule):
    """ST3(β): the mean error of the `n` most recent sequences below β, all correct."""

    _counts = ("recent", "wrong", "err")

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

    _counts = ("run",)

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
    _counts = ("levels", "recent", "wrong", "pending")

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


class _Sequences:
    """The training data of a trial: sequences one at a time (``size`` 1, drawn 256 at a
    time as ``(L, 1, D)`` batches of one) or minibatches of ``size``, from `train_set` or
    fresh from `task`.  :meth:`state` and :meth:`restore` let a resumed trial see the same
    sequences: the generator's state when the current 256 were drawn, and the place in
    them."""

    CHUNK = 256

    def __init__(self, task, rng, size: int, train_set: Batch | None):
        self.task, self.rng, self.size, self.train_set = task, rng, size, train_set
        self.chunk, self.k, self.chunk_state = None, self.CHUNK, None

    def __iter__(self):
        return self

    def _draw(self):
        if self.train_set is not None:
            self.chunk = self.rng.integers(0, self.train_set.size, size=self.CHUNK)
        else:
            self.chunk = self.task.batch(self.CHUNK, self.rng)

    def __next__(self) -> Batch:
        if self.size > 1:
            return self._minibatch()
        if self.k == self.CHUNK:
            self.chunk_state = self.rng.bit_generator.state
            self._draw()
            self.k = 0
        k = self.k
        self.k += 1
        if self.train_set is not None:
            b, j = self.train_set, int(self.chunk[k])
        else:
            b, j = self.chunk, k
        L = int(b.lengths[j])
        return Batch(b.x[:L, j:j + 1], b.y[:L, j:j + 1], b.mask[:L, j:j + 1], b.lengths[j:j + 1],
                     None if b.expected is None else b.expected[:L, j:j + 1])

    def _minibatch(self) -> Batch:
        """`size` sequences, trimmed to the longest."""
        if self.train_set is not None:
            idx = self.rng.integers(0, self.train_set.size, size=self.size)
            b = self.train_set
            L = int(b.lengths[idx].max())
            return Batch(b.x[:L, idx], b.y[:L, idx], b.mask[:L, idx], b.lengths[idx], None)
        b = self.task.batch(self.size, self.rng)
        L = int(b.lengths.max())
        return Batch(b.x[:L], b.y[:L], b.mask[:L], b.lengths,
                     None if b.expected is None else b.expected[:L])

    def state(self) -> dict:
        return {"chunk_state": self.chunk_state, "k": self.k}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state`, the generator itself restored afterwards."""
        self.k = int(state["k"])
        if state["chunk_state"] is not None and self.size == 1:
            now = self.rng.bit_generator.state
            self.rng.bit_generator.state = self.chunk_state = state["chunk_state"]
            self._draw()
            self.rng.bit_generator.state = now


# ------------------------------------------------------------------- checkpoints
CHECKPOINT_VERSION = 1


def _json_scalar(value):
    """NumPy scalars in a checkpoint's header as Python numbers; anything else is refused
    (it would not come back as it was)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a checkpoint cannot hold {type(value).__name__} {value!r:.60}")


def _save_checkpoint(path: Path, key: str, header: dict, arrays: dict) -> None:
    """Write a trial's state atomically: a temporary file, then a rename."""
    meta = json.dumps({"version": CHECKPOINT_VERSION, "key": key, **header},
                      default=_json_scalar)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, __meta__=np.array(meta), **arrays)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, key: str):
    """``(header, arrays)`` of the checkpoint at `path` if it is one of this trial
    (`key`); None, with a GradflowWarning naming the file, if it is unreadable or
    another trial's."""
    try:
        with open(path, "rb") as fh:
            z = np.load(fh, allow_pickle=False)
            if not hasattr(z, "files"):
                raise ValueError("not an .npz archive")
            with z:
                header = json.loads(str(z["__meta__"]))
                arrays = {k: z[k] for k in z.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"checkpoint {str(path)!r} cannot be read ({exc}); the trial starts "
                      "from the beginning", GradflowWarning, stacklevel=3)
        return None
    if header.get("version") != CHECKPOINT_VERSION or header.get("key") != key:
        warnings.warn(f"checkpoint {str(path)!r} belongs to another trial or version "
                      f"(key {header.get('key')!r}, version {header.get('version')!r}; "
                      f"expected {key!r}, {CHECKPOINT_VERSION}); the trial starts from the "
                      "beginning", GradflowWarning, stacklevel=3)
        return None
    return header, arrays


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
              max_seconds: float | None = None, progress=None, checkpoint=None,
              checkpoint_key: str = "", checkpoint_every: float = 60.0) -> dict:
    """Train `model` on `task` until `rule` is done or `budget` sequences were seen.

    Parameters
    ----------
    checkpoint : str or Path, optional
        A ``.npz`` file for the trial's state: written every `checkpoint_every` seconds
        of training, read at the start if it exists and belongs to this trial
        (`checkpoint_key`, e.g. a digest of the trial's settings), deleted when the trial
        ends.  A trial resumed from it sees the same sequences and ends with the same
        weights and result as one that ran through; ``seconds`` and `max_seconds` count
        the time before the interruption too.

    Returns
    -------
    dict
        ``solved``, ``sequences`` (to success, or the budget), ``seen``, ``seconds``,
        ``sequences_per_second`` and what the rule recorded (and ``resumed_at``, the
        sequences already seen, when it continued from a checkpoint).
    """
    rng = np.random.default_rng(rng)
    data = _Sequences(task, rng, batch_size, train_set)
    params = model.params
    grow_frozen = ()
    saved = {}
    if grow is not None:
        grow_frozen = [k for k in params if not k.startswith("readout.")] + ["readout.weight"]
        saved = {k: params[k].copy() for k in grow_frozen}
        for k in grow_frozen:
            params[k][...] = 0.0
    seen, next_check, loss, elapsed, resumed_at = 0, rule.check_every or 0, 0.0, 0.0, None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        state = _load_checkpoint(checkpoint, checkpoint_key) if checkpoint.is_file() else None
        if state is not None:
            header, arrays = state
            for k, v in params.items():
                v[...] = arrays[f"params/{k}"]
            saved = {k: arrays[f"grow/{k}"] for k in grow_frozen}
            optimizer.restore({k[4:]: v for k, v in arrays.items() if k.startswith("opt/")},
                              header["optimizer"])
            rule.restore(header["rule"])
            if grow is not None:
                grow.grown, grow.errs = header["grow"]["grown"], list(header["grow"]["errs"])
            rng.bit_generator.state = header["rng"]
            data.restore(header["data"])
            seen, next_check, loss = header["seen"], header["next_check"], header["loss"]
            elapsed, resumed_at = header["seconds"], seen
    start = time.perf_counter() - elapsed
    last_save = time.perf_counter()
    stopped_by_time = False
    model.cell.checked_params()
    if truncate:
        model.cell.spec.truncation()

    def save():
        arrays = {f"params/{k}": v for k, v in params.items()}
        arrays.update({f"grow/{k}": v for k, v in saved.items()})
        opt_arrays, opt_numbers = optimizer.state()
        arrays.update({f"opt/{k}": v for k, v in opt_arrays.items()})
        header = {"seen": seen, "next_check": next_check, "loss": loss,
                  "seconds": time.perf_counter() - start, "optimizer": opt_numbers,
                  "rule": rule.state(), "rng": rng.bit_generator.state, "data": data.state(),
                  "grow": None if grow is None else {"grown": grow.grown, "errs": grow.errs}}
        _save_checkpoint(checkpoint, checkpoint_key, header, arrays)

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
        if checkpoint is not None and time.perf_counter() - last_save >= checkpoint_every:
            save()
            last_save = time.perf_counter()
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
    if resumed_at is not None:
        result["resumed_at"] = resumed_at
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return result
