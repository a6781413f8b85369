"""``gradflow train TASK --cell lstm --length 100 ...``: train a cell on a long-lag task
and print the outcome beside the 1997 result."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    from .tasks import names

    parser.add_argument("task", choices=names(), help="the task")
    parser.add_argument("--cell", default="lstm", help="catalogue cell (default: lstm)")
    parser.add_argument("--length", type=int, default=None,
                        help="sequence length T (the lag; reber: the longest string)")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units H (default: 16)")
    parser.add_argument("--batch", type=int, default=32, help="sequences per update (default: 32)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default: 0.01)")
    parser.add_argument("--clip", type=float, default=1.0,
                        help="clip the global gradient norm to this; 0 for no clipping (default: 1)")
    parser.add_argument("--forget-bias", type=float, default=None,
                        help="initial forget-gate bias (LSTM f, GRU z)")
    parser.add_argument("--input-bias", type=float, default=None,
                        help="initial input-gate bias of LSTMs (the 1997 nets used negative ones)")
    parser.add_argument("--max-sequences", type=int, default=100_000, help="budget (default: 100000)")
    parser.add_argument("--max-seconds", type=float, default=None, help="wall-time budget")
    parser.add_argument("--window", type=int, default=2000,
                        help="stop once this many recent training sequences were all correct")
    parser.add_argument("--test-size", type=int, default=2560)
    parser.add_argument("--seed", type=int, default=0)
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


def run(args) -> int:
    from ..cell import Cell
    from .loop import initial_biases, train
    from .tasks import get

    if args.json:  # refuse a file that cannot be written before training, not after
        _check_writable("--json", args.json)
    opts = {}
    if args.length is not None:
        opts["max_length" if args.task == "reber" else "length"] = args.length
    task = get(args.task, **opts)
    cell = Cell(args.cell, task.input_size, args.hidden, seed=args.seed, forget_bias=args.forget_bias)
    if args.input_bias is not None:
        initial_biases(cell, input_bias=args.input_bias)
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
              f"loss {t['loss']:.4g}; chance loss {task.chance['loss']}")
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
