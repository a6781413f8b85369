"""What a generated module is made of and keyed by: the templates, and a fingerprint of
everything that shapes generated source.

Reading this module costs no SymPy: a process whose kernels are cached computes their key
(:func:`source_key`) and loads them without ever importing SymPy or the generator.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np

from ..config import JIT_OPTIONS, LLVM_OPTIONS

__all__ = ["CODEGEN_VERSION", "PRELUDES", "KERNEL_TEMPLATES", "template", "fingerprint",
           "source_key", "is_float32", "jit_line"]

#: Bump when the generated code changes in a way that neither the spec's hash nor the text
#: of the code generator shows (see :func:`fingerprint`).
CODEGEN_VERSION = "6"

#: The helpers every module starts with, per dtype (files in ``codegen/templates/``).
PRELUDES = {"float64": ("prelude_float64.py", "prelude_log.py"),
            "float32": ("prelude_float32.py", "prelude_log.py")}
#: The kernels generic over cells, appended after the unit functions they call.
KERNEL_TEMPLATES = ("scan.py", "flow.py")

_TEXT: dict[str, str] = {}
_FINGERPRINT: list[str] = []  # of everything but the spec, computed once per process


def template(name: str) -> str:
    """The text of the template file `name` (read once per process)."""
    if name not in _TEXT:
        _TEXT[name] = (resources.files("gradflow.codegen") / "templates" / name).read_text()
    return _TEXT[name]


def _source_files() -> list:
    """Every file whose text shapes a generated module: the symbolic and codegen packages
    (equations to derivatives, printer, generator) and the templates and preludes."""
    root = resources.files("gradflow")
    files = []
    for folder in (root / "symbolic", root / "codegen", root / "codegen" / "templates"):
        files += [p for p in folder.iterdir() if p.name.endswith(".py")]
    return sorted(files, key=lambda p: (p.parent.name, p.name))


def fingerprint() -> str:
    """SHA-256 of everything that shapes generated source except the spec: the text of the
    symbolic and codegen packages and of the templates, the JIT and LLVM options and
    :data:`CODEGEN_VERSION`.

    Computed once per process (every pass asks for its cell's kernels; reading the files
    each time would cost ~0.5 ms).  An edit to the printer, the generator or a template
    changes it, and with it the name of every generated module: nothing stale is reused.
    """
    if not _FINGERPRINT:
        h = hashlib.sha256()
        h.update(CODEGEN_VERSION.encode())
        h.update(repr(sorted(JIT_OPTIONS.items())).encode())
        h.update(repr(LLVM_OPTIONS).encode())
        for path in _source_files():
            h.update(f"{path.parent.name}/{path.name}".encode())
            h.update(path.read_bytes())
        _FINGERPRINT.append(h.hexdigest())
    return _FINGERPRINT[0]


def jit_line(options: dict = JIT_OPTIONS) -> str:
    """The line of a generated module that sets the flags of its ``njit`` calls."""
    return f"JIT = {options!r}"


def is_float32(dtype) -> bool:
    return np.dtype(dtype) == np.float32


def source_key(spec, dtype="float64") -> str:
    """The cache key of `spec`'s module for `dtype`: the spec's hash and :func:`fingerprint`."""
    name = "float32" if is_float32(dtype) else "float64"
    return hashlib.sha256((spec.hash + fingerprint() + name).encode()).hexdigest()[:20]
