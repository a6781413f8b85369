"""The unit-function builder: per-unit SymPy expressions become a loop over batch rows and
units.

Each *unit function* loops over batch rows ``b`` and hidden units ``j`` and evaluates
per-unit expressions derived from the :class:`~gradflow.symbolic.CellSpec`, with common
subexpressions shared.  :mod:`gradflow.codegen.families` says which expressions each kernel
family needs; this module turns a list of ``(target, expression, op)`` stores into source.
"""

from __future__ import annotations

import sympy

from ..symbolic.functions import relu, sigmoid, step
from .printer import check_supported

__all__ = ["Loads", "gate_row", "state_row", "saved_row", "element", "unit_function",
           "dah_is_dax", "saved_values", "stub"]


class Loads:
    """Where each base symbol of a spec is read from, inside the (b, j) loop."""

    def __init__(self, spec, printer):
        d = spec.derivation
        self.spec = spec
        self.printer = printer  # of the module's dtype
        self.index = {}
        for k, g in enumerate(spec.gates):
            self.index[d.ax[g]] = gate_row("ax", k, g)
        for k, g in enumerate(spec.stage1):
            self.index[d.ah[g]] = gate_row("ah1", k, g)
        for k, g in enumerate(spec.stage2):
            self.index[d.ah[g]] = gate_row("ah2", k, g)
        for k, s in enumerate(spec.state):
            self.index[d.prev[s]] = state_row("sp", k, s)
        for k, p in enumerate(spec.params):
            self.index[d.params[p]] = f"prm[{k}, j]"

    def add(self, symbol, source):
        self.index[symbol] = source


def gate_row(array, k, gate):
    """Gate block `k` of an array laid out (B, G*H): a (view name, view source) pair.

    Unit functions take one-dimensional views of every array row they touch before the
    loop over ``j`` (``row_ax_i = ax[b, 0 * H:1 * H]``, ``row_sp_c = sp[1, b]``) and index
    them with ``j`` alone: LLVM can then tell the rows apart at run time and vectorise the
    loop, which it cannot do for ``ax[b, k * H + j]``.
    """
    return (f"row_{array}_{gate}", f"{array}[b, {k} * H:{k + 1} * H]")


def state_row(array, k, name):
    """Component `k` of an array laid out (S, B, H) (or (K, B, H))."""
    return (f"row_{array}_{name}", f"{array}[{k}, b]")


def saved_row(k):
    """Saved value `k` of an array laid out (B, NUM_SAVED*H), like a gate block: a batch
    row's values stay together, so that a block of batch rows is one contiguous slice."""
    return (f"row_sv_{k}", f"sv[b, {k} * H:{k + 1} * H]")


def element(target, views):
    """Source of one element inside the j loop; row views are registered in `views`."""
    if isinstance(target, tuple):  # a row view, see gate_row
        name, source = target
        views[name] = source
        return f"{name}[j]"
    return target


def unit_function(spec, loads, name, args, stores, doc):
    """Source of one unit function.

    stores : list of (target, expr, op) with op ``"="`` or ``"+="``; a target is a row
    view ``(name, source)`` (see :func:`gate_row`) or a plain element source such as
    ``"dprm[0, j]"``.
    """
    printer = loads.printer
    literal = {k: e for k, (_, e, _) in enumerate(stores) if isinstance(e, str)}
    exprs = [sympy.S.Zero if isinstance(e, str) else e for _, e, _ in stores]
    for (target, e, _) in stores:
        if not isinstance(e, str):
            check_supported(e, f"cell {spec.name!r}, {name} -> {element(target, {})}")
    tmp = sympy.numbered_symbols("_t", real=True)
    replacements, reduced = sympy.cse(exprs, symbols=tmp, order="canonical")
    used = set()
    for _, e in replacements:
        used |= e.free_symbols
    for e in reduced:
        used |= e.free_symbols
    views = {}
    body = []
    for sym in sorted(used, key=lambda s: s.name):
        if sym in loads.index:
            body.append(f"{printer.doprint(sym)} = {element(loads.index[sym], views)}")
    for sym, e in replacements:
        body.append(f"{printer.doprint(sym)} = {printer.doprint(e)}")
    for k, ((target, _, op), e) in enumerate(zip(stores, reduced)):
        body.append(f"{element(target, views)} {op} {literal.get(k) or printer.doprint(e)}")
    if not body:
        body = ["pass"]
    lines = [
        "@njit(**JIT)",
        f"def {name}({', '.join(args)}):",
        f'    """{doc}"""',
        "    B = sp.shape[1]",
        "    H = sp.shape[2]",
        "    for b in range(B):",
    ]
    lines += [f"        {view} = {source}" for view, source in views.items()]
    lines.append("        for j in range(H):")
    lines += ["            " + line for line in body]
    return "\n".join(lines) + "\n"


def dah_is_dax(spec, P) -> bool:
    """Whether dL/d(ah1) equals dL/d(ax) gate by gate, so bwd_units stores it once (in dax).

    True for one-stage cells whose gates see ``ax_g`` and ``ah_g`` only through their sum
    (RNNs, LSTMs); False for PyTorch's GRU, whose candidate reads ``r * ah_n``.
    """
    if spec.stage2:
        return False
    for g in spec.gates:
        for s in spec.state:
            a, b = P[(s, f"ax_{g}")], P[(s, f"ah_{g}")]
            if a != b and sympy.expand(a - b) != 0:
                return False
    return True


def saved_values(spec, stores):
    """The function values (sigmoid, tanh, exp ...) the backward expressions of `stores` use.

    Returns ``(saved, replaced)``: ``saved`` is a list of ``(symbol, expression)``, the
    outermost function calls in the expressions (``tanh(c)`` whole, not the sigmoids inside
    c), and ``replaced`` is `stores` with those calls replaced by their symbols.  The forward
    pass computes the calls anyway; saving them spares the backward pass every exp and tanh.
    Empty for two-stage cells, whose backward step also needs the recurrent input's.
    """
    if spec.stage2:
        return [], stores
    funcs = (sigmoid, relu, step, sympy.tanh, sympy.exp, sympy.log)
    calls = set()
    for _, e, _ in stores:
        if not isinstance(e, str):
            calls |= {n for n in sympy.preorder_traversal(e) if n.func in funcs}
    calls = sorted(calls, key=sympy.default_sort_key)
    names = {c: sympy.Symbol(f"_sv{k}", real=True) for k, c in enumerate(calls)}
    replaced = [(t, e if isinstance(e, str) else e.xreplace(names), op) for t, e, op in stores]
    used = set()
    for _, e, _ in replaced:
        if not isinstance(e, str):
            used |= e.free_symbols
    kept = [c for c in calls if names[c] in used]
    final = {names[c]: sympy.Symbol(f"_sv{k}", real=True) for k, c in enumerate(kept)}
    if not kept:
        return [], stores
    replaced = [(t, e if isinstance(e, str) else e.xreplace(final), op) for t, e, op in replaced]
    return [(final[names[c]], c) for c in kept], replaced


def stub(name, args, doc):
    return f'@njit(**JIT)\ndef {name}({", ".join(args)}):\n    """{doc}"""\n    return\n'
