"""Code generation: a cell's SymPy expressions become a cached, Numba-compiled module.

:func:`load` is the one entry point: it returns the compiled kernel module of a
:class:`~gradflow.symbolic.CellSpec`, generating its source on first use.
"""

from .build import load as load
from .build import module_path as module_path
from .cache import cache_dir as cache_dir

__all__ = ["load", "module_path", "cache_dir"]
