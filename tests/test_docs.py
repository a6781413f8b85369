"""The examples in docstrings and in the README run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

MODULES = ["gradflow", "gradflow.cells", "gradflow.cell", "gradflow.symbolic.spec",
           "gradflow.symbolic.parse", "gradflow.train", "gradflow.train.tasks", "gradflow.flow",
           "gradflow.flow.lagmap", "gradflow.flow.paths", "gradflow.flow.spectra",
           "gradflow.flow.network", "gradflow.testing"]


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


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.S)
    assert blocks, "the README has Python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(readme), "exec"), namespace)  # noqa: S102
