"""An LSTM written by hand with torch operations, as a user would, and three buggy copies.

``forward(x)`` takes a time-major ``(T, B, D)`` input and returns the ``(T, B, H)``
sequence of hidden states from a zero state; parameters carry PyTorch's names, shapes
and gate order (i, f, g, o).
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE, HIDDEN_SIZE = 3, 4


class HandLSTM(nn.Module):
    """``bug``: None, "gate order" (reads the blocks as i f o g), "forget bias twice"
    (adds bias_ih's forget rows a second time) or "no output tanh" (h = o * c)."""

    def __init__(self, input_size: int = INPUT_SIZE, hidden_size: int = HIDDEN_SIZE, bug=None):
        super().__init__()
        H = hidden_size
        k = 1.0 / H ** 0.5
        self.hidden_size = H
        self.bug = bug
        self.weight_ih = nn.Parameter(torch.empty(4 * H, input_size).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(4 * H, H).uniform_(-k, k))
        self.bias_ih = nn.Parameter(torch.empty(4 * H).uniform_(-k, k))
        self.bias_hh = nn.Parameter(torch.empty(4 * H).uniform_(-k, k))

    def forward(self, x):
        T, B, _ = x.shape
        H = self.hidden_size
        h = x.new_zeros(B, H)
        c = x.new_zeros(B, H)
        out = []
        for t in range(T):
            a = x[t] @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh
            if self.bug == "gate order":
                ai, af, ao, ag = a.chunk(4, dim=1)
            else:
                ai, af, ag, ao = a.chunk(4, dim=1)
            if self.bug == "forget bias twice":
                af = af + self.bias_ih[H:2 * H]
            i, f, o = torch.sigmoid(ai), torch.sigmoid(af), torch.sigmoid(ao)
            g = torch.tanh(ag)
            c = f * c + i * g
            h = o * c if self.bug == "no output tanh" else o * torch.tanh(c)
            out.append(h)
        return torch.stack(out)


def correct():
    return HandLSTM()


def wrong_gate_order():
    return HandLSTM(bug="gate order")


def forget_bias_twice():
    return HandLSTM(bug="forget bias twice")


def no_output_tanh():
    return HandLSTM(bug="no output tanh")
