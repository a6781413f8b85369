"""One builder per kernel family: which per-unit expressions each family of unit functions
evaluates, derived from the cell's equations.

A family is a set of unit functions that the kernel templates call together:

* :func:`forward` -- the state update (``fwd_units``) and the named intermediates;
* :func:`backward` -- the vector-Jacobian product of one step (``bwd_units``), its
  truncated form for the 1997 gradient (``bwd_trunc_units``: the partials with respect to
  the previous state from :meth:`~gradflow.symbolic.CellSpec.truncation`), and the
  variants that read the function values the forward pass saved, so that the backward pass
  evaluates no exp or tanh (``fwd_save_units``, ``bwd_saved_units``,
  ``bwd_trunc_saved_units``);
* :func:`partials` -- every partial derivative of the new state, for Jacobian assembly,
  and the log of each component's direct edge, for path products in log space;
* :func:`recurrent_input` -- two-stage cells' recurrent input ``u`` and its derivatives
  (stubs for one-stage cells).

Each builder returns the unit functions' source and the module constants it defines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy

from .units import (Loads, dah_is_dax, gate_row, saved_row, saved_values, state_row, stub,
                    unit_function)

__all__ = ["Context", "Built", "forward", "backward", "partials", "recurrent_input", "FAMILIES"]

#: the arrays every unit function of the step reads: pre-activations, previous state, params
BASE_ARGS = ["ax", "ah1", "ah2", "sp", "prm"]
#: those the recurrent input of two-stage cells reads (before the second-stage matmul)
RHO_ARGS = ["ax", "ah1", "sp", "prm"]
BWD_ARGS = ["dsn", "dax", "dah1", "dah2", "dsp", "dprm"]


@dataclass
class Context:
    """What every builder reads: the spec, its derivation and partials (and those of the
    truncated gradient, for one-stage cells; else None), where each symbol is loaded from,
    and whether dL/d(ah1) equals dL/d(ax)."""

    spec: object
    loads: Loads
    P: dict = field(init=False)
    P_truncated: dict | None = field(init=False)
    dah1_is_dax: bool = field(init=False)

    def __post_init__(self):
        self.P = self.spec.partials()
        self.P_truncated = None if self.spec.stage2 else self.spec.partials(truncate=True)
        self.dah1_is_dax = dah_is_dax(self.spec, self.P)

    @property
    def derivation(self):
        return self.spec.derivation


@dataclass
class Built:
    """A family's unit functions (source) and the module constants it defines."""

    parts: list
    constants: dict = field(default_factory=dict)


def forward(ctx: Context) -> Built:
    """``fwd_units``: the new state from one step; ``intermediates_units``: every named
    intermediate (gate values ...)."""
    spec, d, loads = ctx.spec, ctx.derivation, ctx.loads
    stores = [(state_row("sn", k, s), d.outputs[k], "=") for k, s in enumerate(spec.state)]
    parts = [unit_function(spec, loads, "fwd_units", BASE_ARGS + ["sn"], stores,
                           "New state sn (S, B, H) from one step.")]
    stores = [(state_row("out", k, n), d.full[n], "=") for k, n in enumerate(spec.intermediates)]
    if stores:
        parts.append(unit_function(spec, loads, "intermediates_units", BASE_ARGS + ["out"], stores,
                                   "Every named intermediate (K, B, H), in equation order."))
    else:
        parts.append(stub("intermediates_units", BASE_ARGS + ["out"], "No intermediates."))
    return Built(parts)


def backward(ctx: Context) -> Built:
    """``bwd_units``: backward through one step; ``bwd_trunc_units``: the same for the 1997
    truncated gradient (a stub for two-stage cells); ``fwd_save_units`` /
    ``bwd_saved_units`` / ``bwd_trunc_saved_units``: with the function values saved by the
    forward pass.  Defines ``DAH1_IS_DAX``, ``NUM_SAVED``, ``TRUNCATABLE``, and
    ``SAVED_READS_AX`` and ``SAVED_READS_AH`` (whether the saved backward steps read the
    input or the recurrent pre-activations)."""
    spec, d, loads = ctx.spec, ctx.derivation, ctx.loads
    S = len(spec.state)
    dS = [sympy.Symbol(f"_dS{k}", real=True) for k in range(S)]
    for k, s in enumerate(dS):
        loads.add(s, state_row("dsn", k, spec.state[k]))

    def stores_of(P):
        def vjp(var):
            return sum((dS[k] * P[(spec.state[k], var)] for k in range(S)), sympy.S.Zero)

        stores = [(gate_row("dax", k, g), vjp(f"ax_{g}"), "=") for k, g in enumerate(spec.gates)]
        if not ctx.dah1_is_dax:
            stores += [(gate_row("dah1", k, g), vjp(f"ah_{g}"), "=") for k, g in enumerate(spec.stage1)]
        stores += [(gate_row("dah2", k, g), vjp(f"ah_{g}"), "=") for k, g in enumerate(spec.stage2)]
        stores += [(state_row("dsp", k, s), vjp(f"{s}_prev"), "=") for k, s in enumerate(spec.state)]
        stores += [(f"dprm[{k}, j]", vjp(p), "+=") for k, p in enumerate(spec.params)]
        return stores

    doc = ("Backward through one step: gradients of pre-activations and previous state; "
           "accumulates dprm.")
    doc_tr = ("bwd_units for the 1997 truncated gradient: the previous state's gradient "
              "through the truncated partials only.")
    stores = stores_of(ctx.P)
    parts = [unit_function(spec, loads, "bwd_units", BASE_ARGS + BWD_ARGS, stores, doc)]
    stores_tr = stores_of(ctx.P_truncated) if ctx.P_truncated is not None else []
    if stores_tr:
        parts.append(unit_function(spec, loads, "bwd_trunc_units", BASE_ARGS + BWD_ARGS,
                                   stores_tr, doc_tr))
    else:
        parts.append(stub("bwd_trunc_units", BASE_ARGS + BWD_ARGS,
                          "Two-stage cell: no truncated gradient."))
    # one set of saved values serves both forms
    saved, replaced = saved_values(spec, stores + stores_tr)
    bwd_saved, bwd_trunc_saved = replaced[:len(stores)], replaced[len(stores):]
    for k, (sym, _) in enumerate(saved):
        loads.add(sym, saved_row(k))
    if saved:
        fwd = [(state_row("sn", k, s), d.outputs[k], "=") for k, s in enumerate(spec.state)]
        fwd += [(saved_row(k), value, "=") for k, (_, value) in enumerate(saved)]
        parts.append(unit_function(
            spec, loads, "fwd_save_units", BASE_ARGS + ["sn", "sv"], fwd,
            "fwd_units, also saving the function values bwd_saved_units needs: sv (B, NUM_SAVED*H)."))
        parts.append(unit_function(
            spec, loads, "bwd_saved_units", BASE_ARGS + ["sv"] + BWD_ARGS, bwd_saved,
            "bwd_units with the sigmoids, tanhs ... read from sv (saved by fwd_save_units)."))
    else:
        parts.append(stub("fwd_save_units", BASE_ARGS + ["sn", "sv"], "Nothing to save."))
        parts.append(stub("bwd_saved_units", BASE_ARGS + ["sv"] + BWD_ARGS,
                          "Nothing saved: bwd_units is used."))
    if saved and bwd_trunc_saved:
        parts.append(unit_function(
            spec, loads, "bwd_trunc_saved_units", BASE_ARGS + ["sv"] + BWD_ARGS, bwd_trunc_saved,
            "bwd_trunc_units with the function values read from sv."))
    else:
        parts.append(stub("bwd_trunc_saved_units", BASE_ARGS + ["sv"] + BWD_ARGS,
                          "Nothing saved, or no truncated gradient: bwd_trunc_units is used."))
    # which pre-activations the saved backward steps read: a trace need not keep the others

    def reads(symbols):
        return not saved or any(not isinstance(e, str) and bool(e.free_symbols & symbols)
                                for _, e, _ in (*bwd_saved, *bwd_trunc_saved))

    return Built(parts, {"DAH1_IS_DAX": ctx.dah1_is_dax, "NUM_SAVED": len(saved),
                         "TRUNCATABLE": bool(stores_tr),
                         "SAVED_READS_AX": reads({d.ax[g] for g in spec.gates}),
                         "SAVED_READS_AH": reads({d.ah[g] for g in spec.gates})})


def partials(ctx: Context) -> Built:
    """``partials_units``: every partial of the new state (for Jacobian assembly);
    ``logdirect_units``: ``log |d s_t / d s_{t-1}|`` of each component's direct edge."""
    spec, loads, P = ctx.spec, ctx.loads, ctx.P
    stores = []
    for a, s in enumerate(spec.state):
        for k, g in enumerate(spec.gates):
            stores.append(((f"row_jax_{s}_{g}", f"jax[{a}, {k}, b]"), P[(s, f"ax_{g}")], "="))
            stores.append(((f"row_jah_{s}_{g}", f"jah[{a}, {k}, b]"), P[(s, f"ah_{g}")], "="))
        for c, s2 in enumerate(spec.state):
            stores.append(((f"row_jsp_{s}_{s2}", f"jsp[{a}, {c}, b]"), P[(s, f"{s2}_prev")], "="))
    parts = [unit_function(spec, loads, "partials_units", BASE_ARGS + ["jax", "jah", "jsp"], stores,
                           "Partials of the new state: jax, jah (S, G, B, H) and jsp (S, S, B, H).")]
    stores = []
    for a, s in enumerate(spec.state):
        edge = P[(s, f"{s}_prev")]
        value = "-math.inf" if edge == 0 else sympy.expand_log(sympy.log(sympy.Abs(edge)), force=True)
        stores.append((state_row("out", a, s), value, "="))
    parts.append(unit_function(spec, loads, "logdirect_units", BASE_ARGS + ["out"], stores,
                               "log |d s_t / d s_{t-1}| of each component's direct edge (S, B, H)."))
    return Built(parts)


def recurrent_input(ctx: Context) -> Built:
    """Two-stage cells: ``rho_units`` (the recurrent input u), ``rho_bwd_units`` (backward
    through u) and ``rho_partials_units``; stubs for one-stage cells.  Defines ``STAGE2``."""
    spec, d, loads, P = ctx.spec, ctx.derivation, ctx.loads, ctx.P
    bwd_args = RHO_ARGS + ["du", "dax", "dah1", "dsp", "dprm"]
    part_args = RHO_ARGS + ["rax", "rah", "rsp"]
    if not spec.stage2:
        return Built([stub("rho_units", RHO_ARGS + ["u"], "One-stage cell: no recurrent input."),
                      stub("rho_bwd_units", bwd_args, "One-stage cell: no recurrent input."),
                      stub("rho_partials_units", part_args, "One-stage cell: no recurrent input.")],
                     {"STAGE2": False})
    u = spec.recurrent_input
    parts = [unit_function(spec, loads, "rho_units", RHO_ARGS + ["u"],
                           [(("row_u", "u[b]"), d.recurrent_input, "=")],
                           "Recurrent input u (B, H) of the second-stage gates.")]
    du = sympy.Symbol("_dU", real=True)
    loads.add(du, ("row_du", "du[b]"))
    stores = [(gate_row("dax", k, g), du * P[(u, f"ax_{g}")], "+=") for k, g in enumerate(spec.gates)]
    stores += [(gate_row("dah1", k, g), du * P[(u, f"ah_{g}")], "+=") for k, g in enumerate(spec.stage1)]
    stores += [(state_row("dsp", k, s), du * P[(u, f"{s}_prev")], "+=") for k, s in enumerate(spec.state)]
    stores += [(f"dprm[{k}, j]", du * P[(u, p)], "+=") for k, p in enumerate(spec.params)]
    stores = [st for st in stores if st[1] != 0]
    parts.append(unit_function(spec, loads, "rho_bwd_units", bwd_args, stores,
                               "Backward through u: accumulates into dax, dah1, dsp, dprm."))
    stores = [(state_row("rax", k, g), P[(u, f"ax_{g}")], "=") for k, g in enumerate(spec.gates)]
    stores += [(state_row("rah", k, g), P[(u, f"ah_{g}")], "=") for k, g in enumerate(spec.gates)]
    stores += [(state_row("rsp", k, s), P[(u, f"{s}_prev")], "=") for k, s in enumerate(spec.state)]
    parts.append(unit_function(spec, loads, "rho_partials_units", part_args, stores,
                               "Partials of u: rax, rah (G, B, H), rsp (S, B, H)."))
    return Built(parts, {"STAGE2": True})


#: every family, in the order their unit functions appear in a generated module
FAMILIES = (forward, backward, partials, recurrent_input)
