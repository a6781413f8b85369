"""The package's layout as DESIGN.md draws it: an import graph without cycles whose
arrows run down the layers, and no module reading another module's private names.

The graph is read from the source (every import, at module level or inside a function;
``if TYPE_CHECKING:`` blocks excepted), so a cycle hidden behind a function-level import
counts as a cycle.  The studies in ``analysis/`` are read as ``gradflow.studies``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"gradflow": ROOT / "gradflow", "gradflow.studies": ROOT / "analysis"}

#: layers, lowest first: a module may import from its own layer or below
LAYERS = [
    ("gradflow.errors", "gradflow.config", "gradflow._validate", "gradflow._threads",
     "gradflow._blas",
     "gradflow._processes", "gradflow._lazy", "gradflow._version", "gradflow._display",
     "gradflow.plot"),
    ("gradflow.symbolic",),
    ("gradflow.codegen",),
    ("gradflow.cells", "gradflow.cell", "gradflow.network", "gradflow._cells_cli"),
    ("gradflow.flow", "gradflow.train", "gradflow.interop", "gradflow.sweeps"),
    ("gradflow.testing",),
    ("gradflow.report",),
    ("gradflow.analyzer",),
    # the language-model study runs gradflow.analyze; a reproduction writes with the report
    ("gradflow.studies", "gradflow.reproduce"),
    ("gradflow.cli", "gradflow.__main__", "gradflow", "gradflow.spectra", "gradflow.tasks",
     "gradflow._info_cli"),
]

#: private names of other libraries used on purpose, with where and why
FOREIGN_PRIVATE = {
    "_print": "SymPy's printer protocol (symbolic/functions.py _latex methods)",
    "_eval_evalf": "SymPy's evalf protocol (symbolic/functions.py)",
    "_exit": "os._exit, in a worker whose parent is gone (_processes.py)",
    "_locator_classes": "Numba's cache locators: the kernel cache's own locator (codegen/cache.py)",
    "_cache": "a Numba dispatcher's cache object, guarded (codegen/cache.py)",
    "_CacheLocator": "Numba's base class of cache locators (codegen/cache.py)",
}


def modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            if "templates" in path.parts or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _resolve(current: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = current.split(".")
    if not _is_package(current):
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _type_checking(node) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _imports(tree):
    """Every import node, skipping ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking(node):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _owner(name: str) -> str | None:
    """The known module `name` is, or lies in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def edges() -> dict[str, set]:
    graph = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(name, node.module, node.level)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                           for a in node.names]
            for target in targets:
                owner = _owner(target)
                if owner and owner != name:
                    graph[name].add(owner)
    return graph


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _layer(module: str) -> int:
    best, depth = None, -1
    for k, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = k, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer of LAYERS")
    return best


def test_the_import_graph_has_no_cycles():
    assert _cycles(edges()) == []


def test_a_cycle_would_be_found():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_imports_run_down_the_layers():
    wrong = [f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
             for a, targets in edges().items() for b in targets
             if not a.startswith(b + ".") and _layer(b) > _layer(a)]
    assert wrong == []


def _private_uses(name: str, path: Path):
    """(line, text) of every use of another module's private name in the module."""
    tree = ast.parse(path.read_text(), str(path))
    local = {n.name for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    # the module's own private names: its functions and methods, the attributes its code
    # assigns (self._x = ...), its dataclass fields and slots
    own = set(local)
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store):
            own.add(n.attr)
        elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name):
            own.add(n.target.id)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("_"):
            own.add(n.value)  # __slots__ entries, __dict__.update keys
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(name, node.module, node.level)
            if not base.startswith("gradflow"):
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and f"{base}.{alias.name}" not in MODULES:
                    found.append((node.lineno, f"from {base} import {alias.name}"))
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if not attr.startswith("_") or attr.startswith("__"):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls", *local):
                continue
            if attr in FOREIGN_PRIVATE or attr in own:
                continue
            found.append((node.lineno, f".{attr}"))
    return found


def test_no_module_reads_another_modules_private_names():
    found = [f"{MODULES[name].relative_to(ROOT)}:{line}: {text}"
             for name in MODULES for line, text in _private_uses(name, MODULES[name])]
    assert found == []


@pytest.mark.parametrize("source, expected", [
    ("from .build import _stem\n", ["from gradflow.codegen.build import _stem"]),
    ("def f(cell):\n    return cell._prm()\n", ["._prm"]),
    ("from .. import _validate as check\nclass A:\n    def f(self):\n        return self._x\n", []),
])
def test_the_private_name_rule_finds_what_it_should(tmp_path, source, expected):
    path = tmp_path / "m.py"
    path.write_text(source)
    MODULES["gradflow.codegen.fake"] = path
    try:
        assert [t for _, t in _private_uses("gradflow.codegen.fake", path)] == expected
    finally:
        del MODULES["gradflow.codegen.fake"]
