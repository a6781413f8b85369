"""``CellSpec``: one recurrent cell written once, as per-unit scalar equations.

A cell in the generic form maps, for every hidden unit ``j`` independently,

* the input pre-activation of every gate ``g``: ``ax_g = (x_t W_ih^T + b_ih)[g, j]``,
* the recurrent pre-activation of every gate: ``ah_g = (h_{t-1} W_hh^T + b_hh)[g, j]``,
* the previous state components ``h_prev`` (and ``c_prev`` for LSTMs),
* per-unit parameters (peephole weights ...),

to the new state components.  Cells that gate the state before a recurrent matmul (Cho's
GRU, the minimal gated unit) name a *recurrent input* ``u``, an intermediate computed from
the first-stage quantities; the pre-activations of their *second-stage* gates are then
``ah_g = (u W_hh[g]^T + b_hh[g])[j]``.

Everything else (derivatives, Jacobian blocks, LaTeX, kernels) is derived from the
equations by SymPy; nothing is written twice.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

from ..errors import SpecError

__all__ = ["CellSpec", "Derivation", "Truncation"]

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$")
#: a cell's name: it becomes part of file names and of generated source
_CELL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_RESERVED = {"x", "t", "W", "b"}


def _check_name(kind: str, name: str) -> str:
    if not isinstance(name, str) or not _IDENT.match(name) or keyword.iskeyword(name):
        raise SpecError(
            f"{kind} name {name!r} is not valid; expected an identifier of letters, digits "
            "and single underscores, starting with a letter"
        )
    return name


def _as_names(kind: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"`{kind}s` must be a string of names or a sequence of names; got "
                        f"{value!r:.60}")
    names = tuple(_check_name(kind, v) for v in value)
    if len(set(names)) != len(names):
        raise SpecError(f"`{kind}s` has repeated names: {names!r}")
    return names


def _parse_equations(equations) -> tuple[tuple[str, object], ...]:
    """Split the equations into ``(lhs, rhs)`` pairs; rhs stays a string or a SymPy expr."""
    if isinstance(equations, str):
        pairs = []
        for lineno, raw in enumerate(equations.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.count("=") != 1:
                raise SpecError(
                    f"equation line {lineno} ({raw.strip()!r}) must have the form "
                    "'name = expression'"
                )
            lhs, rhs = (part.strip() for part in line.split("="))
            pairs.append((lhs, rhs))
    else:
        try:
            pairs = [(lhs, rhs) for lhs, rhs in equations]
        except (TypeError, ValueError):
            raise SpecError(
                "`equations` must be a string of 'name = expression' lines or a sequence of "
                f"(name, expression) pairs; got {type(equations).__name__}"
            ) from None
    if not pairs:
        raise SpecError("`equations` is empty; a cell needs at least the update of h")
    return tuple((_check_name("equation", lhs), rhs) for lhs, rhs in pairs)


@dataclass(frozen=True)
class Derivation:
    """Everything SymPy derives from a :class:`CellSpec` (built once, on first use).

    Attributes
    ----------
    ax, ah, prev, params : dict[str, sympy.Symbol]
        The base symbols: input and recurrent pre-activation per gate, previous state per
        component, per-unit parameters.
    definitions : dict[str, sympy.Expr]
        Each equation's right-hand side as written (referring to earlier intermediates).
    symbols : dict[str, sympy.Symbol]
        The symbol standing for each left-hand side (``i``, ``f``, ``c`` ...).
    full : dict[str, sympy.Expr]
        Each left-hand side in terms of the base symbols only.
    outputs : tuple[sympy.Expr, ...]
        The new state components, in ``spec.state`` order, in base symbols.
    recurrent_input : sympy.Expr or None
        ``u`` in base symbols, for two-stage cells.
    """

    ax: dict
    ah: dict
    prev: dict
    params: dict
    definitions: dict
    symbols: dict
    full: dict
    outputs: tuple
    recurrent_input: object

    @property
    def base(self) -> list:
        """All base symbols in a fixed order: ax, ah, prev, params."""
        return [*self.ax.values(), *self.ah.values(), *self.prev.values(), *self.params.values()]


@dataclass(frozen=True)
class Truncation:
    """The step as the 1997 truncated gradient sees it (see :meth:`CellSpec.truncation`).

    Hochreiter & Schmidhuber (1997, appendix A.1) replace by zero the derivative of every
    net input (of a gate or of the cell input) with respect to the previous step's
    activations: error that reaches a net input changes the weights into it and goes no
    further back.  In the per-unit equations, a *net-input equation* is one whose right-hand
    side reads a pre-activation ``ax_<g>`` or ``ah_<g>`` directly (``i``, ``g``, ``o`` ...);
    in those equations every previous-state symbol, and every other intermediate that
    depends on it (a peephole's ``c``), is replaced by a *stopped* copy, a symbol of its
    own, which differentiation treats as a constant.  Only the other equations (``c =
    c_prev + i*g``, ``h = o*h(c)``) carry the previous state, so the derivatives of the new
    state with respect to it are those of the carousel.  The paths through the recurrent
    weights (``ah = W_hh h_{t-1}``) are cut as well, by the code that assembles the
    Jacobian blocks and by the kernels.

    Attributes
    ----------
    stops : dict[sympy.Symbol, sympy.Expr]
        Each stopped copy and the value it stands for (in base symbols).
    full : dict[str, sympy.Expr]
        Each left-hand side in base symbols and stopped copies.
    outputs : tuple[sympy.Expr, ...]
        The new state components, in ``spec.state`` order, in the same terms.
    net_input : tuple[str, ...]
        The net-input equations' left-hand sides.
    """

    stops: dict
    full: dict
    outputs: tuple
    net_input: tuple


class CellSpec:
    """A recurrent cell written once as per-unit scalar equations.

    Parameters
    ----------
    name : str
        The catalogue name (``"lstm"``): letters, digits, ``-``, ``_`` and ``.``, starting
        with a letter, at most 64 characters.
    gates : sequence of str or str
        Gate names in the order of the rows of ``weight_ih`` / ``weight_hh`` (PyTorch's order
        for its cells: ``"i f g o"``, ``"r z n"``).
    equations : str or sequence of (str, str or sympy.Expr)
        ``name = expression`` lines, in order.  Expressions may use ``ax_<gate>``,
        ``ah_<gate>``, ``<component>_prev``, the per-unit parameters, earlier left-hand
        sides, numbers, ``+ - * / **`` and the functions ``sigmoid, tanh, relu, step, exp,
        log``.  Every state component must be assigned once.  The text is parsed by
        walking its syntax tree with a whitelist (:mod:`gradflow.symbolic.parse`); it is
        never evaluated as Python.
    state : sequence of str, default ``("h",)``
        State components; the first is the output ``h``.
    params : sequence of str, default ``()``
        Per-unit parameters (each a vector of length ``hidden_size``).
    stage2 : sequence of str, default ``()``
        Gates whose recurrent pre-activation multiplies the recurrent input instead of
        ``h_prev``; they must come last in `gates`.
    recurrent_input : str, optional
        The left-hand side that is the recurrent input of the `stage2` gates.
    forget_gate : str, optional
        The gate whose bias ``forget_bias`` sets (larger values keep more of the state).
    description : str
        One line for tables and reports.
    latex_names : mapping, optional
        LaTeX for parameter or intermediate names (``{"peephole_i": "p_{i}"}``).

    Examples
    --------
    >>> from gradflow.symbolic import CellSpec
    >>> mgu = CellSpec(
    ...     "mgu", gates="f n", stage2="n", recurrent_input="u",
    ...     equations='''
    ...         f = sigmoid(ax_f + ah_f)
    ...         u = f*h_prev
    ...         n = tanh(ax_n + ah_n)
    ...         h = (1 - f)*h_prev + f*n
    ...     ''')
    >>> mgu.state
    ('h',)
    """

    def __init__(
        self,
        name: str,
        *,
        gates,
        equations,
        state=("h",),
        params=(),
        stage2=(),
        recurrent_input: str | None = None,
        forget_gate: str | None = None,
        description: str = "",
        latex_names: Mapping[str, str] | None = None,
    ):
        if not isinstance(name, str) or not _CELL_NAME.match(name):
            raise SpecError(
                f"`name` must be a string of at most 64 letters, digits and '-', '_', '.', "
                f"starting with a letter (like 'my-lstm'); got {name!r}"
            )
        self.name = name
        self.gates = _as_names("gate", gates)
        if not self.gates:
            raise SpecError("`gates` is empty; a cell needs at least one gate (pre-activation)")
        self.state = _as_names("state", state)
        if not self.state or self.state[0] != "h":
            raise SpecError(f"`state` must start with 'h' (the output); got {self.state!r}")
        self.params = _as_names("param", params)
        self.stage2 = _as_names("stage2", stage2)
        unknown = [g for g in self.stage2 if g not in self.gates]
        if unknown:
            raise SpecError(f"`stage2` names unknown gates {unknown}; gates are {self.gates}")
        if self.stage2 and self.gates[-len(self.stage2):] != self.stage2:
            raise SpecError(
                f"`stage2` gates {self.stage2} must be the last gates, in order; gates are "
                f"{self.gates}"
            )
        if recurrent_input is not None and not isinstance(recurrent_input, str):
            raise SpecError(f"`recurrent_input` must be a name; got {recurrent_input!r:.60}")
        if bool(self.stage2) != (recurrent_input is not None):
            raise SpecError("`stage2` and `recurrent_input` must be given together")
        if len(self.stage2) == len(self.gates):
            raise SpecError("at least one gate must read h_prev directly (stage 1)")
        self.recurrent_input = recurrent_input
        if forget_gate is not None and (not isinstance(forget_gate, str) or forget_gate not in self.gates):
            raise SpecError(f"`forget_gate` {forget_gate!r} is not one of the gates {self.gates}")
        self.forget_gate = forget_gate
        if not isinstance(description, str):
            raise SpecError(f"`description` must be a string; got {type(description).__name__}")
        self.description = description
        if latex_names is not None and not (
                isinstance(latex_names, Mapping)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in latex_names.items())):
            raise SpecError(f"`latex_names` must map names to LaTeX strings; got {latex_names!r:.60}")
        self.latex_names = dict(latex_names or {})
        self.equations = _parse_equations(equations)
        lhs = [name for name, _ in self.equations]
        if len(set(lhs)) != len(lhs):
            raise SpecError(f"a name is assigned twice in the equations: {lhs}")
        missing = [s for s in self.state if s not in lhs]
        if missing:
            raise SpecError(f"the equations never assign the state components {missing}")
        if recurrent_input is not None and recurrent_input not in lhs:
            raise SpecError(f"`recurrent_input` {recurrent_input!r} is not assigned")
        taken = set(self.reserved_symbol_names())
        clash = [n for n in lhs + list(self.params) if n in taken or n in _RESERVED]
        if clash:
            raise SpecError(f"names {clash} clash with reserved symbol names")

    # ------------------------------------------------------------------ identity
    @property
    def num_gates(self) -> int:
        return len(self.gates)

    @property
    def stage1(self) -> tuple[str, ...]:
        """Gates whose recurrent pre-activation multiplies ``h_prev``."""
        return self.gates[: len(self.gates) - len(self.stage2)]

    @property
    def intermediates(self) -> tuple[str, ...]:
        """Left-hand sides that are not state components, in equation order."""
        return tuple(n for n, _ in self.equations if n not in self.state)

    def reserved_symbol_names(self) -> list[str]:
        return (
            [f"ax_{g}" for g in self.gates]
            + [f"ah_{g}" for g in self.gates]
            + [f"{s}_prev" for s in self.state]
        )

    def _canonical(self) -> str:
        def text(rhs):
            if isinstance(rhs, str):
                return " ".join(rhs.split())
            import sympy

            return sympy.srepr(rhs)

        return json.dumps(
            {
                "name": self.name,
                "gates": self.gates,
                "state": self.state,
                "params": self.params,
                "stage2": self.stage2,
                "recurrent_input": self.recurrent_input,
                "equations": [[lhs, text(rhs)] for lhs, rhs in self.equations],
            },
            sort_keys=True,
        )

    @cached_property
    def hash(self) -> str:
        """A hex digest of the equations and structure (not of the description)."""
        return hashlib.sha256(self._canonical().encode()).hexdigest()

    def __repr__(self) -> str:
        stage = f", stage2={self.stage2}" if self.stage2 else ""
        return (
            f"CellSpec({self.name!r}, gates={self.gates}, state={self.state}, "
            f"params={self.params}{stage})"
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, CellSpec) and self.hash == other.hash

    def __hash__(self) -> int:
        return hash(self.hash)

    # ------------------------------------------------------------------ SymPy
    @cached_property
    def derivation(self) -> Derivation:
        """Parse the equations and express everything in the base symbols (cached)."""
        import sympy

        from .parse import check_tree, parse_expression

        real = {"real": True}
        ax = {g: sympy.Symbol(f"ax_{g}", **real) for g in self.gates}
        ah = {g: sympy.Symbol(f"ah_{g}", **real) for g in self.gates}
        prev = {s: sympy.Symbol(f"{s}_prev", **real) for s in self.state}
        params = {p: sympy.Symbol(p, **real) for p in self.params}
        known = {s.name: s for s in [*ax.values(), *ah.values(), *prev.values(), *params.values()]}

        definitions, symbols, full = {}, {}, {}
        for lhs, rhs in self.equations:
            where = f"cell {self.name!r}: the equation for {lhs!r}"
            if isinstance(rhs, str):
                expr = parse_expression(rhs, known, where=where)
            else:
                try:
                    expr = sympy.sympify(rhs, strict=True)
                except (sympy.SympifyError, TypeError, ValueError) as exc:
                    raise SpecError(f"{where}: cannot read {rhs!r} as a SymPy expression: "
                                    f"{exc}") from None
            if not isinstance(expr, sympy.Expr):
                raise SpecError(f"{where} is not an expression")
            check_tree(expr, where)
            unknown = sorted(s.name for s in expr.free_symbols if s.name not in known)
            if unknown:
                raise SpecError(
                    f"cell {self.name!r}: the equation for {lhs!r} uses unknown names "
                    f"{unknown}; known here are {sorted(known)}"
                )
            # Symbols built outside the parser may lack real=True: map them by name.
            expr = expr.xreplace({s: known[s.name] for s in expr.free_symbols})
            sym = sympy.Symbol(lhs, **real)
            definitions[lhs] = expr
            symbols[lhs] = sym
            full[lhs] = expr.xreplace({symbols[k]: full[k] for k in full})
            known[lhs] = sym

        outputs = tuple(full[s] for s in self.state)
        u = None
        if self.recurrent_input is not None:
            u = full[self.recurrent_input]
            late = sorted(str(ah[g]) for g in self.stage2 if ah[g] in u.free_symbols)
            if late:
                raise SpecError(
                    f"cell {self.name!r}: the recurrent input {self.recurrent_input!r} uses "
                    f"{late}, which are computed from it"
                )
        reached = [*outputs, *([u] if u is not None else [])]
        for g in self.gates:
            used = any(ax[g] in e.free_symbols or ah[g] in e.free_symbols for e in reached)
            if not used:
                raise SpecError(f"cell {self.name!r}: gate {g!r} does not enter any state update")
        return Derivation(ax, ah, prev, params, definitions, symbols, full, outputs, u)

    def partials(self, *, truncate: bool = False) -> dict:
        """Every first partial derivative of the per-unit map, in base symbols.

        Parameters
        ----------
        truncate : bool
            The partials of the 1997 truncated gradient (see :meth:`truncation`): those
            with respect to the previous state come from the equations with the net inputs'
            dependence on the previous state stopped; the others (pre-activations,
            parameters) are unchanged.  One-stage cells only.

        Returns
        -------
        dict
            ``{(output, variable): expr}`` where ``output`` is a state component name (or the
            recurrent input's name) and ``variable`` is a base symbol name (``"ax_f"``,
            ``"ah_f"``, ``"c_prev"``, a parameter).  Zero derivatives are included.

        Examples
        --------
        The carousel of the 1997 cell passes error back unchanged; the output ``h`` does
        not, once truncated:

        >>> from gradflow import cells
        >>> P = cells.get("lstm1997").partials(truncate=True)
        >>> P[("c", "c_prev")], P[("c", "h_prev")], P[("h", "h_prev")]
        (1, 0, 0)
        """
        if not isinstance(truncate, bool):
            raise SpecError(f"`truncate` must be True or False; got {truncate!r:.60}")
        return self._truncated_partials if truncate else self._partials

    @cached_property
    def _partials(self) -> dict:
        d = self.derivation
        out = {}
        targets = list(zip(self.state, d.outputs))
        if d.recurrent_input is not None:
            targets.append((self.recurrent_input, d.recurrent_input))
        from .parse import check_tree

        for name, expr in targets:
            for sym in d.base:
                out[(name, sym.name)] = partial = expr.diff(sym)
                check_tree(partial, f"cell {self.name!r}: d{name}/d{sym.name}")
        return out

    @cached_property
    def _truncated_partials(self) -> dict:
        tr = self.truncation()
        d = self.derivation
        out = dict(self._partials)
        from .parse import check_tree

        for name, expr in zip(self.state, tr.outputs):
            for sym in d.prev.values():
                partial = expr.diff(sym).xreplace(tr.stops)
                check_tree(partial, f"cell {self.name!r}: truncated d{name}/d{sym.name}")
                out[(name, sym.name)] = partial
        return out

    def truncation(self) -> Truncation:
        """The equations as the 1997 truncated gradient differentiates them (cached).

        Raises
        ------
        SpecError
            For two-stage cells: their recurrent input mixes the previous state with the
            current step's gates before the recurrent weights, and the 1997 scheme has no
            such thing to truncate.

        Examples
        --------
        >>> from gradflow import cells
        >>> cells.get("lstm-peephole").truncation().net_input
        ('i', 'f', 'g', 'o')
        """
        if self.stage2:
            raise SpecError(
                f"cell {self.name!r} is a two-stage cell (its recurrent input "
                f"{self.recurrent_input!r} is computed before the recurrent weights); the "
                "truncated gradient is defined for one-stage cells, whose net inputs read "
                "only h_{t-1} (rnn, lstm, gru ...)")
        return self._truncation

    @cached_property
    def _truncation(self) -> Truncation:
        import sympy

        d = self.derivation
        nets = set(d.ax.values()) | set(d.ah.values())
        prev = set(d.prev.values())
        by_symbol = {sym: lhs for lhs, sym in d.symbols.items()}
        net_input = tuple(lhs for lhs, expr in d.definitions.items() if expr.free_symbols & nets)
        stops, made, full = {}, {}, {}

        def stopped(sym, value):
            if sym not in made:
                made[sym] = copy = sympy.Symbol(f"{sym.name}__stopped", real=True)
                stops[copy] = value
            return made[sym]

        for lhs, expr in d.definitions.items():
            repl = {}
            for sym in expr.free_symbols:
                if lhs in net_input and sym in prev:
                    repl[sym] = stopped(sym, sym)
                elif sym in by_symbol:
                    other = by_symbol[sym]
                    if lhs in net_input and other not in net_input:
                        repl[sym] = stopped(sym, d.full[other])
                    else:
                        repl[sym] = full[other]
            full[lhs] = expr.xreplace(repl)
        outputs = tuple(full[s] for s in self.state)
        return Truncation(stops, full, outputs, net_input)

    def compact(self, expr):
        """Rewrite `expr` with the equations' own names (``f`` for ``sigmoid(ax_f + ah_f)``)."""
        d = self.derivation
        keep = {"h", self.recurrent_input}  # the output and u would hide their factors
        for lhs in reversed(list(d.full)):
            if lhs not in keep:
                expr = expr.subs(d.full[lhs], d.symbols[lhs])
        return expr

    # ------------------------------------------------------------------ rendering
    def latex_symbol_names(self) -> dict:
        """LaTeX for every symbol of the spec (time-indexed)."""
        d = self.derivation
        names = {}
        for g in self.gates:
            names[d.ax[g]] = rf"a^{{x}}_{{{g},t}}"
            names[d.ah[g]] = rf"a^{{h}}_{{{g},t}}"
        for s in self.state:
            names[d.prev[s]] = rf"{s}_{{t-1}}"
        for p in self.params:
            names[d.params[p]] = self.latex_names.get(p, _latex_ident(p))
        for lhs, sym in d.symbols.items():
            base = self.latex_names.get(lhs, _latex_ident(lhs))
            names[sym] = rf"{{{base}}}_{{t}}" if "_" in base else rf"{base}_{{t}}"
        return names

    def latex(self) -> str:
        """The equations in LaTeX (an ``aligned`` block), with the pre-activations defined."""
        import sympy

        d = self.derivation
        names = self.latex_symbol_names()
        rows = []
        for lhs, expr in d.definitions.items():
            rows.append(
                names[d.symbols[lhs]] + " &= " + sympy.latex(expr, symbol_names=names)
            )
        legend = []
        for g in self.gates:
            src = r"u_{t}" if g in self.stage2 else r"h_{t-1}"
            if self.recurrent_input and g in self.stage2:
                src = names[d.symbols[self.recurrent_input]]
            legend.append(
                rf"a^{{x}}_{{{g},t}} = W_{{i{g}}} x_t + b_{{i{g}}},\quad "
                rf"a^{{h}}_{{{g},t}} = W_{{h{g}}} {src} + b_{{h{g}}}"
            )
        return (
            "\\begin{aligned}\n"
            + " \\\\\n".join(rows)
            + "\n\\end{aligned}\n\\qquad\n\\begin{aligned}\n"
            + " \\\\\n".join(legend)
            + "\n\\end{aligned}"
        )

    # ------------------------------------------------------------------ Jacobians
    def jacobian(self, hidden_size: int | None = None, *, input_size: int | None = None,
                 wrt: str = "state", truncate: bool = False):
        """The one-step Jacobian of the state map.

        Parameters
        ----------
        hidden_size : int, optional
            Without it, the symbolic blocks: a :class:`~gradflow.symbolic.jacobian.StepJacobian`
            with ``(of, wrt)`` blocks such as ``("c", "c")``, each a sum of products of
            ``diag(...)`` factors and weight matrices (``MatrixSymbol`` ``W_hf`` ...).
            With it, the explicit ``sympy.Matrix`` for that many units, in terms of the
            entries of the weights, biases, input and previous state.
        input_size : int, optional
            Input size for the explicit matrix (default: `hidden_size`).
        wrt : {"state", "x"}
            Differentiate with respect to the previous state (all components stacked in
            ``state`` order) or the input ``x_t``.
        truncate : bool
            The Jacobian the 1997 truncated gradient uses (see :meth:`truncation`): no
            path through the recurrent weights, and the net inputs' dependence on the
            previous state stopped.  For the 1997 cell ``∂c_t/∂c_{t-1}`` is then the
            identity and every block with respect to ``h_{t-1}`` is zero.  The Jacobian
            with respect to ``x_t`` is the same either way.

        Examples
        --------
        >>> from gradflow import cells
        >>> J = cells.get("lstm1997").jacobian(truncate=True)
        >>> J[("c", "c")], J[("c", "h")]
        (dc/dc: I, dc/dh: 0)
        >>> cells.get("lstm1997").jacobian(2, truncate=True)[2:, 2:]
        Matrix([
        [1, 0],
        [0, 1]])
        """
        from .jacobian import explicit_jacobian, symbolic_jacobian

        if not isinstance(wrt, str) or wrt not in ("state", "x"):
            raise SpecError(f"`wrt` must be 'state' or 'x'; got {wrt!r}")
        if not isinstance(truncate, bool):
            raise SpecError(f"`truncate` must be True or False; got {truncate!r:.60}")
        if truncate:
            self.truncation()  # refuses two-stage cells, naming them
        if hidden_size is None:
            return symbolic_jacobian(self, wrt=wrt, truncate=truncate)
        return explicit_jacobian(self, hidden_size, input_size=input_size, wrt=wrt,
                                 truncate=truncate)


def _latex_ident(name: str) -> str:
    head, _, tail = name.partition("_")
    return f"{head}_{{{tail}}}" if tail else head
