"""Write generated kernel modules to the cache folder and import them from there.

A module's file name carries a hash of the spec and of the code generator's own source
(:func:`gradflow.codegen.key.source_key`), so a changed cell or a new gradflow gets a
new file and an unchanged one is found again by every later process, which then loads
Numba's compiled code from its ``__pycache__`` instead of recompiling (``njit(cache=True)``
needs a real file).  Which folders are used and which files are trusted is decided by
:mod:`gradflow.codegen.cache`; a module is executed from the very text whose SHA-256 was
verified.  Generation and import are done once per process per spec; concurrent processes
are safe (atomic rename).
"""

from __future__ import annotations

import linecache
import logging
import re
import sys
import threading
import types
from pathlib import Path

from ..config import LLVM_OPTIONS
from . import cache
from .key import is_float32, source_key

__all__ = ["load", "module_path"]

_LOADED: dict[str, types.ModuleType] = {}
#: gradflow's logger: the command line shows its INFO messages ("compiling kernels ...")
log = logging.getLogger("gradflow")
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


def module_path(spec, dtype="float64") -> Path | None:
    """Where `spec`'s generated module for `dtype` is written (it may not exist yet); None
    when no folder can be written."""
    folder = cache.cache_folder().path
    return None if folder is None else folder / f"{_stem(spec, source_key(spec, dtype))}.py"


def _find(stem: str, folders: cache.CacheFolder):
    """(path, verified body) of a cached module, or (None, None)."""
    for folder in folders.read:
        path = folder / f"{stem}.py"
        body = cache.read_module(path, folders)
        if body is not None:
            return path, body
    return None, None


def _write(stem: str, body: str, folders: cache.CacheFolder) -> Path | None:
    """Write the module; on failure (full disk ...) try the fallback, then give up (None)."""
    tried = []
    for folder in dict.fromkeys(f for f in (folders.write, cache.fallback_folder()) if f):
        try:
            path = cache.write_module(folder, stem, body)
        except OSError as exc:
            tried.append(f"{folder}: {type(exc).__name__}: {exc.strerror or exc}")
            continue
        if folders.note:
            cache.warn_once(("note", folders.note), f"gradflow kernel cache: {folders.note}")
        elif tried:
            cache.warn_once(("write", stem), f"gradflow kernel cache: cannot write {stem}.py "
                            f"({'; '.join(tried)}); wrote it to {folder} instead")
        return path
    cache.warn_once(("write", stem), "gradflow kernel cache: cannot write the module "
                    f"{stem}.py ({'; '.join(tried) or 'no writable folder'}); compiling it in "
                    "memory for this process")
    return None


def _execute(name: str, body: str, path: Path | None, folders: cache.CacheFolder):
    """Run the verified `body` as module `name`, with ``__file__`` = `path`."""
    module = types.ModuleType(name)
    if path is not None:
        problem = cache.pycache_problem(path, folders)
        if problem:
            cache.warn_once(("pycache", str(path)), f"gradflow kernel cache: not loading the "
                            f"compiled code of {path.name} ({problem}); compiling it in memory")
        cache.register_folder(path.parent)
        filename = str(path)
    else:
        problem = "no file"
        body = cache.in_memory_source(body)
        filename = f"<gradflow kernels {name}>"
        linecache.cache[filename] = (len(body), None, body.splitlines(True), filename)
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(body, filename, "exec"), module.__dict__)  # noqa: S102 - our verified source
    except Exception:
        sys.modules.pop(name, None)
        raise
    cache.guard_dispatchers(module, trusted=problem is None)
    return module


def _dtype_name(dtype) -> str:
    return "float32" if is_float32(dtype) else "float64"


def load(spec, dtype="float64") -> types.ModuleType:
    """The compiled kernel module of `spec` for arrays of `dtype` (float64 or float32),
    generated and written on first use.  Each dtype has its own module: the float32 one
    computes in float32 throughout (see ``codegen/templates/prelude_float32.py``)."""
    key = source_key(spec, dtype)
    module = _LOADED.get(key)
    if module is not None:
        return module
    with _LOCK:
        module = _LOADED.get(key)
        if module is not None:
            return module
        folders = cache.cache_folder()
        stem = _stem(spec, key)
        path, body = _find(stem, folders)
        if body is None:
            # SymPy and the generator load only here: cached kernels never import them
            from .source import generate_source

            log.info("compiling kernels for %r (%s), its first use: this takes seconds",
                     spec.name, _dtype_name(dtype))
            body = generate_source(spec, dtype)
            path = _write(stem, body, folders)
        elif not cache.has_compiled(path):
            log.info("compiling kernels for %r (%s): none compiled in %s yet", spec.name,
                     _dtype_name(dtype), path.parent)
        _configure_llvm()
        module = _execute(f"gradflow._generated.{stem}", body, path, folders)
        _LOADED[key] = module
        return module
