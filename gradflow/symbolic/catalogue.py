"""The catalogue: every cell written once, as equations.

Conventions follow PyTorch where it has the cell (gate order, where the biases sit, the
GRU's reset gate applied after the matmul).  The LSTM ablations follow Greff et al. 2017
("LSTM: A Search Space Odyssey"), taken relative to the peephole-free ``lstm``.  The 1997
cells follow Hochreiter & Schmidhuber 1997 (section 4 and appendix A.1): a memory cell's
internal state ``s_c(t) = s_c(t-1) + y_in(t) g(net_c(t))`` and output
``y_c(t) = y_out(t) h(s_c(t))``, with ``g(x) = 4 σ(x) - 2`` and ``h(x) = 2 σ(x) - 1``.
"""

from __future__ import annotations

from .spec import CellSpec

__all__ = ["CATALOGUE"]

_LSTM_TAIL = """
    c = f*c_prev + i*g
    h = o*tanh(c)
"""

CATALOGUE: dict[str, CellSpec] = {}


def _add(spec: CellSpec) -> None:
    CATALOGUE[spec.name] = spec


_add(CellSpec(
    "rnn", gates="a", description="Elman RNN with tanh (torch.nn.RNN)",
    equations="h = tanh(ax_a + ah_a)",
))
_add(CellSpec(
    "rnn-relu", gates="a", description="Elman RNN with ReLU (torch.nn.RNN, nonlinearity='relu')",
    equations="h = relu(ax_a + ah_a)",
))
_add(CellSpec(
    "rnn-linear", gates="a", description="linear RNN (no nonlinearity)",
    equations="h = ax_a + ah_a",
))
_add(CellSpec(
    "lstm", gates="i f g o", state="h c", forget_gate="f",
    description="LSTM with forget gate (torch.nn.LSTM)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        f = sigmoid(ax_f + ah_f)
        g = tanh(ax_g + ah_g)
        o = sigmoid(ax_o + ah_o)
    """ + _LSTM_TAIL,
))
_add(CellSpec(
    "lstm-nfg", gates="i g o", state="h c",
    description="LSTM without forget gate: the 1997 constant error carousel (Greff NFG)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        g = tanh(ax_g + ah_g)
        o = sigmoid(ax_o + ah_o)
        c = c_prev + i*g
        h = o*tanh(c)
    """,
))
_add(CellSpec(
    "lstm1997", gates="i g o", state="h c",
    description="the 1997 LSTM memory cell: no forget gate, g in [-2, 2], h in [-1, 1] "
                "(Hochreiter & Schmidhuber 1997)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        g = 4*sigmoid(ax_g + ah_g) - 2
        o = sigmoid(ax_o + ah_o)
        c = c_prev + i*g
        h = o*(2*sigmoid(c) - 1)
    """,
))
_add(CellSpec(
    "lstm1997-nog", gates="i g", state="h c",
    description="the 1997 memory cell of Exp. 2a/2b: no output gate, g logistic in [0, 1], "
                "h the identity (Hochreiter & Schmidhuber 1997)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        g = sigmoid(ax_g + ah_g)
        c = c_prev + i*g
        h = c
    """,
))
_add(CellSpec(
    "lstm-peephole", gates="i f g o", state="h c", forget_gate="f",
    params="peephole_i peephole_f peephole_o",
    latex_names={"peephole_i": "p_{i}", "peephole_f": "p_{f}", "peephole_o": "p_{o}"},
    description="LSTM with peephole connections (Gers & Schmidhuber 2000)",
    equations="""
        i = sigmoid(ax_i + ah_i + peephole_i*c_prev)
        f = sigmoid(ax_f + ah_f + peephole_f*c_prev)
        g = tanh(ax_g + ah_g)
        c = f*c_prev + i*g
        o = sigmoid(ax_o + ah_o + peephole_o*c)
        h = o*tanh(c)
    """,
))
_add(CellSpec(
    "lstm-cifg", gates="f g o", state="h c", forget_gate="f",
    description="LSTM with coupled input and forget gates, i = 1 - f (Greff CIFG)",
    equations="""
        f = sigmoid(ax_f + ah_f)
        i = 1 - f
        g = tanh(ax_g + ah_g)
        o = sigmoid(ax_o + ah_o)
    """ + _LSTM_TAIL,
))
_add(CellSpec(
    "lstm-nig", gates="f g o", state="h c", forget_gate="f",
    description="LSTM without input gate, i = 1 (Greff NIG)",
    equations="""
        f = sigmoid(ax_f + ah_f)
        g = tanh(ax_g + ah_g)
        o = sigmoid(ax_o + ah_o)
        c = f*c_prev + g
        h = o*tanh(c)
    """,
))
_add(CellSpec(
    "lstm-nog", gates="i f g", state="h c", forget_gate="f",
    description="LSTM without output gate, o = 1 (Greff NOG)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        f = sigmoid(ax_f + ah_f)
        g = tanh(ax_g + ah_g)
        c = f*c_prev + i*g
        h = tanh(c)
    """,
))
_add(CellSpec(
    "lstm-niaf", gates="i f g o", state="h c", forget_gate="f",
    description="LSTM without input activation function, g linear (Greff NIAF)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        f = sigmoid(ax_f + ah_f)
        g = ax_g + ah_g
        o = sigmoid(ax_o + ah_o)
    """ + _LSTM_TAIL,
))
_add(CellSpec(
    "lstm-noaf", gates="i f g o", state="h c", forget_gate="f",
    description="LSTM without output activation function, h = o c (Greff NOAF)",
    equations="""
        i = sigmoid(ax_i + ah_i)
        f = sigmoid(ax_f + ah_f)
        g = tanh(ax_g + ah_g)
        o = sigmoid(ax_o + ah_o)
        c = f*c_prev + i*g
        h = o*c
    """,
))
_add(CellSpec(
    "gru", gates="r z n", forget_gate="z",
    description="GRU, reset gate after the matmul (torch.nn.GRU)",
    equations="""
        r = sigmoid(ax_r + ah_r)
        z = sigmoid(ax_z + ah_z)
        n = tanh(ax_n + r*ah_n)
        h = (1 - z)*n + z*h_prev
    """,
))
_add(CellSpec(
    "gru-cho", gates="r z n", stage2="n", recurrent_input="u", forget_gate="z",
    description="GRU, reset gate before the matmul (Cho et al. 2014)",
    equations="""
        r = sigmoid(ax_r + ah_r)
        z = sigmoid(ax_z + ah_z)
        u = r*h_prev
        n = tanh(ax_n + ah_n)
        h = (1 - z)*n + z*h_prev
    """,
))
_add(CellSpec(
    "mgu", gates="f n", stage2="n", recurrent_input="u", forget_gate="f",
    description="minimal gated unit (Zhou et al. 2016)",
    equations="""
        f = sigmoid(ax_f + ah_f)
        u = f*h_prev
        n = tanh(ax_n + ah_n)
        h = (1 - f)*h_prev + f*n
    """,
))
