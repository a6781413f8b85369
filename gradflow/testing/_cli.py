"""``gradflow verify``: run the property checks on a catalogue cell or on your own RNN.

Usage::

    gradflow verify lstm                          # every identity that applies to a cell
    gradflow verify                               # every catalogue cell
    gradflow verify mypkg.rnn:make_lstm --kind lstm
    gradflow verify path/to/file.py:step --kind gru --examples 20 --seed 1

``module:function`` protocol: ``module`` is an importable module (the current directory
is searched first) or a path to a ``.py`` file; ``function`` names

* a ``torch.nn.Module`` instance, or a zero-argument callable returning one: ``forward(x)``
  takes a time-major ``(T, B, D)`` input and returns the ``(T, B, H)`` hidden states
  (or a tuple starting with them), from a zero state; its parameters are named
  ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` with PyTorch's shapes and gate
  order (``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` themselves qualify);
* a NumPy step function ``step(x_t, state, params) -> state`` (``x_t`` ``(B, D)``, state a
  tuple ``(h,)`` or ``(h, c)`` of ``(B, H)`` arrays, params a dict with the names above),
  or a zero-argument callable returning one.

The command prints a table (property, examples tried, worst error, tolerance, verdict),
then the details of every failed property, and exits with status 1 when one failed, 2
when the check could not run (a target that does not import, a factory that raises).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path

from ..errors import InvalidArgumentError

KINDS = ("lstm", "gru", "rnn", "rnn-relu")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    # the module documentation's usage and protocol, without reStructuredText's markup
    parser.epilog = "usage examples:" + __doc__.split("Usage::", 1)[1].replace("``", "")
    parser.add_argument("target", nargs="?", default=None, metavar="CELL | module:function",
                        help="a catalogue cell name, or your implementation (default: every cell)")
    parser.add_argument("--kind", choices=KINDS, default=None,
                        help="the cell your implementation computes (inferred for nn.LSTM/GRU/RNN)")
    parser.add_argument("--examples", type=int, default=10, metavar="N",
                        help="random examples per property (default 10)")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")


def _load_module(spec: str):
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise InvalidArgumentError(f"`target` names the file {spec!r}, which does not exist")
        mspec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(mspec)
        sys.modules.setdefault(path.stem, module)
        mspec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        raise InvalidArgumentError(f"`target`: cannot import module {spec!r}: {exc}") from None


def _n_required(obj) -> int | None:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return sum(1 for p in sig.parameters.values()
               if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _user_code(what: str, fn, *args):
    """Run code of the user's (an import, a factory): anything it raises means the check
    could not run (exit status 2), not that a property failed (status 1)."""
    try:
        return fn(*args)
    except InvalidArgumentError:
        raise
    except (Exception, SystemExit) as exc:
        code = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise InvalidArgumentError(f"`target`: {what} failed, so nothing was checked: {code}") from None


def resolve(target: str):
    """The implementation named by ``module:function`` (see the module documentation)."""
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise InvalidArgumentError(
            f"`target` {target!r} must be a cell name or module:function")
    module = _user_code(f"importing {module_name!r}", _load_module, module_name)
    if not hasattr(module, attr):
        raise InvalidArgumentError(f"`target`: module {module_name!r} has no attribute {attr!r}")
    obj = getattr(module, attr)
    try:
        import torch

        if isinstance(obj, torch.nn.Module):
            return obj
    except ImportError:  # pragma: no cover
        pass
    if callable(obj):
        n = _n_required(obj)
        if n == 3:
            return obj
        if n == 0 or inspect.isclass(obj):
            return _user_code(f"calling {attr}()", obj)
    raise InvalidArgumentError(
        f"`target` {target!r} is a {type(obj).__name__}; expected a torch.nn.Module, a step "
        "function step(x_t, state, params) or a zero-argument callable returning one")


def run(args) -> int:
    from .. import cells

    if args.examples < 1:
        raise InvalidArgumentError(f"`--examples` must be >= 1; got {args.examples}")
    reports = []
    if args.target is not None and ":" in args.target:
        from .implementation import check_implementation

        impl = resolve(args.target)
        rep = check_implementation(impl, args.kind, examples=args.examples, seed=args.seed,
                                   raise_on_failure=False)
        rep.subject = f"{args.target} as {rep.subject.rsplit(' as ', 1)[-1]}"
        reports.append(rep)
    else:
        from .checks import check_symbolic
        from .identities import check_identities

        if args.kind is not None:
            raise InvalidArgumentError("`--kind` is for implementations (module:function), "
                                       "not for catalogue cells")
        names = [cells.get(args.target).name] if args.target else cells.names()
        for name in names:
            rep = check_identities(name, examples=args.examples, seed=args.seed,
                                   raise_on_failure=False)
            rep.append(check_symbolic(name, examples=max(1, args.examples // 5), seed=args.seed,
                                      raise_on_failure=False))
            rep.subject = f"cell {name!r}"
            reports.append(rep)
    failed = []
    for rep in reports:
        print(f"gradflow verify: {rep.subject}")
        print(rep.table())
        print()
        failed += [(rep.subject, r) for r in rep.failed]
    if failed:
        for subject, r in failed:
            print(f"[{subject}] {r.message()}\n")
        broke = ", ".join(f"{r.name!r}" + (f" ({s})" if len(reports) > 1 else "") for s, r in failed)
        print(f"FAILED: {len(failed)} properties broke: {broke}")
        return 1
    from ._result import INCONCLUSIVE

    total = sum(len(r) for r in reports)
    unsure = [(rep.subject, r) for rep in reports for r in rep if r.verdict == INCONCLUSIVE]
    if unsure:
        names = ", ".join(f"{r.name!r}" + (f" ({s})" if len(reports) > 1 else "") for s, r in unsure)
        print(f"OK: {total - len(unsure)} of {total} properties held; {len(unsure)} could not be "
              f"decided: {names} (see the notes above)")
    else:
        print(f"OK: all {total} properties held")
    return 0
