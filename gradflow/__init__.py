"""gradflow: how gradients flow, vanish and explode through recurrent networks.

Each cell is written once as SymPy equations; SymPy derives its Jacobians, and the same
expressions are compiled into Numba kernels for the forward and backward passes.

>>> import gradflow
>>> cell = gradflow.Cell("lstm", input_size=8, hidden_size=16, seed=0)

Heavy dependencies (SymPy, Numba, matplotlib) load when first needed, so that
``import gradflow`` stays fast.
"""

from __future__ import annotations

import importlib

from .errors import (
    CodegenError,
    DTypeError,
    GradflowError,
    InvalidArgumentError,
    NonFiniteError,
    ShapeError,
    SpecError,
    UnknownCellError,
)

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access)
_LAZY = {
    "Cell": "gradflow.cell",
    "Trace": "gradflow.cell",
    "Grads": "gradflow.cell",
    "CellSpec": "gradflow.symbolic.spec",
    "define_cell": "gradflow.cells",
    "state_jacobians": "gradflow.flow",
    "gradient_flow": "gradflow.flow",
    "lyapunov_spectrum": "gradflow.spectra",
    "StateJacobians": "gradflow.flow",
    "GradientFlow": "gradflow.flow",
    "PathDecomposition": "gradflow.flow",
    "path_decomposition": "gradflow.flow",
    "memory_horizon": "gradflow.flow",
    "jacobian_singular_values": "gradflow.spectra",
    "SingularValues": "gradflow.spectra",
    "LyapunovSpectrum": "gradflow.spectra",
    "pascanu_bound": "gradflow.spectra",
}
_SUBMODULES = ("cells", "interop", "symbolic", "codegen", "config", "testing", "flow", "spectra",
               "tasks", "train", "report")

__all__ = [
    "Cell", "Trace", "Grads", "CellSpec", "define_cell", "cells", "interop",
    "state_jacobians", "gradient_flow", "lyapunov_spectrum",
    "StateJacobians", "GradientFlow", "PathDecomposition", "path_decomposition",
    "memory_horizon", "jacobian_singular_values", "SingularValues", "LyapunovSpectrum",
    "pascanu_bound",
    "GradflowError", "ShapeError", "DTypeError", "NonFiniteError", "UnknownCellError",
    "InvalidArgumentError", "SpecError", "CodegenError", "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = importlib.import_module(f"gradflow.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'gradflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
