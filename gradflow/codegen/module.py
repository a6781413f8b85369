"""Generate a cell's kernel module: unit functions printed from SymPy, plus the templates.

Each *unit function* loops over batch rows ``b`` and hidden units ``j`` and evaluates
per-unit expressions derived from the :class:`~gradflow.symbolic.CellSpec`, with common
subexpressions shared.  The generic kernels of ``gradflow/kernels/templates/`` are then
appended; they call the unit functions, so the whole module compiles with
``njit(cache=True)`` from a real file.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np

from ..config import JIT_OPTIONS, LLVM_OPTIONS

# SymPy and the printer load in generate_source only: a process whose kernels are cached
# never imports SymPy (source_key needs the spec's hash, the templates and PRELUDE).

__all__ = ["generate_source", "template_sources", "source_key", "fingerprint", "CODEGEN_VERSION",
           "PRELUDE", "PRELUDE_F32"]

#: Bump when the generated code changes in a way that neither the spec's hash nor the text
#: of the code generator shows (see :func:`fingerprint`).
CODEGEN_VERSION = "5"


#: log(sigmoid) and log(tanh'), in float64 in both dtypes' modules (path products in log
#: space sum thousands of them).
_LOG_HELPERS = '''
@njit(**JIT)
def _log_sigmoid(x):
    # log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), finite for every finite x
    return min(x, 0.0) - math.log1p(math.exp(-abs(x)))


@njit(**JIT)
def _log_dtanh(x):
    # log(1 - tanh(x)**2) = log(4) - 2|x| - 2 log1p(exp(-2|x|)), finite for every finite x
    a = abs(x)
    return 1.3862943611198906 - 2.0 * a - 2.0 * math.log1p(math.exp(-2.0 * a))
'''

#: Helpers every generated module starts with: stable for every finite input (no overflow
#: at |x| = 1000), NaN in, NaN out.  ``_exp``, ``_sigmoid`` and ``_tanh`` call no library
#: function and branch nowhere (both sides are computed, then selected), and they are
#: inlined, so that LLVM vectorises the loops of the unit functions; they agree with
#: ``math.exp`` and ``math.tanh`` to within 3 units in the last place.
PRELUDE = '''
@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose IEEE 754 bit pattern is the int64 `bits`."""
    if isinstance(bits, types.Integer) and bits.bitwidth == 64:
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(types.float64))
        return types.float64(bits), codegen
    return None


@njit(inline="always", **JIT)
def _exp(x):
    # x = n log(2) + r with |r| <= log(2)/2 (Cody-Waite: log(2) in two parts, fdlibm's), exp(r)
    # by its Taylor polynomial of degree 13 (truncation error < 5e-18), and 2**n as two
    # factors so that overflow gives inf and subnormal results are exact.
    v = float(x)
    y = 710.0 if v > 710.0 else (-746.0 if v < -746.0 else v)
    y = y if y == y else 0.0
    n = math.floor(y * 1.4426950408889634 + 0.5)
    r = (y - n * 0.6931471803691238) - n * 1.9082149292705877e-10
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = np.int64(n)
    k1 = k >> 1
    e = p * _f64_from_bits((k1 + 1023) << 52) * _f64_from_bits((k - k1 + 1023) << 52)
    return e if v == v else v


@njit(inline="always", **JIT)
def _sigmoid(x):
    # 1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: exp never overflows
    e = _exp(-abs(x))
    s = 1.0 / (1.0 + e)
    return s if x >= 0.0 else e * s


@njit(inline="always", **JIT)
def _tanh(x):
    # |x| >= 0.625: 1 - 2 / (exp(2|x|) + 1), with the sign of x; below, where that form
    # cancels, Cephes' rational approximation x + x^3 P(x^2) / Q(x^2) (S. L. Moshier).
    v = float(x)
    z = abs(v)
    big = math.copysign(1.0 - 2.0 / (_exp(2.0 * z) + 1.0), v)
    s = v * v
    p = (-0.964399179425052238628 * s - 99.2877231001918586564) * s - 1614.68768441708447952
    q = ((s + 112.811678491632931402) * s + 2235.48839060100448583) * s + 4844.06305325125486048
    small = math.copysign(v + v * s * (p / q), v)
    return small if z < 0.625 else big


@njit(inline="always", **JIT)
def _relu(x):
    return x if x > 0.0 else (x if x != x else 0.0)


@njit(inline="always", **JIT)
def _step(x):
    return 1.0 if x > 0.0 else (x if x != x else 0.0)
''' + _LOG_HELPERS


#: The float32 module's helpers: the same names, computed in float32 throughout (a float32
#: kernel evaluating its gates in float64 runs at float64's vector width).  ``_exp`` is
#: Cephes' expf (Cody-Waite reduction, degree-6 polynomial), ``_tanh`` Cephes' tanhf below
#: |x| = 0.625; within 2 units in the last place of the correctly rounded float32 values.
#: The log helpers stay in float64 (they feed sums over thousands of steps).
PRELUDE_F32 = """
@intrinsic
def _f32_from_bits(typingctx, bits):
    \"\"\"The float32 whose IEEE 754 bit pattern is the low 32 bits of the integer `bits`.\"\"\"
    if isinstance(bits, types.Integer):
        def codegen(context, builder, signature, args):
            word = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
            return builder.bitcast(word, context.get_value_type(types.float32))
        return types.float32(bits), codegen
    return None


@njit(inline="always", **JIT)
def _exp(x):
    v = np.float32(x)
    y = np.float32(89.0) if v > np.float32(89.0) else (np.float32(-104.0) if v < np.float32(-104.0) else v)
    y = y if y == y else np.float32(0.0)
    n = np.floor(y * np.float32(1.4426950408889634) + np.float32(0.5))
    r = (y - n * np.float32(0.693359375)) - n * np.float32(-2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    k = np.int64(n)
    k1 = k >> 1
    e = p * _f32_from_bits((k1 + 127) << 23) * _f32_from_bits((k - k1 + 127) << 23)
    return e if v == v else v


@njit(inline="always", **JIT)
def _sigmoid(x):
    e = _exp(-abs(x))
    s = np.float32(1.0) / (np.float32(1.0) + e)
    return s if x >= np.float32(0.0) else e * s


@njit(inline="always", **JIT)
def _tanh(x):
    v = np.float32(x)
    z = abs(v)
    big = np.float32(1.0) - np.float32(2.0) / (_exp(np.float32(2.0) * z) + np.float32(1.0))
    s = z * z
    small = ((((np.float32(-5.70498872745e-3) * s + np.float32(2.06390887954e-2)) * s
               - np.float32(5.37397155531e-2)) * s + np.float32(1.33314422036e-1)) * s
             - np.float32(3.33332819422e-1)) * s * z + z
    a = small if z < np.float32(0.625) else big
    a = -a if v < np.float32(0.0) else a
    return v if z == np.float32(0.0) else a


@njit(inline="always", **JIT)
def _relu(x):
    return x if x > np.float32(0.0) else (x if x != x else np.float32(0.0))


@njit(inline="always", **JIT)
def _step(x):
    return np.float32(1.0) if x > np.float32(0.0) else (x if x != x else np.float32(0.0))


""" + _LOG_HELPERS

def template_sources() -> list[tuple[str, str]]:
    """``(name, source)`` of every kernel template, in a fixed order."""
    folder = resources.files("gradflow.kernels") / "templates"
    items = sorted((p.name, p.read_text()) for p in folder.iterdir() if p.name.endswith(".py"))
    return [(n, s) for n, s in items if n != "__init__.py"]


_FINGERPRINT: list[str] = []  # of everything but the spec, computed once per process


def _is_f32(dtype) -> bool:
    return np.dtype(dtype) == np.float32


def _source_files() -> list:
    """Every file whose text shapes a generated module: the symbolic and codegen packages
    (equations to derivatives, printer, generator, preludes) and the kernel templates."""
    root = resources.files("gradflow")
    files = []
    for package in ("symbolic", "codegen"):
        files += [p for p in (root / package).iterdir() if p.name.endswith(".py")]
    files += [p for p in (root / "kernels" / "templates").iterdir() if p.name.endswith(".py")]
    return sorted(files, key=lambda p: (p.parent.name, p.name))


def fingerprint() -> str:
    """SHA-256 of everything that shapes generated source except the spec: the text of
    :func:`_source_files`, the JIT and LLVM options and :data:`CODEGEN_VERSION`.

    Read once per process (every pass asks for its cell's kernels; reading the files each
    time would cost ~0.5 ms).  An edit to the printer, the generator or a template changes
    it, and with it the name of every generated module: nothing stale is reused.
    """
    if not _FINGERPRINT:
        h = hashlib.sha256()
        h.update(CODEGEN_VERSION.encode())
        h.update(repr(sorted(JIT_OPTIONS.items())).encode())
        h.update(repr(LLVM_OPTIONS).encode())
        for path in _source_files():
            h.update(f"{path.parent.name}/{path.name}".encode())
            h.update(path.read_bytes())
        _FINGERPRINT.append(h.hexdigest())
    return _FINGERPRINT[0]


def source_key(spec, dtype="float64") -> str:
    """The cache key of `spec`'s module for `dtype`: the spec's hash and :func:`fingerprint`."""
    name = "float32" if _is_f32(dtype) else "float64"
    return hashlib.sha256((spec.hash + fingerprint() + name).encode()).hexdigest()[:20]


class _Loads:
    """Where each base symbol of a spec is read from, inside the (b, j) loop."""

    def __init__(self, spec, printer):
        d = spec.derivation
        self.spec = spec
        self.printer = printer  # of the module's dtype
        self.index = {}
        for k, g in enumerate(spec.gates):
            self.index[d.ax[g]] = _gate_row("ax", k, g)
        for k, g in enumerate(spec.stage1):
            self.index[d.ah[g]] = _gate_row("ah1", k, g)
        for k, g in enumerate(spec.stage2):
            self.index[d.ah[g]] = _gate_row("ah2", k, g)
        for k, s in enumerate(spec.state):
            self.index[d.prev[s]] = _state_row("sp", k, s)
        for k, p in enumerate(spec.params):
            self.index[d.params[p]] = f"prm[{k}, j]"

    def add(self, symbol, source):
        self.index[symbol] = source


def _gate_row(array, k, gate):
    """Gate block `k` of an array laid out (B, G*H): a (view name, view source) pair.

    Unit functions take one-dimensional views of every array row they touch before the
    loop over ``j`` (``row_ax_i = ax[b, 0 * H:1 * H]``, ``row_sp_c = sp[1, b]``) and index
    them with ``j`` alone: LLVM can then tell the rows apart at run time and vectorise the
    loop, which it cannot do for ``ax[b, k * H + j]``.
    """
    return (f"row_{array}_{gate}", f"{array}[b, {k} * H:{k + 1} * H]")


def _state_row(array, k, name):
    """Component `k` of an array laid out (S, B, H) (or (K, B, H))."""
    return (f"row_{array}_{name}", f"{array}[{k}, b]")


def _saved_row(k):
    """Saved value `k` of an array laid out (B, NUM_SAVED*H), like a gate block: a batch
    row's values stay together, so that a block of batch rows is one contiguous slice."""
    return (f"row_sv_{k}", f"sv[b, {k} * H:{k + 1} * H]")


def _element(target, views):
    """Source of one element inside the j loop; row views are registered in `views`."""
    if isinstance(target, tuple):  # a row view, see _gate_row
        name, source = target
        views[name] = source
        return f"{name}[j]"
    return target


def _unit_function(spec, loads, name, args, stores, doc):
    """Source of one unit function.

    stores : list of (target, expr, op) with op ``"="`` or ``"+="``; a target is a row
    view ``(name, source)`` (see :func:`_gate_row`) or a plain element source such as
    ``"dprm[0, j]"``.
    """
    import sympy

    from .printer import check_supported

    printer = loads.printer
    literal = {k: e for k, (_, e, _) in enumerate(stores) if isinstance(e, str)}
    exprs = [sympy.S.Zero if isinstance(e, str) else e for _, e, _ in stores]
    for (target, e, _) in stores:
        if not isinstance(e, str):
            check_supported(e, f"cell {spec.name!r}, {name} -> {_element(target, {})}")
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
            body.append(f"{printer.doprint(sym)} = {_element(loads.index[sym], views)}")
    for sym, e in replacements:
        body.append(f"{printer.doprint(sym)} = {printer.doprint(e)}")
    for k, ((target, _, op), e) in enumerate(zip(stores, reduced)):
        body.append(f"{_element(target, views)} {op} {literal.get(k) or printer.doprint(e)}")
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


def _dah_is_dax(spec, P) -> bool:
    """Whether dL/d(ah1) equals dL/d(ax) gate by gate, so bwd_units stores it once (in dax).

    True for one-stage cells whose gates see ``ax_g`` and ``ah_g`` only through their sum
    (RNNs, LSTMs); False for PyTorch's GRU, whose candidate reads ``r * ah_n``.
    """
    import sympy

    if spec.stage2:
        return False
    for g in spec.gates:
        for s in spec.state:
            a, b = P[(s, f"ax_{g}")], P[(s, f"ah_{g}")]
            if a != b and sympy.expand(a - b) != 0:
                return False
    return True


def _saved_values(spec, stores):
    """The function values (sigmoid, tanh, exp ...) the backward expressions of `stores` use.

    Returns ``(saved, replaced)``: ``saved`` is a list of ``(symbol, expression)``, the
    outermost function calls in the expressions (``tanh(c)`` whole, not the sigmoids inside
    c), and ``replaced`` is `stores` with those calls replaced by their symbols.  The forward
    pass computes the calls anyway; saving them spares the backward pass every exp and tanh.
    Empty for two-stage cells, whose backward step also needs the recurrent input's.
    """
    import sympy

    from ..symbolic.functions import relu, sigmoid, step

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


def _stub(name, args, doc):
    return f'@njit(**JIT)\ndef {name}({", ".join(args)}):\n    """{doc}"""\n    return\n'


def generate_source(spec, dtype="float64") -> str:
    """The full source of `spec`'s kernel module for arrays of `dtype` (float64 or float32)."""
    import sympy

    from .printer import KernelPrinter

    f32 = _is_f32(dtype)
    d = spec.derivation
    P = spec.partials()
    loads = _Loads(spec, KernelPrinter(float32=f32))
    S = len(spec.state)
    zero = sympy.S.Zero
    dah1_is_dax = _dah_is_dax(spec, P)
    parts = [
        '"""Kernels of one cell (CELL), generated by gradflow from its equations.',
        "",
        "Do not edit: regenerated whenever the cell's equations or the code generator change.",
        '"""',
        "",
        f"CELL = {spec.name!r}",
        f"SPEC_HASH = {spec.hash!r}",
        "",
        "import math",
        "",
        "import numpy as np",
        "from numba import njit, prange, types",
        "from llvmlite import ir",
        "from numba.extending import intrinsic",
        "",
        f"DTYPE = np.{'float32' if f32 else 'float64'}",
        f"JIT = {JIT_OPTIONS!r}",
        f"STAGE2 = {bool(spec.stage2)}",
        f"NUM_STATE = {S}",
        f"NUM_GATES = {spec.num_gates}",
        f"NUM_STAGE1 = {len(spec.stage1)}",
        f"NUM_PARAMS = {len(spec.params)}",
        f"DAH1_IS_DAX = {dah1_is_dax}",
        "NUM_SAVED = {NUM_SAVED}",
        f"INTERMEDIATES = {spec.intermediates!r}",
        PRELUDE_F32 if f32 else PRELUDE,
    ]
    base_args = ["ax", "ah1", "ah2", "sp", "prm"]
    rho_args = ["ax", "ah1", "sp", "prm"]

    # forward
    stores = [(_state_row("sn", k, s), d.outputs[k], "=") for k, s in enumerate(spec.state)]
    parts.append(_unit_function(spec, loads, "fwd_units", base_args + ["sn"], stores,
                                "New state sn (S, B, H) from one step."))
    # intermediates (gate values ...)
    stores = [(_state_row("out", k, n), d.full[n], "=") for k, n in enumerate(spec.intermediates)]
    if stores:
        parts.append(_unit_function(spec, loads, "intermediates_units", base_args + ["out"], stores,
                                    "Every named intermediate (K, B, H), in equation order."))
    else:
        parts.append(_stub("intermediates_units", base_args + ["out"], "No intermediates."))

    # backward: vector-Jacobian product of the unit map
    dS = [sympy.Symbol(f"_dS{k}", real=True) for k in range(S)]
    for k, s in enumerate(dS):
        loads.add(s, _state_row("dsn", k, spec.state[k]))

    def vjp(var):
        return sum((dS[k] * P[(spec.state[k], var)] for k in range(S)), zero)

    stores = []
    for k, g in enumerate(spec.gates):
        stores.append((_gate_row("dax", k, g), vjp(f"ax_{g}"), "="))
    if not dah1_is_dax:
        for k, g in enumerate(spec.stage1):
            stores.append((_gate_row("dah1", k, g), vjp(f"ah_{g}"), "="))
    for k, g in enumerate(spec.stage2):
        stores.append((_gate_row("dah2", k, g), vjp(f"ah_{g}"), "="))
    for k, s in enumerate(spec.state):
        stores.append((_state_row("dsp", k, s), vjp(f"{s}_prev"), "="))
    for k, p in enumerate(spec.params):
        stores.append((f"dprm[{k}, j]", vjp(p), "+="))
    parts.append(_unit_function(
        spec, loads, "bwd_units",
        base_args + ["dsn", "dax", "dah1", "dah2", "dsp", "dprm"], stores,
        "Backward through one step: gradients of pre-activations and previous state; "
        "accumulates dprm."))

    # the same backward step from function values saved by the forward pass
    saved, bwd_saved = _saved_values(spec, stores)
    for k, (sym, _) in enumerate(saved):
        loads.add(sym, _saved_row(k))
    if saved:
        fwd = [(_state_row("sn", k, s), d.outputs[k], "=") for k, s in enumerate(spec.state)]
        fwd += [(_saved_row(k), value, "=") for k, (_, value) in enumerate(saved)]
        parts.append(_unit_function(
            spec, loads, "fwd_save_units", base_args + ["sn", "sv"], fwd,
            "fwd_units, also saving the function values bwd_saved_units needs: sv (B, NUM_SAVED*H)."))
        parts.append(_unit_function(
            spec, loads, "bwd_saved_units",
            base_args + ["sv", "dsn", "dax", "dah1", "dah2", "dsp", "dprm"], bwd_saved,
            "bwd_units with the sigmoids, tanhs ... read from sv (saved by fwd_save_units)."))
    else:
        parts.append(_stub("fwd_save_units", base_args + ["sn", "sv"], "Nothing to save."))
        parts.append(_stub("bwd_saved_units",
                           base_args + ["sv", "dsn", "dax", "dah1", "dah2", "dsp", "dprm"],
                           "Nothing saved: bwd_units is used."))
    parts[parts.index("NUM_SAVED = {NUM_SAVED}")] = f"NUM_SAVED = {len(saved)}"

    # partial derivatives, for Jacobian assembly
    stores = []
    for a, s in enumerate(spec.state):
        for k, g in enumerate(spec.gates):
            stores.append(((f"row_jax_{s}_{g}", f"jax[{a}, {k}, b]"), P[(s, f"ax_{g}")], "="))
            stores.append(((f"row_jah_{s}_{g}", f"jah[{a}, {k}, b]"), P[(s, f"ah_{g}")], "="))
        for c, s2 in enumerate(spec.state):
            stores.append(((f"row_jsp_{s}_{s2}", f"jsp[{a}, {c}, b]"), P[(s, f"{s2}_prev")], "="))
    parts.append(_unit_function(
        spec, loads, "partials_units", base_args + ["jax", "jah", "jsp"], stores,
        "Partials of the new state: jax, jah (S, G, B, H) and jsp (S, S, B, H)."))

    # log |direct edge| d s / d s_prev (cell-state path products in log space)
    stores = []
    for a, s in enumerate(spec.state):
        edge = P[(s, f"{s}_prev")]
        value = "-math.inf" if edge == 0 else sympy.expand_log(sympy.log(sympy.Abs(edge)), force=True)
        stores.append((_state_row("out", a, s), value, "="))
    parts.append(_unit_function(
        spec, loads, "logdirect_units", base_args + ["out"], stores,
        "log |d s_t / d s_{t-1}| of each component's direct edge (S, B, H)."))

    # two-stage cells: the recurrent input and its derivatives
    if spec.stage2:
        u_name = spec.recurrent_input
        parts.append(_unit_function(spec, loads, "rho_units", rho_args + ["u"],
                                    [(("row_u", "u[b]"), d.recurrent_input, "=")],
                                    "Recurrent input u (B, H) of the second-stage gates."))
        du = sympy.Symbol("_dU", real=True)
        loads.add(du, ("row_du", "du[b]"))
        stores = []
        for k, g in enumerate(spec.gates):
            stores.append((_gate_row("dax", k, g), du * P[(u_name, f"ax_{g}")], "+="))
        for k, g in enumerate(spec.stage1):
            stores.append((_gate_row("dah1", k, g), du * P[(u_name, f"ah_{g}")], "+="))
        for k, s in enumerate(spec.state):
            stores.append((_state_row("dsp", k, s), du * P[(u_name, f"{s}_prev")], "+="))
        for k, p in enumerate(spec.params):
            stores.append((f"dprm[{k}, j]", du * P[(u_name, p)], "+="))
        stores = [st for st in stores if st[1] != 0]
        parts.append(_unit_function(spec, loads, "rho_bwd_units",
                                    rho_args + ["du", "dax", "dah1", "dsp", "dprm"], stores,
                                    "Backward through u: accumulates into dax, dah1, dsp, dprm."))
        stores = []
        for k, g in enumerate(spec.gates):
            stores.append((_state_row("rax", k, g), P[(u_name, f"ax_{g}")], "="))
            stores.append((_state_row("rah", k, g), P[(u_name, f"ah_{g}")], "="))
        for k, s in enumerate(spec.state):
            stores.append((_state_row("rsp", k, s), P[(u_name, f"{s}_prev")], "="))
        parts.append(_unit_function(spec, loads, "rho_partials_units",
                                    rho_args + ["rax", "rah", "rsp"], stores,
                                    "Partials of u: rax, rah (G, B, H), rsp (S, B, H)."))
    else:
        parts.append(_stub("rho_units", rho_args + ["u"], "One-stage cell: no recurrent input."))
        parts.append(_stub("rho_bwd_units", rho_args + ["du", "dax", "dah1", "dsp", "dprm"],
                           "One-stage cell: no recurrent input."))
        parts.append(_stub("rho_partials_units", rho_args + ["rax", "rah", "rsp"],
                           "One-stage cell: no recurrent input."))

    for name, src in template_sources():
        parts.append(f"\n# ---- template {name} " + "-" * max(0, 60 - len(name)) + "\n")
        parts.append(src)
    return "\n".join(parts) + "\n"
