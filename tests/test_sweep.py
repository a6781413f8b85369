"""gradflow.sweep: the same results serially, on joblib and on a real Dask cluster (two
worker processes on 127.0.0.1), a killed worker, an interrupted sweep resumed, a point that
raises, and bad input."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

import gradflow
from gradflow.errors import InvalidArgumentError, PointError
from gradflow.sweeps import point_seed, points_of

from . import sweep_points
from .subproc import start_python

distributed = pytest.importorskip("distributed")

GRID = {"cell": ["rnn", "lstm"], "H": [2, 3], "replicate": [0, 1]}


@pytest.fixture(scope="module")
def cluster():
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0")
    client = distributed.Client(cl)
    yield client
    client.close()
    cl.close()


def _comparable(result):
    return result.table.drop(columns=["seconds"]), result.arrays


def test_points_and_their_seeds():
    points = points_of(GRID)
    assert len(points) == 8 and points[1] == {"cell": "rnn", "H": 2, "replicate": 1}
    seeds = [point_seed(0, k, 8) for k in range(8)]
    assert len(set(seeds)) == 8
    spawned = np.random.SeedSequence(0).spawn(8)
    assert seeds[5] == int(spawned[5].generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    assert points_of([{"a": 1}, {"a": 2}]) == [{"a": 1}, {"a": 2}]


def test_the_same_grid_gives_identical_results_serially_on_joblib_and_on_dask(cluster):
    serial = gradflow.sweep(sweep_points.lag_point, GRID, executor="serial", progress=False)
    local = gradflow.sweep(sweep_points.lag_point, GRID, executor="joblib", n_jobs=2, progress=False)
    dask = gradflow.sweep(sweep_points.lag_point, GRID, executor=cluster, progress=False)
    assert serial.executor == "serial" and local.executor.startswith("joblib")
    assert dask.executor.startswith("dask tcp://127.0.0.1")
    for other in (local, dask):
        a, b = _comparable(serial), _comparable(other)
        assert a[0].equals(b[0])
        assert a[1].equals(b[1])
    t = serial.table
    assert list(t.columns[:5]) == ["point", "cell", "H", "replicate", "seed"]
    assert t["error"].isna().all() and (t["seconds"] > 0).all()
    curve = serial.arrays[(serial.arrays.point == 0) & (serial.arrays.name == "curve")]
    np.testing.assert_array_equal(curve["value"].to_numpy(), serial.results[0]["curve"])
    # by address, not only through a Client object, and with other batches per task
    for batch_size in (None, 1, 5):
        again = gradflow.sweep(sweep_points.lag_point, GRID, executor=cluster.scheduler.address,
                               batch_size=batch_size, progress=False)
        assert _comparable(again)[0].equals(_comparable(serial)[0])


def test_each_worker_compiles_a_cell_at_most_once(tmp_path):
    """Workers with an empty kernel cache: over many points, each compiles the cell once at
    most (the first to finish writes it; another may be compiling meanwhile), and a second
    sweep on the same workers compiles nothing."""
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0",
                                  env={"GRADFLOW_CACHE_DIR": str(tmp_path / "cache")})
    client = distributed.Client(cl)
    try:
        grid = {"cell": ["rnn-linear"], "replicate": list(range(12))}
        first = gradflow.sweep(sweep_points.compiling_point, grid, executor=client,
                               batch_size=1, progress=False)
        second = gradflow.sweep(sweep_points.compiling_point, grid, executor=client,
                                progress=False)
    finally:
        client.close()
        cl.close()
    assert first.table["error"].isna().all()
    per_worker = first.table.groupby("pid")["compiled"].max()
    assert 1 <= per_worker.sum() <= 2 and (per_worker <= 1).all()
    again = second.table.groupby("pid")["compiled"].max()
    assert (again == per_worker.reindex(again.index).fillna(0)).all()  # nothing more
    assert any((tmp_path / "cache").rglob("*.py"))


def test_a_killed_worker_still_completes_every_point_exactly_once(tmp_path):
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0")
    client = distributed.Client(cl)
    log = tmp_path / "calls.log"
    grid = [{"i": i, "sleep": 0.25, "log": str(log)} for i in range(24)]
    pids = list(client.run(os.getpid).values())

    killed = []

    def kill_one():
        deadline = time.time() + 30
        while time.time() < deadline:
            if log.exists() and len(log.read_text().split()) >= 4:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one)
    killer.start()
    try:
        res = gradflow.sweep(sweep_points.slow_point, grid, executor=client, progress=False,
                             out=tmp_path / "out")
    finally:
        killer.join()
        client.close()
        cl.close()
    assert sorted(res.table["point"]) == list(range(24))
    assert res.table["error"].isna().all()
    assert res.table["i2"].tolist() == [2 * i for i in range(24)]
    assert killed == [pids[0]]  # a worker died mid-sweep, and its points ran elsewhere
    assert set(res.table["pid"]) - {pids[0]}
    written = (tmp_path / "out" / "points.csv").read_text().splitlines()[1:]
    assert sorted(int(line.split(",")[0]) for line in written) == list(range(24))


def test_an_interrupted_sweep_resumes_with_the_missing_points_only(tmp_path):
    out, log = tmp_path / "out", tmp_path / "calls.log"
    proc = start_python(f"""
        import gradflow
        from tests import sweep_points
        grid = [{{"i": i, "sleep": 0.3, "log": {str(log)!r}}} for i in range(12)]
        gradflow.sweep(sweep_points.slow_point, grid, executor="serial", out={str(out)!r},
                       progress=False)
    """, cwd=os.getcwd())
    deadline = time.time() + 60
    while time.time() < deadline and not (log.exists() and len(log.read_text().split()) >= 4):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    before = log.read_text().split()
    stored = {int(line.split(",")[0]) for line in (out / "points.csv").read_text().splitlines()[1:]
              if line.count(",") >= 4}
    assert 3 <= len(stored) < 12
    grid = [{"i": i, "sleep": 0.3, "log": str(log)} for i in range(12)]
    with pytest.raises(InvalidArgumentError, match="resume=True"):
        gradflow.sweep(sweep_points.slow_point, grid, executor="serial", out=out, progress=False)
    res = gradflow.sweep(sweep_points.slow_point, grid, executor="serial", out=out, resume=True,
                         progress=False)
    ran_again = sorted(int(i) for i in log.read_text().split()[len(before):])
    assert res.resumed == len(stored)
    assert ran_again == sorted(set(range(12)) - stored)  # only the missing points ran
    assert sorted(res.table["point"]) == list(range(12)) and res.table["error"].isna().all()
    assert res.table["i2"].tolist() == [2 * i for i in range(12)]
    other = [{"i": i, "sleep": 0.0, "log": str(log)} for i in range(12)]
    with pytest.raises(InvalidArgumentError, match="another grid .*sha256"):
        gradflow.sweep(sweep_points.slow_point, other, executor="serial", out=out, resume=True,
                       progress=False)


def test_a_point_that_raises_is_recorded_and_the_rest_finish():
    res = gradflow.sweep(sweep_points.failing_point, {"i": list(range(6))}, executor="joblib",
                         n_jobs=2, progress=False)
    assert res.table.loc[3, "error"] == "ValueError: point three is broken"
    assert res.table.drop(index=3)["error"].isna().all()
    assert len(res.errors) == 1 and res.results[3] is None and res.results[5] == {"i": 5}
    with pytest.raises(PointError, match="point 3 .*point three is broken") as info:
        gradflow.sweep(sweep_points.failing_point, {"i": list(range(6))}, executor="joblib",
                       n_jobs=2, progress=False, stop_on_error=True)
    assert info.value.point == {"i": 3} and info.value.index == 3
    assert 'raise ValueError("point three is broken")' in info.value.remote_traceback


def test_results_that_are_not_dicts_stay_out_of_the_tables():
    grid = {"i": [0, 1, 2]}
    res = gradflow.sweep(sweep_points.tuple_point, grid, executor="serial", progress=False)
    assert res.results[2] == (2, [0.0, 1.0]) and "value" not in res.table.columns
    assert res.arrays.empty
    res = gradflow.sweep(sweep_points.number_point, grid, executor="serial", progress=False)
    assert res.table["value"].tolist() == [0.0, 0.5, 1.0]
    res = gradflow.sweep(sweep_points.ragged_point, grid, executor="serial", progress=False)
    assert res.table["ragged"].tolist() == ["[[0], [1, 2]]"] * 3 and res.arrays.empty


def test_bad_input_is_refused_clearly(tmp_path):
    with pytest.raises(InvalidArgumentError, match="empty"):
        gradflow.sweep(sweep_points.lag_point, {}, progress=False)
    with pytest.raises(InvalidArgumentError, match="no values"):
        gradflow.sweep(sweep_points.lag_point, {"cell": []}, progress=False)
    with pytest.raises(InvalidArgumentError, match="'seed'"):
        gradflow.sweep(sweep_points.lag_point, {"seed": [1, 2]}, progress=False)
    lock = threading.Lock()

    def holds_a_lock(point):
        with lock:
            return {}

    with pytest.raises(InvalidArgumentError, match="picklable"):
        gradflow.sweep(holds_a_lock, {"a": [1, 2]}, executor="joblib", progress=False)
    start = time.time()
    with pytest.raises(InvalidArgumentError, match="cannot reach the Dask scheduler"):
        gradflow.sweep(sweep_points.lag_point, {"a": [1]}, executor="tcp://127.0.0.1:9",
                       progress=False)
    assert time.time() - start < 15
    (tmp_path / "stuff.txt").write_text("")
    with pytest.raises(InvalidArgumentError, match="no grid.json"):
        gradflow.sweep(sweep_points.failing_point, {"i": [0]}, executor="serial", out=tmp_path,
                       progress=False)


def test_the_report_is_the_same_on_dask_as_on_one_process(cluster, tmp_path):
    pytest.importorskip("matplotlib")
    from gradflow.report.runner import run_report

    only = ["phase", "forget_bias"]
    here = run_report(tmp_path / "here", only=only, quick=True, n_jobs=1, progress=False)
    there = run_report(tmp_path / "there", only=only, quick=True,
                       scheduler=cluster.scheduler.address, progress=False)
    assert here.ok and there.ok, (here.failed, there.failed)
    files = sorted(p.relative_to(here.out) for p in here.out.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(there.out) for p in there.out.rglob("*") if p.is_file())
    assert any(str(f).startswith("data/phase-") for f in files)
    for f in files:
        assert (here.out / f).read_bytes() == (there.out / f).read_bytes(), f


def test_an_unreachable_scheduler_stops_the_report_before_any_study(tmp_path):
    from gradflow.cli import main

    out = tmp_path / "report"
    start = time.time()
    code = main(["report", "--quick", "--only", "phase", "--out", str(out), "--no-progress",
                 "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2 and time.time() - start < 15
    assert not out.exists()
    with pytest.raises(SystemExit) as info:
        main(["report", "--quick", "--full"])
    assert info.value.code == 2
