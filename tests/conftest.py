"""Shared test set-up: hypothesis profiles, the tolerance helper, kernel warm-up.

Profiles: ``dev`` (default, fewer examples) and ``ci`` (``HYPOTHESIS_PROFILE=ci``, set by
``.ci/run``).  Both have ``deadline=None``: the first call of a kernel compiles it or loads
it from Numba's cache, which would otherwise trip hypothesis's deadline.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from gradflow.config import tolerance

settings.register_profile(
    "dev", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def assert_close(actual, desired, dtype=np.float64, kind="reference", err_msg=""):
    """``assert_allclose`` with the suite's tolerance for `dtype` and comparison `kind`."""
    np.testing.assert_allclose(actual, desired, err_msg=err_msg, **tolerance(dtype, kind))


def rel_error(actual, desired) -> float:
    """max |a - d| / max(|d|, tiny): one number for a whole array."""
    actual, desired = np.asarray(actual, dtype=np.float64), np.asarray(desired, dtype=np.float64)
    scale = max(np.max(np.abs(desired)), 1e-300)
    return float(np.max(np.abs(actual - desired)) / scale)


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")
