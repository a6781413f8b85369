"""Resolve a docstring's short references to gradflow's objects where they are documented.

A docstring names objects as its own module sees them: ``:class:`SpecError``` in
``gradflow.symbolic.parse``, which imports ``SpecError`` from ``gradflow.errors``.  The API
reference documents each object once, under one name (``gradflow.errors.SpecError``).
When Sphinx finds no object of the name written, this extension imports the name from the
module of the docstring (or as written) and, if it is a class, function or module that the
reference documents under another name, links there.
"""

from __future__ import annotations

import importlib
import inspect


def _lookup(path: str):
    """The object at dotted `path`, or None."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for part in parts[i:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        return obj
    return None


#: id(object) -> (documented name, object type), built once per write phase
_DOCUMENTED: dict = {}


def _documented(env) -> dict:
    """id(object) -> (documented name, object type) for classes, functions and modules."""
    cache = _DOCUMENTED
    if not cache:
        for name, entry in env.domains["py"].objects.items():
            if entry.objtype not in ("class", "exception", "function", "method", "module"):
                continue
            obj = _lookup(name)
            if obj is not None and (inspect.isclass(obj) or inspect.isroutine(obj)
                                    or inspect.ismodule(obj)):
                cache.setdefault(id(obj), (name, entry.objtype))
    return cache


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates = [f"{module}.{cls}.{target}" if cls else None, f"{module}.{target}", target]
    for path in filter(None, candidates):
        if not path.startswith("gradflow"):
            continue
        obj = _lookup(path)
        if obj is None:
            continue
        found = _documented(env).get(id(obj))
        if found is None:
            return None
        name, objtype = found
        role = {"exception": "exc", "function": "func", "method": "meth", "module": "mod"}.get(
            objtype, objtype)
        return env.domains["py"].resolve_xref(env, node["refdoc"], app.builder, role, name,
                                             node, contnode)
    return None


def _forget(app, env, *args):
    _DOCUMENTED.clear()


def setup(app):
    app.connect("missing-reference", _missing_reference)
    app.connect("env-updated", _forget)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
