"""Shared fixtures for the core tests.

x64 is never switched on globally: tests that need float64 take the ``x64`` fixture
(or the parametrized ``precision`` fixture), which enters ``jax.enable_x64(True)``
for the duration of the test only. Create games and policies inside the test so they
get the dtype of the active mode.
"""

import os
import sys
import zlib

import jax
import numpy as np
import pytest

# Make ``import reference`` work however pytest was invoked.
sys.path.insert(0, os.path.dirname(__file__))

# Comparison tolerances against the float64 NumPy reference, per dtype:
# (rtol, atol) for values of order one.
TOLERANCES = {
    "float32": (2e-5, 2e-6),
    "float64": (1e-12, 1e-13),
}


@pytest.fixture
def x64():
  """Run the test with 64-bit JAX (``jax.enable_x64(True)``)."""
  with jax.enable_x64(True):
    yield


@pytest.fixture(params=["float32", "float64"])
def precision(request):
  """Run the test once in float32 and once in float64 (x64 on only for float64).

  Yields:
    ``(dtype, rtol, atol)`` where ``dtype`` is a NumPy dtype.
  """
  name = request.param
  with jax.enable_x64(name == "float64"):
    rtol, atol = TOLERANCES[name]
    yield np.dtype(name), rtol, atol


@pytest.fixture
def rng(request):
  """A NumPy generator seeded from the test's id (stable across runs)."""
  return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
