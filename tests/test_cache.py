"""The kernel cache as an attacker and an unlucky user meet it: folders and files of other
users, corrupt and truncated files, read-only folders, a full disk, concurrent processes,
and an upgrade of the code generator."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import gradflow
from gradflow.codegen import cache
from gradflow.errors import CacheWarning

from .subproc import is_root, run_python, start_python

#: a cell of its own, so that no other test has its kernels cached
EQUATIONS = "h = tanh(ax_a + 0.5*ah_a) + 0.25*h_prev"
DEFINE = f"""
import json, warnings, numpy as np, gradflow
warnings.simplefilter("always")
spec = gradflow.define_cell("cache-probe", gates="a", register=False, equations={EQUATIONS!r})
"""
#: the probe cell's forward pass (and with BACKWARD its backward pass), printing the results
#: and where they came from
RUN = DEFINE + """
cell = gradflow.Cell(spec, 2, 3, seed=0)
x = np.linspace(-1, 1, 4 * 2 * 2).reshape(4, 2, 2)
trace = cell.forward(x)
out = {"h": trace.h[-1].tolist()}
if BACKWARD:
    out["dw"] = cell.backward(trace, np.ones((4, 2, 3))).params["weight_hh"].tolist()
k = cell.kernels
out["hits"] = sum(k.forward_kernel.stats.cache_hits.values())
out["file"] = k.__file__
print(json.dumps(out))
"""
RUN_BACKWARD = "BACKWARD = True\n" + RUN
RUN = "BACKWARD = False\n" + RUN


def reference():
    """The probe cell's last state and dL/dW_hh, by a NumPy loop and finite differences."""
    spec = gradflow.define_cell("cache-probe", gates="a", register=False, equations=EQUATIONS)
    p = gradflow.Cell(spec, 2, 3, seed=0).params
    x = np.linspace(-1, 1, 4 * 2 * 2).reshape(4, 2, 2)

    def run(w_hh):
        h = np.zeros((2, 3))
        total = 0.0
        for t in range(4):
            h = np.tanh(x[t] @ p["weight_ih"].T + p["bias_ih"] + 0.5 * (h @ w_hh.T + p["bias_hh"])) + 0.25 * h
            total += h.sum()
        return h, total

    h, _ = run(p["weight_hh"])
    dw = np.zeros_like(p["weight_hh"])
    for idx in np.ndindex(*dw.shape):
        e = np.zeros_like(dw)
        e[idx] = 1e-6
        dw[idx] = (run(p["weight_hh"] + e)[1] - run(p["weight_hh"] - e)[1]) / 2e-6
    return h, dw


@pytest.fixture(scope="module")
def expected():
    return reference()


def result(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_result(out, expected):
    np.testing.assert_allclose(out["h"], expected[0], rtol=1e-12)
    if "dw" in out:
        np.testing.assert_allclose(out["dw"], expected[1], rtol=1e-6, atol=1e-8)


def env_for(folder, tmp=None) -> dict:
    env = {"GRADFLOW_CACHE_DIR": str(folder)}
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return env


def modules(folder: Path) -> list[Path]:
    return sorted(folder.glob("gf_cache_probe_*.py"))


# ---------------------------------------------------------------- hijacked folders and files
@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX file ownership")
def test_a_fallback_folder_made_by_someone_else_is_not_used(tmp_path):
    """Another user creates /tmp/gradflow-<uid> first (mode 777) and plants a module."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    planted = tmp / f"gradflow-{os.getuid()}"
    planted.mkdir()
    os.chmod(planted, 0o777)
    if is_root():
        os.chown(planted, 65534, 65534)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    canary = tmp_path / "CANARY"
    # a module under the very name gradflow would import, with a valid header
    probe = run_python(DEFINE + "from gradflow.codegen.build import module_path\n"
                       "print(module_path(spec).name)", env=env_for(tmp_path / "c"))
    name = probe.stdout.strip().splitlines()[-1]
    body = f"import pathlib\npathlib.Path({str(canary)!r}).write_text('pwned')\n"
    (planted / name).write_text(cache.with_header(body))
    env = {"GRADFLOW_CACHE_DIR": None, "XDG_CACHE_HOME": str(blocker / "sub"), "TMPDIR": str(tmp)}
    proc = run_python(DEFINE + "print(gradflow.Cell(spec, 2, 3).kernels.__file__)", env=env)
    assert not canary.exists()
    used = Path(proc.stdout.strip().splitlines()[-1])
    assert used.parent != planted and used.parent.parent == tmp
    assert stat.S_IMODE(os.stat(used.parent).st_mode) == 0o700
    assert f"not using {planted}" in proc.stderr and "CacheWarning" in proc.stderr


@pytest.mark.parametrize("how", ["world-writable", "other owner", "symlink"])
def test_a_module_that_is_not_the_users_own_is_not_imported(tmp_path, how, expected):
    if how == "other owner" and not is_root():
        pytest.skip("changing a file's owner needs root")
    folder = tmp_path / "c"
    first = result(run_python(RUN, env=env_for(folder)))
    path = Path(first["file"])
    canary = tmp_path / "CANARY"
    body = f"import pathlib\npathlib.Path({str(canary)!r}).write_text('pwned')\n"
    if how == "symlink":
        elsewhere = tmp_path / "elsewhere.py"
        elsewhere.write_text(cache.with_header(body))
        path.unlink()
        path.symlink_to(elsewhere)
    else:
        path.write_text(cache.with_header(body))
        if how == "world-writable":
            os.chmod(path, 0o666)
        else:
            os.chown(path, 65534, 65534)
    proc = run_python(RUN, env=env_for(folder, tmp_path))
    assert not canary.exists()
    check_result(result(proc), expected)
    assert "not loading" in proc.stderr or "cannot read" in proc.stderr


# ---------------------------------------------------------------- corrupt files
@pytest.mark.parametrize("damage", ["truncate", "append", "no header"])
def test_a_corrupt_module_is_generated_again(tmp_path, damage, expected):
    folder = tmp_path / "c"
    path = Path(result(run_python(RUN, env=env_for(folder)))["file"])
    text = path.read_text()
    if damage == "truncate":
        path.write_text(text[: len(text) // 2])
    elif damage == "append":
        path.write_text(text + "\nNUM_SAVED = 99\n")
    else:
        path.write_text(text.split("\n", 1)[1])
    proc = run_python(RUN, env=env_for(folder))
    check_result(result(proc), expected)
    assert "does not match its recorded SHA-256" in proc.stderr
    assert cache.read_module(path, cache.CacheFolder(read=(folder,), write=folder)) is not None


def test_corrupt_compiled_code_is_compiled_again_and_rewritten(tmp_path, expected):
    folder = tmp_path / "c"
    run_python(RUN, env=env_for(folder))
    pyc = folder / "__pycache__"
    damaged = 0
    for f in pyc.iterdir():
        if f.name.startswith("gf_cache_probe") and f.suffix in (".nbi", ".nbc"):
            data = f.read_bytes()
            f.write_bytes(data[: len(data) // 3])
            damaged += 1
    assert damaged >= 2
    proc = run_python(RUN, env=env_for(folder))
    check_result(result(proc), expected)
    assert "cannot read the compiled code" in proc.stderr
    again = run_python(RUN, env=env_for(folder))  # rewritten: loaded, no warning
    assert result(again)["hits"] >= 1 and "CacheWarning" not in again.stderr


# ---------------------------------------------------------------- folders that cannot be written
def test_a_read_only_warm_cache_is_loaded_without_writing_or_compiling(tmp_path, expected):
    folder = tmp_path / "c"
    run_python(RUN, env=env_for(folder))
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    for p in [folder, *folder.rglob("*")]:
        os.chmod(p, stat.S_IMODE(p.stat().st_mode) & ~0o222)
    try:
        proc = run_python(RUN, env=env_for(folder, tmp_path), drop_dac=True)
    finally:
        for p in [folder, *folder.rglob("*")]:
            os.chmod(p, stat.S_IMODE(p.stat().st_mode) | 0o200)
    out = result(proc)
    check_result(out, expected)
    assert out["hits"] >= 1, proc.stderr          # compiled code loaded, not compiled again
    assert Path(out["file"]).parent == folder
    assert "Warning" not in proc.stderr            # nothing needed writing: nothing to say
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == before


def test_a_read_only_cache_writes_new_kernels_elsewhere_with_one_warning(tmp_path, expected):
    folder = tmp_path / "c"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        proc = run_python(RUN, env=env_for(folder, tmp_path), drop_dac=True)
    finally:
        os.chmod(folder, 0o755)
    out = result(proc)
    check_result(out, expected)
    assert Path(out["file"]).parent != folder
    assert proc.stderr.count("CacheWarning") == 1
    assert f"{folder} cannot be written" in proc.stderr


def test_a_cache_path_that_is_a_file_falls_back(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(blocker))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.warns(CacheWarning, match="not a folder"):
        folders = cache.cache_folder()
    assert folders.write is not None and folders.write.parent == tmp_path


def test_a_full_disk_falls_back_and_then_compiles_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADFLOW_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    def full(folder, stem, body):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "write_module", full)
    spec = gradflow.define_cell("full-disk", gates="a", register=False,
                                equations="h = tanh(ax_a + ah_a) - 0.125*h_prev")
    with pytest.warns(CacheWarning, match="No space left.*in memory"):
        cell = gradflow.Cell(spec, 2, 2, seed=0)
        h = cell.forward(np.ones((3, 1, 2))).h
    assert cell.kernels.__file__.startswith("<gradflow kernels")
    p = cell.params
    want = np.zeros((1, 2))
    for _ in range(3):
        want = np.tanh(np.ones((1, 2)) @ p["weight_ih"].T + p["bias_ih"]
                       + want @ p["weight_hh"].T + p["bias_hh"]) - 0.125 * want
    np.testing.assert_allclose(h[-1], want, rtol=1e-12)


def test_files_follow_the_umask(tmp_path):
    folder = tmp_path / "c"
    out = result(run_python(RUN, env=env_for(folder), umask=0o002))
    mode = stat.S_IMODE(os.stat(out["file"]).st_mode)
    assert mode == 0o664, oct(mode)


def test_a_group_shared_folder_trusts_its_groups_files(tmp_path, expected):
    """A set-group-ID folder of one of the user's groups: members' modules are loaded."""
    folder = tmp_path / "c"
    folder.mkdir()
    os.chmod(folder, 0o2775)
    first = result(run_python(RUN, env=env_for(folder), umask=0o002))
    if not is_root():
        pytest.skip("making a teammate's file needs root")
    path = Path(first["file"])
    os.chown(path, 65534, os.stat(folder).st_gid)  # written by a teammate of the same group
    proc = run_python(RUN, env=env_for(folder))
    assert result(proc)["file"] == str(path) and "not loading" not in proc.stderr


# ---------------------------------------------------------------- an upgrade of the generator
def test_an_edit_to_the_printer_regenerates_every_module(tmp_path):
    src = Path(gradflow.__file__).parent
    keys = {}
    for variant in ("same", "edited"):
        copy = tmp_path / variant / "gradflow"
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns("__pycache__"))
        if variant == "edited":
            printer = copy / "codegen" / "printer.py"
            printer.write_text(printer.read_text().replace('return f"v_{expr.name}"',
                                                           'return f"v_{expr.name}"  # edited'))
        proc = run_python(DEFINE + "from gradflow.codegen.build import module_path\n"
                          "print(gradflow.__file__)\nprint(module_path(spec).name)",
                          env={"PYTHONPATH": str(copy.parent), "GRADFLOW_CACHE_DIR": str(tmp_path / "c")},
                          cwd=copy.parent)
        where, name = proc.stdout.strip().splitlines()[-2:]
        assert where.startswith(str(copy))
        keys[variant] = name
    from gradflow.codegen.build import module_path

    spec = gradflow.define_cell("cache-probe", gates="a", register=False, equations=EQUATIONS)
    assert keys["same"] == module_path(spec).name     # the key depends on the text only
    assert keys["edited"] != keys["same"]


# ---------------------------------------------------------------- concurrent processes
def test_processes_compiling_one_new_cell_into_an_empty_cache(tmp_path, expected):
    folder = tmp_path / "c"
    procs = [start_python(RUN_BACKWARD, env=env_for(folder)) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr
        out = json.loads(stdout.strip().splitlines()[-1])
        check_result(out, expected)
        assert "Warning" not in stderr
    assert len(modules(folder)) == 1


def test_processes_reading_a_cache_that_is_being_corrupted(tmp_path, expected):
    folder = tmp_path / "c"
    run_python(RUN, env=env_for(folder))
    corrupter = start_python(textwrap.dedent(f"""
        import os, time, random
        folder = {str(folder)!r}
        random.seed(0)
        end = time.time() + 30
        while time.time() < end:
            files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs
                     if f.startswith("gf_cache_probe")]
            for path in files:
                try:
                    with open(path, "r+b") as fh:
                        fh.truncate(random.randrange(0, 200))
                except OSError:
                    pass
            time.sleep(0.05)
    """))
    try:
        time.sleep(0.3)
        readers = [start_python(RUN_BACKWARD, env=env_for(folder, tmp_path)) for _ in range(3)]
        for p in readers:
            stdout, stderr = p.communicate(timeout=600)
            assert p.returncode == 0, stderr
            check_result(json.loads(stdout.strip().splitlines()[-1]), expected)
    finally:
        corrupter.kill()
        corrupter.communicate()
