"""Exp. 1 (embedded Reber grammar) with the paper's fully connected net, trained by the
paper's truncated gradient carried forward in time (appendix A.1) and the weights changed
after every time step ("real time") or after every string, in plain NumPy.

A check of one reading, outside gradflow's kernels: gradflow's trials change the weights
once per sequence.  The net, its initial weights and the fixed training and test sets are
those of ``gradflow reproduce hochreiter1997 --exp 1-3x2 --models lstm1997-fc`` (trial
`--trial`); the loop below is written from the paper's equations.  It prints the strings
of both sets that are still wrong every 1,000 training strings, and at the end where in
the strings the test set's errors are.

    python reports/hochreiter1997/reber_realtime.py --exp 1-3x2 --update step --lr 0.5
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from gradflow.reproduce import hochreiter1997 as h97


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


class PaperNet:
    """The net in the paper's terms: per block an input and an output gate, per cell a cell
    input, each reading x(t), every cell's output, every gate's activation of t-1 and a
    bias; logistic output units reading the cells."""

    def __init__(self, net):
        p, c = net.params, net.cell
        S, U, nb = net.block_size, net.units, net.blocks
        cells = [b * U + v for b in range(nb) for v in range(S)]
        senders = cells + [b * U + S for b in range(nb)] + [b * U + S + 1 for b in range(nb)]

        def row(gate, unit):
            k = c.gate_slice(gate).start + unit
            return np.concatenate([p["weight_ih"][k], p["weight_hh"][k][senders],
                                   [p["bias_ih"][k]]])

        self.W_in = np.array([row("i", b * U) for b in range(nb)])
        self.W_out = np.array([row("o", b * U) for b in range(nb)])
        self.W_c = np.array([row("g", u) for u in cells])
        self.R = p["readout.weight"][:, cells].copy()
        self.free_c = ~net.frozen["bias_ih"][c.gate_slice("g")][cells]   # cell-input biases
        self.block = np.repeat(np.arange(nb), S)
        self.nb = nb

    def run(self, x, y=None, lr=0.0, per_step=True):
        """Outputs (L, K) for the string x (L, D); with targets y, learn (gradient of
        ½ Σ (y - out)² by the truncated forward algorithm)."""
        blk, nb = self.block, self.nb
        n = len(blk)
        y_c, y_in, y_out, s = np.zeros(n), np.zeros(nb), np.zeros(nb), np.zeros(n)
        ds_in = np.zeros((n, self.W_in.shape[1]))
        ds_c = np.zeros((n, self.W_c.shape[1]))
        total = [np.zeros_like(w) for w in (self.W_in, self.W_out, self.W_c, self.R)]
        outs = []
        for t in range(len(x)):
            src = np.concatenate([x[t], y_c, y_in, y_out, [1.0]])
            y_in, y_out = sigmoid(self.W_in @ src), sigmoid(self.W_out @ src)
            net_c = self.W_c @ src
            g = 4 * sigmoid(net_c) - 2
            s = s + y_in[blk] * g
            ds_in += (g * (y_in * (1 - y_in))[blk])[:, None] * src            # eq. 25
            ds_c += (y_in[blk] * 4 * sigmoid(net_c) * (1 - sigmoid(net_c)))[:, None] * src
            hs = 2 * sigmoid(s) - 1
            y_c = y_out[blk] * hs
            out = sigmoid(self.R @ y_c)
            outs.append(out)
            if y is None:
                continue
            d = (y[t] - out) * out * (1 - out)
            e_y = self.R.T @ d
            e_s = y_out[blk] * 2 * sigmoid(s) * (1 - sigmoid(s)) * e_y
            e_out = y_out * (1 - y_out) * np.bincount(blk, hs * e_y, nb)
            d_in = np.zeros_like(self.W_in)
            np.add.at(d_in, blk, e_s[:, None] * ds_in)
            d_c = e_s[:, None] * ds_c
            d_c[:, -1] *= self.free_c
            step = [d_in, np.outer(e_out, src), d_c, np.outer(d, y_c)]
            for acc, dw in zip(total, step):
                acc += dw
            if per_step:
                self._apply(step, lr)
        if y is not None and not per_step:
            self._apply(total, lr)
        return np.array(outs)

    def _apply(self, step, lr):
        self.W_in += lr * step[0]
        self.W_out += lr * step[1]
        self.W_c += lr * step[2]
        self.R += lr * step[3]


def wrong_steps(net, batch, j):
    """Per step of string j: True where a legal next symbol is not among the most active."""
    L = int(batch.lengths[j])
    out = net.run(batch.x[:L, j])
    legal = batch.y[:L, j] > 0
    big = np.where(legal, out, np.inf).min(-1)
    small = np.where(legal, -np.inf, out).max(-1)
    return ~(big > small)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exp", default="1-3x2", choices=["1-3x2", "1-4x1"])
    ap.add_argument("--trial", type=int, default=0)
    ap.add_argument("--update", default="step", choices=["step", "sequence"])
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--sequences", type=int, default=30_000)
    args = ap.parse_args()
    exp = h97.BY_KEY[args.exp]
    point = {"exp": exp.key, "model": "lstm1997-fc", "trial": args.trial, "budget": 1,
             "max_seconds": None, "base_seed": 0}
    gnet, task, rule, _, _, options = h97.trial_setup(point)
    train, test = rule.train, rule.test
    net = PaperNet(gnet)
    rng = options["rng"]
    for seen in range(1, args.sequences + 1):
        j = int(rng.integers(0, train.size))
        L = int(train.lengths[j])
        net.run(train.x[:L, j], train.y[:L, j], args.lr, args.update == "step")
        if seen % 1000 == 0:
            wrong = sum(wrong_steps(net, b, k).any() for b in (train, test)
                        for k in range(b.size))
            print(f"{seen:>7,} strings: {wrong} of 512 wrong", flush=True)
            if wrong == 0:
                break
    where, steps = Counter(), Counter()
    for k in range(test.size):
        bad = wrong_steps(net, test, k)
        L = len(bad)
        for t in range(L):
            kind = ("first" if t < 2 else "penultimate" if t == L - 2 else "last"
                    if t == L - 1 else "inner")
            steps[kind] += 1
            where[kind] += int(bad[t])
    print("test set, wrong steps:", ", ".join(f"{k} {where[k]} of {steps[k]}"
                                             for k in ("first", "inner", "penultimate", "last")))


if __name__ == "__main__":
    main()
