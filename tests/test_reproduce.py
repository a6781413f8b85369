"""``gradflow reproduce hochreiter1997``: the stopping rules on streams whose answer is
known, one online update against the public training path, a short run end to end (and
resumed), and bad input refused with exit status 2 before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from gradflow.cli import main
from gradflow.errors import GradflowWarning
from gradflow.reproduce import hochreiter1997 as h97
from gradflow.reproduce import runner
from gradflow.train.tasks import Batch

from .conftest import assert_close


# ---------------------------------------------------------------- stopping rules
def test_window_rule_needs_a_full_window_all_correct_and_a_small_mean_error():
    rule = runner.Window(beta=0.5, n=4, test_size=0)
    rule.observe(3, np.array([True, True, True]), np.zeros(3))
    assert not rule.done                                    # the window is not full yet
    rule.observe(4, np.array([False]), np.zeros(1))
    rule.observe(7, np.array([True, True, True]), np.array([0.1, 0.1, 0.1]))
    assert not rule.done                                    # the wrong one is still inside
    rule.observe(8, np.array([True]), np.array([2.4]))      # all correct, mean error 0.675
    assert not rule.done
    rule.observe(11, np.array([True, True, True]), np.zeros(3))   # 2.4 / 4 = 0.6 at 11
    assert not rule.done
    rule.observe(12, np.array([True]), np.zeros(1))         # the large error has left
    assert rule.done and rule.found["sequences"] == 12


def test_successive_rule_counts_the_sequences_before_the_run():
    rule = runner.Successive(n=3)
    rule.observe(5, np.array([True, False, True, True, False]), np.zeros(5))
    assert not rule.done and rule.found["longest_run"] == 2
    rule.observe(8, np.array([True, True, True]), np.zeros(3))
    assert rule.done and rule.found["sequences"] == 5


def test_few_wrong_rule_passes_each_level_in_turn():
    rule = runner.FewWrong(levels=(3, 1), n=4, test_size=0)
    rule.observe(4, np.array([False, False, True, True]), np.zeros(4))   # 2 wrong < 3
    assert rule.found["sequences_3"] == 4 and not rule.done
    rule.observe(6, np.array([True, True]), np.zeros(2))                  # 0 wrong < 1
    assert rule.done and rule.found["sequences"] == 6


# ---------------------------------------------------------------- one update
def test_online_step_is_the_public_gradient_and_truncation_needs_two_steps():
    """train_step (the kernels without checks) gives the gradients of the net's public
    path; with one step there is no earlier step to cut, so the truncated gradient equals
    the full one, and with many it does not."""
    exp = h97.BY_KEY["4-100"]
    task, net, _, _ = h97.build(exp, "lstm1997", seed=3)
    b = task.batch(1, np.random.default_rng(0))
    L = int(b.lengths[0])
    for T, same in ((1, True), (L, False)):
        one = Batch(b.x[:T], b.y[:T], np.ones((T, 1), bool) if T == 1 else b.mask[:T], b.lengths * 0 + T)
        for truncate in (True, False):
            loss, pred, grads = runner.train_step(net, one, truncate)
            ref_loss, out, ref = net.loss_and_gradients(task, one, truncate=truncate)
            assert loss == pytest.approx(ref_loss, rel=1e-12)
            assert_close(pred, net.predictions(out))
            for k in ref:
                assert_close(grads[k], ref[k], err_msg=k)
        full = runner.train_step(net, one, False)[2]["weight_ih"]
        cut = runner.train_step(net, one, True)[2]["weight_ih"]
        assert np.allclose(full, cut, rtol=1e-12, atol=0) == same


def test_budget_leaves_room_for_the_run_that_exp_2_waits_for():
    """Exp. 2 counts the sequences before 10,000 successive correct ones: a trial that
    succeeds at 3x the paper's mean has seen 10,000 more."""
    assert h97.budget_of(h97.BY_KEY["2a"], 3.0) == 3 * 5_040 + 10_000
    assert h97.budget_of(h97.BY_KEY["4-100"], 3.0) == 3 * 74_000
    assert h97.budget_of(h97.BY_KEY["4-100"], 0.01) == 10_000
    assert h97.budget_of(h97.BY_KEY["4-1000"], 10.0) == 5_000_000


def test_every_experiment_has_the_papers_number_of_weights():
    """The paper's nets, counted by the paper (its Exp. 1-6 texts): with the fully
    connected hidden layer (and none in Exp. 2a/2b) the nets have exactly as many."""
    counted = 0
    for exp in h97.EXPERIMENTS:
        if "weights" not in exp.paper:
            continue
        _, net, _, _ = h97.build(exp, "lstm1997-fc", seed=0)
        assert net.num_weights == exp.paper["weights"], exp.key
        counted += 1
    assert counted == len(h97.EXPERIMENTS)


def test_the_1997_net_starts_alike_with_either_gradient():
    exp = h97.BY_KEY["6a"]
    _, a, _, sa = h97.build(exp, "lstm1997", seed=7)
    _, b, _, sb = h97.build(exp, "lstm1997-full", seed=7)
    assert sa["truncate"] and not sb["truncate"] and sa["batch_size"] == 1
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    bias = a.cell.params["bias_ih"][a.cell.gate_slice("i")]
    np.testing.assert_array_equal(bias, [-2, -2, -4, -4])    # the paper's -2, -4 per block


# ---------------------------------------------------------------- the command
def test_a_short_run_writes_the_page_and_resumes(tmp_path, capsys):
    argv = ["reproduce", "hochreiter1997", "--exp", "2a", "--models", "lstm1997", "--trials",
            "1", "--max-seconds", "0.5", "--jobs", "1", "--out", str(tmp_path), "--no-progress",
            "--format", "md"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2a" in out and "5,040" in out and "1 trials, 0 from an earlier run" in out
    page = (tmp_path / "report" / "index.md").read_text()
    assert "Noise-free sequences with long time lags" in page and "5,040" in page
    assert "stopped by the time limit first" in page
    assert ("`2a` (Noise-free sequences with long time lags, p = 100), `lstm1997`: none of 1 met "
            "the rule within 25,120 sequences or the time limit; the paper: 5,040 sequences") in page
    assert not any((tmp_path / "checkpoints").iterdir())   # a trial that ended leaves none
    assert main(argv) == 0
    assert "1 trials, 1 from an earlier run" in capsys.readouterr().out
    page = (tmp_path / "report" / "index.md").read_text()
    assert "from 1 trials of an earlier run read back" in page


class _Killed(Exception):
    pass


@pytest.mark.parametrize("exp, budget, model", [
    ("6a", 600, "lstm1997"),          # the window rule
    ("3a-100-3", 700, "lstm1997"),    # tests on fresh sequences between training sequences
    ("5", 600, "lstm1997"),           # few wrong of the last 2,000
    ("1-4x1", 500, "lstm1997"),       # a fixed training set
    ("2a", 600, "lstm1997"),          # successive correct, and the cell added during the trial
    ("6a", 640, "gru"),               # minibatches of 32 and Adam's moments
])
def test_a_trial_killed_and_resumed_ends_as_one_that_ran_through(tmp_path, exp, budget, model):
    """Killed after half its sequences (the checkpoint written after every one), built
    again and resumed from the file, a trial sees the same sequences and tests and ends
    with the same weights and result, bit for bit, as the same trial run through."""
    point = {"exp": exp, "model": model, "trial": 1, "budget": budget,
             "max_seconds": None, "base_seed": 0}

    def setup():
        out = h97.trial_setup(point)
        if out[-1]["grow"] is not None:      # grow sooner than the paper's net, within the test
            out[-1]["grow"] = runner.Grow(window=40, init_range=0.2)
        return out

    net, task, rule, crit, opt, options = setup()
    through = runner.run_trial(net, task, rule, crit, opt, **options)
    if exp == "2a":
        assert 0 < through["grown_after"] < budget
    path = tmp_path / "trial.npz"
    seen = [0]

    def kill(n):
        seen[0] += n
        if seen[0] == budget // 2:
            raise _Killed

    net2, task, rule, crit, opt, options = setup()
    with pytest.raises(_Killed):
        runner.run_trial(net2, task, rule, crit, opt, **options, checkpoint=path,
                         checkpoint_key="k", checkpoint_every=0.0, progress=kill)
    assert path.is_file()
    net3, task, rule, crit, opt, options = setup()     # built again, as a new process would
    resumed = runner.run_trial(net3, task, rule, crit, opt, **options, checkpoint=path,
                               checkpoint_key="k")
    assert resumed["resumed_at"] == budget // 2
    assert not path.exists()
    for k, v in net.params.items():
        np.testing.assert_array_equal(net3.params[k], v, err_msg=k)
    timing = {"seconds", "sequences_per_second", "resumed_at"}
    assert ({k: v for k, v in resumed.items() if k not in timing}
            == {k: v for k, v in through.items() if k not in timing})


def test_a_checkpoint_of_another_trial_or_unreadable_is_not_used(tmp_path):
    point = {"exp": "6a", "model": "lstm1997", "trial": 0, "budget": 300, "max_seconds": None,
             "base_seed": 0}
    path = tmp_path / "trial.npz"

    def kill(n):
        raise _Killed

    net, task, rule, crit, opt, options = h97.trial_setup(point)
    with pytest.raises(_Killed):
        runner.run_trial(net, task, rule, crit, opt, **options, checkpoint=path,
                         checkpoint_key="mine", checkpoint_every=0.0, progress=kill)
    whole = path.read_bytes()
    net, task, rule, crit, opt, options = h97.trial_setup(point)
    with pytest.warns(GradflowWarning, match="belongs to another trial.*'mine'.*'theirs'"):
        res = runner.run_trial(net, task, rule, crit, opt, **options, checkpoint=path,
                               checkpoint_key="theirs")
    assert "resumed_at" not in res and res["seen"] == 300
    other = tmp_path / "array.npy"
    np.save(other, np.zeros(3))
    for broken in (b"not a checkpoint", whole[:len(whole) // 2],     # a file cut short
                   other.read_bytes()):                                # an array, not an archive
        path.write_bytes(broken)
        net, task, rule, crit, opt, options = h97.trial_setup(point)
        with pytest.warns(GradflowWarning, match="cannot be read"):
            res = runner.run_trial(net, task, rule, crit, opt, **options, checkpoint=path,
                                   checkpoint_key="mine")
        assert "resumed_at" not in res
    # the trial's own file is named by a digest of all its settings
    a, key_a = h97.checkpoint_of(point, tmp_path)
    b, key_b = h97.checkpoint_of(dict(point, budget=301), tmp_path)
    assert a.name.startswith("6a_lstm1997_0_") and key_a != key_b and a != b


def test_a_run_in_parts_shows_as_one_table(tmp_path, capsys):
    common = ["--models", "lstm1997", "--trials", "1", "--max-seconds", "0.3", "--jobs", "1",
              "--no-progress", "--format", "md"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["reproduce", "hochreiter1997", "--exp", "2a", "--out", str(a), *common]) == 0
    part_b = ["reproduce", "hochreiter1997", "--exp", "6a", "--out", str(b), *common]
    assert main([*part_b, "--include", str(a)]) == 0
    assert "(2 trials, 0 from an earlier run, 1 from 1 other folders)" in capsys.readouterr().out
    page = (b / "report" / "index.md").read_text()
    assert "5,040" in page and "31,390" in page      # the paper's sequences for 2a and 6a
    assert f"The table also holds 1 trials read from the runs of `{a}`" in page
    # a folder's own trials are not counted twice, and this call's are kept
    assert main([*part_b, "--include", str(a), str(b)]) == 0
    assert "(2 trials, 1 from an earlier run, 1 from 2 other folders)" in capsys.readouterr().out
    # a folder without trials is named
    assert main([*part_b, "--include", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "`include`: cannot read the trials of" in err and "none" in err


@pytest.mark.parametrize("args, message", [
    (["--exp", "7"], "`exp` names no experiment: ['7']"),
    (["--exp", "4-300"], "`exp` names no experiment: ['4-300']"),
    (["--models", "transformer"], "models"),
    (["--trials", "0"], "`trials` must be an integer >= 1; got 0"),
    (["--budget", "0"], "`budget` must be a positive number; got 0.0"),
    (["--budget", "nan"], "`budget`"),
    (["--max-seconds", "-1"], "max_seconds"),
    (["--jobs", "0"], "`--jobs` must be >= 1; got 0"),
    (["--format", "pdf"], "`--format` must be md, html or md,html; got 'pdf'"),
])
def test_bad_input_exits_2_naming_it(tmp_path, capsys, args, message):
    argv = ["reproduce", "hochreiter1997", "--out", str(tmp_path / "o"), "--no-progress", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradflow reproduce: error:") and message in err, err
    assert not (tmp_path / "o" / "runs" / "points.csv").exists()


@pytest.mark.parametrize("args", [["nature2015"], ["hochreiter1997", "--trials", "two"]])
def test_bad_arguments_are_argparse_errors(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", *args])
    assert exc.value.code == 2
    assert "invalid" in capsys.readouterr().err
