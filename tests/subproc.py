"""Run Python code in a fresh process, optionally without root's power over file modes.

Tests of the kernel cache need fresh processes (a process keeps the modules it loaded) and
real file permissions.  CI runs as root, whom read-only modes do not stop; ``drop_dac``
removes the capabilities that let root ignore them (CAP_DAC_OVERRIDE and
CAP_DAC_READ_SEARCH) before the code runs, so a read-only folder is read-only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_DROP_DAC = textwrap.dedent("""
    import ctypes as _c
    class _Hdr(_c.Structure):
        _fields_ = [("version", _c.c_uint32), ("pid", _c.c_int)]
    class _Data(_c.Structure):
        _fields_ = [("effective", _c.c_uint32), ("permitted", _c.c_uint32),
                    ("inheritable", _c.c_uint32)]
    _libc = _c.CDLL(None, use_errno=True)
    _d = (_Data * 2)()
    if _libc.capget(_c.byref(_Hdr(0x20080522, 0)), _d) == 0:
        for _x in _d:
            _x.effective &= ~0b110
            _x.permitted &= ~0b110
        if _libc.capset(_c.byref(_Hdr(0x20080522, 0)), _d) != 0:
            raise SystemExit("could not drop CAP_DAC_OVERRIDE")
""")


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def run_python(code: str, *, env: dict | None = None, drop_dac: bool = False,
               umask: int | None = None, check: bool = True, timeout: float = 600,
               cwd=None) -> subprocess.CompletedProcess:
    """Run `code` with this interpreter; returns the completed process (text output)."""
    code = textwrap.dedent(code)
    if drop_dac and is_root():
        code = _DROP_DAC + code
    full_env = {**os.environ, **(env or {})}
    for key, value in list(full_env.items()):
        if value is None:
            del full_env[key]
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_python(code: str, *, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """Start `code` with this interpreter in the background (output to pipes)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
