"""Write a multi-file report so that its folder holds the old report or the new one, never
a mix.

:func:`staging` checks the output folder before any work (it must be new, empty, or an
earlier report) and makes a temporary folder beside it; the report is written there and
:func:`publish` swaps it into place: in one atomic step where the system can exchange two
folders (Linux ``renameat2``), else by two renames, so that a kill leaves the old report or
the new one.  Staging folders left by a killed run (their process no longer exists) are
removed the next time.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InvalidArgumentError

__all__ = ["MARKER", "staging", "publish", "discard"]

#: file that marks a folder as a gradflow report (so that it may be replaced)
MARKER = ".gradflow-report"
#: what a report folder may hold besides the marker
_REPORT_ENTRIES = {"index.md", "index.html", "figures", "data", MARKER}


def _check_target(out: Path) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise InvalidArgumentError(
            f"`out` {str(out)!r} exists and is not a folder; give a new or empty folder, or "
            "an earlier report's"
        )
    try:
        entries = set(os.listdir(out))
    except OSError as exc:
        raise InvalidArgumentError(f"`out` {str(out)!r} cannot be read: {exc.strerror or exc}") from None
    if not entries or MARKER in entries:
        return
    foreign = sorted(entries - _REPORT_ENTRIES)
    if foreign:
        shown = ", ".join(repr(e) for e in foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise InvalidArgumentError(
            f"`out` {str(out)!r} holds files that are not part of a gradflow report ({shown}); "
            "it would be replaced as a whole. Give a new or empty folder, or an earlier report's"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Remove staging folders of `out` left by processes that no longer exist."""
    prefix = f".{out.name}.gradflow-"
    try:
        names = os.listdir(out.parent)
    except OSError:
        return
    for name in names:
        if not name.startswith(prefix):
            continue
        try:
            pid = int(name[len(prefix):].split("-")[1])
        except (IndexError, ValueError):
            continue
        if not _alive(pid):
            shutil.rmtree(out.parent / name, ignore_errors=True)


def staging(out) -> Path:
    """A new temporary folder beside `out` to write the report into.

    Raises
    ------
    InvalidArgumentError
        If `out` exists and is not an empty folder or a gradflow report, or if its parent
        folder cannot be created or written: before any study runs.
    """
    out = Path(out).expanduser()
    _check_target(out)
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        path = Path(tempfile.mkdtemp(prefix=f".{out.name}.gradflow-new-{os.getpid()}-",
                                     dir=parent))
    except OSError as exc:
        raise InvalidArgumentError(
            f"`out` {str(out)!r} cannot be written: {type(exc).__name__}: {exc.strerror or exc}"
        ) from None
    os.chmod(path, 0o777 & ~_umask())  # mkdtemp makes it 0700; a report is for reading
    (path / MARKER).write_text("gradflow report: this folder is replaced as a whole by "
                               "`gradflow report --out`\n", encoding="utf-8")
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE); False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def publish(staged: Path, out) -> Path:
    """Move the finished report `staged` to `out`, replacing what was there, and remove the
    old one.  Returns `out`."""
    out = Path(out).expanduser()
    if not out.exists():
        os.rename(staged, out)
        return out
    if _exchange(staged, out):
        shutil.rmtree(staged, ignore_errors=True)  # now the old report
        return out
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.gradflow-old-{os.getpid()}-",
                                dir=out.absolute().parent))
    os.rmdir(old)
    os.rename(out, old)
    os.rename(staged, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def discard(staged: Path) -> None:
    """Remove a staging folder (after a failure)."""
    shutil.rmtree(staged, ignore_errors=True)
