"""The training loop: minibatches from a task, BPTT on the cell's kernels, a readout,
early stopping on the task's criterion, and a history of loss, accuracy and gradient
norms against lag."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .. import _validate as check
from .._display import Displayed
from ..cell import as_cell
from ..errors import InvalidArgumentError, NonFiniteError
from .losses import Readout, loss_fn, sigmoid
from .optim import clip_by_global_norm, make_optimizer
from .probe import lag_curve, state_gradient_log10_norms
from .tasks import Task
from .tasks import get as get_task

__all__ = ["Model", "TrainResult", "train", "evaluate", "initial_biases", "recipe", "RECIPE"]


class Model:
    """A cell with a readout: ``out_t = h_t W^T + b``.

    Parameters
    ----------
    cell : Cell
    output_size : int
    seed : int, optional
        Seed of the readout's initialisation.
    output : {"linear", "sigmoid"}
        ``"linear"``: the outputs are the readout's values and the loss is the task's own
        (``task.loss``: MSE, or cross-entropy of their softmax).  ``"sigmoid"``: logistic
        output units ``σ(out_t)`` with the squared error of Hochreiter & Schmidhuber
        (1997) for every task (:func:`~gradflow.train.sse_loss`).
    shortcut : bool
        The outputs also read the input ``x_t`` (``readout.input``).
    """

    def __init__(self, cell, output_size: int, *, seed=None, output: str = "linear",
                 shortcut: bool = False):
        self.cell = cell
        self.output = check.choice("output", output, ("linear", "sigmoid"))
        shortcut = check.flag("shortcut", shortcut)
        self.readout = Readout(cell.hidden_size, output_size, seed=seed, dtype=cell.dtype,
                               input_size=cell.input_size if shortcut else None)

    @property
    def params(self) -> dict:
        """Every trainable array by name (cell params, then ``readout.weight``, ``readout.bias``
        and, with the shortcut, ``readout.input``); the arrays are the live ones, so an
        in-place update trains the model."""
        p = dict(self.cell.params)
        p.update({f"readout.{k}": v for k, v in self.readout.params.items()})
        return p

    def forward(self, x: np.ndarray):
        """``x`` (T, B, D) → (trace, outputs (T, B, K)): the readout's values, before the
        logistic function of ``output="sigmoid"`` (see :meth:`predictions`)."""
        trace = self.cell.forward(x)
        return trace, self.readout.forward(trace.h, trace.x)

    def predictions(self, out: np.ndarray) -> np.ndarray:
        """What the outputs mean: ``out`` itself (linear) or ``σ(out)`` (sigmoid)."""
        return sigmoid(out) if self.output == "sigmoid" else out

    def loss_name(self, task: Task) -> str:
        """The loss this model trains with on `task` (``"sse"`` for sigmoid outputs)."""
        return "sse" if self.output == "sigmoid" else task.loss

    def gradients(self, trace, dout: np.ndarray, *, truncate: bool = False) -> dict:
        """Gradients of every parameter (keys of :attr:`params`) from dL/d(outputs) (T, B, K);
        with `truncate`, the cell's truncated gradient (see :meth:`gradflow.Cell.backward`)."""
        rg, dh = self.readout.backward(trace.h, dout, trace.x)
        grads = dict(self.cell.backward(trace, dh=dh, truncate=truncate).params)
        grads.update({f"readout.{k}": v for k, v in rg.items()})
        return grads

    def loss_and_gradients(self, task: Task, batch, *, truncate: bool = False
                           ) -> tuple[float, np.ndarray, dict]:
        """(loss, outputs (T, B, K), gradients) for one batch."""
        trace, out = self.forward(batch.x.astype(self.cell.dtype, copy=False))
        loss, dout = loss_fn(self.loss_name(task))(out, batch.y.astype(out.dtype, copy=False),
                                                   batch.mask)
        return loss, out, self.gradients(trace, dout, truncate=truncate)


@dataclass(repr=False)
class TrainResult(Displayed):
    """What :func:`train` returns.

    Attributes
    ----------
    model : Model
        The trained cell and readout.
    task : Task
    solved : bool
        The stopping rule held: the last `window` training sequences were all correct and
        their mean loss was below ``task.stop_loss``.
    sequences : int
        Training sequences seen (until the rule held, or the budget).
    wall_time : float
        Seconds spent in training (without the test).
    test : dict
        ``{"total", "wrong", "accuracy", "loss"}`` on fresh test sequences.
    history : dict of ndarray
        Per update: ``sequences``, ``loss``, ``accuracy`` (fraction of the batch correct
        before the update), ``grad_norm`` (global norm before clipping).  Per probe:
        ``probe_sequences`` (P,), ``probe_lags`` (L,), ``probe_log10_grad`` (P, L) — the
        median over the probe sequences of ``log10 ‖∂L_end/∂h_{end-lag}‖``, with L_end
        the loss at each sequence's last output step.
    settings : dict
    """

    model: Model
    task: Task
    solved: bool
    sequences: int
    wall_time: float
    test: dict
    history: dict
    settings: dict = field(default_factory=dict)

    _shown = ("solved", "sequences", "wall_time", "test", "settings")

    def _frame_columns(self) -> dict:
        """One row per update: sequences seen, loss, accuracy, gradient norm."""
        return {k: np.asarray(self.history[k]) for k in ("sequences", "loss", "accuracy", "grad_norm")}

    def _plot(self, ax):
        from ..plot import training_curves

        training_curves(self, ax=ax)


def evaluate(model: Model, task: Task, n: int = 2560, *, seed=None, chunk: int = 256) -> dict:
    """Test `model` on `n` fresh sequences: ``{"total", "wrong", "accuracy", "loss"}``."""
    n = check.positive_int("n", n)
    rng = np.random.default_rng(seed)
    wrong, loss_sum = 0, 0.0
    fn = loss_fn(task.loss)
    for start in range(0, n, chunk):
        b = task.batch(min(chunk, n - start), rng)
        _, out = model.forward(b.x.astype(model.cell.dtype, copy=False))
        wrong += int((~task.correct(out, b)).sum())
        loss_sum += fn(out, b.y.astype(out.dtype, copy=False), b.mask)[0] * b.size
    return {"total": n, "wrong": wrong, "accuracy": 1.0 - wrong / n, "loss": loss_sum / n}


def _probe(model: Model, task: Task, batch) -> np.ndarray:
    """Median log10 ‖∂L_end/∂h_{end-lag}‖ over the probe batch, lag = 0 .. min length."""
    trace, out = model.forward(batch.x.astype(model.cell.dtype, copy=False))
    T, B = batch.mask.shape
    ends = np.array([np.flatnonzero(batch.mask[:, b]).max() + 1 for b in range(B)])
    end_mask = np.zeros_like(batch.mask)
    end_mask[ends - 1, np.arange(B)] = True
    _, dout = loss_fn(task.loss)(out, batch.y.astype(out.dtype, copy=False), end_mask)
    _, dh = model.readout.backward(trace.h, dout * B)      # per-sequence losses, not their mean
    logn = state_gradient_log10_norms(model.cell, trace, dh)
    return lag_curve(logn, ends, int(ends.min()))


def train(cell, task, *, batch_size: int = 32, max_sequences: int = 100_000,
          optimizer="adam", lr: float = 0.01, clip: float | None = 1.0, seed: int = 0,
          window: int = 2000, test_size: int = 2560, probes: int = 10, probe_size: int = 16,
          max_seconds: float | None = None, verbose: bool = True,
          truncate: bool = False) -> TrainResult:
    """Train `cell` with a linear readout on `task` until it is solved or the budget ends.

    Parameters
    ----------
    cell : Cell
        Trained in place (its ``params`` change).
    task : Task or str
        A task object or a name for :func:`gradflow.train.tasks.get` with default options.
    batch_size : int
        Sequences per update.
    max_sequences : int
        Budget: training sequences at most.
    optimizer : {"adam", "sgd"} or an object with ``.step(params, grads)``
    lr : float
    clip : float or None
        Clip the global gradient norm to this (None: no clipping).
    seed : int
        Seeds the readout, the training stream, the probe batch and the test set; with
        the cell's own seed the run is deterministic.
    window : int
        Early stopping (the 1997 rule): stop once the last `window` training sequences
        were all correct and their mean loss is below ``task.stop_loss``.
    test_size : int
        Fresh sequences for the final test (2,560 in the paper).
    probes : int
        How many times to record the gradient norms against lag (spread evenly over
        the budget, and once at the end); 0 for none.
    probe_size : int
        Sequences in the fixed probe batch.
    max_seconds : float, optional
        A wall-time budget as well.
    verbose : bool
        Show a progress bar (only on a terminal).
    truncate : bool
        Train with the truncated gradient of Hochreiter & Schmidhuber (1997) instead of
        full backpropagation through time (see :meth:`gradflow.Cell.backward`).

    Returns
    -------
    TrainResult
    """
    as_cell(cell)
    task = get_task(task) if isinstance(task, str) else task
    if not isinstance(task, Task):
        raise InvalidArgumentError(f"`task` must be a Task or a task name; got {type(task).__name__}")
    if clip is not None:
        clip = check.real("clip", clip)
        if not clip > 0:
            raise InvalidArgumentError(f"`clip` must be a positive number or None; got {clip!r}")
    if max_seconds is not None:
        max_seconds = check.real("max_seconds", max_seconds, minimum=0.0)
    test_size = check.positive_int("test_size", test_size, minimum=0)
    probe_size = check.positive_int("probe_size", probe_size)
    if cell.input_size != task.input_size:
        raise InvalidArgumentError(
            f"`cell` has input_size {cell.input_size}; task {task.name!r} needs {task.input_size}")
    batch_size = check.positive_int("batch_size", batch_size)
    max_sequences = check.positive_int("max_sequences", max_sequences)
    window = check.positive_int("window", window)
    probes = check.positive_int("probes", probes, minimum=0)
    seed = check.positive_int("seed", seed, minimum=0)
    truncate = check.flag("truncate", truncate)
    if truncate:
        cell.spec.truncation()  # refuses two-stage cells before any training
    opt = make_optimizer(optimizer, lr)
    model = Model(cell, task.output_size, seed=np.random.default_rng([seed, 4]))
    params = model.params
    data = np.random.default_rng([seed, 1])
    probe_batch = task.batch(probe_size, np.random.default_rng([seed, 3])) if probes else None
    steps = math.ceil(max_sequences / batch_size)
    probe_at = set(np.linspace(0, steps, probes, endpoint=False).astype(int)) if probes else set()
    hist = {k: [] for k in ("sequences", "loss", "accuracy", "grad_norm")}
    probe_seq, probe_curves = [], []
    recent: deque = deque()            # (n sequences, n correct, loss·n) of recent batches
    in_window = [0, 0, 0.0]
    solved, seen = False, 0
    bar = None
    if verbose and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=max_sequences, unit="seq", desc=f"{cell.spec.name} {task.name}", leave=False)
    t0 = time.perf_counter()
    probe_time = 0.0
    for step in range(steps):
        if step in probe_at:
            tp = time.perf_counter()
            probe_seq.append(seen)
            probe_curves.append(_probe(model, task, probe_batch))
            probe_time += time.perf_counter() - tp
        batch = task.batch(batch_size, data)
        loss, out, grads = model.loss_and_gradients(task, batch, truncate=truncate)
        if not math.isfinite(loss):
            raise NonFiniteError(f"training loss became {loss} at update {step} "
                                 f"(after {seen} sequences); lower `lr` or clip", step=step,
                                 component="loss")
        ok = task.correct(out, batch)
        norm = clip_by_global_norm(grads, clip)
        opt.step(params, grads)
        seen += batch.size
        for k, v in zip(("sequences", "loss", "accuracy", "grad_norm"),
                        (seen, loss, float(ok.mean()), norm)):
            hist[k].append(v)
        recent.append((batch.size, int(ok.sum()), loss * batch.size))
        in_window = [in_window[0] + batch.size, in_window[1] + int(ok.sum()), in_window[2] + loss * batch.size]
        while in_window[0] - recent[0][0] >= window:
            n, c, l = recent.popleft()
            in_window = [in_window[0] - n, in_window[1] - c, in_window[2] - l]
        if bar is not None:
            bar.update(batch.size)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", acc=f"{ok.mean():.2f}")
        if (in_window[0] >= window and in_window[1] == in_window[0]
                and in_window[2] / in_window[0] < task.stop_loss):
            solved = True
            break
        if max_seconds is not None and time.perf_counter() - t0 - probe_time > max_seconds:
            break
    wall = time.perf_counter() - t0 - probe_time
    if probes:
        probe_seq.append(seen)
        probe_curves.append(_probe(model, task, probe_batch))
    if bar is not None:
        bar.close()
    test = evaluate(model, task, test_size, seed=np.random.default_rng([seed, 2])) if test_size else {}
    L = min((len(c) for c in probe_curves), default=0)
    history = {k: np.asarray(v) for k, v in hist.items()}
    history["probe_sequences"] = np.asarray(probe_seq, dtype=np.int64)
    history["probe_lags"] = np.arange(L)
    history["probe_log10_grad"] = np.array([c[:L] for c in probe_curves]).reshape(len(probe_curves), L)
    settings = {"cell": cell.spec.name, "hidden_size": cell.hidden_size, "task": task.name,
                "task_options": task.options(), "batch_size": batch_size,
                "max_sequences": max_sequences, "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
                "lr": lr, "clip": clip, "seed": seed, "window": window, "truncate": truncate,
                "parameters": int(sum(v.size for v in params.values()))}
    return TrainResult(model, task, solved, seen, wall, test, history, settings)


def initial_biases(cell, *, input_bias: float | None = None) -> None:
    """Set the input gate's bias of an LSTM-like cell in place (``bias_ih`` rows of gate
    ``i`` to `input_bias`, ``bias_hh`` rows to 0).  A negative value keeps the cell state
    from filling up with every input before the net has learnt when to store (the 1997
    nets started with negative input-gate biases)."""
    if input_bias is None:
        return
    if "i" not in cell.spec.gates:
        raise InvalidArgumentError(
            f"`input_bias` was given, but cell {cell.spec.name!r} has no input gate 'i'")
    rows = cell.gate_slice("i")
    cell.params["bias_ih"][rows] = input_bias
    cell.params["bias_hh"][rows] = 0.0


#: the training settings that solve the report's long-lag tasks for every cell (see
#: :func:`recipe`): the same for every cell but the gate biases at initialisation
RECIPE = {"hidden_size": 16, "batch_size": 32, "optimizer": "adam", "lr": 0.01, "clip": 1.0,
          "window": 2000}
#: forget-gate bias (LSTM f, GRU z ...) open, input-gate bias of LSTMs mostly shut
FORGET_BIAS, INPUT_BIAS = 3.0, -3.0


def recipe(cell) -> dict:
    """The settings with which gradflow trains `cell` on the long-lag tasks by default.

    Parameters
    ----------
    cell : str or CellSpec
        A catalogue name or a spec.

    Returns
    -------
    dict
        :data:`~gradflow.train.loop.RECIPE` (hidden size 16, batch 32, Adam, lr 0.01, clipping at 1, the 1997
        window of 2,000 sequences) and the gate biases at initialisation:
        ``forget_bias`` = 3 for cells with a forget-like gate (``spec.forget_gate``: f for
        LSTMs, z for GRUs), keeping the memory open, and ``input_bias`` = -3 for cells
        with an input gate ``i``, so that the cell state does not fill up with every input
        before the net has learnt when to store (the 1997 nets began with negative
        input-gate biases).  ``None`` where the cell has no such gate.

    Examples
    --------
    >>> recipe("lstm")["forget_bias"], recipe("lstm")["input_bias"], recipe("rnn")["forget_bias"]
    (3.0, -3.0, None)
    """
    from .. import cells

    spec = cells.get(cell)
    return {**RECIPE,
            "forget_bias": FORGET_BIAS if spec.forget_gate is not None else None,
            "input_bias": INPUT_BIAS if "i" in spec.gates else None}
