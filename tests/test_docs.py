"""The examples in docstrings, in the README and in the documentation's pages run and
print what they say."""

from __future__ import annotations

import doctest
import importlib
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MODULES = ["gradflow", "gradflow.errors", "gradflow.cells", "gradflow.cell", "gradflow.network",
           "gradflow.symbolic.spec", "gradflow.symbolic.parse", "gradflow.train",
           "gradflow.train.loop", "gradflow.train.losses", "gradflow.train.optim", "gradflow.train.blocks",
           "gradflow.train.tasks", "gradflow.flow", "gradflow.flow.lagmap", "gradflow.flow.paths",
           "gradflow.flow.spectra", "gradflow.flow.network", "gradflow.interop._torch", "gradflow.testing",
           "gradflow.testing.checks", "gradflow.testing.identities",
           "gradflow.testing.implementation", "gradflow.testing.strategies", "gradflow.plot",
           "gradflow.sweeps"]

#: the documentation's pages with examples (the API pages are the docstrings above, the
#: gallery's scripts run when the documentation is built)
DOC_PAGES = [str(p.relative_to(ROOT))
             for p in [ROOT / "docs" / "index.rst", *sorted((ROOT / "docs" / "guide").glob("*.rst"))]
             if ">>> " in p.read_text()]


def test_former_module_names_still_work():
    """gradflow.spectra and gradflow.tasks are the former names of gradflow.flow.spectra and
    gradflow.train.tasks (CHANGELOG.md): the same objects under both."""
    import gradflow
    import gradflow.flow.spectra
    import gradflow.spectra
    import gradflow.tasks
    import gradflow.train.tasks

    for old, new in ((gradflow.spectra, gradflow.flow.spectra), (gradflow.tasks, gradflow.train.tasks)):
        assert old.__all__ == new.__all__
        assert all(getattr(old, name) is getattr(new, name) for name in new.__all__)
    assert gradflow.gradient_flow is gradflow.flow.gradient_flow


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("page", DOC_PAGES)
def test_documentation_examples(page, monkeypatch):
    """The user guide's examples run as written, from the repository's root (the reports
    page runs the study in docs/guide/studies)."""
    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings():
        # Keras's model.save on the torch backend converts variables with np.array (as in
        # tests/test_keras.py)
        warnings.filterwarnings("ignore", "__array__ implementation doesn't accept a copy",
                                DeprecationWarning)
        result = doctest.testfile(str(ROOT / page), module_relative=False,
                                  optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    assert blocks, "the README has Python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)  # noqa: S102


#: what each command of the README must do when run as written from the repository:
#: (exit status, phrases its output must hold); None: not run here, with the reason
README_COMMANDS = {
    "gradflow report": None,  # minutes; the quick report runs in tests/test_analysis.py
    "gradflow report --jobs 2": None,  # the same; --jobs is exercised by the quick report
    # a cluster's address; tests/test_sweep.py runs --scheduler on a LocalCluster
    "gradflow report --full --scheduler tcp://scheduler:8786": None,
    # the user's own files; tests/test_analyze.py runs the same command on files it writes
    "gradflow analyze model.pt --data x.npy --targets y.npy --readout head --forget-bias 2 "
    "--out my-analysis": None,
    "gradflow verify my_module:make_lstm --kind lstm": None,  # a placeholder for the user's own
    "gradflow verify lstm": (0, ["OK: all", "cell-path"]),
    "gradflow cells lstm": (0, ["dc/dc: diag(f)", "c_t = c_prev*f + g*i"]),
    "gradflow verify tests/user_impls/torch_lstm.py:correct --kind lstm": (0, ["OK: all"]),
    "gradflow verify tests/user_impls/torch_lstm.py:wrong_gate_order --kind lstm":
        (1, ["FAILED", "'gate order'", "i f o g instead of i f g o"]),
    ("gradflow analyze analysis/trained_model/lstm_trained.pt --batch-first --readout head "
     "--data analysis/trained_model/eval.npz --data-key x --targets analysis/trained_model/eval.npz "
     "--targets-key targets --loss cross-entropy --out reports/trained-model"):
        (0, [("layer 1 (lstm, H = 64): the gradient of the last output with respect to this "
              "layer's state falls below 10⁻⁸ of its lag-0 value after 132 steps"),
             "layer 2 (lstm, H = 64)", "value after 125 steps", "35 % above 0.95",
             "43 % above 0.95", "wrote "]),
    # minutes; tests/test_reproduce.py runs a short one end to end (and resumes it)
    "gradflow reproduce hochreiter1997 --exp 2a 4-100 --trials 3 --jobs 2": None,
    "gradflow reproduce hochreiter1997 --scheduler tcp://scheduler:8786": None,  # a cluster
    "gradflow train adding --cell lstm --length 100":
        (0, ["recipe: lstm, H=16, forget-gate bias 3, input-gate bias -3",
             "stopping rule met: yes after 47,648 training sequences", "0 wrong of 2,560"]),
}


def _readme_commands() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith("gradflow "):
                    commands.append(part)
    commands += re.findall(r"`(gradflow (?:verify|train|cells) [^`]+)`", text)
    return list(dict.fromkeys(commands))


def test_every_readme_command_has_a_documented_outcome():
    missing = [c for c in _readme_commands() if c not in README_COMMANDS]
    assert missing == []


@pytest.mark.parametrize("command", [c for c, v in README_COMMANDS.items() if v is not None])
def test_readme_commands_do_what_it_says(command, tmp_path):
    import shlex
    import subprocess
    import sys

    status, phrases = README_COMMANDS[command]
    argv = [sys.executable, "-m", "gradflow", *shlex.split(command)[1:]]
    if "train" in argv:
        argv.append("--quiet")
    if "--out" in argv:  # a folder the repository commits: written elsewhere here
        argv[argv.index("--out") + 1] = str(tmp_path / "out")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                          cwd=Path(__file__).resolve().parents[1])
    out = proc.stdout + proc.stderr
    assert proc.returncode == status, out
    for phrase in phrases:
        assert phrase in out, (phrase, out)
