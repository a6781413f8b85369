"""The scans split into blocks of batch rows on several threads (gradflow._threads).

The small problems of the other tests run as one block; here the thresholds are lowered
(and three threads granted, so that the blocks are uneven) and the blocked passes are
compared with the slow NumPy loop and with the same pass run as one block.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import gradflow
from gradflow import _threads, errors

from . import naive
from .conftest import assert_close

CELLS = ["rnn", "lstm", "lstm-peephole", "gru", "mgu"]


@pytest.fixture
def three_blocks(monkeypatch):
    """Any batch of 3 rows or more is split into 3 blocks."""
    monkeypatch.setattr(_threads, "MIN_ROWS", 1)
    monkeypatch.setattr(_threads, "MIN_WORK", 1)
    monkeypatch.setattr(_threads, "cores", lambda: 3)
    monkeypatch.setattr(_threads, "blas_threads", lambda: 3)


def _problem(name, B=7, T=9, D=4, H=5, seed=0):
    cell = gradflow.Cell(name, D, H, seed=seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((T, B, D))
    state0 = tuple(0.5 * rng.standard_normal((B, H)) for _ in cell.spec.state)
    dh = rng.standard_normal((T, B, H))
    dstate = tuple(rng.standard_normal((B, H)) for _ in cell.spec.state)
    return cell, x, state0, dh, dstate


def test_blocks_cover_the_batch_unevenly(three_blocks):
    assert _threads.row_blocks(7, 1) == [(0, 2), (2, 4), (4, 7)]
    assert _threads.row_blocks(2, 1) == [(0, 1), (1, 2)]
    assert _threads.row_blocks(1, 1) == [(0, 1)]


def test_small_problems_and_limited_blas_run_as_one_block():
    assert _threads.row_blocks(2, 10**9) == [(0, 2)]          # fewer rows than MIN_ROWS
    assert _threads.row_blocks(64, 1) == [(0, 64)]            # too little work
    with threadpool_limits(1):
        assert _threads.row_blocks(4096, 10**6) == [(0, 4096)]


@pytest.mark.parametrize("name", CELLS)
def test_blocked_passes_match_the_numpy_loop_and_one_block(name, three_blocks, monkeypatch):
    cell, x, state0, dh, dstate = _problem(name)
    trace = cell.forward(x, state0)
    assert_close(trace.states, naive.forward(name, cell.params, x, state0))
    grads = cell.backward(trace, dh, dstate)

    monkeypatch.setattr(_threads, "blas_threads", lambda: 1)   # the same pass as one block
    one = cell.backward(cell.forward(x, state0), dh, dstate)
    for p in cell.params:
        assert_close(grads.params[p], one.params[p], err_msg=p)
    assert_close(grads.x, one.x)
    for s in cell.spec.state:
        assert_close(grads.state0[s], one.state0[s], err_msg=s)


def test_blocked_gradients_match_finite_differences(three_blocks):
    cell, x, state0, dh, dstate = _problem("lstm", B=5, T=4, D=2, H=3)
    grads = cell.backward(cell.forward(x, state0), dh, dstate)

    def loss():
        tr = cell.forward(x, state0)
        return np.sum(tr.h * dh) + sum(np.sum(tr.states[k, -1] * dstate[k]) for k in range(2))

    for p, value in cell.params.items():
        assert_close(grads.params[p], naive.central_differences(loss, value),
                     kind="finite_difference", err_msg=p)


def test_non_finite_values_are_reported_from_any_block(three_blocks):
    cell, x, state0, dh, _ = _problem("rnn-linear", B=7, T=9)
    cell.params["weight_hh"][:] = 0.0
    x[5, 6] = 1e308                     # row 6 is in the last block; overflows at step 5
    cell.params["weight_ih"][:] = 10.0
    with pytest.raises(errors.NonFiniteError, match="step 5") as info:
        cell.forward(x, state0)
    assert info.value.step == 5

    cell, x, state0, dh, _ = _problem("rnn-linear", B=7, T=9)
    # backward differentiates with the forward pass's parameters: set them before it
    cell.params["weight_hh"][:] = 1e10 * np.eye(cell.hidden_size)  # states reach ~1e90: finite
    trace = cell.forward(x, state0)
    dh[6, 5, 0] = 1e308                 # finite; row 5 is in the last block
    with pytest.raises(errors.NonFiniteError, match="backward pass") as info:
        cell.backward(trace, dh)
    assert info.value.step == 5          # dL/dh_5 = dL/dh_6 W_hh ... is the first to overflow


def _blas_counts():
    """Threads of every loaded BLAS but gradflow's own oneMKL (sequential: always one)."""
    from gradflow._blas import own_library

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"
            and os.path.realpath(lib["filepath"]) != own_library()]


def test_blas_is_single_threaded_inside_and_restored_after(three_blocks):
    before = _blas_counts()
    seen = []
    with _threads.single_threaded_blas():
        _threads.run_blocks(lambda lo, hi: seen.append(_blas_counts()), [(0, 1), (1, 2), (2, 3)])
    assert seen and all(c == [1] * len(before) for c in seen)
    assert _blas_counts() == before


def test_blas_threads_follow_the_blas_limit_and_are_restored_by_the_last_to_leave():
    """blas_threads() is the BLAS's limit, 1 inside single_threaded_blas; the limit comes
    back when the outermost entry leaves, every time (an entry that left a count behind
    would keep everything single-threaded afterwards)."""
    n = len(_blas_counts())
    with threadpool_limits(limits=2, user_api="blas"):
        assert _blas_counts() == [2] * n and _threads.blas_threads() == 2
        for _ in range(3):
            with _threads.single_threaded_blas():
                with _threads.single_threaded_blas():
                    assert _blas_counts() == [1] * n and _threads.blas_threads() == 1
                assert _blas_counts() == [1] * n and _threads.blas_threads() == 1
            assert _blas_counts() == [2] * n and _threads.blas_threads() == 2
        with _threads.single_threaded_blas(active=False):
            assert _threads.blas_threads() == 2
    with threadpool_limits(limits=1, user_api="blas"):
        assert _threads.blas_threads() == 1


def test_blocks_never_run_on_more_threads_than_cores(monkeypatch):
    """The first block runs in the calling thread, the others on a pool of cores - 1
    threads: 8 blocks on 3 cores run at most 3 at a time, on 2 pool threads."""
    import threading
    import time

    monkeypatch.setattr(_threads, "cores", lambda: 3)
    monkeypatch.setattr(_threads, "_POOL", None)          # a fresh pool, sized for 3 cores
    lock = threading.Lock()
    active, most, names = [0], [0], set()

    def fn(lo, hi):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            names.add(threading.current_thread().name)
        time.sleep(0.1)
        with lock:
            active[0] -= 1

    try:
        _threads.run_blocks(fn, [(k, k + 1) for k in range(8)])
    finally:
        _threads._POOL.shutdown()
    pool_threads = {name for name in names if name.startswith("gradflow-rows")}
    assert len(pool_threads) <= 2, pool_threads
    assert 2 <= most[0] <= 3


@pytest.mark.parametrize("blocked", [False, True])
def test_large_products_use_the_blas_threads_unless_blocks_run(blocked, request, monkeypatch):
    """The forward and backward passes' large products (x W_ih^T, the weight gradients) run
    on the BLAS's own threads when the pass is one block, and on single-threaded BLAS calls
    split over the blocks' threads when it is several."""
    from gradflow import cell as cell_module

    if blocked:
        request.getfixturevalue("three_blocks")
    seen = []
    real = cell_module._matmul

    def spy(a, b, threads):
        seen.append((threads, _blas_counts()))
        return real(a, b, threads)

    monkeypatch.setattr(cell_module, "_matmul", spy)
    cell, x, state0, dh, dstate = _problem("lstm", B=3)
    n = len(_blas_counts())
    with threadpool_limits(limits=2, user_api="blas"):
        cell.backward(cell.forward(x, state0), dh, dstate)
        assert _blas_counts() == [2] * n
    assert len(seen) == 4          # x W_ih^T; dW_ih, dW_hh, dx
    want = (3, [1] * n) if blocked else (1, [2] * n)
    assert all(s == want for s in seen), seen


def test_an_error_in_a_block_is_raised_after_every_block_ran():
    ran = []

    def fn(lo, hi):
        ran.append(lo)
        if lo == 1:
            raise RuntimeError("block 1 failed")

    with pytest.raises(RuntimeError, match="block 1 failed"):
        _threads.run_blocks(fn, [(0, 1), (1, 2), (2, 3)])
    assert sorted(ran) == [0, 1, 2]


def test_split_matmul_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((37, 11)), rng.standard_normal((11, 6))
    c = rng.standard_normal((11, 37))
    with _threads.single_threaded_blas():
        out = _threads.matmul(a, b, 3)
        out_t = _threads.matmul(c.T, b, 2)   # a transposed operand, as in the weight gradients
    assert out.flags.c_contiguous and out_t.flags.c_contiguous
    assert_close(out, a @ b)
    assert_close(out_t, c.T @ b)


def test_lyapunov_rows_in_blocks_match_each_row_alone(three_blocks):
    # a QR every step: the forward pass of 4 rows and of 1 differ in the last bit (BLAS
    # paths depend on the batch size), which a longer interval between factorisations
    # amplifies by up to its condition number (and which can change the interval chosen)
    cell = gradflow.Cell("lstm", 2, 3, seed=4)
    x = np.random.default_rng(5).standard_normal((60, 4, 2))
    together = gradflow.lyapunov_spectrum(cell, x, interval=1)   # rows split 1 / 1 / 2
    adaptive = gradflow.lyapunov_spectrum(cell, x)
    for b in range(4):
        alone = gradflow.lyapunov_spectrum(cell, x[:, b:b + 1], interval=1)
        assert_close(together.exponents[b], alone.exponents[0], err_msg=f"row {b}")
        alone = gradflow.lyapunov_spectrum(cell, x[:, b:b + 1])
        np.testing.assert_allclose(adaptive.exponents[b], alone.exponents[0], atol=1e-3,
                                   err_msg=f"row {b}, interval chosen as it goes")
