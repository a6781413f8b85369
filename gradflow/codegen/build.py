"""Write generated kernel modules to the cache folder and import them from there.

A module's file name carries a hash of the spec, the templates, the printer version and
the JIT flags, so a changed cell gets a new file and an unchanged one is found again by
every later process, which then loads Numba's compiled code from its ``__pycache__``
instead of recompiling (``njit(cache=True)`` needs a real file).  Generation and import
are done once per process per spec; concurrent processes are safe (atomic rename).
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType

from ..config import LLVM_OPTIONS, cache_dir

__all__ = ["load", "module_path"]

_LOADED: dict[str, ModuleType] = {}
_LOCK = threading.Lock()
_LLVM_READY = False


def _configure_llvm() -> None:
    """Apply :data:`gradflow.config.LLVM_OPTIONS` once per process, before any compilation."""
    global _LLVM_READY
    if not _LLVM_READY:
        import llvmlite.binding as llvm

        for option in LLVM_OPTIONS:
            llvm.set_option("gradflow", option)
        _LLVM_READY = True


def _stem(spec, key: str) -> str:
    safe = re.sub(r"[^0-9A-Za-z]+", "_", spec.name).strip("_").lower() or "cell"
    return f"gf_{safe}_{key}"


def module_path(spec, dtype="float64") -> Path:
    """Where `spec`'s generated module for `dtype` lives (it may not exist yet)."""
    from .module import source_key

    return cache_dir() / f"{_stem(spec, source_key(spec, dtype))}.py"


def load(spec, dtype="float64") -> ModuleType:
    """The compiled kernel module of `spec` for arrays of `dtype` (float64 or float32),
    generated and written on first use.  Each dtype has its own module: the float32 one
    computes in float32 throughout (see :data:`gradflow.codegen.module.PRELUDE_F32`)."""
    from .module import source_key

    key = source_key(spec, dtype)
    module = _LOADED.get(key)
    if module is not None:
        return module
    with _LOCK:
        module = _LOADED.get(key)
        if module is not None:
            return module
        folder = cache_dir()
        stem = _stem(spec, key)
        path = folder / f"{stem}.py"
        if not path.exists():
            from .module import generate_source

            source = generate_source(spec, dtype)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}-", suffix=".py")
            with os.fdopen(fd, "w") as fh:
                fh.write(source)
            os.replace(tmp, path)
        _configure_llvm()
        name = f"gradflow._generated.{stem}"
        mspec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(mspec)
        sys.modules[name] = module
        try:
            mspec.loader.exec_module(module)
        except Exception:
            sys.modules.pop(name, None)
            raise
        _LOADED[key] = module
        return module
