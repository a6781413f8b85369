"""The ``gradflow`` command.

Subcommands are defined next to what they run; each module offers
``add_arguments(parser)`` and ``run(args) -> int`` and is imported only when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["main"]

#: subcommand -> (module, one-line help)
COMMANDS = {
    "report": ("gradflow.report._cli", "write the analytical report (Markdown + HTML)"),
    "analyze": ("gradflow.analyzer._cli", "the gradient-flow report of your own trained model"),
    "verify": ("gradflow.testing._cli", "run the property checks on a cell or your own RNN"),
    "train": ("gradflow.train._cli", "train a cell on a long-lag task"),
    "reproduce": ("gradflow.reproduce._cli",
                  "run a paper's experiments and write its table beside the measured one"),
    "cells": ("gradflow._cells_cli", "list the catalogue cells, or show one's equations"),
    "info": ("gradflow._info_cli",
             "versions, BLAS libraries, per-step product route and kernel cache in use"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradflow",
        description="How gradients flow, vanish and explode through recurrent networks.",
    )
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"gradflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = sys.argv[1] if len(sys.argv) > 1 else None
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(command_module=module)
        if name == chosen or chosen in (None, "-h", "--help"):
            try:
                importlib.import_module(module).add_arguments(p)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return parser


def _show_progress_messages() -> None:
    """Print gradflow's INFO messages (kernels compiling ...) on stderr, once."""
    import logging

    log = logging.getLogger("gradflow")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gradflow: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def main(argv: list[str] | None = None) -> int:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:])
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .errors import GradflowError

    _show_progress_messages()
    try:
        return int(importlib.import_module(args.command_module).run(args) or 0)
    except GradflowError as exc:
        print(f"gradflow {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
