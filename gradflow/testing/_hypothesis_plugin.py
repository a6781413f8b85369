"""Registered through the ``hypothesis`` entry point (see ``pyproject.toml``).

Hypothesis calls :func:`_hypothesis_setup_hook` when it is imported, so that
``st.from_type(gradflow.Cell)`` and ``st.from_type(gradflow.CellSpec)`` draw catalogue
cells.  It imports only the light parts of gradflow (no Numba, no SymPy); the strategies
module loads on first use.
"""

from __future__ import annotations


def _hypothesis_setup_hook() -> None:
    from hypothesis import strategies as st

    from ..cell import Cell
    from ..symbolic.spec import CellSpec

    def _cells(_type):
        from .strategies import cells

        return cells()

    def _specs(_type):
        from .. import cells

        return st.sampled_from([cells.get(n) for n in cells.names()])

    st.register_type_strategy(Cell, _cells)
    st.register_type_strategy(CellSpec, _specs)
