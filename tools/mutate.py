"""Mutation testing: does the suite notice a small bug planted in the code?

Run by hand, not in CI (every mutant of the code generator recompiles kernels)::

    python tools/mutate.py                     # every group, 25 mutants each
    python tools/mutate.py --group flow -n 60  # one group, more mutants
    python tools/mutate.py --list              # the groups, their modules and tests

For each mutant the script copies the package to a temporary folder, applies one change
to one module (an operator swapped, a comparison loosened, a constant moved by one, a
condition negated, a statement dropped), and runs the group's tests there with
``pytest -x`` and a fresh kernel cache.  A mutant is *killed* when a test fails (or the
run times out), *survives* when every test passes.  The report lists the kill rate per
group and every survivor as a one-line diff, to be read: some survivors are equivalent
mutants (the change cannot alter any result), others are gaps in the tests.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: group -> (modules relative to the repository, pytest arguments).  A mutant of the code
#: generator changes every generated module, so its group runs on three cells in a fresh
#: kernel cache; the other groups reuse the kernels already compiled for the unchanged
#: generator (GRADFLOW_CACHE_DIR as set).
GROUPS = {
    "codegen": (
        ["gradflow/codegen/families.py", "gradflow/codegen/units.py", "gradflow/codegen/printer.py",
         "gradflow/codegen/templates/scan.py", "gradflow/codegen/templates/prelude_float64.py"],
        ["tests/test_cell.py", "tests/test_codegen.py", "tests/test_symbolic.py",
         "-k", "lstm or gru or mgu or stable or log_of or ulps or shared or saved"],
    ),
    "kernels": (
        ["gradflow/cell.py", "gradflow/_threads.py"],
        ["tests/test_cell.py", "tests/test_threads.py", "tests/test_safety.py"],
    ),
    "flow": (
        ["gradflow/flow/_kernels.py", "gradflow/flow/_steps.py", "gradflow/flow/lagmap.py",
         "gradflow/flow/paths.py", "gradflow/flow/spectra.py", "gradflow/codegen/templates/flow.py"],
        ["tests/test_flow.py", "tests/test_spectra.py"],
    ),
    "train": (
        ["gradflow/train/loop.py", "gradflow/train/losses.py", "gradflow/train/optim.py",
         "gradflow/train/probe.py", "gradflow/train/tasks.py"],
        ["tests/test_train.py", "tests/test_tasks.py"],
    ),
}
#: groups whose mutants change generated source, and so need a fresh kernel cache
FRESH_CACHE = {"codegen"}

_SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
             ast.FloorDiv: ast.Mult, ast.Pow: ast.Mult, ast.Mod: ast.FloorDiv}
_SWAP_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
             ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
             ast.In: ast.NotIn, ast.NotIn: ast.In}
_SWAP_BOOL = {ast.And: ast.Or, ast.Or: ast.And}
_SWAP_AUG = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


@dataclass
class Mutant:
    module: str
    line: int
    kind: str
    source: str       # the whole mutated module
    diff: str         # one line: before -> after


def _sites(tree: ast.AST):
    """(node, kind) of every place a mutation applies."""
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) in _SWAP_BIN:
            yield node, "operator"
        elif isinstance(node, ast.AugAssign) and type(node.op) in _SWAP_AUG:
            yield node, "augmented"
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _SWAP_CMP:
            yield node, "comparison"
        elif isinstance(node, ast.BoolOp) and type(node.op) in _SWAP_BOOL:
            yield node, "boolean"
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float) \
                and not isinstance(node.value, bool):
            yield node, "constant"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, "flag"
        elif isinstance(node, (ast.If, ast.While)):
            yield node, "condition"
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Expr)) \
                and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            yield node, "statement"


def _apply(node, kind):
    if kind == "operator":
        node.op = _SWAP_BIN[type(node.op)]()
    elif kind == "augmented":
        node.op = _SWAP_AUG[type(node.op)]()
    elif kind == "comparison":
        node.ops[0] = _SWAP_CMP[type(node.ops[0])]()
    elif kind == "boolean":
        node.op = _SWAP_BOOL[type(node.op)]()
    elif kind == "constant":
        v = node.value
        node.value = v + 1 if isinstance(v, int) else (v * 2 if v != 0 else 1.0)
    elif kind == "flag":
        node.value = not node.value
    elif kind == "condition":
        node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)


class _Dropper(ast.NodeTransformer):
    def __init__(self, target):
        self.target = target

    def generic_visit(self, node):
        if node is self.target:
            return ast.Pass()
        return super().generic_visit(node)


def mutants(module: str, rng: random.Random, count: int) -> list[Mutant]:
    """Up to `count` mutants of `module`, drawn at random among its mutation sites."""
    text = (ROOT / module).read_text()
    original = ast.unparse(ast.parse(text)).splitlines()
    lines = text.splitlines()
    order = list(range(len(list(_sites(ast.parse(text))))))
    rng.shuffle(order)
    out, seen = [], set()
    for index in order:
        if len(out) >= count:
            break
        tree = ast.parse(text)  # ast.walk's order is fixed: site `index` is the same node
        node, kind = list(_sites(tree))[index]
        line = node.lineno
        if kind == "statement":
            tree = _Dropper(node).visit(tree)
        else:
            _apply(node, kind)
        ast.fix_missing_locations(tree)
        try:
            mutated = ast.unparse(tree)
            compile(mutated, module, "exec")
        except (SyntaxError, ValueError):
            continue
        changed = [b for a, b in zip(original, mutated.splitlines()) if a != b]
        after = changed[0].strip() if changed else "(dropped)"
        if (line, kind, after) in seen:
            continue
        seen.add((line, kind, after))
        out.append(Mutant(module, line, kind, mutated,
                          f"{module}:{line} [{kind}] {lines[line - 1].strip()}  ->  {after}"))
    return out


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".git", "reports", "*.egg-info")
    for name in ("gradflow", "tests", "analysis", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def run_mutant(m: Mutant, tests: list[str], timeout: float, fresh: bool) -> tuple[str, float]:
    """('killed' | 'survived' | 'timeout', seconds)."""
    with tempfile.TemporaryDirectory(prefix="gradflow-mutant-") as tmp:
        work = Path(tmp) / "repo"
        work.mkdir()
        _copy_tree(work)
        (work / m.module).write_text(m.source)
        env = {**os.environ, "PYTHONPATH": str(work), "HYPOTHESIS_PROFILE": "dev"}
        if fresh:
            env["GRADFLOW_CACHE_DIR"] = str(Path(tmp) / "cache")
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                                   *tests], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout", time.perf_counter() - start
        return ("survived" if proc.returncode == 0 else "killed"), time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", choices=sorted(GROUPS), action="append",
                        help="groups to mutate (default: all)")
    parser.add_argument("-n", type=int, default=25, help="mutants per group (default 25)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--list", action="store_true", help="list the groups and stop")
    args = parser.parse_args(argv)
    if args.list:
        for name, (mods, tests) in GROUPS.items():
            print(f"{name}: {', '.join(mods)}\n    pytest {' '.join(tests)}")
        return 0
    rng = random.Random(args.seed)
    results = {}
    for group in args.group or list(GROUPS):
        modules, tests = GROUPS[group]
        pool = [m for mod in modules for m in mutants(mod, rng, args.n)]
        rng.shuffle(pool)
        chosen = pool[: args.n]
        rows = []
        for k, m in enumerate(chosen, 1):
            verdict, seconds = run_mutant(m, tests, args.timeout, group in FRESH_CACHE)
            rows.append({"mutant": m.diff, "verdict": verdict, "seconds": round(seconds, 1)})
            print(f"[{group} {k}/{len(chosen)}] {verdict:8s} {seconds:6.1f} s  {m.diff}", flush=True)
        killed = sum(r["verdict"] != "survived" for r in rows)
        results[group] = {"mutants": len(rows), "killed": killed,
                          "kill_rate": killed / max(len(rows), 1), "rows": rows}
    print("\ngroup      mutants  killed  kill rate")
    for group, r in results.items():
        print(f"{group:<10} {r['mutants']:>7} {r['killed']:>7}  {100 * r['kill_rate']:8.1f} %")
    survivors = [row["mutant"] for r in results.values() for row in r["rows"] if row["verdict"] == "survived"]
    if survivors:
        print("\nsurvivors (read each: equivalent, or a gap in the tests?):")
        for s in survivors:
            print(f"  {s}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
