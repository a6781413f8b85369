"""``gradflow.sweep`` (defined here, in ``gradflow.sweeps``): a grid of independent runs,
serially, on local processes (joblib) or on a Dask cluster, with results that do not depend
on where they ran.

>>> from gradflow import sweep
>>> def square(point):
...     return {"y": point["x"] ** 2}
>>> res = sweep(square, {"x": [1, 2, 3]}, executor="serial", progress=False)
>>> res.table[["x", "y"]].to_numpy().tolist()
[[1, 1], [2, 4], [3, 9]]

* ``grid``: named value lists (their Cartesian product, the last name varying fastest) or
  an explicit list of points (dicts).
* ``fn(point) -> dict``: a module-level function (it travels to worker processes).  Each
  point also carries ``point["seed"]``, an integer drawn from a
  :class:`numpy.random.SeedSequence` spawned by the point's index: the same grid gives the
  same seeds, and so the same results, serially, on joblib and on Dask, with any number of
  workers and in any order of completion.
* Results come back as a tidy :class:`pandas.DataFrame`, one row per point (its
  parameters, its scalar results, ``error`` and ``seconds``), and the array results in long
  form in a second table (``point, name, index, value``).  A result that is not a dict (a
  tuple, an object) is kept as it is in ``results`` and left out of the tables, unless it is
  a single number (the column ``value``).
* With ``out=DIR`` every finished point is appended to ``DIR/points.csv`` (and its arrays to
  ``DIR/arrays.csv``); ``resume=True`` reads them back and runs only the missing points.  A
  folder written for another grid is refused, naming the difference.
* A point whose ``fn`` raises is recorded (``error``: the exception) and the sweep goes on,
  unless ``stop_on_error=True``: then :class:`~gradflow.errors.PointError` is raised, with
  the point and the traceback from where it ran.

Executors: ``"serial"``; ``"joblib"`` (the default, also ``None``: ``n_jobs`` local worker
processes, which end with this process); a Dask ``distributed.Client``, or the address of a
Dask scheduler (``"tcp://host:8786"``).  On Dask, the bar counts finished points and the
scheduler's dashboard (its address is logged) shows the tasks themselves.  Workers load compiled kernels from the shared kernel cache
(``GRADFLOW_CACHE_DIR``): a cell is compiled at most once per cache folder, not once per
point.  See the README for running on a cluster.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np

from . import _validate as check
from ._display import Displayed, pandas
from .errors import InvalidArgumentError, MissingDependencyError, PointError

__all__ = ["sweep", "points_of", "SweepResult", "point_seed", "point_seeds", "EXECUTORS",
           "finished_points"]

EXECUTORS = ("serial", "joblib")
#: seconds to wait for a Dask scheduler given by address
CONNECT_TIMEOUT = 5.0

log = logging.getLogger("gradflow")


def points_of(grid) -> list[dict]:
    """The points of `grid`: the Cartesian product of named value lists (a dict), or an
    explicit list of dicts.

    Raises
    ------
    InvalidArgumentError
        For an empty grid, a value list that is not a list, or points that are not dicts
        with the same names.
    """
    if isinstance(grid, dict):
        if not grid:
            raise InvalidArgumentError("`grid` is empty: it names no parameter")
        names = list(grid)
        for name in names:
            if not isinstance(name, str):
                raise InvalidArgumentError(f"`grid` names must be strings; got {name!r}")
            values = grid[name]
            if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
                raise InvalidArgumentError(
                    f"`grid[{name!r}]` must be a list of values; got {values!r:.60}")
        lists = [list(grid[n]) for n in names]
        empty = [n for n, v in zip(names, lists) if not v]
        if empty:
            raise InvalidArgumentError(f"`grid` has no values for {empty}: the grid is empty")
        points = [dict(zip(names, combo)) for combo in itertools.product(*lists)]
    elif isinstance(grid, (list, tuple)):
        points = list(grid)
        if not points:
            raise InvalidArgumentError("`grid` is an empty list of points")
        if not all(isinstance(p, dict) for p in points):
            raise InvalidArgumentError("`grid` as a list must hold dicts (one per point)")
        keys = set(points[0])
        odd = [k for k, p in enumerate(points) if set(p) != keys]
        if odd:
            raise InvalidArgumentError(
                f"`grid` point {odd[0]} has the names {sorted(points[odd[0]])}; point 0 has "
                f"{sorted(keys)}: every point must name the same parameters")
    else:
        raise InvalidArgumentError(
            f"`grid` must be a dict of value lists or a list of points; got {type(grid).__name__}")
    if "seed" in points[0]:
        raise InvalidArgumentError(
            "`grid` has a parameter named 'seed': the sweep gives each point its seed "
            "(point['seed']); name yours otherwise (e.g. 'replicate')")
    return points


def point_seeds(seed: int, count: int) -> list[int]:
    """The seeds of `count` points: one integer (< 2**63) from each child of
    ``SeedSequence(seed).spawn(count)``, in the points' order."""
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
            for child in np.random.SeedSequence(seed).spawn(count)]


def point_seed(seed: int, index: int, count: int) -> int:
    """The seed of point `index` of `count` (see :func:`point_seeds`)."""
    return point_seeds(seed, count)[index]


def _fingerprint(points: list[dict], seed: int) -> dict:
    """What identifies a grid: its parameter names, its size, a hash of its points, the seed."""
    text = json.dumps([{k: _jsonable(v) for k, v in p.items()} for p in points], sort_keys=True)
    return {"names": sorted(points[0]), "points": len(points), "seed": seed,
            "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return repr(value)


def _brief(point: dict) -> str:
    """A point in at most a line."""
    text = repr({k: _jsonable(v) for k, v in point.items()})
    return text if len(text) <= 120 else text[:117] + "..."


def _call(fn, index: int, point: dict) -> tuple:
    """Run one point where it is sent:
    (index, result or None, error or None, seconds, traceback text or None)."""
    start = time.perf_counter()
    try:
        result = fn(point)
    except Exception as exc:  # recorded with the point, not raised: the sweep goes on
        return (index, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start,
                traceback.format_exc())
    return index, result, None, time.perf_counter() - start, None


@dataclass(eq=False, repr=False)
class SweepResult(Displayed):
    """What :func:`sweep` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per point, in the grid's order: ``point`` (its index), its parameters,
        ``seed``, the scalar results, ``error`` (None, or the exception as text) and
        ``seconds``.
    arrays : pandas.DataFrame
        The array results in long form: ``point, name, index, value`` (``index`` a tuple
        as text, ``"(2, 0)"``).
    results : list
        What ``fn`` returned for each point, in the grid's order (None where it raised).
    executor : str
        Where the points ran (``"serial"``, ``"joblib (2 workers)"``, ``"dask <address>"``).
    resumed : int
        Points read back from ``out`` instead of run.
    """

    table: object
    arrays: object
    results: list
    executor: str
    resumed: int = 0
    _shown = ("executor", "resumed")

    @property
    def errors(self):
        """The rows of the points that raised."""
        return self.table[self.table["error"].notna()]

    def _frame_columns(self) -> dict:
        return {c: self.table[c].to_numpy() for c in self.table.columns}

    def __repr__(self) -> str:
        n = len(self.table)
        bad = int(self.table["error"].notna().sum())
        return (f"SweepResult(points={n}, errors={bad}, columns={list(self.table.columns)}, "
                f"array rows={len(self.arrays)}, executor={self.executor!r}, resumed={self.resumed})")


# ---------------------------------------------------------------------- the results folder
class _Store:
    """``out/``: ``grid.json``, and ``points.csv`` / ``arrays.csv`` appended a point at a time."""

    def __init__(self, out, points, seed, resume):
        self.folder = check.path("out", out)
        self.fingerprint = _fingerprint(points, seed)
        self.done: dict[int, tuple] = {}
        grid_file = self.folder / "grid.json"
        if self.folder.exists() and not self.folder.is_dir():
            raise InvalidArgumentError(f"`out` {str(self.folder)!r} is not a folder")
        if grid_file.exists():
            try:
                old = json.loads(grid_file.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidArgumentError(f"`out`: cannot read {grid_file}: {exc}") from None
            if old != self.fingerprint:
                diff = [k for k in self.fingerprint if old.get(k) != self.fingerprint[k]]
                raise InvalidArgumentError(
                    f"`out` {str(self.folder)!r} holds the results of another grid (it differs "
                    f"in {', '.join(diff)}: {', '.join(f'{k} {old.get(k)!r} here, {self.fingerprint[k]!r} now' for k in diff if k != 'sha256') or 'its points'}); "
                    "give another folder")
            if not resume:
                raise InvalidArgumentError(
                    f"`out` {str(self.folder)!r} already holds results of this grid; pass "
                    "resume=True to run only the missing points, or give another folder")
            self.done = self._read()
        elif self.folder.exists() and any(self.folder.iterdir()):
            raise InvalidArgumentError(
                f"`out` {str(self.folder)!r} holds files but no grid.json; give a new folder")
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = grid_file.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.fingerprint, indent=1))
            os.replace(tmp, grid_file)

    def _read(self) -> dict:
        """The points already there: {index: (finished point, [(name, index, value) ...])}."""
        done = {p["point"]: (p, []) for p in finished_points(self.folder)}
        arrays = self.folder / "arrays.csv"
        if arrays.exists():
            with arrays.open(newline="") as fh:
                for row in csv.DictReader(fh):
                    try:
                        index = int(row["point"])
                        value = float(row["value"])
                    except (KeyError, TypeError, ValueError):
                        continue
                    if index in done:
                        done[index][1].append((row["name"], row["index"], value))
        return done

    def append(self, index, point, result, error, seconds):
        scalars, arrays = _split(result)
        row = {"point": index, "point_json": json.dumps({k: _jsonable(v) for k, v in point.items()}),
               "result": json.dumps(scalars), "error": error or "", "seconds": f"{seconds:.6f}"}
        self._write("arrays.csv", ["point", "name", "index", "value"],
                    [{"point": index, "name": n, "index": i, "value": repr(v)} for n, i, v in arrays])
        self._write("points.csv", list(row), [row])

    def _write(self, name, fields, rows):
        path = self.folder / name
        new = not path.exists()
        with path.open("a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            if new:
                w.writeheader()
            for r in rows:
                w.writerow(r)
            fh.flush()
            os.fsync(fh.fileno())


def finished_points(out) -> list[dict]:
    """The points a sweep with ``out=DIR`` finished, read back from ``DIR/points.csv`` in
    the order they finished: ``{"point": index, "params": the point's parameters,
    "result": its scalar results, "error": str or None, "seconds": float}``.  A line cut
    short by a kill is not a finished point; without ``points.csv``, an empty list."""
    path = check.path("out", out) / "points.csv"
    if not path.exists():
        return []
    finished = []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            try:
                point = {"point": int(row["point"]), "params": json.loads(row["point_json"]),
                         "result": json.loads(row["result"]), "error": row["error"] or None,
                         "seconds": float(row["seconds"])}
            except (KeyError, TypeError, ValueError):
                continue
            if isinstance(point["params"], dict) and isinstance(point["result"], dict):
                finished.append(point)
    return finished


def _split(result) -> tuple[dict, list]:
    """A point's result as (scalars {name: value}, arrays [(name, index text, value)])."""
    if result is None:
        return {}, []
    if not isinstance(result, dict):
        number = isinstance(result, (int, float, np.integer, np.floating))
        return ({"value": _jsonable(result)} if number else {}), []
    scalars, arrays = {}, []
    for name, value in result.items():
        arr = None
        if not isinstance(value, (str, bytes)):
            try:
                arr = np.asarray(value)
            except ValueError:  # ragged: not an array
                arr = None
        if arr is not None and arr.dtype.kind in "biuf" and arr.ndim > 0:
            for idx, v in np.ndenumerate(arr):
                arrays.append((str(name), str(tuple(int(i) for i in idx)), float(v)))
        elif arr is not None and arr.dtype.kind in "biuf":
            scalars[str(name)] = arr.item()
        else:
            scalars[str(name)] = _jsonable(value)
    return scalars, arrays


# ---------------------------------------------------------------------- executors
def dask_client(executor):
    """A Dask client for `executor` (a Client, or a scheduler's address, reached within
    :data:`CONNECT_TIMEOUT` seconds), and whether the caller owns it (must close it)."""
    try:
        import distributed
    except ImportError:
        raise MissingDependencyError(
            'running on Dask needs dask.distributed: pip install "gradflow-rnn[dask]"') from None
    if isinstance(executor, distributed.Client):
        return executor, False
    try:
        client = distributed.Client(executor, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InvalidArgumentError(
            f"`executor`: cannot reach the Dask scheduler at {executor!r} within "
            f"{CONNECT_TIMEOUT:g} s ({type(exc).__name__}: {exc})") from None
    return client, True


def _call_batch(fn, batch: list) -> list:
    """Run a batch of (index, point) pairs in one task (see :func:`_call`)."""
    return [_call(fn, index, point) for index, point in batch]


def _run_points(fn, todo, executor, n_jobs, batch_size, on_result):
    """Run (index, point) pairs; call on_result(index, result, error, seconds, tb) as each
    finishes.  Returns a description of where they ran."""
    if executor == "serial" or not todo:
        for index, point in todo:
            on_result(*_call(fn, index, point))
        return "serial"
    if executor == "joblib":
        from joblib import delayed

        from ._processes import parallel

        workers = min(n_jobs, len(todo))
        if workers <= 1:
            for index, point in todo:
                on_result(*_call(fn, index, point))
            return "serial"
        runner = parallel(workers)
        runner.return_as = "generator_unordered"
        for out in runner(delayed(_call)(fn, i, p) for i, p in todo):
            on_result(*out)
        return f"joblib ({workers} workers)"
    client, own = dask_client(executor)
    try:
        from distributed import as_completed

        if client.dashboard_link:
            log.info("gradflow: %d points on Dask %s; tasks at %s", len(todo),
                     client.scheduler.address, client.dashboard_link)

        if batch_size is None:  # about 8 tasks per worker: few enough to hide Dask's
            # per-task cost (milliseconds), enough to balance the load
            workers = max(1, len(client.scheduler_info().get("workers", {})))
            batch_size = max(1, -(-len(todo) // (8 * workers)))
        batches = [todo[k:k + batch_size] for k in range(0, len(todo), batch_size)]
        tag = os.urandom(4).hex()
        futures = [client.submit(_call_batch, fn, b, pure=False,
                                 key=f"gradflow-points-{b[0][0]}-{tag}") for b in batches]
        seen = set()
        for fut in as_completed(futures):
            for out in fut.result():
                if out[0] not in seen:  # a task rerun after a lost worker reports once
                    seen.add(out[0])
                    on_result(*out)
        return f"dask {client.scheduler.address}"
    finally:
        if own:
            client.close()


def sweep(fn, grid, *, executor=None, n_jobs: int | None = None, seed: int = 0, out=None,
          resume: bool = False, progress: bool = True, stop_on_error: bool = False,
          tables: bool = True, batch_size: int | None = None,
          desc: str = "sweep") -> SweepResult:
    """Run ``fn(point)`` for every point of `grid`; see the module documentation.

    Parameters
    ----------
    fn : callable
        A module-level function of one point (a dict, with ``"seed"`` added) returning a
        dict of results (numbers, arrays, strings) or any value (stored as ``value``).
    grid : dict of lists, or list of dicts
    executor : {None, "serial", "joblib"}, distributed.Client, or str
        Where to run (None: joblib); a string other than the two names is a Dask
        scheduler's address.
    n_jobs : int, optional
        joblib's worker processes (default: the number of cores).
    seed : int
        The root of every point's seed.
    out : str or Path, optional
        A folder to append results to as points finish (see `resume`).
    resume : bool
        Read the points already in `out` and run only the others.
    progress : bool
        A progress bar on stderr.
    stop_on_error : bool
        Raise :class:`~gradflow.errors.PointError` at the first point that raises, instead
        of recording its error and going on.
    tables : bool
        Tabulate the results (``table``'s result columns and ``arrays``).  False keeps them
        in ``results`` only, for results too large to tabulate (not with `out`, which
        stores the tables).
    batch_size : int, optional
        Points per Dask task (default: about 8 tasks per worker, so that Dask's cost per
        task, milliseconds, does not dominate small points).  joblib batches on its own.
    desc : str
        The progress bar's label.

    Returns
    -------
    SweepResult

    Raises
    ------
    InvalidArgumentError
        For an empty or malformed grid, an `fn` that cannot travel to workers, an
        unreachable scheduler, or an `out` folder holding another grid's results.
    MissingDependencyError
        Without pandas (the ``frames`` extra), or dask.distributed for a Dask executor.
    PointError
        With ``stop_on_error=True``, for the first point that raises.
    """
    pd = pandas()
    points = points_of(grid)
    executor = "joblib" if executor is None else executor
    if not callable(fn):
        raise InvalidArgumentError(f"`fn` must be callable; got {type(fn).__name__}")
    seed = check.seed("seed", seed) or 0
    progress, resume = check.flag("progress", progress), check.flag("resume", resume)
    stop_on_error = check.flag("stop_on_error", stop_on_error)
    tables = check.flag("tables", tables)
    if batch_size is not None:
        batch_size = check.positive_int("batch_size", batch_size)
    if not tables and out is not None:
        raise InvalidArgumentError("`out` stores the results' tables: it needs tables=True")
    if isinstance(executor, str) and executor in EXECUTORS:
        pass
    elif not isinstance(executor, str) and type(executor).__name__ != "Client":
        raise InvalidArgumentError(
            f"`executor` must be 'serial', 'joblib', a distributed.Client or a scheduler "
            f"address; got {executor!r:.60}")
    n_jobs = (os.cpu_count() or 1) if n_jobs is None else check.positive_int("n_jobs", n_jobs)
    count = len(points)
    full = [{**p, "seed": s} for p, s in zip(points, point_seeds(seed, count))]
    if executor != "serial":
        try:
            import cloudpickle

            cloudpickle.dumps((fn, full[0]))
        except Exception as exc:
            raise InvalidArgumentError(
                f"`fn` and the points must be picklable to run on worker processes "
                f"({type(exc).__name__}: {exc}); define fn at module level") from None
    store = _Store(out, points, seed, resume) if out is not None else None
    done = store.done if store else {}
    results: list = [None] * count
    rows: list = [None] * count
    arrays: list = []
    for index, (point, arr) in done.items():
        if 0 <= index < count:
            scalars = point["result"]
            rows[index] = (scalars, point["error"], point["seconds"])
            results[index] = scalars or None
            arrays += [(index, n, i, v) for n, i, v in arr]
    todo = [(k, p) for k, p in enumerate(full) if rows[k] is None]
    from tqdm.auto import tqdm

    bar = tqdm(total=count, initial=count - len(todo), desc=desc, unit="point",
               disable=not progress, file=sys.stderr, dynamic_ncols=True, leave=False)

    def on_result(index, result, error, seconds, tb):
        if error is not None and stop_on_error:
            raise PointError(f"point {index} {_brief(points[index])} raised {error}",
                             point=points[index], index=index, remote_traceback=tb or "")
        scalars, arr = _split(result) if tables else ({}, [])
        rows[index] = (scalars, error, seconds)
        results[index] = result
        arrays.extend((index, n, i, v) for n, i, v in arr)
        if store is not None:
            store.append(index, points[index], result, error, seconds)
        bar.update()

    try:
        where = _run_points(fn, todo, executor, n_jobs, batch_size, on_result)
    finally:
        bar.close()
    names = list(points[0])
    records = []
    for k, (scalars, error, seconds) in enumerate(rows):
        records.append({"point": k, **{n: full[k][n] for n in names}, "seed": full[k]["seed"],
                        **scalars, "error": error, "seconds": seconds})
    table = pd.DataFrame.from_records(records)
    arrays.sort(key=lambda a: a[0])
    array_table = pd.DataFrame(arrays, columns=["point", "name", "index", "value"])
    return SweepResult(table=table, arrays=array_table, results=results, executor=where,
                       resumed=len(done))

