"""Gradient flow over time: one-step Jacobians, lag maps, paths, memory horizons, spectra.

Every Jacobian here is assembled from the partial derivatives SymPy derived from a cell's
equations (its generated kernels) and the cell's weights; nothing is differentiated by
hand.  Long products are renormalised by exact powers of two or summed in log space, so a
norm of 1e-4000 is reported as log10 = -4000 in float32 as in float64.

Modules: :mod:`~gradflow.flow.lagmap` (state Jacobians, lag maps, loss gradients),
:mod:`~gradflow.flow.paths` (direct-edge paths, memory horizons),
:mod:`~gradflow.flow.spectra` (singular values, Lyapunov exponents, the Pascanu bound),
:mod:`~gradflow.flow.network` (the same over the layers and time of a Network).

>>> import numpy as np, gradflow
>>> cell = gradflow.Cell("lstm", input_size=2, hidden_size=8, seed=0)
>>> flow = gradflow.gradient_flow(cell, np.zeros((50, 1, 2)))
>>> flow.log10_h.shape          # lags 0 .. 50, one batch row
(51, 1)
"""

from .lagmap import GradientFlow as GradientFlow
from .lagmap import StateJacobians as StateJacobians
from .lagmap import gradient_flow as gradient_flow
from .lagmap import state_jacobians as state_jacobians
from .network import NetworkFlow as NetworkFlow
from .network import NetworkLyapunov as NetworkLyapunov
from .network import NetworkPaths as NetworkPaths
from .network import network_flow as network_flow
from .network import network_lyapunov as network_lyapunov
from .network import network_paths as network_paths
from .paths import PathDecomposition as PathDecomposition
from .paths import memory_horizon as memory_horizon
from .paths import path_decomposition as path_decomposition
from .spectra import LyapunovSpectrum as LyapunovSpectrum
from .spectra import PascanuBound as PascanuBound
from .spectra import SingularValues as SingularValues
from .spectra import jacobian_singular_values as jacobian_singular_values
from .spectra import lyapunov_spectrum as lyapunov_spectrum
from .spectra import pascanu_bound as pascanu_bound

__all__ = ["StateJacobians", "GradientFlow", "state_jacobians", "gradient_flow",
           "PathDecomposition", "path_decomposition", "memory_horizon",
           "SingularValues", "jacobian_singular_values", "LyapunovSpectrum",
           "lyapunov_spectrum", "PascanuBound", "pascanu_bound", "NetworkFlow", "network_flow",
           "NetworkPaths", "network_paths", "NetworkLyapunov", "network_lyapunov"]
