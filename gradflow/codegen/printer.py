"""Print SymPy expressions as Python source for Numba, from a whitelist of nodes.

The printer knows a fixed set of nodes (numbers, symbols, ``+ * **``, ``sigmoid``,
``tanh``, ``exp``, ``log``, ``relu``, ``step``, ``Abs``, ``Max``, ``Min``).  Anything else
fails here, when the source is generated, with the cell's name and the offending node,
instead of later inside Numba's compiler.  ``sigmoid`` and ``log(sigmoid(.))`` are printed
as calls to numerically stable helpers (the preludes in ``codegen/templates/``), and so is
``log(1 - tanh(.)**2)``.
"""

from __future__ import annotations

import sympy
from sympy.printing.pycode import PythonCodePrinter

from ..errors import CodegenError
from ..symbolic.functions import relu, sigmoid, step

__all__ = ["KernelPrinter", "check_supported"]

_FUNCS = {sigmoid, relu, step, sympy.tanh, sympy.exp, sympy.log, sympy.Abs, sympy.Max, sympy.Min}
_NODES = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Number)


def check_supported(expr: sympy.Expr, where: str) -> None:
    """Raise :class:`CodegenError` if `expr` holds a node the printer does not know."""
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, _NODES) or node.func in _FUNCS:
            continue
        if node in (sympy.S.NaN, sympy.S.Infinity, sympy.S.NegativeInfinity, sympy.S.ComplexInfinity):
            raise CodegenError(f"{where}: the expression is not finite ({node})")
        raise CodegenError(
            f"{where}: cannot generate kernel code for {type(node).__name__} ({node}); "
            f"supported functions are sigmoid, tanh, relu, step, exp, log, Abs, Max, Min"
        )


class KernelPrinter(PythonCodePrinter):
    """SymPy to Python source for ``njit`` functions (``math`` functions, float literals).

    With ``float32=True`` every literal is printed as ``np.float32(...)``: Numba types a bare
    ``1.0`` as float64, which would carry a float32 kernel's arithmetic into float64.
    """

    def __init__(self, settings=None, *, float32: bool = False):
        super().__init__({"fully_qualified_modules": True, **(settings or {})})
        self._float32 = float32

    def _literal(self, value: float) -> str:
        text = repr(float(value))
        return f"np.float32({text})" if self._float32 else text

    def _print_Integer(self, expr):
        return self._literal(int(expr))

    def _print_Rational(self, expr):
        return self._literal(float(expr))

    def _print_Float(self, expr):
        return self._literal(float(expr))

    def _print_Symbol(self, expr):
        # Every symbol of the equations is printed with the prefix "v_": names that users
        # choose (a parameter called "H" or "math") can then never shadow a kernel's own
        # variables or modules.  The generator's temporaries start with "_" ("_t0"), which
        # user names cannot (see gradflow.symbolic.spec), so "v__t0" is theirs alone.
        return f"v_{expr.name}"

    def _print_sigmoid(self, expr):
        return f"_sigmoid({self._print(expr.args[0])})"

    def _print_relu(self, expr):
        return f"_relu({self._print(expr.args[0])})"

    def _print_step(self, expr):
        return f"_step({self._print(expr.args[0])})"

    def _print_tanh(self, expr):
        return f"_tanh({self._print(expr.args[0])})"

    def _print_exp(self, expr):
        return f"_exp({self._print(expr.args[0])})"

    def _print_log(self, expr):
        (arg,) = expr.args
        if arg.func is sigmoid:
            return f"_log_sigmoid({self._print(arg.args[0])})"
        w = sympy.Wild("w")
        inner = arg.args[0] if arg.func is sympy.Abs else arg
        for candidate in ((inner, -inner) if arg.func is sympy.Abs else (inner,)):
            match = candidate.match(1 - sympy.tanh(w) ** 2)
            if match:
                return f"_log_dtanh({self._print(match[w])})"
        return f"math.log({self._print(arg)})"

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Max(self, expr):
        return "max(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Min(self, expr):
        return "min(" + ", ".join(self._print(a) for a in expr.args) + ")"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        b = self.parenthesize(base, 60)  # tighter than *, looser than atoms
        if exp == 2:
            return f"{b}*{b}"
        if exp == -1:
            return f"{self._literal(1.0)}/{b}"
        if exp == sympy.Rational(1, 2):
            return f"math.sqrt({self._print(base)})"
        if exp.is_Integer:
            return f"{b}**{int(exp)}"
        return f"{b}**{self._print(exp)}"

    def _print_Function(self, expr):
        raise CodegenError(f"no kernel code for the function {expr.func.__name__} ({expr})")

    def emptyPrinter(self, expr):
        raise CodegenError(f"no kernel code for {type(expr).__name__} ({expr})")
