"""``gradflow info``: the versions, BLAS libraries, per-step product route and kernel cache
that this environment gives gradflow (for bug reports and benchmark headers)."""

from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")


def facts() -> dict:
    """What ``gradflow info`` prints, as a dict."""
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    import numpy as np

    from . import _blas, _threads
    from ._version import __version__
    from .codegen.cache import cache_folder

    def version(name):
        try:
            return installed(name)
        except PackageNotFoundError:
            return None

    _blas.packed_available()   # loads oneMKL first if it is used, so that it is listed below
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS the kernels' np.dot calls)
    from threadpoolctl import threadpool_info

    blas = [f"{lib.get('internal_api')} {lib.get('version')} ({lib.get('architecture')}, "
            f"{lib.get('num_threads')} threads, {lib.get('filepath')})"
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    folder = cache_folder()
    return {
        "gradflow": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "numpy": np.__version__,
        "scipy": version("scipy"),
        "numba": version("numba"),
        "sympy": version("sympy"),
        "cores": _threads.cores(),
        "blas": blas,
        "per-step products": _blas.describe(),
        "kernel cache": str(folder.path) if folder.path else "none (compiled in memory)",
    }


def run(args) -> int:
    info = facts()
    if args.json:
        import json

        print(json.dumps(info, indent=1))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        if isinstance(value, list):
            for i, v in enumerate(value):
                print(f"{key if i == 0 else '':<{width}}  {v}")
        else:
            print(f"{key:<{width}}  {value}")
    return 0
