"""``gradflow verify``: a user's correct hand-written LSTM passes; each deliberate bug fails
and the output names the property that broke."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gradflow.cli import main

ROOT = Path(__file__).resolve().parents[1]
IMPLS = "tests.user_impls"


def verify(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])
    monkeypatch.chdir(ROOT)
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def verdict(out: str, prop: str) -> str:
    """The verdict column of `prop`'s row in the printed table."""
    for line in out.splitlines():
        if line.startswith(prop + "  "):
            return next(w for w in line[len(prop):].split() if w in ("pass", "FAIL", "inconclusive"))
    raise AssertionError(f"no row for {prop!r} in:\n{out}")


@pytest.mark.torch
def test_correct_hand_written_lstm_passes(torch, monkeypatch, capsys):
    code, out, _ = verify(monkeypatch, capsys, f"{IMPLS}.torch_lstm:correct", "--kind", "lstm",
                          "--examples", "4")
    assert code == 0, out
    for prop in ("forward", "backward", "bias split", "output bounded", "gate order",
                 "bias enters once", "cell equations"):
        assert verdict(out, prop) == "pass"
    assert "OK: all 7 properties held" in out


@pytest.mark.torch
@pytest.mark.parametrize("factory, kind, broke, says", [
    ("torch_lstm:wrong_gate_order", "lstm", ["forward", "backward", "gate order"],
     "gate blocks read in the order i f o g"),
    ("torch_lstm:forget_bias_twice", "lstm", ["forward", "bias split", "bias enters once"],
     "bias_ih[f] enters twice"),
    ("torch_lstm:no_output_tanh", "lstm", ["forward", "output bounded", "cell equations"],
     "matches 'lstm-noaf'"),
    ("torch_gru:reset_before_matmul", "gru", ["forward", "backward", "cell equations"],
     "matches 'gru-cho'"),
])
def test_each_deliberate_bug_fails_and_names_the_property(torch, monkeypatch, capsys, factory,
                                                          kind, broke, says):
    code, out, _ = verify(monkeypatch, capsys, f"{IMPLS}.{factory}", "--kind", kind,
                          "--examples", "4")
    assert code == 1, out
    for prop in broke:
        assert verdict(out, prop) == "FAIL", prop
        assert f"property {prop!r} FAIL" in out
    assert says in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("FAILED:") and all(repr(p) in last for p in broke)


@pytest.mark.torch
def test_correct_gru_and_builtin_pass(torch, monkeypatch, capsys):
    code, out, _ = verify(monkeypatch, capsys, f"{IMPLS}.torch_gru:correct", "--kind", "gru",
                          "--examples", "3")
    assert code == 0, out
    assert verdict(out, "cell equations") == "pass"


def test_numpy_step_function_from_a_file_path(monkeypatch, capsys):
    code, out, _ = verify(monkeypatch, capsys, "tests/user_impls/numpy_step.py:gru_step",
                          "--kind", "gru", "--examples", "3")
    assert code == 0, out
    assert "central finite differences" in out
    code, out, _ = verify(monkeypatch, capsys, "tests/user_impls/numpy_step.py:lstm_step_no_output_tanh",
                          "--kind", "lstm", "--examples", "3")
    assert code == 1 and verdict(out, "cell equations") == "FAIL"


def test_same_seed_same_table_other_seed_other_draws(monkeypatch, capsys):
    args = ["tests/user_impls/numpy_step.py:rnn_step", "--kind", "rnn", "--examples", "2"]
    first = verify(monkeypatch, capsys, *args, "--seed", "3")[1]
    again = verify(monkeypatch, capsys, *args, "--seed", "3")[1]
    other = verify(monkeypatch, capsys, *args, "--seed", "4")[1]
    assert first == again and first != other


def test_catalogue_cell(monkeypatch, capsys):
    code, out, _ = verify(monkeypatch, capsys, "lstm-cifg", "--examples", "3", "--seed", "5")
    assert code == 0, out
    for prop in ("cell-path", "total-cell-path", "cifg-coupling", "finite-differences",
                 "adjoint", "kernels vs symbolic equations"):
        assert verdict(out, prop) == "pass"


@pytest.mark.parametrize("args, message", [
    (["lstmm"], "unknown cell 'lstmm'"),
    (["no_such_module_xyz:f", "--kind", "lstm"], "cannot import module 'no_such_module_xyz'"),
    ([f"{IMPLS}.torch_lstm:missing", "--kind", "lstm"], "has no attribute 'missing'"),
    ([f"{IMPLS}.torch_lstm:INPUT_SIZE", "--kind", "lstm"], "expected a torch.nn.Module"),
    (["lstm", "--kind", "gru"], "`--kind` is for implementations"),
    (["lstm", "--examples", "0"], "`--examples` must be >= 1"),
])
def test_errors_exit_2_with_a_message(monkeypatch, capsys, args, message):
    code, _, err = verify(monkeypatch, capsys, *args)
    assert code == 2 and message in err


@pytest.mark.torch
def test_subprocess_exit_status(torch):
    """The real command line: a failing implementation exits 1 and says what broke."""
    proc = subprocess.run(
        [sys.executable, "-m", "gradflow.cli", "verify", f"{IMPLS}.torch_lstm:wrong_gate_order",
         "--kind", "lstm", "--examples", "2"],
        cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "'gate order'" in proc.stdout.splitlines()[-1]


def test_an_undecided_property_is_not_counted_as_held():
    """Without PyTorch the 'pytorch' identity is inconclusive: the summary says so."""
    from .subproc import run_python

    proc = run_python("""
        import sys
        sys.modules["torch"] = None  # import torch raises ImportError
        from gradflow.cli import main
        raise SystemExit(main(["verify", "rnn", "--examples", "1"]))
    """, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "OK: all" not in proc.stdout
    assert "could not be decided: 'pytorch'" in proc.stdout
