"""The language-model study: its committed model files load without PyTorch, its measured
behaviour (the loss with the context cut to k characters) against PyTorch's forward pass of
the same state dict, and the training script's data preparation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradflow.studies import language_model as lm
from gradflow.studies.trained_model import FILES, corpus, path, train

from .conftest import assert_close
from .subproc import run_python


def test_committed_files_load_without_torch(tmp_path, torch):
    """In a process where ``import torch`` fails, the study reads both state dicts and the
    evaluation data; the arrays it gets are PyTorch's own tensors of those files."""
    out = tmp_path / "read.npz"
    run_python(f"""
        import sys
        sys.modules["torch"] = None  # import torch raises ImportError
        import numpy as np
        from gradflow.studies import language_model as lm
        arrays = {{}}
        for role in ("initial", "trained"):
            m = lm.load(role)
            assert m.network.num_layers == 2 and m.network.batch_first
            for name, value in m.network.params.items():
                arrays[f"{{role}}/lstm.{{name}}"] = value
            arrays[f"{{role}}/head.weight"], arrays[f"{{role}}/head.bias"] = m.readout
        for key, value in lm.evaluation_data().items():
            arrays[f"data/{{key}}"] = value
        assert "torch" not in sys.modules or sys.modules["torch"] is None
        np.savez({str(out)!r}, **arrays)
    """)
    with np.load(out) as z:
        got = {k: z[k] for k in z.files}
    for role in ("initial", "trained"):
        state = torch.load(path(role), map_location="cpu", weights_only=True)
        keys = sorted(k for k in got if k.startswith(role + "/"))
        assert sorted(f"{role}/{k}" for k in state) == keys
        for key, tensor in state.items():
            ref = tensor.numpy()
            value = got[f"{role}/{key}"]
            assert ref.dtype == np.float32
            if key.startswith("lstm."):
                assert value.dtype == np.float32  # the network keeps the file's dtype
            np.testing.assert_array_equal(value.astype(np.float64), ref.astype(np.float64), err_msg=key)
    codes = got["data/codes"]
    n = got["data/x"].shape[0]
    assert codes.dtype == np.uint8 and codes.max() < corpus.VOCAB
    np.testing.assert_array_equal(got["data/x"], np.eye(corpus.VOCAB, dtype=np.uint8)[codes[:n, :-1]])
    np.testing.assert_array_equal(got["data/targets"], codes[:n, 1:])


def test_the_trained_model_differs_from_the_initial_one():
    a, b = lm.load("initial").network.params, lm.load("trained").network.params
    assert all(np.max(np.abs(a[k] - b[k])) > 1e-3 for k in a)


def _torch_context_losses(torch, codes, contexts, positions):
    """The same quantity with PyTorch: the state dict in train.build's module, each window
    run from a zero state by torch.nn.LSTM, cross-entropy of the next code."""
    log = json.loads(path("log").read_text())
    model = train.build(torch, log["settings"])
    model.load_state_dict(torch.load(path("trained"), map_location="cpu", weights_only=True))
    model.eval()
    loss = np.empty((len(contexts), codes.shape[0], len(positions)))
    correct = np.empty(loss.shape, dtype=bool)
    with torch.no_grad():
        for j, k in enumerate(contexts):
            for p, t in enumerate(positions):
                start = 0 if k is None else t - k + 1
                x = torch.nn.functional.one_hot(torch.from_numpy(codes[:, start:t + 1].astype(np.int64)),
                                                corpus.VOCAB).float()
                logits = model(x)[:, -1].double()
                y = torch.from_numpy(codes[:, t + 1].astype(np.int64))
                ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
                loss[j, :, p] = ce.numpy()
                correct[j, :, p] = (logits.argmax(-1) == y).numpy()
    return loss, correct


def test_context_losses_against_pytorch(torch):
    codes = lm.evaluation_data()["codes"][:5]
    contexts, positions = [1, 2, 7, 40, None], np.array([39, 100, 255])
    loss, correct = lm.context_losses(lm.load("trained"), codes, contexts, positions)
    ref_loss, ref_correct = _torch_context_losses(torch, codes, contexts, positions)
    assert loss.shape == (5, 5, 3)
    assert_close(loss, ref_loss, dtype=np.float32)
    np.testing.assert_array_equal(correct, ref_correct)
    # what the numbers say: context helps the trained model
    assert loss[0].mean() > loss[-1].mean() + 0.3


def test_context_losses_refuse_contexts_longer_than_the_positions_allow():
    from gradflow.errors import InvalidArgumentError

    codes = lm.evaluation_data()["codes"][:2]
    with pytest.raises(InvalidArgumentError, match="a context of 20 needs positions >= 19"):
        lm.context_losses(lm.load("trained"), codes, [1, 20], [10, 30])
    with pytest.raises(InvalidArgumentError, match=r"`positions` must lie in \[0, 255\]"):
        lm.context_losses(lm.load("trained"), codes, [1], [256])


def test_plateau_is_the_first_context_from_which_on_the_excess_stays_small():
    ks = [1, 2, 4, 8, 16]
    assert lm.plateau(ks, [0.5, 0.2, 0.005, 0.02, 0.001], 0.01) == 16  # 8 is above again
    assert lm.plateau(ks, [0.5, 0.2, 0.005, 0.009, -0.003], 0.01) == 4
    assert lm.plateau(ks, [0.0, 0.0, 0.0, 0.0, 0.0], 0.01) == 1
    assert math.isnan(lm.plateau(ks, [0.5, 0.2, 0.1, 0.05, 0.02], 0.01))


def test_quick_section_follows_the_report_rules():
    from gradflow.report import StudyConfig
    from gradflow.report.runner import check_section

    section = lm.run(StudyConfig(quick=True, label="language_model"))
    assert check_section(section) == []
    assert "Does the loss stop improving near the gradient horizon?" in section.text
    assert section.data["k_star"]["initial"]["0.01"] == 1  # the untrained model uses no context


# ---------------------------------------------------------------------- data preparation
TOPICS = {
    "b": "Intro\n\nShared paragraph.\n\nOnly in b.",
    "a": "Title a\n\nShared paragraph.",
    "typesmapping": "Held out.\n\nShared paragraph.",
    "formatstrings": "Format \u201cquoted\u201d\n",
}


def test_corpus_keeps_each_paragraph_once_and_none_of_the_held_out_ones():
    training, held = corpus.corpus(TOPICS)
    assert held == "Format \u201cquoted\u201d\n\nHeld out.\n\nShared paragraph."
    assert training == "Title a\n\nIntro\n\nOnly in b."  # sorted topics; shared one held out
    codes = corpus.encode(held[:9])
    assert codes.tolist() == [ord(ch) - 31 for ch in "Format "] + [corpus.UNKNOWN] + [ord("q") - 31]
    assert corpus.decode(corpus.encode("a\nb")) == "a\nb"


def test_data_preparation_is_deterministic():
    one, two = train.prepare(), train.prepare()
    assert one.keys() == two.keys()
    for key in one:
        if isinstance(one[key], np.ndarray):
            np.testing.assert_array_equal(one[key], two[key])
        else:
            assert one[key] == two[key]
    settings = train.SETTINGS
    assert one["codes"].shape == (settings["eval_sequences"], settings["eval_length"] + 1)
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(train.batches(one["train"], rng1, 4, 16),
                                  train.batches(one["train"], rng2, 4, 16))


def test_committed_sequences_are_this_pythons_when_its_help_texts_match():
    """The committed evaluation sequences are what the data preparation gives for the help
    texts they were made from (the texts differ a little between Python versions)."""
    log = json.loads(path("log").read_text())
    data = train.prepare()
    if data["held_out_sha256"] != log["held_out_sha256"]:
        pytest.skip(f"this Python's help texts differ from those of the committed data "
                    f"(Python {log['versions']['python']})")
    np.testing.assert_array_equal(data["codes"], lm.evaluation_data()["codes"])
    assert data["train_sha256"] == log["train_sha256"]


def test_the_files_are_named_and_small():
    for name in FILES.values():
        assert path(next(r for r, f in FILES.items() if f == name)).stat().st_size < 5_000_000
    with pytest.raises(KeyError, match="'model' is not one of"):
        path("model")
