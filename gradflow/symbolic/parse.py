"""Equations are user text: parse them without evaluating any of it as Python.

:func:`parse_expression` walks the tree of :func:`ast.parse` and accepts a whitelist of
nodes only: names known to the cell, numbers, ``+ - * / **``, unary ``+ -``, and calls of
the cell functions (``sigmoid``, ``tanh`` ...) with one positional argument.  Attribute
access, subscripts, strings, lambdas, comprehensions, keywords and every other node are
refused with a :class:`~gradflow.errors.SpecError` that names the construct, before any
SymPy object is built.  The SymPy expression is then assembled from the accepted nodes.

Sizes are bounded so that parsing cannot hang: at most :data:`MAX_CHARS` characters and
:data:`MAX_NODES` nodes per equation, nesting at most :data:`MAX_DEPTH`, and a power's
exponent, when it is a number, at most :data:`MAX_EXPONENT` in magnitude (``2**10**10``
would otherwise make SymPy compute a ten-billion-digit integer).

A SymPy expression given directly (the ``(name, expr)`` form of the equations) is checked
by :func:`check_tree` against the same whitelist, expressed as SymPy node types.
"""

from __future__ import annotations

import ast
import math

import sympy

from ..errors import SpecError
from .functions import FUNCTIONS

__all__ = ["parse_expression", "check_tree", "MAX_CHARS", "MAX_NODES", "MAX_DEPTH",
           "MAX_EXPONENT"]

#: longest equation right-hand side accepted, in characters
MAX_CHARS = 2000
#: most syntax-tree nodes in one right-hand side
MAX_NODES = 1000
#: deepest nesting of the syntax tree
MAX_DEPTH = 60
#: largest magnitude of a numeric exponent
MAX_EXPONENT = 64

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: None,  # checked separately (exponent bound)
}
_UNARY = {ast.UAdd: lambda a: a, ast.USub: lambda a: -a}
_SYMBOLS = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "**": ast.Pow}


def _describe(node: ast.AST) -> str:
    """A short name for a refused construct, for the error message."""
    kinds = {
        ast.Attribute: "attribute access ('.')",
        ast.Subscript: "subscripts ('[...]')",
        ast.Lambda: "lambda",
        ast.Compare: "comparisons",
        ast.BoolOp: "'and'/'or'",
        ast.IfExp: "conditional expressions",
        ast.JoinedStr: "f-strings",
        ast.List: "lists",
        ast.Tuple: "tuples",
        ast.Dict: "dicts",
        ast.Set: "sets",
        ast.ListComp: "comprehensions",
        ast.SetComp: "comprehensions",
        ast.DictComp: "comprehensions",
        ast.GeneratorExp: "comprehensions",
        ast.Starred: "'*' unpacking",
        ast.NamedExpr: "':=' assignments",
        ast.Await: "await",
        ast.Yield: "yield",
        ast.YieldFrom: "yield",
        ast.Slice: "slices",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r} ({type(node.value).__name__})"
    return type(node).__name__


class _Builder:
    """Builds the SymPy expression of one right-hand side from its syntax tree."""

    def __init__(self, names: dict, where: str):
        self.names = names
        self.where = where
        self.count = 0

    def fail(self, message: str):
        raise SpecError(f"{self.where}: {message}")

    def build(self, node: ast.AST, depth: int = 0):
        self.count += 1
        if self.count > MAX_NODES:
            self.fail(f"the expression has more than {MAX_NODES} parts; split it into "
                      "several equations")
        if depth > MAX_DEPTH:
            self.fail(f"the expression is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left = self.build(node.left, depth + 1)
            right = self.build(node.right, depth + 1)
            if isinstance(node.op, ast.Pow):
                return self._power(left, right)
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.build(node.operand, depth + 1))
        if isinstance(node, ast.Constant):
            return self._number(node.value)
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                self.fail(f"the function {node.id!r} must be called with one argument, "
                          f"as in {node.id}(x)")
            if node.id not in self.names:
                self.fail(f"unknown name {node.id!r}; known here are {sorted(self.names)}")
            return self.names[node.id]
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        self.fail(f"{_describe(node)} is not allowed in an equation; use names, numbers, "
                  f"+ - * / ** and the functions {sorted(FUNCTIONS)}")

    def _number(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{_describe(ast.Constant(value))} is not allowed; only real numbers are")
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(f"the number {value!r} is not finite")
            return sympy.Float(value)
        if abs(value) > 2 ** 53:
            self.fail(f"the integer {value} is too large (at most 2**53 in magnitude)")
        return sympy.Integer(value)

    def _power(self, base, exponent):
        if exponent.is_number:
            try:
                e = float(exponent)
            except (TypeError, OverflowError):
                e = math.inf
            if not abs(e) <= MAX_EXPONENT:
                self.fail(f"the exponent {exponent} is not allowed; a numeric exponent must "
                          f"be a real number of magnitude at most {MAX_EXPONENT}")
            if base.is_number:
                # both numbers: SymPy would compute the power exactly, however large
                try:
                    value = abs(float(base)) ** e
                except (TypeError, OverflowError, ZeroDivisionError):
                    value = math.inf
                if not value < 1e300:
                    self.fail(f"the number {base}**{exponent} is too large")
        return base ** exponent

    def _call(self, node: ast.Call, depth: int):
        func = node.func
        if not isinstance(func, ast.Name):
            self.fail(f"only the functions {sorted(FUNCTIONS)} may be called, by name; got a "
                      f"call of {_describe(func)}")
        if func.id not in FUNCTIONS:
            self.fail(f"the function {func.id!r} is not allowed; allowed are {sorted(FUNCTIONS)}")
        if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            self.fail(f"{func.id}() takes exactly one positional argument")
        return FUNCTIONS[func.id](self.build(node.args[0], depth + 1))


def parse_expression(text: str, names: dict, *, where: str = "equation") -> sympy.Expr:
    """The SymPy expression of `text`, built from a whitelist of syntax nodes.

    Parameters
    ----------
    text : str
        A right-hand side such as ``"sigmoid(ax_f + ah_f)"``.
    names : dict[str, sympy.Symbol]
        The names the expression may use.
    where : str
        Prefix of error messages (``"cell 'x': the equation for 'h'"``).

    Raises
    ------
    SpecError
        For syntax errors, unknown names, refused constructs and sizes beyond the bounds.

    Examples
    --------
    >>> import sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> parse_expression("tanh(2*x) - x**2", {"x": x})
    -x**2 + tanh(2*x)
    """
    if not isinstance(text, str):
        raise SpecError(f"{where}: expected a string; got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise SpecError(f"{where}: the expression has {len(text)} characters; at most "
                        f"{MAX_CHARS} are accepted")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        msg = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise SpecError(f"{where}: cannot parse {text.strip()!r}: {msg}") from None
    builder = _Builder(names, where)
    try:
        expr = builder.build(tree.body)
    except RecursionError:
        raise SpecError(f"{where}: the expression is nested too deeply") from None
    return sympy.sympify(expr)


#: SymPy node types an expression may hold (besides the cell functions)
_SYMPY_NODES = (sympy.Add, sympy.Mul, sympy.Pow, sympy.Symbol, sympy.Number)


def check_tree(expr, where: str) -> None:
    """Raise :class:`SpecError` if the SymPy expression `expr` holds a node outside the
    whitelist (symbols, numbers, ``+ * **`` and the cell functions) or a non-finite
    constant (``1/0`` is ``zoo``, ``log(0)`` is ``-oo``)."""
    functions = set(FUNCTIONS.values())
    for node in sympy.preorder_traversal(expr):
        if node in (sympy.S.NaN, sympy.S.Infinity, sympy.S.NegativeInfinity,
                    sympy.S.ComplexInfinity):
            raise SpecError(f"{where}: the expression is not finite: it holds {node} "
                            "(a division by zero, or log(0)?)")
        if isinstance(node, sympy.Number):
            try:
                finite = math.isfinite(float(node))
            except (TypeError, OverflowError):
                finite = False
            if not finite:
                raise SpecError(f"{where}: the number {node} is out of the floating-point range")
        if node == sympy.I:
            raise SpecError(f"{where}: the expression holds the imaginary unit")
        if isinstance(node, _SYMPY_NODES) or node.func in functions:
            continue
        raise SpecError(
            f"{where}: {type(node).__name__} ({node}) is not allowed; expressions may use "
            f"symbols, numbers, + - * / ** and the functions {sorted(FUNCTIONS)}")
