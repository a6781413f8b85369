"""A GRU written by hand with torch operations, correct (PyTorch's convention: the reset
gate multiplies ``W_hn h + b_hn``) and with the reset gate applied before the matmul."""

from __future__ import annotations

import torch
from torch import nn

INPUT_SIZE, HIDDEN_SIZE = 2, 3


class HandGRU(nn.Module):
    def __init__(self, input_size: int = INPUT_SIZE, hidden_size: int = HIDDEN_SIZE,
                 reset_before_matmul: bool = False):
        super().__init__()
        H = hidden_size
        k = 1.0 / H ** 0.5
        self.hidden_size = H
        self.reset_before_matmul = reset_before_matmul
        self.weight_ih = nn.Parameter(torch.empty(3 * H, input_size).uniform_(-k, k))
        self.weight_hh = nn.Parameter(torch.empty(3 * H, H).uniform_(-k, k))
        self.bias_ih = nn.Parameter(torch.empty(3 * H).uniform_(-k, k))
        self.bias_hh = nn.Parameter(torch.empty(3 * H).uniform_(-k, k))

    def forward(self, x):
        T, B, _ = x.shape
        H = self.hidden_size
        Wr, Wz, Wn = self.weight_hh.chunk(3, dim=0)
        br, bz, bn = self.bias_hh.chunk(3, dim=0)
        h = x.new_zeros(B, H)
        out = []
        for t in range(T):
            xr, xz, xn = (x[t] @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
            r = torch.sigmoid(xr + h @ Wr.T + br)
            z = torch.sigmoid(xz + h @ Wz.T + bz)
            if self.reset_before_matmul:
                n = torch.tanh(xn + (r * h) @ Wn.T + bn)
            else:
                n = torch.tanh(xn + r * (h @ Wn.T + bn))
            h = (1 - z) * n + z * h
            out.append(h)
        return torch.stack(out)


def correct():
    return HandGRU()


def reset_before_matmul():
    return HandGRU(reset_before_matmul=True)
