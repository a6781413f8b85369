"""gradflow: how gradients flow, vanish and explode through recurrent networks.

Each cell is written once as SymPy equations; SymPy derives its Jacobians, and the same
expressions are compiled into Numba kernels for the forward and backward passes.

>>> import gradflow
>>> cell = gradflow.Cell("lstm", input_size=8, hidden_size=16, seed=0)

Heavy dependencies (SymPy, Numba, matplotlib) load when first needed, so that
``import gradflow`` stays fast.
"""

from __future__ import annotations

from ._lazy import attach
from ._version import __version__
from .errors import (
    CacheWarning,
    CodegenError,
    DTypeError,
    GradflowError,
    GradflowWarning,
    InvalidArgumentError,
    MissingDependencyError,
    NonFiniteError,
    PointError,
    ShapeError,
    SpecError,
    UnknownCellError,
)

# public name -> module that defines it (loaded on first access)
_FLOW = ("state_jacobians", "gradient_flow", "StateJacobians", "GradientFlow", "PathDecomposition",
         "path_decomposition", "memory_horizon", "jacobian_singular_values", "SingularValues",
         "lyapunov_spectrum", "LyapunovSpectrum", "pascanu_bound", "PascanuBound", "network_flow",
         "NetworkFlow", "network_paths", "NetworkPaths", "network_lyapunov", "NetworkLyapunov")
_NAMES = {
    "Cell": "gradflow.cell",
    "Trace": "gradflow.cell",
    "CheckpointedTrace": "gradflow.cell",
    "Grads": "gradflow.cell",
    "CellSpec": "gradflow.symbolic.spec",
    "define_cell": "gradflow.cells",
    "Network": "gradflow.network",
    "NetworkTrace": "gradflow.network",
    "NetworkGrads": "gradflow.network",
    "sweep": "gradflow.sweeps",
    "SweepResult": "gradflow.sweeps",
    "analyze": "gradflow.analyzer",
    "Analysis": "gradflow.analyzer",
    **{name: "gradflow.flow" for name in _FLOW},
}
_SUBMODULES = ("cells", "interop", "symbolic", "codegen", "config", "testing", "flow", "spectra",
               "tasks", "train", "report", "plot", "analyzer", "sweeps")

__all__ = [
    "Cell", "Trace", "CheckpointedTrace", "Grads", "CellSpec", "define_cell", "Network", "NetworkTrace", "NetworkGrads",
    "sweep", "SweepResult", "analyze", "Analysis",
    "cells", "interop", *_FLOW,
    "GradflowError", "ShapeError", "DTypeError", "NonFiniteError", "UnknownCellError",
    "InvalidArgumentError", "SpecError", "CodegenError", "MissingDependencyError",
    "PointError", "GradflowWarning", "CacheWarning",
    "__version__",
]

__getattr__, __dir__ = attach(__name__, _NAMES, _SUBMODULES)
