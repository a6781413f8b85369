"""``gradflow analyze MODEL [--data FILE] [--targets FILE] [--out DIR] ...``: the gradient
flow of a trained network, as a report."""

from __future__ import annotations

import sys
import time

DEFAULT_OUT = "gradflow-analysis"


def add_arguments(parser) -> None:
    from .core import LOSSES
    from .data import LAYOUTS
    from .models import MODEL_SUFFIXES

    parser.add_argument("model", metavar="MODEL",
                        help=f"the trained model: a {', '.join(MODEL_SUFFIXES)} file (a .keras "
                             "file; a torch.save state dict, or a whole module with "
                             "--trust-pickle; an .npz of a state dict)")
    parser.add_argument("--data", metavar="FILE",
                        help="input sequences (.npy, .npz or .csv; see --layout); default: "
                             "random standard normal inputs, labelled as such")
    parser.add_argument("--data-key", metavar="KEY", help="the array of an .npz --data file")
    parser.add_argument("--layout", choices=LAYOUTS, default=None,
                        help="tbd: time-major (T, B, D); btd: batch-first (B, T, D) "
                             "(default: the model's own: btd for Keras, the module's "
                             "batch_first for PyTorch)")
    parser.add_argument("--targets", metavar="FILE",
                        help="targets (.npy, .npz, .csv): (B, K) for the last step or one per "
                             "step; for --loss cross-entropy, integer class indices (.npy, "
                             ".npz) or distributions")
    parser.add_argument("--targets-key", metavar="KEY", help="the array of an .npz --targets file")
    parser.add_argument("--loss", choices=LOSSES, default="mse", help="default: mse")
    parser.add_argument("--readout", metavar="NAME",
                        help="the model's linear layer after the recurrent part (PyTorch: its "
                             "name, e.g. head; Keras: the Dense layer's name)")
    parser.add_argument("--name", metavar="NAME",
                        help="which recurrent module, when the model has several")
    parser.add_argument("--kind", choices=("lstm", "gru", "rnn", "rnn-relu"),
                        help="the cell of a state dict (inferred from the gate count; rnn-relu "
                             "must be said)")
    parser.add_argument("--batch-first", action="store_true",
                        help="the state dict's module was batch_first (a state dict does not "
                             "record it)")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="read a torch.save file of a whole module (unpickling runs code "
                             "named by the file; needs PyTorch)")
    parser.add_argument("--forget-bias", type=float, metavar="SHIFT",
                        help="also analyse the model with every forget-gate bias shifted by "
                             "SHIFT, side by side")
    parser.add_argument("--length", type=int, default=200,
                        help="steps of the random inputs (default 200)")
    parser.add_argument("--batch", type=int, default=8,
                        help="sequences of random inputs (default 8)")
    parser.add_argument("--threshold", type=float, default=1e-8,
                        help="the horizons' level relative to lag 0 (default 1e-8)")
    parser.add_argument("--exponents", type=int, default=16,
                        help="Lyapunov exponents to measure (default 16; 0 for none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random inputs (default 0)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--format", default="md,html", metavar="md,html",
                        help="comma-separated output formats (default: md,html)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from .. import _validate as check
    from ..report import output
    from ..report.runner import FORMATS
    from .core import analyze
    from .data import read_array

    start = time.perf_counter()
    formats = check.names("--format", [f.strip() for f in args.format.split(",") if f.strip()],
                          allowed=FORMATS)
    exponents = check.positive_int("--exponents", args.exponents, minimum=0)
    # the output folder is checked (and a staging folder tried) before any work
    output.discard(output.staging(check.path("--out", args.out)))
    x = read_array(args.data, key=args.data_key, what="--data") if args.data else None
    y = read_array(args.targets, key=args.targets_key, what="--targets") if args.targets else None
    a = analyze(args.model, x, targets=y, loss=args.loss, readout=args.readout,
                layout=args.layout, name=args.name, kind=args.kind,
                batch_first=args.batch_first or None, length=args.length, batch=args.batch,
                seed=args.seed, threshold=args.threshold, forget_bias=args.forget_bias,
                exponents=max(exponents, 1), lyapunov=exponents > 0,
                trust_pickle=args.trust_pickle, progress=not args.no_progress,
                inputs_label=None if args.data is None else
                f"the sequences in {args.data}")
    a.report(args.out, formats=formats, progress=not args.no_progress)
    for line in a.summary:
        print(f"- {line}")
    print(f"wrote {args.out}/ ({', '.join(formats)}) in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0
