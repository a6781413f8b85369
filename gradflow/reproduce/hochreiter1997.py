"""Hochreiter & Schmidhuber (1997), "Long Short-Term Memory", section 5: every experiment
with the paper's architecture, initialisation, learning rate, online updates, stopping
rule and number of trials, and the paper's results beside them.

Each experiment is an :class:`Experiment`; ``EXPERIMENTS`` lists them in the paper's
order, keyed ``"1-3x2"``, ``"2a"``, ``"2c-100"``, ``"4-1000"`` ...  A *model* is what is
trained on it (``MODELS``):

``lstm1997``
    The paper's net (:class:`~gradflow.train.BlockNet` of the 1997 cell, the paper's
    blocks, biases, initial weights and gate biases), online gradient descent with the
    paper's learning rate, the truncated gradient; the cells' outputs are fed back, the
    gates' activations are not.
``lstm1997-fc``
    The same with the paper's hidden layer exactly: fully connected, the gates'
    activations fed back to every gate and cell input like the cells' outputs (Exp.
    2a/2b: no recurrent connections); the paper's numbers of weights.
``lstm1997-full``
    ``lstm1997`` with the full gradient (backpropagation through time).
``lstm``, ``gru``
    The modern cells with gradflow's recipe (:func:`gradflow.train.recipe`: 16 units,
    forget-gate bias 3, input-gate bias -3 for the LSTM, Adam at 0.01 on minibatches of 32,
    clipping at norm 1), full gradient.
``rnn``
    The tanh RNN with the same recipe, where the paper compares with recurrent nets
    trained by gradient descent (Exp. 1 and 2).

All models have the paper's output layer (logistic output units reading the cell
outputs, squared error) and are judged by the same rule.  Where the paper is ambiguous,
the reading chosen is in ``READINGS`` (and in the reproduction's notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Experiment", "EXPERIMENTS", "MODELS", "PAPER_NETS", "READINGS", "INTRO", "experiments", "models_for",
           "build", "budget_of", "trial", "trial_setup", "checkpoint_of", "warm", "PAPER",
           "TITLE"]

PAPER = "hochreiter1997"
TITLE = "Hochreiter & Schmidhuber (1997), Long Short-Term Memory: the experiments of section 5"

#: model -> what it is
MODELS = {
    "lstm1997": "the 1997 cell and net, truncated gradient, online SGD (the paper's); "
                "recurrent connections from the cells' outputs",
    "lstm1997-fc": "lstm1997 with the paper's fully connected hidden layer (the gates' "
                   "activations fed back too): the paper's net and weights exactly",
    "lstm1997-full": "the 1997 cell and net, full gradient (BPTT), online SGD",
    "lstm": "LSTM with forget gate, gradflow's recipe (Adam, minibatches of 32)",
    "gru": "GRU, gradflow's recipe (Adam, minibatches of 32)",
    "rnn": "tanh RNN, gradflow's recipe (Adam, minibatches of 32)",
}

#: the models that are the paper's net and learning rule: the table puts the paper's
#: result on their rows
PAPER_NETS = ("lstm1997", "lstm1997-fc")


@dataclass(frozen=True)
class Experiment:
    """One row of the paper's tables: a task, the paper's net and training, its result.

    Attributes
    ----------
    key, group : str
        ``"4-500"`` and ``"4"`` (``--exp 4`` runs the group).
    title : str
    task, task_options
        :func:`gradflow.train.tasks.get` arguments.
    cell : str
        The memory cell of the paper's net.
    blocks, block_size : int
    biases : str
        Which units have bias weights (``gradflow.train.blocks.BIASES``).
    init_range : float
    input_gate_bias, output_gate_bias : tuple or None
        Per block; None: from the initial range like the other weights.
    shortcut : bool
        Output units read the input units too (connectivity "B").
    hidden : {"fc", "inputs"}
        The paper's hidden layer (model ``lstm1997-fc``): ``"fc"`` fully connected (every
        gate and cell input reads every cell's output and gate's activation of the
        previous step), ``"inputs"`` no recurrent connections (Exp. 2a/2b, whose 10,504
        weights leave none).
    grow : bool
        Sequential construction: the cell is added once the error stops decreasing.
    lr : float
        The paper's learning rate.
    rule : str
        ``"window"``, ``"successive"``, ``"few-wrong"``, ``"test-sets"``, ``"fixed-sets"``
        (see :mod:`gradflow.reproduce.runner`).
    rule_options : dict
    beta : float
        ``ABS(β)``: a sequence is correct when every output at its end is within β.
    trials : int
        The paper's number of trials.
    paper : dict
        The paper's result: ``success`` (percent or None), ``sequences`` (mean), and per
        experiment ``wrong``/``test``, ``weights``, ``st1`` ...
    check_every : int
        How often the periodic tests of the rules ``test-sets`` and ``fixed-sets`` run.
    """

    key: str
    group: str
    title: str
    task: str
    task_options: dict
    cell: str = "lstm1997"
    blocks: int = 1
    block_size: int = 1
    biases: str = "all"
    init_range: float = 0.1
    input_gate_bias: tuple | None = None
    output_gate_bias: tuple | None = None
    shortcut: bool = False
    hidden: str = "fc"
    grow: bool = False
    lr: float = 0.5
    rule: str = "window"
    rule_options: dict = field(default_factory=dict)
    beta: float = 0.04
    trials: int = 10
    paper: dict = field(default_factory=dict)
    check_every: int = 100
    compare_rnn: bool = False

    @property
    def paper_sequences(self) -> float | None:
        return self.paper.get("sequences")


def _exp1(key, blocks, size, ogb, success, seqs, weights):
    return Experiment(
        key, "1", f"Embedded Reber grammar, {blocks} blocks of size {size}, lr 0.5",
        "reber", {"max_length": 60}, blocks=blocks, block_size=size, biases="gates",
        init_range=0.2, output_gate_bias=ogb, lr=0.5, rule="fixed-sets", trials=30,
        paper={"success": success, "sequences": seqs, "weights": weights}, check_every=100,
        compare_rnn=True)


def _exp2c(q, p, seqs):
    return Experiment(
        f"2c-{q}-{p}" if q != p else f"2c-{q}", "2c",
        f"Very long lags, no local regularities: q = {q}, p = {p}",
        "distractors", {"length": q, "distractors": p}, blocks=2, block_size=1, biases="none",
        init_range=0.2, lr=0.01, rule="successive", beta=0.2, trials=20,
        paper={"success": None, "sequences": seqs, "weights": 6 * p + 64}, compare_rnn=True)


def _exp3(variant, T, N, st1, st2, frac, extra=None):
    noisy_signal, noisy_target = variant == "b", variant == "c"
    opts = {"length": T, "n": N, "noisy_signal": noisy_signal, "noisy_target": noisy_target}
    rule = {"a": {"max_wrong": 0, "max_abs": 0.01}, "b": {"max_wrong": 5, "max_abs": 0.04},
            "c": {"max_wrong": 0, "max_abs": 0.015, "st1": False}}[variant]
    paper = {"success": None, "sequences": st2, "st1": st1, "wrong_fraction": frac, "weights": 102}
    paper.update(extra or {})
    kind = {"a": "2-sequence problem", "b": "2-sequence problem, noisy signal",
            "c": "2-sequence problem, noisy targets"}[variant]
    return Experiment(
        f"3{variant}-{T}-{N}", f"3{variant}", f"{kind}: T = {T}, N = {N}", "two-sequence", opts,
        blocks=3, block_size=1, biases="hidden", init_range=0.1,
        input_gate_bias=(-1.0, -3.0, -5.0), output_gate_bias=(-2.0, -4.0, -6.0),
        lr=0.1 if variant == "c" else 1.0, rule="test-sets", rule_options=rule,
        beta=0.1 if variant == "c" else 0.2, trials=10, paper=paper,
        check_every=1000 if T >= 1000 or variant == "c" else 200)


def _exp4(T, wrong, seqs):
    return Experiment(
        f"4-{T}", "4", f"Adding problem, T = {T}", "adding", {"length": T}, blocks=2,
        block_size=2, biases="all", init_range=0.1, input_gate_bias=(-3.0, -6.0), lr=0.5,
        rule="window", rule_options={"beta": 0.01}, beta=0.04, trials=10,
        paper={"success": None, "sequences": seqs, "wrong": wrong, "test": 2560, "weights": 93})


#: every experiment of the paper's section 5, in its order
EXPERIMENTS = [
    _exp1("1-3x2", 3, 2, (-1.0, -2.0, -3.0), 100, 8_440, 276),
    _exp1("1-4x1", 4, 1, (-1.0, -2.0, -3.0, -4.0), 97, 9_500, 264),
    Experiment("2a", "2a", "Noise-free sequences with long time lags, p = 100", "long-lag",
               {"length": 100}, cell="lstm1997-nog", biases="none", init_range=0.2,
               shortcut=True, hidden="inputs", grow=True, lr=1.0, rule="successive",
               beta=0.25, trials=18,
               paper={"success": 100, "sequences": 5_040, "weights": 10_504}, compare_rnn=True),
    Experiment("2b", "2b", "No local regularities, p = 100", "long-lag",
               {"length": 100, "random": True}, cell="lstm1997-nog", biases="none",
               init_range=0.2, shortcut=True, hidden="inputs", grow=True, lr=1.0,
               rule="successive", beta=0.25, trials=18, paper={"success": 100, "sequences": 5_680, "weights": 10_504},
               compare_rnn=True),
    _exp2c(50, 50, 30_000), _exp2c(100, 100, 31_000), _exp2c(200, 200, 33_000),
    _exp2c(500, 500, 38_000), _exp2c(1000, 1000, 49_000), _exp2c(1000, 500, 49_000),
    _exp2c(1000, 200, 75_000), _exp2c(1000, 100, 135_000), _exp2c(1000, 50, 203_000),
    _exp3("a", 100, 3, 27_380, 39_850, 0.000195),
    _exp3("a", 100, 1, 58_370, 64_330, 0.000117),
    _exp3("a", 1000, 3, 446_850, 452_460, 0.000078),
    _exp3("b", 100, 3, 41_740, 43_250, 0.00828),
    _exp3("b", 100, 1, 74_950, 78_430, 0.01500),
    _exp3("b", 1000, 1, 481_060, 485_080, 0.01207),
    _exp3("c", 100, 3, None, 269_650, 0.00558, {"mean_abs": 0.014}),
    _exp3("c", 100, 1, None, 565_640, 0.00441, {"mean_abs": 0.012}),
    _exp4(100, 1, 74_000), _exp4(500, 0, 209_000), _exp4(1000, 1, 853_000),
    Experiment("5", "5", "Multiplication problem, T = 100", "multiplication", {"length": 100},
               blocks=2, block_size=2, biases="all", init_range=0.1, lr=0.1, rule="few-wrong",
               rule_options={"levels": (140, 13)}, beta=0.04, trials=10,
               paper={"success": None, "sequences": 1_273_000, "wrong": 14, "test": 2560,
                      "mse": 0.0139, "sequences_140": 482_000, "wrong_140": 139,
                      "mse_140": 0.0223, "weights": 93}),
    Experiment("6a", "6a", "Temporal order, 2 relevant symbols, 4 classes", "temporal-order",
               {"length": 100, "order": 2}, blocks=2, block_size=2, biases="all",
               init_range=0.1, input_gate_bias=(-2.0, -4.0), lr=0.5, rule="window",
               rule_options={"beta": 0.1}, beta=0.3, trials=20,
               paper={"success": None, "sequences": 31_390, "wrong": 1, "test": 2560,
                      "weights": 156}),
    Experiment("6b", "6b", "Temporal order, 3 relevant symbols, 8 classes", "temporal-order",
               {"length": 100, "order": 3}, blocks=3, block_size=2, biases="all",
               init_range=0.1, input_gate_bias=(-2.0, -4.0, -6.0), lr=0.1, rule="window",
               rule_options={"beta": 0.1}, beta=0.3, trials=10,
               paper={"success": None, "sequences": 571_100, "wrong": 2, "test": 2560,
                      "weights": 308}),
]
BY_KEY = {e.key: e for e in EXPERIMENTS}

#: the section's opening (Markdown)
INTRO = """\
Hochreiter & Schmidhuber's claim is about *their* cell: memory cell blocks that share an
input and an output gate, no forget gate, squashing functions g ∈ [−2, 2] and h ∈ [−1, 1],
and a **truncated** gradient, in which error reaches earlier steps only through the
constant error carousel. gradflow writes that cell as equations (`lstm1997`:
$s_t = s_{t-1} + i_t\\,g_t$, $h_t = o_t\\,(2\\sigma(s_t) - 1)$,
$g_t = 4\\sigma(a_{g,t}) - 2$) and derives the truncated gradient from them: SymPy's
truncated one-step Jacobian has $\\partial s_t/\\partial s_{t-1} = I$ and nothing through
$h_{t-1}$. Each experiment is run with the paper's net (its blocks, biases, initial
weights and gate biases), learning rate, online updates (one sequence per update),
stopping rule and number of trials, and is compared with:

- `lstm1997`: the paper's net and training, truncated gradient, with gradflow's
  recurrent connections (from the cells' outputs);
- `lstm1997-fc`: the same with the paper's hidden layer exactly: fully connected (the
  gates' activations are fed back too; in Exp. 2a/2b no recurrent connections), so with
  the paper's numbers of weights;
- `lstm1997-full`: the same net, initial weights and sequences, full gradient
  (backpropagation through time);
- `lstm`, `gru`: today's cells with gradflow's recipe (16 units, forget-gate bias 3,
  input-gate bias −3, Adam at 0.01 on minibatches of 32, clipping at norm 1);
- `rnn`: the tanh RNN with that recipe, where the paper compares with recurrent nets
  trained by gradient descent (Exp. 1 and 2).

Every model has the paper's output layer (logistic output units reading the cell outputs,
squared error) and is judged by the same stopping rule."""

#: where the paper is ambiguous or gradflow differs, and the reading chosen
READINGS = [
    "Online learning: the weights change after each sequence, by the sum of every step's "
    "contribution (appendix A.1: 'each weight's total update is the sum of the contributions "
    "of all time steps'); the error is E = Σ_k (y_k - t_k)² with the 2 folded into the "
    "learning rate, as in appendix A.1.",
    "Input, hidden and output activations of one time step are computed in that order (the "
    "paper's section 5 introduction): the cells read x_t and their outputs of step t-1, the "
    "output units the cells' outputs of step t.",
    "The paper's hidden layers are fully connected: the gate units' activations are fed "
    "back to every gate and cell like the cells' outputs (Exp. 2a/2b: no recurrent "
    "connections at all). `lstm1997-fc` is that net (gradflow.train.BlockNet with "
    "gate_feedback: one unit per gate that sends its activation on), with the paper's "
    "numbers of weights for every experiment; `lstm1997` feeds back the cells' outputs "
    "only, as gradflow's cells do, and has fewer weights. With the truncated gradient no "
    "error flows through any recurrent connection, so the two differ in what the gates see "
    "of the previous step, not in the learning rule.",
    "A memory cell block of size S is S units whose input-gate and output-gate rows are "
    "tied (gradflow.train.BlockNet): the same forward pass, and the gradient of a shared "
    "gate is the sum over its block.",
    "Table 10's caption calls h 'logistic sigmoid in [-2, 2]' and g 'sigmoid in [-1, 1]'; "
    "the text and appendix A.1 give h in [-1, 1] and g in [-2, 2], which is used.",
    "Exp. 1: the training target at each step is the distribution over the legal next "
    "symbols (the expected value of the one-hot next symbol, which has the same expected "
    "squared-error gradient); strings of at most 61 symbols; the sets are tested every 100 "
    "training sequences. The 30 trials use 3 pairs of training and test sets, 10 each.",
    "Exp. 2: 'during 10,000 successive, randomly chosen input sequences' is read as 10,000 "
    "successive training sequences judged before their update; the sequences to success "
    "are those before the first of them. Exp. 2a/2b: sequential construction ('memory cell "
    "and input gate are added once the error has stopped decreasing') adds the cell once "
    "the mean error of the last 200 sequences is less than 10 % below that of the 200 "
    "before; the output units' error falls like 1/t, so this is after about 2,000 "
    "sequences, and they count towards the sequences to success.",
    "Exp. 2c: the paper's expected sequence length q + 14 is q + 13 by its own formula "
    "(4 + Σ_k 0.1 · 0.9^k (q + k)); the extra distractors are capped at 250 (probability "
    "4e-12). Distractor indices run over the p distractors (the paper's set notation says q).",
    "Exp. 3: ST1/ST2 are tested every 200 training sequences (T = 1000 and 3c: every "
    "1,000), each time on 256 fresh sequences; 'mean absolute test set error' is at the "
    "sequence end.",
    "Exp. 4 and 6: 'average training error' (ST3) is the mean of E over the 2,000 most "
    "recent sequences.",
    "Exp. 5: the test at n_seq = 140 and at n_seq = 13 happens within one run, as soon as "
    "each holds.",
    "The modern cells (lstm, gru, rnn) are gradflow's recipe, not the paper's: they show "
    "what a current setup does with the same tasks, outputs and stopping rules; their "
    "sequence counts count every sequence of every minibatch.",
]


def experiments(select=None) -> list[Experiment]:
    """The experiments whose key or group is in `select` (all when None), in the paper's
    order.

    Raises
    ------
    InvalidArgumentError
        Naming what matched nothing, with the keys and groups there are.
    """
    from ..errors import InvalidArgumentError

    if select is None:
        return list(EXPERIMENTS)
    if isinstance(select, str):
        select = [select]
    wanted = [str(s) for s in select]
    groups = sorted({e.group for e in EXPERIMENTS})
    unknown = [w for w in wanted if w not in BY_KEY and w not in groups]
    if unknown:
        raise InvalidArgumentError(
            f"`exp` names no experiment: {unknown}; expected groups {groups} or keys "
            f"{[e.key for e in EXPERIMENTS]}")
    return [e for e in EXPERIMENTS if e.key in wanted or e.group in wanted]


def models_for(exp: Experiment, models) -> list[str]:
    """The models of `models` that run on `exp` (the tanh RNN only where the paper
    compares with recurrent nets trained by gradient descent)."""
    return [m for m in models if m != "rnn" or exp.compare_rnn]


# ---------------------------------------------------------------------- one trial
def _reber_sets(task, pair: int):
    """The paper's fixed sets: 256 training and 256 test strings, the test strings not in
    the training set; pair `pair` of 3."""
    rng = np.random.default_rng([1997, 1, pair])
    train = task.strings(256, rng)
    seen, test = set(train), []
    while len(test) < 256:
        s = task.strings(1, rng)[0]
        if s not in seen:
            test.append(s)
    return task.batch_of(train), task.batch_of(test)


def build(exp: Experiment, model: str, seed: int):
    """The net, optimizer and training settings of `model` on `exp`."""
    from .. import Cell
    from ..train import Adam, BlockNet, Model, SGD, initial_biases, recipe, tasks

    task = tasks.get(exp.task, **exp.task_options)
    if model.startswith("lstm1997"):
        fc = model == "lstm1997-fc"
        net = BlockNet(task.input_size, task.output_size, blocks=exp.blocks,
                       block_size=exp.block_size, cell=exp.cell, biases=exp.biases,
                       init_range=exp.init_range, input_gate_bias=exp.input_gate_bias,
                       output_gate_bias=exp.output_gate_bias, shortcut=exp.shortcut,
                       gate_feedback=fc and exp.hidden == "fc",
                       recurrent=not (fc and exp.hidden == "inputs"), seed=seed)
        return task, net, SGD(exp.lr), {"batch_size": 1, "truncate": model != "lstm1997-full",
                                        "clip": None}
    rec = recipe(model)
    cell = Cell(model, task.input_size, rec["hidden_size"], seed=seed,
                forget_bias=rec["forget_bias"])
    initial_biases(cell, input_bias=rec["input_bias"])
    net = Model(cell, task.output_size, seed=np.random.default_rng([seed, 4]), output="sigmoid")
    return task, net, Adam(rec["lr"]), {"batch_size": rec["batch_size"], "truncate": False,
                                        "clip": rec["clip"]}


def _rule(exp: Experiment, task, trial_index: int):
    from .runner import FewWrong, FixedSets, Successive, TestSets, Window

    o = exp.rule_options
    if exp.rule == "window":
        return Window(o["beta"])
    if exp.rule == "successive":
        return Successive(o.get("n", 10_000))
    if exp.rule == "few-wrong":
        return FewWrong(o["levels"])
    if exp.rule == "test-sets":
        return TestSets(exp.check_every, max_wrong=o["max_wrong"], max_abs=o["max_abs"],
                        st1=o.get("st1", True))
    train, test = _reber_sets(task, trial_index % 3)
    return FixedSets(exp.check_every, train, test)


def budget_of(exp: Experiment, factor: float) -> int:
    """Training sequences at most: `factor` times the paper's mean (at least 10,000), and no
    more than the paper's own limit of 5 million (Exp. 2).  Under the rule ``successive``
    the sequences to success are those *before* the run of correct ones, so the run's
    length is added: a trial can then succeed after up to `factor` times the paper's mean.
    """
    n = max(10_000, factor * exp.paper_sequences)
    if exp.rule == "successive":
        n += exp.rule_options.get("n", 10_000)
    return int(min(5_000_000, n))


def warm(models, exps) -> None:
    """Compile (or load) the kernels the trials need, here, before worker processes do."""
    from .. import Cell
    from ..train.blocks import feedback_spec

    cells = {e.cell for e in exps if any(m.startswith("lstm1997") for m in models)}
    cells |= {m for m in models if not m.startswith("lstm1997")}
    specs = [*sorted(cells)]
    if "lstm1997-fc" in models:
        specs += [feedback_spec(c) for c in sorted({e.cell for e in exps if e.hidden == "fc"})]
    for spec in specs:
        cell = Cell(spec, 1, 1, seed=0)
        trace = cell.forward(np.zeros((2, 1, 1)))
        cell.backward(trace, np.ones((2, 1, 1)), truncate=cell.spec.name.startswith("lstm1997"))


def trial_setup(point: dict):
    """What :func:`trial` trains: ``(net, task, rule, criterion, optimizer, options)``, the
    options being :func:`~gradflow.reproduce.runner.run_trial`'s keyword arguments."""
    from .runner import Criterion, Grow, trial_seed

    exp = BY_KEY[point["exp"]]
    model = point["model"]
    seed = trial_seed(point.get("base_seed", 0), exp.key, int(point["trial"]))
    task, net, opt, settings = build(exp, model, seed)
    rule = _rule(exp, task, int(point["trial"]))
    criterion = Criterion(exp.beta, expected=exp.task_options.get("noisy_target", False),
                          task=exp.rule == "fixed-sets")
    grow = Grow(init_range=exp.init_range) if exp.grow and model.startswith("lstm1997") else None
    train_set = rule.train if exp.rule == "fixed-sets" else None
    options = dict(settings, budget=int(point["budget"]), rng=np.random.default_rng([seed, 1]),
                   train_set=train_set, grow=grow, max_seconds=point.get("max_seconds"))
    return net, task, rule, criterion, opt, options


def checkpoint_of(point: dict, folder) -> tuple:
    """``(path, key)`` of the checkpoint file of the trial `point` in `folder`: the key is
    a digest of every setting of the point, so a file is only ever resumed by its own
    trial."""
    import hashlib
    import json
    from pathlib import Path

    key = hashlib.sha256(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()[:16]
    name = f"{point['exp']}_{point['model']}_{int(point['trial'])}_{key}.npz"
    return Path(folder) / name, key


def trial(point: dict, checkpoints=None, checkpoint_every: float = 60.0) -> dict:
    """One trial, for :func:`gradflow.sweep`: ``point`` has ``exp`` (a key), ``model``,
    ``trial`` (its index), ``budget`` (sequences at most), ``max_seconds`` (or None) and
    ``base_seed`` (see :func:`~gradflow.reproduce.runner.trial_seed`).  With
    `checkpoints` (a folder), the trial's state is saved there every `checkpoint_every`
    seconds and a trial that was interrupted continues from it (see
    :func:`~gradflow.reproduce.runner.run_trial`).  Returns the trial's results as plain
    numbers."""
    from threadpoolctl import threadpool_limits

    from .runner import run_trial

    net, task, rule, criterion, opt, options = trial_setup(point)
    if checkpoints is not None:
        path, key = checkpoint_of(point, checkpoints)
        path.parent.mkdir(parents=True, exist_ok=True)
        options.update(checkpoint=path, checkpoint_key=key, checkpoint_every=checkpoint_every)
    with threadpool_limits(1):
        res = run_trial(net, task, rule, criterion, opt, **options)
    res["weights"] = int(net.num_weights if hasattr(net, "num_weights")
                         else sum(v.size for v in net.params.values()))
    return res
