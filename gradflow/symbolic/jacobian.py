"""One-step Jacobians of a cell, assembled from its scalar partial derivatives.

SymPy differentiates the per-unit map (scalars); the Jacobian of a whole step is a sum of
products of ``diag(partial)`` factors and weight matrices.  For an LSTM, for example::

    d c_t / d c_{t-1} = diag(f_t)
    d c_t / d h_{t-1} = diag(c_{t-1} f(1-f)) W_hf + diag(g i(1-i)) W_hi + diag(i(1-g^2)) W_hg

:func:`symbolic_jacobian` returns these blocks with the weights as ``MatrixSymbol``;
:func:`explicit_step` and :func:`explicit_jacobian` build the whole step for a small
number of units as explicit SymPy matrices, an independent route to the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

__all__ = ["Diag", "JacobianBlock", "StepJacobian", "symbolic_jacobian", "explicit_step", "explicit_jacobian"]


@dataclass(frozen=True)
class Diag:
    """``diag(expr)``: the per-unit scalar `expr` placed on a diagonal."""

    expr: sympy.Expr


@dataclass(frozen=True)
class JacobianBlock:
    """``d of_t / d wrt_{t-1}`` as a sum of products of :class:`Diag` and weight matrices.

    Attributes
    ----------
    of, wrt : str
        Names of the differentiated component and of the variable (``"x"`` for the input).
    terms : tuple of tuple
        Each term a product, left to right, of ``Diag`` factors and ``sympy.MatrixSymbol``
        weight matrices (``W_hf`` is the forget gate's block of ``weight_hh``).
    """

    of: str
    wrt: str
    terms: tuple
    spec: object  # the CellSpec

    @property
    def is_zero(self) -> bool:
        return not self.terms

    @property
    def direct(self):
        """The ``diag`` term without weight matrices (the direct edge), or 0."""
        for term in self.terms:
            if len(term) == 1 and isinstance(term[0], Diag):
                return term[0].expr
        return sympy.S.Zero

    def latex(self) -> str:
        if not self.terms:
            return "0"
        names = self.spec.latex_symbol_names()
        parts = []
        for term in self.terms:
            factors = []
            for f in term:
                if isinstance(f, Diag) and f.expr == 1:
                    factors.append("I")
                elif isinstance(f, Diag):
                    body = sympy.latex(self.spec.compact(f.expr), symbol_names=names)
                    factors.append(rf"\operatorname{{diag}}\left({body}\right)")
                else:
                    factors.append(_latex_weight(f.name))
            parts.append(" ".join(factors))
        return " + ".join(parts)

    def __repr__(self) -> str:
        def show(f):
            if isinstance(f, Diag):
                return "I" if f.expr == 1 else f"diag({self.spec.compact(f.expr)})"
            return f.name

        body = " + ".join(" ".join(show(f) for f in t) for t in self.terms) or "0"
        return f"d{self.of}/d{self.wrt}: {body}"


def _latex_weight(name: str) -> str:
    # W_hf -> W_{hf}
    head, _, tail = name.partition("_")
    return f"{head}_{{{tail}}}"


class StepJacobian(dict):
    """The blocks of a one-step Jacobian, keyed ``(of, wrt)``."""

    def __init__(self, spec, blocks):
        super().__init__(blocks)
        self.spec = spec

    def latex(self) -> str:
        rows = []
        for (of, wrt), block in self.items():
            den = "x_{t}" if wrt == "x" else f"{wrt}_{{t-1}}"
            rows.append(
                rf"\frac{{\partial {of}_{{t}}}}{{\partial {den}}} &= {block.latex()}"
            )
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"


def _weights(spec, kind):
    n = sympy.Symbol("H", integer=True, positive=True)
    m = sympy.Symbol("D", integer=True, positive=True)
    cols = n if kind == "h" else m
    return {g: sympy.MatrixSymbol(f"W_{kind}{g}", n, cols) for g in spec.gates}


def symbolic_jacobian(spec, *, wrt: str = "state", truncate: bool = False) -> StepJacobian:
    """The one-step Jacobian blocks of `spec`, from its scalar partials and the weights.

    With `truncate`, the blocks of the 1997 truncated gradient: the partials with respect
    to the previous state from :meth:`~gradflow.symbolic.CellSpec.truncation`, and no term through the
    recurrent weights.
    """
    P = spec.partials(truncate=truncate)
    Wh = _weights(spec, "h")
    Wi = _weights(spec, "i")
    u_name = spec.recurrent_input

    def dterms(target, var):
        e = P[(target, var)]
        return [] if e == 0 else [Diag(e)]

    def through_u_state(sprime):
        """Terms of d u / d sprime_{t-1}."""
        terms = [(f,) for f in dterms(u_name, f"{sprime}_prev")]
        if sprime == "h":
            for g in spec.stage1:
                terms += [(f, Wh[g]) for f in dterms(u_name, f"ah_{g}")]
        return terms

    def through_u_x():
        """Terms of d u / d x_t (the stage-1 recurrent pre-activations do not see x_t)."""
        terms = []
        for g in spec.gates:
            terms += [(f, Wi[g]) for f in dterms(u_name, f"ax_{g}")]
        return terms

    blocks = {}
    for s in spec.state:
        if wrt == "state":
            for sp in spec.state:
                terms = [(f,) for f in dterms(s, f"{sp}_prev")]
                if sp == "h" and not truncate:
                    for g in spec.stage1:
                        terms += [(f, Wh[g]) for f in dterms(s, f"ah_{g}")]
                for g in spec.stage2:
                    for f in dterms(s, f"ah_{g}"):
                        terms += [(f, Wh[g], *rest) for rest in through_u_state(sp)]
                blocks[(s, sp)] = JacobianBlock(s, sp, tuple(terms), spec)
        else:
            terms = []
            for g in spec.gates:
                terms += [(f, Wi[g]) for f in dterms(s, f"ax_{g}")]
            for g in spec.stage2:
                for f in dterms(s, f"ah_{g}"):
                    terms += [(f, Wh[g], *rest) for rest in through_u_x()]
            blocks[(s, "x")] = JacobianBlock(s, "x", tuple(terms), spec)
    return StepJacobian(spec, blocks)


def explicit_step(spec, hidden_size: int, input_size: int | None = None, *,
                  truncate: bool = False):
    """One step of `spec` for `hidden_size` units as explicit SymPy expressions.

    With `truncate` (one-stage cells), the step as the 1997 truncated gradient
    differentiates it: the recurrent pre-activations read a stopped copy of ``h_prev``,
    and the net-input equations stopped copies of the previous state
    (:meth:`~gradflow.symbolic.CellSpec.truncation`).  The stopped copies are symbols of their own; a third
    value is then returned, the substitution that gives each its value.

    Returns
    -------
    new_state : sympy.Matrix
        Shape ``(S * hidden_size, 1)``: the new state components stacked in ``spec.state``
        order.
    symbols : dict
        ``"x"``: the input vector ``(input_size, 1)``; ``"<s>_prev"``: each previous state
        component ``(hidden_size, 1)``; ``"weight_ih"``, ``"weight_hh"``, ``"bias_ih"``,
        ``"bias_hh"``: ``MatrixSymbol`` with PyTorch's shapes and gate order; each
        per-unit parameter ``(hidden_size, 1)``.  Substitute explicit matrices into them
        with ``.subs``.
    """
    n = int(hidden_size)
    m = int(input_size if input_size is not None else hidden_size)
    if truncate:
        return _truncated_step(spec, n, m)
    G = spec.num_gates
    d = spec.derivation
    x = sympy.MatrixSymbol("x", m, 1)
    W_ih = sympy.MatrixSymbol("weight_ih", G * n, m)
    W_hh = sympy.MatrixSymbol("weight_hh", G * n, n)
    b_ih = sympy.MatrixSymbol("bias_ih", G * n, 1)
    b_hh = sympy.MatrixSymbol("bias_hh", G * n, 1)
    prev = {s: sympy.MatrixSymbol(f"{s}_prev", n, 1) for s in spec.state}
    prm = {p: sympy.MatrixSymbol(p, n, 1) for p in spec.params}

    def rows(gate_index, vec, W, b, cols):
        return [
            sum(W[gate_index * n + j, k] * vec[k] for k in range(cols)) + b[gate_index * n + j, 0]
            for j in range(n)
        ]

    ax = {g: rows(k, x, W_ih, b_ih, m) for k, g in enumerate(spec.gates)}
    ah = {g: rows(k, prev["h"], W_hh, b_hh, n) for k, g in enumerate(spec.gates) if g in spec.stage1}

    def unit_subs(j):
        sub = {d.ax[g]: ax[g][j] for g in spec.gates}
        sub.update({d.prev[s]: prev[s][j, 0] for s in spec.state})
        sub.update({d.params[p]: prm[p][j, 0] for p in spec.params})
        return sub

    if spec.stage2:
        u = [d.recurrent_input.xreplace({**unit_subs(j), **{d.ah[g]: ah[g][j] for g in spec.stage1}}) for j in range(n)]
        uvec = sympy.Matrix(u)
        for k, g in enumerate(spec.gates):
            if g in spec.stage2:
                ah[g] = rows(k, uvec, W_hh, b_hh, n)
    out = []
    for s_index, _ in enumerate(spec.state):
        for j in range(n):
            sub = unit_subs(j)
            sub.update({d.ah[g]: ah[g][j] for g in spec.gates})
            out.append(d.outputs[s_index].xreplace(sub))
    symbols = {"x": x, "weight_ih": W_ih, "weight_hh": W_hh, "bias_ih": b_ih, "bias_hh": b_hh}
    symbols.update({f"{s}_prev": v for s, v in prev.items()})
    symbols.update(prm)
    return sympy.Matrix(out), symbols


def _truncated_step(spec, n: int, m: int):
    """:func:`explicit_step` with ``truncate=True``."""
    _, sym = explicit_step(spec, n, m)
    d, tr = spec.derivation, spec.truncation()
    h_prev = sym["h_prev"]
    # the recurrent pre-activations, as functions of a stopped h_prev
    h_stop = [sympy.Symbol(f"h_prev__stopped_{j}", real=True) for j in range(n)]
    values = {s: h_prev[j, 0] for j, s in enumerate(h_stop)}
    unstop = dict(values)
    W_hh, b_hh = sym["weight_hh"], sym["bias_hh"]
    ah = {g: [sum(W_hh[k * n + j, i] * h_stop[i] for i in range(n)) + b_hh[k * n + j, 0]
              for j in range(n)] for k, g in enumerate(spec.gates)}
    x, W_ih, b_ih = sym["x"], sym["weight_ih"], sym["bias_ih"]
    ax = {g: [sum(W_ih[k * n + j, i] * x[i, 0] for i in range(m)) + b_ih[k * n + j, 0]
              for j in range(n)] for k, g in enumerate(spec.gates)}
    out = []
    for s_index, _ in enumerate(spec.state):
        for j in range(n):
            unit = {d.ax[g]: ax[g][j] for g in spec.gates}
            unit.update({d.ah[g]: ah[g][j] for g in spec.gates})
            unit.update({d.prev[s]: sym[f"{s}_prev"][j, 0] for s in spec.state})
            unit.update({d.params[p]: sym[p][j, 0] for p in spec.params})
            # each unit's stopped copies: symbols of their own, valued at that unit
            own = {}
            for stop, value in tr.stops.items():
                copy = sympy.Symbol(f"{stop.name}_{j}", real=True)
                own[stop] = copy
                values[copy] = value.xreplace(unit).xreplace(unstop)
            out.append(tr.outputs[s_index].xreplace({**unit, **own}))
    return sympy.Matrix(out), sym, values


def explicit_jacobian(spec, hidden_size: int, *, input_size: int | None = None, wrt: str = "state",
                      truncate: bool = False):
    """The explicit one-step Jacobian ``sympy.Matrix`` for `hidden_size` units.

    Rows: the new state components stacked in ``spec.state`` order; columns: the previous
    ones in the same order (``wrt="state"``) or the input entries (``wrt="x"``).  With
    `truncate`, the Jacobian of the 1997 truncated gradient (see :func:`explicit_step`).
    """
    from ..errors import InvalidArgumentError

    if int(hidden_size) < 1 or int(hidden_size) > 8:
        raise InvalidArgumentError(
            f"`hidden_size` must be between 1 and 8 for an explicit Jacobian; got {hidden_size}"
        )
    if truncate and wrt == "state":
        m = int(input_size if input_size is not None else hidden_size)
        new, sym, values = _truncated_step(spec, int(hidden_size), m)
        variables = [e for s in spec.state for e in sympy.Matrix(sym[f"{s}_prev"])]
        return new.jacobian(variables).xreplace(values)
    new, sym = explicit_step(spec, hidden_size, input_size)
    if wrt == "x":
        variables = list(sympy.Matrix(sym["x"]))
    else:
        variables = [e for s in spec.state for e in sympy.Matrix(sym[f"{s}_prev"])]
    return new.jacobian(variables)
