"""Names a package offers without importing the modules that define them until first use.

``import gradflow`` stays fast: SymPy, Numba and matplotlib load when a function that needs
them is first looked up.
"""

from __future__ import annotations

import importlib

__all__ = ["attach"]


def attach(package: str, names: dict[str, str], submodules=()):
    """``(__getattr__, __dir__)`` for `package`: ``names`` maps a public name to the module
    that defines it; `submodules` are loaded as attributes on first access."""

    def __getattr__(name):
        module = importlib.import_module(package)
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__():
        module = importlib.import_module(package)
        return sorted(set(vars(module)) | set(getattr(module, "__all__", ())) | set(submodules))

    return __getattr__, __dir__
