"""Numba kernels over arrays, generic over cells.

The loops live in ``templates/`` as source that :mod:`gradflow.codegen` compiles once per
cell together with the cell's generated unit functions; :func:`gradflow.codegen.load`
returns the compiled module.
"""
