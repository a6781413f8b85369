"""Training: losses, optimizers and clipping against hand-derived values, PyTorch and
finite differences; gradient norms against lag against closed forms and autograd;
determinism; early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gradflow
from gradflow import train
from gradflow.train import tasks
from gradflow.errors import GradflowError, InvalidArgumentError
from gradflow.train.tasks import Batch, Task

from .conftest import assert_close
from .naive import central_differences


def test_mse_loss_value_and_gradient_by_hand():
    out = np.array([[[1.0, 2.0]], [[0.5, -1.0]]])       # (T=2, B=1, K=2)
    y = np.array([[[0.0, 0.0]], [[1.0, 1.0]]])
    mask = np.array([[False], [True]])
    loss, d = train.mse_loss(out, y, mask)
    # one masked step: ((0.5-1)^2 + (-1-1)^2) / 2
    assert loss == pytest.approx((0.25 + 4.0) / 2)
    np.testing.assert_allclose(d, [[[0, 0]], [[-0.5, -2.0]]])
    with pytest.raises(GradflowError, match="mask"):
        train.mse_loss(out, y, np.zeros((2, 1), bool))
    with pytest.raises(GradflowError, match="mask"):
        train.mse_loss(out, y, np.ones((3, 1), bool))


def test_xent_loss_against_torch_and_finite_differences(torch):
    rng = np.random.default_rng(0)
    out = rng.standard_normal((4, 3, 5))
    y = rng.dirichlet(np.ones(5), size=(4, 3))
    mask = rng.random((4, 3)) < 0.6
    mask[0, 0] = True
    loss, d = train.xent_loss(out, y, mask)
    t_out = torch.tensor(out[mask], requires_grad=True)
    ref = torch.nn.functional.cross_entropy(t_out, torch.tensor(y[mask]), reduction="mean")
    ref.backward()
    assert_close(loss, ref.item())
    assert_close(d[mask], t_out.grad.numpy())
    assert not d[~mask].any()
    fd = central_differences(lambda: train.xent_loss(out, y, mask)[0], out)
    assert_close(d, fd, kind="finite_difference")
    # huge logits stay finite
    big, _ = train.xent_loss(out * 1e4, y, mask)
    assert math.isfinite(big)


def test_clip_by_global_norm_by_hand_and_torch(torch):
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0, 4.0]])}
    norm = train.clip_by_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(g["a"], [0.6, 0.0])
    np.testing.assert_allclose(g["b"], [[0.0, 0.8]])
    g2 = {"a": np.array([0.3, 0.4])}
    assert train.clip_by_global_norm(g2, 1.0) == pytest.approx(0.5)
    np.testing.assert_allclose(g2["a"], [0.3, 0.4])            # below the threshold: unchanged
    rng = np.random.default_rng(1)
    arrs = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ts = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True) for a in arrs]
    for t, a in zip(ts, arrs):
        t.grad = torch.tensor(a)
    ref = torch.nn.utils.clip_grad_norm_(ts, 0.7)
    ours = {str(k): a.copy() for k, a in enumerate(arrs)}
    norm = train.clip_by_global_norm(ours, 0.7)
    assert_close(norm, ref.item())
    for k, t in enumerate(ts):
        # torch scales by max_norm / (norm + 1e-6); gradflow by max_norm / norm
        assert_close(ours[str(k)] * norm / (norm + 1e-6), t.grad.numpy())
    with pytest.raises(InvalidArgumentError, match="max_norm"):
        train.clip_by_global_norm(ours, -1.0)


def test_adam_first_step_by_hand():
    # m_hat = g and v_hat = g^2 after one step: the update is lr * g / (|g| + eps)
    p = {"w": np.array([1.0, -2.0, 0.5])}
    g = {"w": np.array([0.3, -4.0, 1e-3])}
    train.Adam(lr=0.1, eps=1e-8).step(p, g)
    np.testing.assert_allclose(p["w"], [1.0 - 0.1 * 0.3 / (0.3 + 1e-8), -2.0 + 0.1 * 4 / (4 + 1e-8),
                                        0.5 - 0.1 * 1e-3 / (1e-3 + 1e-8)], rtol=1e-14)


def test_adam_defaults_first_step_by_hand():
    """Documented: PyTorch's defaults, lr = 1e-3, betas = (0.9, 0.999), eps = 1e-8.  The
    first step moves every weight by lr |g| / (|g| + eps), about 1e-3, against its gradient."""
    p = {"w": np.array([1.0, -2.0, 0.5])}
    g = np.array([0.3, -4.0, 1e-3])
    train.Adam().step(p, {"w": g})
    np.testing.assert_allclose(p["w"], np.array([1.0, -2.0, 0.5]) - 1e-3 * g / (np.abs(g) + 1e-8),
                               rtol=1e-14)


def test_sgd_defaults_by_hand():
    """The signature's defaults, lr = 0.1 without momentum: every step is p - 0.1 g."""
    p = {"w": np.array([1.0, -2.0])}
    opt = train.SGD()
    opt.step(p, {"w": np.array([0.5, 3.0])})
    opt.step(p, {"w": np.array([0.5, 3.0])})
    np.testing.assert_allclose(p["w"], [1.0 - 2 * 0.05, -2.0 - 2 * 0.3], rtol=1e-15)


@pytest.mark.parametrize("which", ["adam", "adam-defaults", "sgd", "sgd-momentum"])
def test_optimizers_match_torch_over_steps(torch, which):
    rng = np.random.default_rng(2)
    A = rng.standard_normal((4, 4))
    w0 = rng.standard_normal(4)
    p = {"w": w0.copy()}
    tw = torch.tensor(w0.copy(), requires_grad=True)
    tA = torch.tensor(A)
    if which == "adam":
        ours, ref = train.Adam(lr=0.05), torch.optim.Adam([tw], lr=0.05)
    elif which == "adam-defaults":
        ours, ref = train.Adam(), torch.optim.Adam([tw])
    elif which == "sgd":
        ours, ref = train.SGD(lr=0.05), torch.optim.SGD([tw], lr=0.05)
    else:
        ours, ref = train.SGD(lr=0.05, momentum=0.9), torch.optim.SGD([tw], lr=0.05, momentum=0.9)
    for _ in range(20):
        # loss = 0.5 |A w|^2 + sum(sin w): gradient A^T A w + cos w
        g = {"w": A.T @ A @ p["w"] + np.cos(p["w"])}
        ours.step(p, g)
        ref.zero_grad()
        (0.5 * (tA @ tw).pow(2).sum() + torch.sin(tw).sum()).backward()
        ref.step()
    assert_close(p["w"], tw.detach().numpy())


def test_optimizer_arguments_are_checked():
    for lr in (0.0, -0.1, float("nan"), "0.1"):
        for opt in (train.Adam, train.SGD):
            with pytest.raises(InvalidArgumentError, match="`lr`"):
                opt(lr=lr)
    with pytest.raises(InvalidArgumentError, match="momentum"):
        train.SGD(lr=0.1, momentum=1.5)
    for betas in ((1.0, 0.999), (0.9, 1.0), (-0.1, 0.999), (0.9,), 0.9):
        with pytest.raises(InvalidArgumentError, match="`betas`"):
            train.Adam(betas=betas)
    cell = gradflow.Cell("rnn", 2, 3, seed=0)
    with pytest.raises(InvalidArgumentError, match="optimizer"):
        train.train(cell, "adding", optimizer="rmsprop", max_sequences=1, verbose=False)
    with pytest.raises(InvalidArgumentError, match="input_size"):
        train.train(cell, "copy", max_sequences=1, verbose=False)


@pytest.mark.parametrize("cell_name,task_name,opts", [
    ("lstm", "adding", {"length": 20}),
    ("gru", "temporal-order", {"length": 20}),
    ("rnn", "copy", {"length": 3}),
])
def test_model_gradients_against_finite_differences(cell_name, task_name, opts):
    task = tasks.get(task_name, **opts)
    cell = gradflow.Cell(cell_name, task.input_size, 3, seed=1)
    model = train.Model(cell, task.output_size, seed=2)
    batch = task.batch(2, seed=0)
    _, _, grads = model.loss_and_gradients(task, batch)
    for name, arr in model.params.items():
        if arr.size > 40:           # a random sample of the large arrays' entries
            continue
        fd = central_differences(lambda: model.loss_and_gradients(task, batch)[0], arr)
        assert_close(grads[name], fd, kind="finite_difference", err_msg=name)
    # weight_ih of the GRU / copy cells is larger: check one entry by hand
    w = model.params["weight_ih"]
    old = w[0, 0]
    w[0, 0] = old + 1e-6
    lp = model.loss_and_gradients(task, batch)[0]
    w[0, 0] = old - 1e-6
    lm = model.loss_and_gradients(task, batch)[0]
    w[0, 0] = old
    assert_close(grads["weight_ih"][0, 0], (lp - lm) / 2e-6, kind="finite_difference")


def test_lag_norms_of_a_linear_rnn_are_a_power_law_without_underflow():
    # h_t = W x_t + a Q h_{t-1} + b: dL/dh_k = (a Q^T)^(T-k) dL/dh_T, so
    # log10 |dL/dh_k| = (T - k) log10 a + log10 |dL/dh_T| exactly; 1e-3^200 = 1e-600.
    T, H, a = 200, 4, 1e-3
    cell = gradflow.Cell("rnn-linear", 1, H, seed=0)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((H, H)))
    cell.params["weight_hh"][:] = a * q
    x = np.random.default_rng(1).standard_normal((T, 2, 1))
    trace = cell.forward(x)
    dh = np.zeros((T, 2, H))
    dh[-1] = [[1.0, 2.0, 0.0, -2.0], [3.0, 0.0, 0.0, 4.0]]
    logn = train.state_gradient_log10_norms(cell, trace, dh)
    k = np.arange(T + 1)
    expect = (T - k)[:, None] * math.log10(a) + np.log10([3.0, 5.0])[None, :]
    np.testing.assert_allclose(logn, expect, rtol=1e-12, atol=1e-9)


def test_lag_norms_of_an_lstm_against_torch_autograd(torch):
    T, B, H, D = 12, 3, 4, 2
    cell = gradflow.Cell("lstm", D, H, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((T, B, D))
    dh = rng.standard_normal((T, B, H)) * (rng.random((T, B, 1)) < 0.3)
    logn = train.state_gradient_log10_norms(cell, cell.forward(x), dh)
    P = {k: torch.tensor(v) for k, v in cell.params.items()}
    h = torch.zeros(B, H, dtype=torch.float64, requires_grad=True)
    c = torch.zeros(B, H, dtype=torch.float64)
    hs, loss = [h], 0.0
    for t in range(T):
        gates = torch.tensor(x[t]) @ P["weight_ih"].T + P["bias_ih"] + hs[-1] @ P["weight_hh"].T + P["bias_hh"]
        i, f, g, o = gates.split(H, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        hn = torch.sigmoid(o) * torch.tanh(c)
        hn.retain_grad()
        hs.append(hn)
        loss = loss + (hn * torch.tensor(dh[t])).sum()
    loss.backward()
    ref = np.array([np.linalg.norm(hk.grad.numpy(), axis=1) for hk in hs])
    with np.errstate(divide="ignore"):
        ref = np.log10(ref)
    finite = np.isfinite(ref)
    assert np.array_equal(finite, np.isfinite(logn))
    np.testing.assert_allclose(10 ** logn[finite], 10 ** ref[finite], rtol=1e-10)


class _Always(Task):
    """A task whose criterion holds (or fails) for every sequence."""

    name, loss, input_size, output_size, max_length, stop_loss = "always", "mse", 1, 1, 5, 10.0

    def __init__(self, ok: bool):
        self.ok = ok

    def _make(self, B, rng):
        x = rng.standard_normal((5, B, 1))
        mask = np.zeros((5, B), bool)
        mask[-1] = True
        return Batch(x, x * 0.5, mask, np.full(B, 5))

    def correct(self, out, batch):
        return np.full(batch.size, self.ok)


def test_early_stopping_on_the_window_rule():
    cell = gradflow.Cell("rnn", 1, 2, seed=0)
    r = train.train(cell, _Always(True), batch_size=7, window=30, max_sequences=1000,
                    test_size=0, probes=0, verbose=False)
    assert r.solved and r.sequences == 35            # ceil(30 / 7) updates
    r = train.train(cell, _Always(False), batch_size=7, window=30, max_sequences=100,
                    test_size=0, probes=0, verbose=False)
    assert not r.solved and r.sequences == 105 and len(r.history["loss"]) == 15


def test_training_is_deterministic_and_learns():
    task = tasks.get("adding-uniform", length=10)

    def run(seed):
        cell = gradflow.Cell("gru", 2, 8, seed=seed)
        return train.train(cell, task, batch_size=16, lr=0.01, max_sequences=3200, seed=seed,
                           test_size=256, probes=3, verbose=False)

    a, b, c = run(0), run(0), run(1)
    for k in ("loss", "grad_norm", "accuracy", "probe_log10_grad"):
        np.testing.assert_array_equal(a.history[k], b.history[k])
    for k, v in a.model.params.items():
        np.testing.assert_array_equal(v, b.model.params[k])
    assert a.test == b.test
    assert not np.array_equal(a.history["loss"], c.history["loss"])
    # it learns: test MSE well below the mean predictor's 1/6
    assert a.test["loss"] < 0.2 * task.chance["loss"]
    assert a.history["probe_log10_grad"].shape == (4, 11)


def _recipe_run(cell_name, task_name, budget=60_000):
    """The recipe of analysis/training.py: H = 16, batches of 32, Adam 0.01, clip 1."""
    task = tasks.get(task_name, length=100)
    cell = gradflow.Cell(cell_name, task.input_size, 16, seed=0,
                         forget_bias=None if cell_name == "rnn" else 3.0)
    if cell_name == "lstm":
        train.initial_biases(cell, input_bias=-3.0)
    return train.train(cell, task, batch_size=32, lr=0.01, clip=1.0, max_sequences=budget,
                       seed=0, test_size=2560, probes=0, verbose=False)


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["adding", "temporal-order"])
def test_lstm_solves_the_1997_task_at_T100_and_a_tanh_rnn_does_not(task_name):
    lstm = _recipe_run("lstm", task_name)
    rnn = _recipe_run("rnn", task_name)
    # the 1997 stopping rule (2,000 consecutive training sequences correct) within the
    # budget, and at most 1% of 2,560 fresh test sequences wrong (the paper: 1 of 2,560)
    assert lstm.solved and lstm.sequences < 60_000
    assert lstm.test["wrong"] <= 25
    # the tanh RNN of the same hidden size, same recipe and budget: no better than a
    # net without memory (adding: 0.5 always is right for ~15%; temporal order: 0%)
    task = lstm.task
    assert not rnn.solved and rnn.sequences >= 60_000
    assert rnn.test["accuracy"] < task.chance["accuracy"] + 0.05
    assert rnn.test["loss"] > 0.8 * task.chance["loss"]


def test_initial_biases_and_errors():
    cell = gradflow.Cell("lstm", 2, 3, seed=0)
    train.initial_biases(cell, input_bias=-2.5)
    rows = cell.gate_slice("i")
    np.testing.assert_array_equal(cell.params["bias_ih"][rows], -2.5)
    np.testing.assert_array_equal(cell.params["bias_hh"][rows], 0.0)
    with pytest.raises(InvalidArgumentError, match="input gate"):
        train.initial_biases(gradflow.Cell("gru", 2, 3, seed=0), input_bias=-1.0)


@pytest.mark.parametrize("probe_size", [0, -3, 2.5, "16"])
def test_probe_size_is_checked_before_training(probe_size):
    cell = gradflow.Cell("rnn", 2, 3, seed=0)
    task = tasks.get("adding", length=20)
    with pytest.raises(InvalidArgumentError, match="`probe_size`"):
        train.train(cell, task, probe_size=probe_size, max_sequences=32, verbose=False)
    with pytest.raises(InvalidArgumentError, match="`probe_size`"):     # even without probes
        train.train(cell, task, probes=0, probe_size=probe_size, max_sequences=32, verbose=False)


def test_cli_trains_and_writes_json(tmp_path, capsys):
    from gradflow.cli import main

    out = tmp_path / "run.json"
    rc = main(["train", "adding-uniform", "--cell", "gru", "--length", "10", "--hidden", "8",
               "--max-sequences", "640", "--test-size", "64", "--quiet", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 1 and "test:" in text and "stopping rule met: no" in text   # 640 < window
    import json

    data = json.loads(out.read_text())
    assert data["sequences"] == 640 and len(data["history"]["loss"]) == 20
    rc = main(["train", "adding", "--length", "3", "--quiet"])
    assert rc == 2 and "length" in capsys.readouterr().err


class _Recorder:
    """An optimizer that records the gradients it is given and changes nothing."""

    def __init__(self):
        self.grads = []

    def step(self, params, grads):
        self.grads.append({k: np.array(v, copy=True) for k, v in grads.items()})


def test_one_clipped_update_by_hand():
    """train(clip=c) hands the optimizer g * min(1, c / ||g||), ||g|| the global norm of the
    raw gradients (computed here), and clip=None hands it g unchanged."""
    task = tasks.get("adding", length=20)

    def first_update(clip):
        cell = gradflow.Cell("lstm", task.input_size, 4, seed=0)
        rec = _Recorder()
        train.train(cell, task, batch_size=8, max_sequences=8, optimizer=rec, clip=clip,
                    probes=0, test_size=0, verbose=False)
        assert len(rec.grads) == 1
        return rec.grads[0]

    raw = first_update(None)
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in raw.values()))
    assert norm > 0
    for factor in (0.3, 0.9):
        got = first_update(factor * norm)
        for key, g in raw.items():
            np.testing.assert_allclose(got[key], g * factor, rtol=1e-12, atol=0, err_msg=key)
    got = first_update(10.0 * norm)
    for key, g in raw.items():
        np.testing.assert_array_equal(got[key], g)
