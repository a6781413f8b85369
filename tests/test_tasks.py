"""Task generators: targets recomputed here from the inputs, criteria, baselines, options."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradflow.train import tasks
from gradflow.errors import GradflowError, InvalidArgumentError
from gradflow.train import xent_loss


def test_registry_names_and_errors():
    assert set(tasks.names()) == {"adding", "adding-uniform", "temporal-order", "copy",
                                  "long-lag", "distractors", "two-sequence", "multiplication",
                                  "reber"}
    with pytest.raises(InvalidArgumentError, match="not a task"):
        tasks.get("addition")
    with pytest.raises(InvalidArgumentError, match="takes no option"):
        tasks.get("adding", lenght=100)
    with pytest.raises(InvalidArgumentError, match="length"):
        tasks.get("adding", length=5)
    with pytest.raises(InvalidArgumentError, match="order"):
        tasks.get("temporal-order", order=4)
    with pytest.raises(GradflowError, match="batch_size"):
        tasks.get("copy", length=5).batch(0)
    with pytest.raises(GradflowError, match="seed"):
        tasks.get("copy", length=5).batch(2, seed=-1)


@pytest.mark.parametrize("name", ["adding", "adding-uniform", "temporal-order", "copy",
                                  "long-lag", "reber"])
def test_batches_are_deterministic_and_padded(name):
    task = tasks.get(name)
    a, b, c = task.batch(8, seed=3), task.batch(8, seed=3), task.batch(8, seed=4)
    for f in ("x", "y", "mask", "lengths"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.x, c.x)
    T, B, D = a.x.shape
    assert (T, B, D) == (task.max_length, 8, task.input_size)
    assert a.y.shape == (T, B, task.output_size) and a.mask.shape == (T, B)
    for k in range(B):
        L = a.lengths[k]
        assert not a.x[L:, k].any() and not a.mask[L:, k].any()


def test_adding_1997_targets_markers_and_positions():
    T = 100
    task = tasks.get("adding", length=T)
    batch = task.batch(400, seed=0)
    seen_first_marked = False
    for k in range(batch.size):
        L = int(batch.lengths[k])
        assert T <= L <= T + T // 10
        val, mark = batch.x[:L, k, 0], batch.x[:L, k, 1]
        assert np.all((val >= -1) & (val <= 1))
        ones = np.flatnonzero(mark == 1.0)
        assert len(ones) == 2 and ones[0] < 10 and ones[1] < T // 2 - 1
        assert set(np.flatnonzero(mark == -1.0)) == {0, L - 1} - set(ones)
        assert set(np.unique(mark)) <= {-1.0, 0.0, 1.0}
        if ones[0] == 0:
            seen_first_marked = True
            assert val[0] == 0.0
        assert np.flatnonzero(batch.mask[:, k]).tolist() == [L - 1]
        assert batch.y[L - 1, k, 0] == pytest.approx(0.5 + val[ones].sum() / 4, abs=1e-15)
    assert seen_first_marked  # 400 sequences: P(never) = 0.9**400


def test_adding_of_fixed_length_has_no_padding():
    """variable_length=False: every sequence has exactly T steps, and so does the batch."""
    task = tasks.get("adding", length=40, variable_length=False)
    b = task.batch(16, seed=0)
    assert task.max_length == 40 and b.x.shape == (40, 16, 2) and b.y.shape == (40, 16, 1)
    np.testing.assert_array_equal(b.lengths, 40)
    assert b.mask[-1].all() and not b.mask[:-1].any()
    assert np.all(b.x[-1, :, 1] != 0.0)      # the last pair is marked (-1, or 1 if chosen)


def test_adding_chance_baselines_by_monte_carlo():
    task = tasks.get("adding", length=20, variable_length=False)
    b = task.batch(40000, seed=1)
    out = np.full_like(b.y, 0.5)
    err = (out - b.y)[b.mask][:, 0]
    # pair 0 is marked with probability p0 = 1/10 + (8/10)(1/8) + (1/10)(1/9) (i1 = 9 lies
    # outside the first T/2 - 1 = 9 pairs); its value is then 0.  Var((X1 + X2)/4) =
    # (2 - p0)/48; |sum/4| < 0.04 has probability 0.16 for one term, 1 - 0.92^2 for two.
    p0 = 0.1 + 0.8 / 8 + 0.1 / 9
    assert task.chance["loss"] == pytest.approx((2 - p0) / 48, rel=1e-12)
    assert task.chance["accuracy"] == pytest.approx(p0 * 0.16 + (1 - p0) * (1 - 0.92 ** 2), rel=1e-12)
    assert np.mean(err ** 2) == pytest.approx((2 - p0) / 48, rel=0.03)
    assert task.correct(out, b).mean() == pytest.approx(task.chance["accuracy"], abs=0.01)
    assert np.mean(b.x[0, :, 1] == 1) == pytest.approx(p0, abs=0.01)


def test_adding_uniform_targets_and_mean_baseline():
    task = tasks.get("adding-uniform", length=50)
    b = task.batch(20000, seed=2)
    mark = b.x[:, :, 1]
    assert np.all(mark[:25].sum(axis=0) == 1) and np.all(mark[25:].sum(axis=0) == 1)
    target = (b.x[:, :, 0] * mark).sum(axis=0)
    np.testing.assert_allclose(b.y[-1, :, 0], target, rtol=0, atol=1e-15)
    assert np.all(b.mask[-1]) and not b.mask[:-1].any()
    assert np.var(target) == pytest.approx(1 / 6, rel=0.05)
    assert task.chance["loss"] == pytest.approx(0.1667, abs=1e-4)
    # the defaults: T = 100, solved below an MSE of 0.01, correct within 0.04
    default = tasks.get("adding-uniform")
    assert (default.length, default.stop_loss) == (100, 0.01)
    b = default.batch(4, seed=0)
    assert default.correct(b.y + 0.039, b).all() and not default.correct(b.y - 0.041, b).any()


@pytest.mark.parametrize("order", [2, 3])
def test_temporal_order_sequences_and_classes(order):
    task = tasks.get("temporal-order", length=100, order=order)
    b = task.batch(300, seed=5)
    # the paper's 1-based windows
    windows = [(10, 20), (50, 60)] if order == 2 else [(10, 20), (33, 43), (66, 76)]
    for k in range(b.size):
        L = int(b.lengths[k])
        assert 100 <= L <= 110
        sym = "".join("abcdXYEB"[i] for i in b.x[:L, k].argmax(-1))
        assert np.all(b.x[:L, k].sum(-1) == 1)
        assert sym[0] == "E" and sym[-1] == "B"
        pos = [i + 1 for i, s in enumerate(sym) if s in "XY"]
        assert len(pos) == order
        assert all(lo <= p <= hi for p, (lo, hi) in zip(pos, windows))
        assert set(sym[1:-1]) - set("XY") <= set("abcd")
        cls = int("".join("0" if sym[p - 1] == "X" else "1" for p in pos), 2)
        assert b.mask[:, k].tolist().index(True) == L - 1 and b.mask[:, k].sum() == 1
        assert b.y[L - 1, k].argmax() == cls and b.y[L - 1, k].sum() == 1


def test_temporal_order_criterion_on_probabilities():
    task = tasks.get("temporal-order", length=20, variable_length=False)
    b = task.batch(4, seed=0)
    logits = np.where(b.y > 0, math.log(0.75 / 0.25 * 3), 0.0)  # p(target) = 0.75
    assert task.correct(logits, b).all()
    logits = np.where(b.y > 0, math.log(0.65 / 0.35 * 3), 0.0)  # p(target) = 0.65 < 0.7
    assert not task.correct(logits, b).any()
    assert not task.correct(np.zeros_like(b.y), b).any()


def test_copy_structure_and_memoryless_baseline():
    T = 30
    task = tasks.get("copy", length=T)
    b = task.batch(64, seed=0)
    inp, tgt = b.x.argmax(-1), b.y.argmax(-1)
    assert b.x.shape[0] == T + 20 and b.mask.all()
    letters = inp[:10]
    assert np.all(letters < 8)
    assert np.all(inp[10:T + 9] == 8) and np.all(inp[T + 9] == 9) and np.all(inp[T + 10:] == 8)
    assert np.all(tgt[:T + 10] == 8)
    np.testing.assert_array_equal(tgt[T + 10:], letters)
    # memoryless: sure blanks, then uniform over the 8 letters
    logits = np.full(b.y.shape, -np.inf)
    logits[:T + 10, :, 8] = 0.0
    logits[T + 10:, :, :8] = 0.0
    logits = np.where(np.isfinite(logits), logits, -1e3)
    loss, _ = xent_loss(logits, b.y, b.mask)
    assert loss == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-9)
    assert task.chance["loss"] == pytest.approx(10 * math.log(8) / (T + 20))
    assert task.correct(np.where(b.y > 0, 1.0, 0.0), b).all()


def test_long_lag_sequences_and_baseline():
    p = 12
    task = tasks.get("long-lag", length=p)
    b = task.batch(200, seed=1)
    inp, tgt = b.x.argmax(-1), b.y.argmax(-1)
    first = inp[0]
    assert set(first) == {p - 1, p}
    np.testing.assert_array_equal(inp[1:], np.broadcast_to(np.arange(p - 1)[:, None], (p - 1, 200)))
    np.testing.assert_array_equal(tgt[:-1], inp[1:])
    np.testing.assert_array_equal(tgt[-1], first)
    # always guessing x at the end: right for half of the sequences
    logits = np.where(b.y > 0, 1.0, 0.0)
    logits[-1] = 0.0
    logits[-1, :, p - 1] = 1.0
    assert task.correct(logits, b).mean() == pytest.approx((first == p - 1).mean())
    assert task.chance["loss"] == pytest.approx(math.log(2) / p)


def test_long_lag_random_middle_and_last_symbol():
    p = 30
    task = tasks.get("long-lag", length=p, random=True)
    b = task.batch(500, seed=2)
    inp, tgt = b.x.argmax(-1), b.y.argmax(-1)
    assert set(inp[0]) == {p - 1, p}
    assert inp[1:].max() <= p - 2 and inp[1:].min() == 0
    np.testing.assert_array_equal(tgt[:-1], inp[1:])
    np.testing.assert_array_equal(tgt[-1], inp[0])
    # the middle is uniform over the p - 1 symbols: each one about (p - 1) * 500 / (p - 1)
    counts = np.bincount(inp[1:].ravel(), minlength=p - 1)
    assert counts.min() > 0.7 * 500 and counts.max() < 1.3 * 500
    # only the last step is judged
    logits = np.zeros_like(b.y)
    logits[-1] = b.y[-1]
    assert task.correct(logits, b).all()
    assert task.chance["loss"] == pytest.approx(((p - 1) * math.log(p - 1) + math.log(2)) / p)
    assert tasks.get("long-lag", length=100, random=True).paper["sequences"] == 5_680


def test_distractors_sequences_targets_and_lengths():
    q, p = 40, 7
    task = tasks.get("distractors", length=q, distractors=p)
    assert task.input_size == p + 4 and task.output_size == 2
    b = task.batch(4000, seed=3)
    inp = b.x.argmax(-1)
    e, bsym, xsym, ysym = p, p + 1, p + 2, p + 3
    for k in range(200):
        L = int(b.lengths[k])
        assert np.all(b.x[:L, k].sum(-1) == 1) and not b.x[L:, k].any()
        assert inp[0, k] == bsym and inp[1, k] in (xsym, ysym) and inp[L - 1, k] == e
        assert np.all(inp[2:L - 1, k] < p) and L - 3 >= q
        assert np.flatnonzero(b.mask[:, k]).tolist() == [L - 1]
        assert b.y[L - 1, k].argmax() == inp[1, k] - xsym and b.y[L - 1, k].sum() == 1
    # lengths q + k + 3 with k geometric (stop with probability 1/10): mean q + 12 fed
    # steps, q + 13 with the predicted final symbol; the standard deviation of k is sqrt(90)
    assert b.lengths.min() >= q + 3
    assert np.mean(b.lengths) == pytest.approx(q + 12, abs=4 * math.sqrt(90 / 4000))
    assert b.x.shape[0] == b.lengths.max()
    assert task.correct(b.y, b).all() and not task.correct(1 - b.y, b).any()
    assert tasks.get("distractors", length=1000, distractors=50).paper["sequences"] == 203_000


@pytest.mark.parametrize("n, noisy_signal", [(3, False), (1, False), (3, True)])
def test_two_sequence_signal_noise_and_targets(n, noisy_signal):
    T = 60
    task = tasks.get("two-sequence", length=T, n=n, noisy_signal=noisy_signal)
    b = task.batch(3000, seed=4)
    cls1 = b.y[b.lengths - 1, np.arange(3000), 0] == 1.0
    assert set(np.unique(b.y[b.mask])) == {0.0, 1.0}
    head = b.x[:n, :, 0]
    sign = np.where(cls1, 1.0, -1.0)
    if noisy_signal:
        # mean ±1, variance 0.2: the sample variance of 3 * 3000 values within 5 %
        assert np.var(head - sign) == pytest.approx(0.2, rel=0.05)
        assert abs(np.mean(head - sign)) < 0.02
    else:
        np.testing.assert_array_equal(head, np.broadcast_to(sign, head.shape))
    tail = np.concatenate([b.x[n:int(L), k, 0] for k, L in enumerate(b.lengths)])
    assert np.var(tail) == pytest.approx(0.2, rel=0.02) and abs(np.mean(tail)) < 0.01
    assert T <= b.lengths.min() and b.lengths.max() <= T + T // 10
    out = np.where(b.y > 0.5, 0.85, 0.15)
    assert task.correct(out, b).all()
    assert not task.correct(np.full_like(b.y, 0.5), b).any()


def test_two_sequence_noisy_targets_judged_against_the_expected_target():
    task = tasks.get("two-sequence", length=30, n=3, noisy_target=True)
    b = task.batch(20000, seed=5)
    last = (b.lengths - 1, np.arange(20000))
    clean, noisy = b.expected[last][:, 0], b.y[last][:, 0]
    assert set(np.unique(clean)) == {0.2, 0.8}
    np.testing.assert_array_equal(clean == 0.2, b.x[0, :, 0] == 1.0)
    assert np.var(noisy - clean) == pytest.approx(0.1, rel=0.03)
    # the expected target is right; an output 0.09 off is right, 0.11 off is wrong
    assert task.correct(b.expected, b).all()
    assert task.correct(b.expected + 0.09, b).all()
    assert not task.correct(b.expected + 0.11, b).any()
    # predicting 0.5: MSE 0.3^2 + 0.1
    assert np.mean((noisy - 0.5) ** 2) == pytest.approx(task.chance["loss"], rel=0.02)
    assert task.chance["loss"] == pytest.approx(0.19)


def test_multiplication_targets_and_mean_baseline():
    T = 40
    task = tasks.get("multiplication", length=T)
    b = task.batch(20000, seed=6)
    val, mark = b.x[:, :, 0], b.x[:, :, 1]
    seen_first = 0
    for k in range(300):
        L = int(b.lengths[k])
        ones = np.flatnonzero(mark[:L, k] == 1.0)
        assert len(ones) == 2 and ones[0] < 10 and ones[1] < T // 2 - 1
        assert np.all((val[:L, k] >= 0) & (val[:L, k] <= 1))
        if 0 in ones:
            seen_first += 1
            assert val[0, k] == 1.0
        assert b.y[L - 1, k, 0] == pytest.approx(np.prod(val[ones, k]), abs=1e-15)
    assert seen_first > 0
    target = b.y[b.mask][:, 0]
    assert np.var(target) == pytest.approx(task.chance["loss"], rel=0.03)
    out = np.where(b.mask[..., None], np.mean(target), 0.0)
    assert task.correct(out, b).mean() == pytest.approx(task.chance["accuracy"], abs=0.01)
    assert tasks.get("multiplication").paper == {"wrong": 14, "test": 2560, "sequences": 1_273_000}


# the Reber grammar written as edges "state symbol next", independently of gradflow's table
_EDGES = "0B1 1T2 1P3 2S2 2X4 3T3 3V5 4X3 4S6 5P4 5V6 6E9"


def _legal_after(prefix: str) -> set:
    table = {}
    for e in _EDGES.split():
        table.setdefault(int(e[0]), {})[e[1]] = int(e[2])
    states = {0}
    for ch in prefix:
        states = {table[s][ch] for s in states if ch in table.get(s, {})}
        assert states, f"{prefix!r} is not a Reber prefix"
    return {ch for s in states for ch in table.get(s, {})}


def test_embedded_reber_strings_and_targets():
    task = tasks.get("reber")
    b = task.batch(200, seed=7)
    syms = task.SYMBOLS
    for k in range(b.size):
        L = int(b.lengths[k])
        s = "".join(syms[i] for i in b.x[:L, k].argmax(-1))
        assert s[0] == "B" and s[1] in "TP"
        inner = s[2:-1]
        assert inner.endswith("E") and _legal_after(inner) == set()
        full = s + "E"       # the last input is the wrapper symbol; E follows
        for t in range(L):
            if t == 0:
                legal = {"T", "P"}
            elif t == L - 2:
                legal = {s[1]}
            elif t == L - 1:
                legal = {"E"}
            else:
                legal = _legal_after(full[2:t + 1]) if t >= 2 else {"B"}
            got = {syms[i] for i in np.flatnonzero(b.y[t, k] > 0)}
            assert got == legal, (s, t)
            np.testing.assert_allclose(b.y[t, k][b.y[t, k] > 0], 1 / len(legal))
        assert b.mask[:, k].sum() == L


def test_embedded_reber_criterion():
    task = tasks.get("reber")
    b = task.batch(16, seed=0)
    good = np.where(b.y > 0, 1.0, 0.0)
    assert task.correct(good, b).all()
    bad = good.copy()
    L = b.lengths
    bad[L - 2, np.arange(16)] = np.where(b.y[L - 2, np.arange(16)] > 0, 0.0, 1.0)
    assert not task.correct(bad, b).any()


def test_a_batch_too_large_for_memory_is_refused_before_it_is_made(monkeypatch):
    """Inputs, targets and mask take T * B * (D + K + 1) float64 numbers: with 200 kB of
    memory allowed, the 110-step adding task (D = 2, K = 1: 3,520 bytes a sequence) makes
    batches of 40 (141 kB) but refuses 80 (282 kB), naming the sizes."""
    from gradflow import _validate

    monkeypatch.setattr(_validate, "MEMORY_SHARE", 0.5)
    monkeypatch.setattr(_validate, "_total_memory", lambda: 400_000)
    task = tasks.get("adding", length=100)
    assert (task.max_length, task.input_size, task.output_size) == (110, 2, 1)
    assert task.batch(40, seed=0).x.shape == (110, 40, 2)
    with pytest.raises(InvalidArgumentError, match=r"the batch .*T=110, batch_size=80"):
        task.batch(80, seed=0)
