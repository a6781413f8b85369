"""Where the report's studies come from.

A study is a module with ``TITLE`` and ``run(config) -> Section``; its key is the module's
name.  Three sources, none of which touches ``sys.path`` or ``PYTHONPATH``:

* gradflow's own studies, the package ``gradflow.studies`` (the repository's top-level
  ``analysis/`` folder, installed under the package's name);
* other packages' studies, named by entry points in the group ``gradflow.studies`` (each
  entry point names a package whose modules are studies);
* a folder of the user's own (``gradflow report --studies DIR``): its ``*.py`` files,
  imported as one package under a private name.  Its modules are pickled by value, so that
  worker processes run its functions without importing the folder.

Modules whose names start with ``_`` are helpers, not studies.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import sys
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

from ..errors import InvalidArgumentError

__all__ = ["STUDY_ORDER", "ENTRY_POINT_GROUP", "StudySource", "builtin", "from_entry_points",
           "from_folder", "collect"]

#: gradflow's studies in reading order; other studies follow them.
STUDY_ORDER = ("vanishing", "cell_state", "forget_bias", "exploding", "spectra", "variants",
               "training", "phase", "language_model", "claims", "derivations")
#: the entry-point group through which other packages offer studies
ENTRY_POINT_GROUP = "gradflow.studies"


@dataclass
class StudySource:
    """A package of studies.

    Attributes
    ----------
    package : str
        The importable package name.
    keys : list of str
        Its studies, in reading order.
    label : str
        Where it came from, for messages.
    """

    package: str
    keys: list = field(default_factory=list)
    label: str = ""

    def load(self, key: str):
        """The study module `key`."""
        return importlib.import_module(f"{self.package}.{key}")


def _keys(names) -> list[str]:
    present = {n for n in names if not n.startswith("_")}
    ordered = [k for k in STUDY_ORDER if k in present]
    return ordered + sorted(present - set(ordered))


def _package_keys(package: str) -> list[str]:
    root = resources.files(package)
    return _keys(p.name[:-3] for p in root.iterdir() if p.name.endswith(".py"))


def builtin() -> StudySource:
    """gradflow's own studies (``gradflow.studies``)."""
    return StudySource("gradflow.studies", _package_keys("gradflow.studies"), "gradflow.studies")


def from_entry_points() -> list[StudySource]:
    """The packages of studies other distributions declare in :data:`ENTRY_POINT_GROUP`."""
    sources = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            package = ep.load().__name__
        except Exception as exc:  # another package's import error: say which
            raise InvalidArgumentError(
                f"the studies of entry point {ep.name!r} ({ep.value}) cannot be imported: "
                f"{type(exc).__name__}: {exc}") from None
        sources.append(StudySource(package, _package_keys(package), f"entry point {ep.name!r}"))
    return sources


def from_folder(folder) -> StudySource:
    """The ``*.py`` files of `folder`, as one package under a private name.

    Raises
    ------
    InvalidArgumentError
        If `folder` is not a folder or holds no study module.
    """
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise InvalidArgumentError(f"`studies` {str(folder)!r} is not a folder")
    keys = _keys(p.stem for p in folder.glob("*.py"))
    if not keys:
        raise InvalidArgumentError(f"`studies` {str(folder)!r} holds no study modules (*.py)")
    name = "gradflow_user_studies_" + hashlib.sha256(str(folder).encode()).hexdigest()[:12]
    if name not in sys.modules:
        init = folder / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                name, init, submodule_search_locations=[str(folder)])
        else:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            if spec.loader is not None:
                spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        # worker processes cannot import this package by name: send its functions by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    return StudySource(name, keys, str(folder))


def collect(folder=None) -> list[StudySource]:
    """The sources of studies: `folder` alone when given, else gradflow's own and those of
    the entry points.  A key offered twice is an error naming both sources."""
    sources = [from_folder(folder)] if folder is not None else [builtin(), *from_entry_points()]
    seen = {}
    for source in sources:
        for key in source.keys:
            if key in seen:
                raise InvalidArgumentError(
                    f"the study {key!r} is offered by {seen[key]} and by {source.label}")
            seen[key] = source.label
    return sources
