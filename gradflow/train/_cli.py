"""``gradflow train TASK --cell lstm --length 100 ...``: train a cell on a long-lag task
and print the outcome beside the 1997 result."""

from __future__ import annotations

import argparse
import json


#: the default of the bias flags: the cell's recipe (not a string: argparse would convert it)
_RECIPE = object()


def _bias(text: str):
    """A bias flag's value: a number, or ``none`` for PyTorch's initialisation."""
    if text.strip().lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none'; got {text!r}") from None


def add_arguments(parser) -> None:
    from .loop import RECIPE
    from .tasks import names

    r = RECIPE
    parser.add_argument("task", choices=names(), help="the task")
    parser.add_argument("--cell", default="lstm", help="catalogue cell (default: lstm)")
    parser.add_argument("--length", type=int, default=None,
                        help="sequence length T, the time lag to bridge (reber: the longest "
                             "string); default: the task's own (100 for adding)")
    parser.add_argument("--hidden", type=int, default=r["hidden_size"],
                        help=f"hidden units H (default: {r['hidden_size']})")
    parser.add_argument("--batch", type=int, default=r["batch_size"],
                        help=f"sequences per update (default: {r['batch_size']})")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default=r["optimizer"],
                        help=f"the update rule (default: {r['optimizer']})")
    parser.add_argument("--lr", type=float, default=r["lr"],
                        help=f"learning rate (default: {r['lr']})")
    parser.add_argument("--clip", type=float, default=r["clip"],
                        help=f"clip the global gradient norm to this; 0 for no clipping "
                             f"(default: {r['clip']:g})")
    parser.add_argument("--forget-bias", type=_bias, default=_RECIPE, metavar="B",
                        help="initial forget-gate bias (LSTM f, GRU z), or 'none' for "
                             "PyTorch's initialisation (default: 3 for cells with one)")
    parser.add_argument("--input-bias", type=_bias, default=_RECIPE, metavar="B",
                        help="initial input-gate bias of LSTMs, or 'none' (default: -3 for "
                             "cells with an input gate: the 1997 nets began with negative ones)")
    parser.add_argument("--max-sequences", type=int, default=100_000,
                        help="budget of training sequences (default: 100000)")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time budget")
    parser.add_argument("--window", type=int, default=r["window"],
                        help="stop once this many recent training sequences were all correct "
                             f"(the 1997 rule; default: {r['window']})")
    parser.add_argument("--test-size", type=int, default=2560,
                        help="fresh sequences for the final test (default: 2560, as in 1997)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the weights, the training stream and the test (default: 0)")
    parser.add_argument("--json", metavar="FILE", help="write the result and history to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_writable(flag: str, path: str) -> None:
    import os

    from ..errors import InvalidArgumentError

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InvalidArgumentError(f"`{flag}` {path!r}: the folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise InvalidArgumentError(f"`{flag}` {path!r} is a folder; expected a file name")
    if not os.access(folder, os.W_OK):
        raise InvalidArgumentError(f"`{flag}` {path!r}: the folder {folder!r} cannot be written")


def _chance(loss) -> str:
    return "n/a" if loss is None else f"{loss:.4g}"


def run(args) -> int:
    from ..cell import Cell
    from .loop import initial_biases, recipe, train
    from .tasks import get

    if args.json:  # refuse a file that cannot be written before training, not after
        _check_writable("--json", args.json)
    opts = {}
    if args.length is not None:
        opts["max_length" if args.task == "reber" else "length"] = args.length
    task = get(args.task, **opts)
    defaults = recipe(args.cell)
    forget = defaults["forget_bias"] if args.forget_bias is _RECIPE else args.forget_bias
    inputs = defaults["input_bias"] if args.input_bias is _RECIPE else args.input_bias
    cell = Cell(args.cell, task.input_size, args.hidden, seed=args.seed, forget_bias=forget)
    initial_biases(cell, input_bias=inputs)
    shown = {"forget-gate bias": forget, "input-gate bias": inputs}
    biases = ", ".join(f"{k} {v:g}" for k, v in shown.items() if v is not None) or "PyTorch's biases"
    print(f"recipe: {args.cell}, H={args.hidden}, {biases}; batch {args.batch}, "
          f"{args.optimizer} lr {args.lr:g}, clip {args.clip or 'none'}, window {args.window}; "
          f"{task!r}", flush=True)
    result = train(cell, task, batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                   clip=args.clip or None, max_sequences=args.max_sequences,
                   max_seconds=args.max_seconds, window=args.window, test_size=args.test_size,
                   seed=args.seed, verbose=not args.quiet)
    t = result.test
    print(f"{args.cell} (H={args.hidden}, {result.settings['parameters']} weights) on {task!r}")
    print(f"  stopping rule met: {'yes' if result.solved else 'no'} after {result.sequences:,} "
          f"training sequences, {result.wall_time:.1f} s "
          f"({result.sequences / max(result.wall_time, 1e-9):,.0f} sequences/s)")
    if t:
        print(f"  test: {t['wrong']} wrong of {t['total']:,} (accuracy {t['accuracy']:.4f}), "
              f"loss {t['loss']:.4g}; chance loss {_chance(task.chance['loss'])}")
    if task.paper:
        p = task.paper
        wrong = "" if p.get("wrong") is None else f"{p['wrong']} wrong of {p['test']:,} after "
        print(f"  Hochreiter & Schmidhuber 1997: {wrong}{p['sequences']:,} training sequences "
              "(online SGD, one sequence per update)")
    if args.json:
        h = result.history
        out = {"settings": result.settings, "solved": result.solved, "sequences": result.sequences,
               "wall_time": result.wall_time, "test": t, "paper": task.paper,
               "history": {k: v.tolist() for k, v in h.items()}}
        with open(args.json, "w") as fh:
            json.dump(out, fh)
    return 0 if result.solved else 1
