"""The machine a benchmark ran on: CPU, cores, BLAS libraries, and its measured GEMM peak.

Run as a script (``python benchmarks/_machine.py``) it prints the facts as JSON; the
runner starts it in a child process so that the BLAS report covers every library a
gradflow process loads (NumPy's OpenBLAS, and SciPy's, which Numba's ``np.dot`` calls).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

#: Variables this machine sets that slow a current NumPy's OpenBLAS; a user's machine has
#: neither.  The runner measures once with the environment as it stands and once without.
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD extensions the CPU reports (the AVX family), for the record."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return sorted(f for f in flags if f.startswith(("avx", "fma")))
    except OSError:
        pass
    return []


def blas_libraries() -> list[dict]:
    """Every BLAS loaded after importing NumPy, SciPy's BLAS and Numba (threadpoolctl)."""
    import numpy  # noqa: F401
    import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls)
    from threadpoolctl import threadpool_info

    keep = ("internal_api", "version", "architecture", "num_threads", "threading_layer",
            "filepath")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()
            if lib.get("user_api") == "blas"]


def torch_backends() -> str | None:
    """PyTorch's BLAS and oneDNN (mkldnn) as its build reports them, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    cfg = torch.__config__.show()
    blas = next((w.split("=", 1)[1].rstrip(",") for w in cfg.split() if w.startswith("BLAS_INFO=")), "?")
    return f"BLAS {blas}, oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}"


def gemm_peak(dtype: str, n: int, repeats: int) -> dict:
    """GFLOP/s of an n x n NumPy matmul: the median and best of `repeats` after a warm-up."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(dtype)
    b = rng.standard_normal((n, n)).astype(dtype)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    flops = 2.0 * n ** 3
    return {"n": n, "median_gflops": flops / float(np.median(times)) / 1e9,
            "best_gflops": flops / min(times) / 1e9, "seconds": times}


def describe(peak_n: int = 4096, repeats: int = 5) -> dict:
    """Facts about this machine and process environment, with the GEMM peak per dtype."""
    import numpy as np

    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "simd": cpu_flags(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_libraries(),
        "env": {k: os.environ.get(k) for k in BLAS_ENV},
        "peak": {dt: gemm_peak(dt, peak_n, repeats) for dt in ("float64", "float32")},
    }
    info["torch_backends"] = torch_backends()
    try:
        from gradflow import _blas

        info["per_step"] = _blas.describe()
    except Exception as exc:  # a checkout that cannot import gradflow still gets its facts
        info["per_step"] = f"unknown ({type(exc).__name__}: {exc})"
    from importlib import metadata

    for name in ("scipy", "numba", "torch", "jax"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(json.dumps(describe(n, reps)))
