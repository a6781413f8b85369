"""The kernel cache: which folder holds generated modules, and which files in it may run.

Generated modules are Python source that gradflow imports, and Numba's compiled code
beside them (``__pycache__/*.nbi``, ``*.nbc``) is unpickled on load: whoever can write
these files can run code in the user's process.  So:

* A folder is used only if it is owned by the current user and not writable by every
  user.  The fallback in the temporary directory (``gradflow-<uid>``) must moreover be
  writable by its owner alone and not be a symbolic link; otherwise a fresh private folder
  is made with :func:`tempfile.mkdtemp`.  A folder shared by a group (``GRADFLOW_CACHE_DIR``
  pointing at a set-group-ID folder of one of the user's groups) is the one exception:
  its members' files are trusted as the user's own.
* A file is imported (or handed to Numba) only if it is a regular file owned by the user
  (or, in a group's folder, by that group), not writable by every user, and, for a module,
  only if its content matches the SHA-256 recorded in its first line.  A module that does
  not match is generated again; compiled code that Numba cannot read is compiled again and
  rewritten.
* A folder that cannot be written (read-only, a path that is a file, a full disk) is not an
  error: what is in it is still loaded, new modules go to the fallback, and one
  :class:`~gradflow.errors.CacheWarning` says where and why.  Where nothing can be written
  at all, a module is compiled in memory, without Numba's disk cache.

Files are written with the permissions the umask gives (not 0600), so a group can share a
cache folder.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..config import CACHE_ENV, JIT_OPTIONS
from ..errors import CacheWarning

__all__ = ["CacheFolder", "cache_folder", "cache_dir", "read_module", "write_module",
           "trusted_file", "pycache_problem", "has_compiled", "register_folder", "guard_dispatchers",
           "in_memory_source", "fallback_folder", "warn_once", "HEADER_PREFIX", "with_header"]

#: first line of every generated module, followed by the SHA-256 of the rest of the file
HEADER_PREFIX = "# gradflow kernel module, sha256 of the lines below: "

_WARNED: set = set()
_LOCK = threading.Lock()
#: folders whose generated modules have been loaded (Numba's locator serves these)
_KERNEL_FOLDERS: set[str] = set()


def warn_once(key, message: str) -> None:
    """Issue a :class:`CacheWarning` once per process for `key`."""
    with _LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    warnings.warn(message, CacheWarning, stacklevel=3)


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else -1


# ---------------------------------------------------------------------- folders
@dataclass(frozen=True)
class CacheFolder:
    """The folders of the kernel cache, as chosen for this process.

    Attributes
    ----------
    read : tuple of Path
        Folders searched for generated modules, in order.
    write : Path or None
        The folder new modules are written to (None: nowhere; compile in memory).
    group : int or None
        The group ID of a group-shared folder (its members' files are trusted), or None.
    note : str or None
        Why new modules do not go to the main folder (said when one is written elsewhere).
    """

    read: tuple
    write: Path | None
    group: int | None = None
    note: str | None = None

    @property
    def path(self) -> Path | None:
        """The main folder: where modules are written, else the first one read."""
        return self.write or (self.read[0] if self.read else None)


def _folder_problem(path: Path, st: os.stat_result, *, strict: bool) -> str | None:
    """Why `path` (with stat `st`) is not a safe cache folder, or None when it is.

    strict: also refuse group write permission (the shared temporary directory)."""
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    uid = _uid()
    if uid >= 0 and st.st_uid != uid:
        return f"it is owned by another user (uid {st.st_uid})"
    if st.st_mode & stat.S_IWOTH:
        return "every user may write to it"
    if strict and st.st_mode & stat.S_IWGRP:
        return "its group may write to it"
    return None


def _group_folder(path: Path, st: os.stat_result) -> int | None:
    """The group ID if `path` is a folder shared by one of the user's groups: set-group-ID,
    owned by that group, not writable by every user."""
    if not hasattr(os, "getgroups") or not stat.S_ISDIR(st.st_mode):
        return None
    if not st.st_mode & stat.S_ISGID or st.st_mode & stat.S_IWOTH:
        return None
    if st.st_gid not in set(os.getgroups()) | {os.getgid()}:
        return None
    return st.st_gid


def _writable(path: Path) -> str | None:
    """None if a file can be created in `path`, else why not."""
    try:
        fd, name = tempfile.mkstemp(dir=path, prefix=".probe-")
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return None


def _default_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gradflow"


_PRIVATE: list[Path] = []   # a folder made with mkdtemp, once per process


def _fallback() -> tuple[Path | None, str | None]:
    """The private folder in the temporary directory, or None and why there is none."""
    if _PRIVATE:
        return _PRIVATE[0], None
    tmp = Path(tempfile.gettempdir())
    path = tmp / f"gradflow-{_uid() if _uid() >= 0 else 'user'}"
    problem = None
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        problem = f"cannot create it ({exc.strerror or exc})"
    if problem is None:
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                problem = "it is a symbolic link"
            else:
                problem = _folder_problem(path, st, strict=True) or _writable(path)
        except OSError as exc:
            problem = f"cannot inspect it ({exc.strerror or exc})"
    if problem is None:
        return path, None
    try:
        private = Path(tempfile.mkdtemp(prefix=f"gradflow-{_uid()}-"))
    except OSError as exc:
        return None, f"{path}: {problem}; and no private folder could be made ({exc})"
    warn_once(("fallback", str(path)),
               f"gradflow kernel cache: not using {path} ({problem}); using the private "
               f"folder {private} for this process instead")
    _PRIVATE.append(private)
    return private, None


def fallback_folder() -> Path | None:
    """The private folder in the temporary directory (see the module docstring), or None
    when none can be made."""
    return _fallback()[0]


def cache_folder() -> CacheFolder:
    """The folders of the kernel cache for the current environment.

    ``$GRADFLOW_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/gradflow`` (``~/.cache/gradflow``),
    created if missing.  When that folder is not safe it is not used; when it cannot be
    written its modules are still read and new ones go to the fallback (see the module
    docstring).  Each change of plan is said once per process, as a
    :class:`~gradflow.errors.CacheWarning`.
    """
    env = os.environ.get(CACHE_ENV)
    main = Path(env).expanduser() if env else _default_folder()
    explicit = bool(env)
    reason = None
    group = None
    try:
        main.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        pass  # a file is in the way: reported below
    except OSError as exc:
        reason = f"cannot create it ({type(exc).__name__}: {exc.strerror or exc})"
    if reason is None:
        try:
            st = os.stat(main)
        except OSError as exc:
            st = None
            reason = f"cannot inspect it ({exc.strerror or exc})"
        if st is not None:
            if explicit:
                group = _group_folder(main, st)
            if group is None:
                reason = _folder_problem(main, st, strict=False)
    if reason is not None:
        fallback, why = _fallback()
        warn_once(("unsafe", str(main)),
                   f"gradflow kernel cache: not using {main} ({reason}); using "
                   f"{fallback or 'no folder (kernels are compiled in memory)'} instead"
                   + (f" ({why})" if why else "")
                   + f". Set {CACHE_ENV} to a folder of yours to choose another.")
        return CacheFolder(read=(fallback,) if fallback else (), write=fallback)
    cant_write = _writable(main)
    if cant_write is None:
        return CacheFolder(read=(main,), write=main, group=group)
    fallback, why = _fallback()
    note = (f"{main} cannot be written ({cant_write}); its kernels are still loaded, new "
            f"ones are written to {fallback or 'no folder (compiled in memory)'}"
            + (f" ({why})" if why else "")
            + f". Set {CACHE_ENV} to a writable folder to keep them.")
    read = (main, fallback) if fallback else (main,)
    return CacheFolder(read=read, write=fallback, group=group, note=note)


def cache_dir() -> Path | None:
    """The folder new kernel modules are written to (see :func:`cache_folder`)."""
    return cache_folder().path


# ---------------------------------------------------------------------- files
def trusted_file(path: Path, folder: CacheFolder, *, st: os.stat_result | None = None) -> str | None:
    """None if the file at `path` may be loaded, else why not: it must be a regular file
    (not a link) owned by the user (or the folder's group), not writable by every user."""
    try:
        st = st or os.lstat(path)
    except OSError as exc:
        return f"cannot inspect it ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if st.st_mode & stat.S_IWOTH:
        return "every user may write to it"
    uid = _uid()
    if uid >= 0 and st.st_uid != uid and not (folder.group is not None and st.st_gid == folder.group):
        return f"it is owned by another user (uid {st.st_uid})"
    return None


def with_header(body: str) -> str:
    """`body` with the first line that records its SHA-256."""
    return f"{HEADER_PREFIX}{hashlib.sha256(body.encode()).hexdigest()}\n{body}"


def read_module(path: Path, folder: CacheFolder) -> str | None:
    """The verified body of the generated module at `path`, or None.

    None when the file is missing, not trusted (see :func:`trusted_file`), or does not
    match the SHA-256 of its first line (truncated, edited); the last two are said in a
    :class:`~gradflow.errors.CacheWarning`.  The file is opened without following links
    and read once: the text returned is the text verified.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        warn_once(("read", str(path)), f"gradflow kernel cache: cannot read {path} "
                   f"({exc.strerror or exc}); generating the module again")
        return None
    with os.fdopen(fd, "rb") as fh:
        problem = trusted_file(path, folder, st=os.fstat(fh.fileno()))
        data = fh.read() if problem is None else b""
    if problem is not None:
        warn_once(("untrusted", str(path)), f"gradflow kernel cache: not loading {path} "
                   f"({problem}); generating the module again")
        return None
    text = data.decode("utf-8", errors="replace")
    head, sep, body = text.partition("\n")
    want = head[len(HEADER_PREFIX):] if head.startswith(HEADER_PREFIX) else None
    if not sep or want != hashlib.sha256(body.encode()).hexdigest():
        warn_once(("corrupt", str(path)), f"gradflow kernel cache: {path} does not match its "
                   "recorded SHA-256 (truncated or edited); generating it again")
        return None
    return body


def _create_umask(path: Path) -> int:
    """Open a new file at `path` for writing, with the permissions the umask gives."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)


def write_module(folder: Path, stem: str, body: str) -> Path:
    """Write the module `body` (with its header) to ``folder/stem.py`` atomically: a
    temporary file in the same folder, renamed into place.  Raises OSError."""
    path = folder / f"{stem}.py"
    tmp = folder / f".{stem}-{os.getpid()}-{threading.get_ident()}-{os.urandom(4).hex()}.py"
    fd = _create_umask(tmp)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(with_header(body))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


# ---------------------------------------------------------------------- Numba's cache
def pycache_problem(path: Path, cf: CacheFolder) -> str | None:
    """None if Numba's compiled code of the module at `path`, in the ``__pycache__``
    beside it, may be loaded; else why not."""
    pyc, stem = path.parent / "__pycache__", path.stem
    try:
        st = os.lstat(pyc)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot inspect {pyc} ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode):
        return f"{pyc} is a symbolic link"
    problem = None if (cf.group is not None and st.st_gid == cf.group
                       and not st.st_mode & stat.S_IWOTH) else _folder_problem(pyc, st, strict=False)
    if problem:
        return f"{pyc}: {problem}"
    try:
        names = [n for n in os.listdir(pyc) if n.startswith(f"{stem}.")]
    except OSError as exc:
        return f"cannot list {pyc} ({exc.strerror or exc})"
    for name in names:
        problem = trusted_file(pyc / name, cf)
        if problem:
            return f"{pyc / name}: {problem}"
    return None


def _install_locator() -> None:
    """Let Numba keep the compiled code of a generated module in its folder's
    ``__pycache__`` and read it from there even when the folder cannot be written (Numba's
    own in-tree locator insists on a writable folder, and would recompile every time)."""
    from numba.core import caching

    if any(getattr(c, "_gradflow", False) for c in caching.CacheImpl._locator_classes):
        return

    class KernelCacheLocator(caching._CacheLocator):
        _gradflow = True

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(os.path.dirname(py_file), "__pycache__")

        def ensure_cache_path(self):
            os.makedirs(self._cache_path, exist_ok=True)
            tempfile.TemporaryFile(dir=self._cache_path).close()

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            st = os.stat(self._py_file)
            return st.st_mtime, st.st_size

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) not in _KERNEL_FOLDERS:
                return None
            self = cls(py_func, py_file)
            try:
                os.makedirs(self._cache_path, exist_ok=True)
            except OSError:
                pass  # read-only: whatever is there is still loaded
            return self

    caching.CacheImpl._locator_classes.insert(0, KernelCacheLocator)


def has_compiled(path: Path) -> bool:
    """Whether Numba's compiled code of the module at `path` is in its ``__pycache__``."""
    try:
        return any(n.startswith(f"{path.stem}.") and n.endswith(".nbi")
                   for n in os.listdir(path.parent / "__pycache__"))
    except OSError:
        return False


def register_folder(folder: Path) -> None:
    """Serve Numba's cache of the modules in `folder` from ``folder/__pycache__``."""
    _install_locator()
    _KERNEL_FOLDERS.add(os.path.abspath(folder))


def _guarded_cache_class():
    from numba.core.caching import FunctionCache

    class GuardedCache(FunctionCache):
        """Numba's cache of one function, whose failures are warnings, not errors: code
        that cannot be read is compiled again (and the unreadable index removed, so the
        next save rewrites it); code that cannot be written is said once."""

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception as exc:  # a truncated or foreign file: UnpicklingError, EOFError ...
                index = getattr(self._cache_file, "_index_path", None)
                source = getattr(self._impl.locator, "_py_file", self._cache_path)
                warn_once(("load", source),
                           f"gradflow kernel cache: cannot read the compiled code of "
                           f"{os.path.basename(source)} in {self._cache_path} "
                           f"({type(exc).__name__}: {exc}); compiling it again")
                if index:
                    try:
                        os.unlink(index)
                    except OSError:
                        pass
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception as exc:
                warn_once(("save", self._cache_path),
                           f"gradflow kernel cache: cannot write compiled code to "
                           f"{self._cache_path} ({type(exc).__name__}: {exc}); kernels will be "
                           f"compiled again in every process. Set {CACHE_ENV} to a writable "
                           "folder to keep them.")

    return GuardedCache


_GUARDED: list = []


def guard_dispatchers(module, *, trusted: bool = True) -> None:
    """Make every cached Numba function of `module` treat cache failures as warnings
    (see :func:`_guarded_cache_class`); with ``trusted=False`` its disk cache is not used
    at all (compiled in memory)."""
    from numba.core.caching import FunctionCache, NullCache
    from numba.core.dispatcher import Dispatcher

    if not _GUARDED:
        _GUARDED.append(_guarded_cache_class())
    for value in list(vars(module).values()):
        if isinstance(value, Dispatcher) and isinstance(value._cache, FunctionCache):
            if trusted:
                value._cache.__class__ = _GUARDED[0]
            else:
                value._cache = NullCache()


def in_memory_source(body: str) -> str:
    """The module `body` with Numba's disk cache turned off (nowhere to keep it)."""
    from .key import jit_line

    line = jit_line()
    if line not in body:  # pragma: no cover - the generator always writes it
        raise RuntimeError("generated module without its JIT line")
    return body.replace(line, jit_line({**JIT_OPTIONS, "cache": False}), 1)

