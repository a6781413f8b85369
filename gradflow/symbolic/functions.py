"""The scalar functions cells are written with, as SymPy functions.

``sigmoid``, ``relu`` and ``step`` are defined here so that their derivatives stay in
closed form (``sigmoid' = sigmoid (1 - sigmoid)``, shared with the forward value by common
subexpression elimination), their LaTeX reads as in the papers, and the code printer can
emit numerically stable kernels for them.  ``tanh``, ``exp`` and ``log`` are SymPy's own.
"""

from __future__ import annotations

import sympy
from sympy import exp, log, tanh

__all__ = ["sigmoid", "relu", "step", "tanh", "exp", "log", "FUNCTIONS"]


class sigmoid(sympy.Function):  # noqa: N801 - named as in the equations
    r"""The logistic function :math:`\sigma(x) = 1 / (1 + e^{-x})`."""

    nargs = 1

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sympy.Rational(1, 2)
        return None

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return 1 / (1 + sympy.exp(-arg))

    def _eval_evalf(self, prec):
        arg = self.args[0]._eval_evalf(prec)
        if arg is None:
            return None
        return (1 / (1 + sympy.exp(-arg)))._eval_evalf(prec)

    def _latex(self, printer):
        return r"\sigma\left(%s\right)" % printer._print(self.args[0])


class step(sympy.Function):  # noqa: N801
    r"""The unit step :math:`[x > 0]`, the derivative of ``relu`` (0 at 0, as in PyTorch)."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    @classmethod
    def eval(cls, arg):
        if arg.is_positive:
            return sympy.S.One
        if arg.is_nonpositive:
            return sympy.S.Zero
        return None

    def _eval_evalf(self, prec):
        arg = self.args[0].evalf(prec)
        if arg.is_number:
            return sympy.Float(1 if arg > 0 else 0, prec)
        return None

    def _latex(self, printer):
        return r"\left[%s > 0\right]" % printer._print(self.args[0])


class relu(sympy.Function):  # noqa: N801
    r"""The rectifier :math:`\max(x, 0)`."""

    nargs = 1

    def fdiff(self, argindex=1):
        return step(self.args[0])

    @classmethod
    def eval(cls, arg):
        if arg.is_nonnegative:
            return arg
        if arg.is_nonpositive:
            return sympy.S.Zero
        return None

    def _eval_evalf(self, prec):
        arg = self.args[0].evalf(prec)
        if arg.is_number:
            return arg if arg > 0 else sympy.Float(0, prec)
        return None

    def _latex(self, printer):
        return r"\operatorname{relu}\left(%s\right)" % printer._print(self.args[0])


#: The names a cell's equations may call, as seen by the equation parser.
FUNCTIONS = {"sigmoid": sigmoid, "tanh": tanh, "relu": relu, "step": step, "exp": exp, "log": log}
