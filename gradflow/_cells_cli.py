"""``gradflow cells [NAME]``: list the catalogue, or print one cell's equations and Jacobian."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="a cell to show (default: list all)")
    parser.add_argument("--latex", action="store_true", help="print LaTeX instead of plain text")


def run(args) -> int:
    from . import cells

    if args.name is None:
        width = max(map(len, cells.names()))
        for name in cells.names():
            spec = cells.get(name)
            print(f"{name:<{width}}  gates {' '.join(spec.gates):<8}  state {','.join(spec.state):<4}  {spec.description}")
        return 0
    spec = cells.get(args.name)
    jac = spec.jacobian()
    if args.latex:
        print(spec.latex())
        print()
        print(jac.latex())
        return 0
    print(f"{spec.name}: {spec.description}")
    for lhs, rhs in spec.derivation.definitions.items():
        print(f"  {lhs}_t = {rhs}")
    print("one-step Jacobian blocks:")
    for block in jac.values():
        print(f"  {block!r}")
    return 0
