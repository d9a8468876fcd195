"""Shared fixtures for the core tests.

x64 is never switched on globally: tests that need float64 take the ``x64`` fixture
(or the parametrized ``precision`` fixture), which enters ``jax.enable_x64(True)``
for the duration of the test only. Create games and policies inside the test so they
get the dtype of the active mode.
"""

import os
import pathlib
import sys
import zlib

import jax
import numpy as np
import pytest

# The tests mirror jaxnpg's subpackages (tests/core, tests/games, ...); the shared
# helpers (reference, markov_reference, gambit_compat, structured_games, data/)
# stay here. Make ``import reference`` work however pytest was invoked.
TESTS = pathlib.Path(__file__).resolve().parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

# pytest-xdist already runs one worker per core: jaxnpg's own host threads (one
# part of a batch per core) would only oversubscribe the cores. The tests of the
# threaded paths set the core count themselves (monkeypatching ``cores``).
os.environ.setdefault("JAXNPG_THREADS", "1")

# Deadlines that guard against a hung subprocess are generous and scale: every
# one is ``scaled(seconds)``, the time it takes on a quiet development machine
# times JAXNPG_TEST_DEADLINE_SCALE (default 5: a machine five times slower, or
# as busy, still passes). A deadline never decides a result: a test waits for
# its processes' output or exit, and the deadline only stops a hang.
DEADLINE_SCALE = float(os.environ.get("JAXNPG_TEST_DEADLINE_SCALE", "5"))
if not DEADLINE_SCALE > 0:
  raise ValueError("JAXNPG_TEST_DEADLINE_SCALE must be a positive number, got "
                   f"{os.environ['JAXNPG_TEST_DEADLINE_SCALE']!r}.")


def scaled(seconds: float) -> float:
  """A hang guard of ``seconds`` (quiet machine), scaled for a busy one."""
  return seconds * DEADLINE_SCALE


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


@pytest.fixture
def x64_unless_float32(request):
  """64-bit JAX for the test, unless its name says ``float32``."""
  if "float32" in request.node.name:
    yield
    return
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
  # Seeded from "tests/<file>::<test>", whatever folder the file is in, so that
  # moving a test file does not change its draws.
  name = "tests/" + request.node.nodeid.rsplit("/", 1)[-1]
  return np.random.default_rng(zlib.crc32(name.encode()))


def _core_functions():
  import jaxnpg  # pylint: disable=g-import-not-at-top
  # Each public single-game function as f(game, logp, tau, eta).
  return {
      "npg_step": jaxnpg.npg_step,
      "marginal_rewards": lambda g, lp, tau, eta: jaxnpg.marginal_rewards(
          g, lp),
      "soft_best_response": lambda g, lp, tau, eta: jaxnpg.soft_best_response(
          g, lp, tau),
      "qre_gap": lambda g, lp, tau, eta: jaxnpg.qre_gap(g, lp, tau),
      "qre_gap_per_agent": lambda g, lp, tau, eta: jaxnpg.qre_gap_per_agent(
          g, lp, tau),
      "ne_gap": lambda g, lp, tau, eta: jaxnpg.ne_gap(g, lp),
      "ne_gap_per_agent": lambda g, lp, tau, eta: jaxnpg.ne_gap_per_agent(
          g, lp),
      "fixed_point_residual": (
          lambda g, lp, tau, eta: jaxnpg.fixed_point_residual(g, lp, tau)),
      "kl_residual": lambda g, lp, tau, eta: jaxnpg.kl_residual(g, lp, tau),
  }


CORE_FUNCTIONS = _core_functions()


def core_outputs(game, logp, tau, eta):
  """Every core function's output for one game, as a dict keyed by name."""
  return {name: fn(game, logp, tau, eta) for name, fn in CORE_FUNCTIONS.items()}


# One module-level jitted function, so that every test shares its compile cache
# (compiling once per shape is far cheaper than running the ops eagerly).
core_outputs_jit = jax.jit(core_outputs)


@pytest.fixture
def core_jit():
  """``jax.jit(core_outputs)``, shared by every test."""
  return core_outputs_jit


def _random_game_and_policy(key, sizes):
  import jaxnpg  # pylint: disable=g-import-not-at-top
  key_game, key_policy = jax.random.split(key)
  game = jaxnpg.random_game(key_game, sizes)
  return game, jaxnpg.random_policy(key_policy, game)


# ``jaxnpg.random_game`` and ``jaxnpg.random_policy`` from one key, jitted and shared
# (compiling jax.random's threefry once is far cheaper than running it eagerly).
random_game_and_policy = jax.jit(_random_game_and_policy, static_argnums=1)


@pytest.fixture(autouse=True)
def _restore_x64():
  """Whatever a test does to ``jax_enable_x64`` (the CLI sets it from --dtype), the
  next test starts in the mode this one started in."""
  before = jax.config.jax_enable_x64
  yield
  if jax.config.jax_enable_x64 != before:
    jax.config.update("jax_enable_x64", before)


# Strict dtype promotion (no implicit int -> float or float32 -> float64 mixing
# inside jaxnpg) where it does not fight JAX's own rules: the core's tests,
# which drive the step, gaps and loop directly. (Elsewhere the tests hand plain
# Python and NumPy values to the public API on purpose, and optax's optimizers
# mix Python floats with int32 counters, which strict promotion refuses.)
STRICT_PROMOTION_FILES = ("test_core_", "test_verdicts_traced")


@pytest.fixture(autouse=True)
def _strict_dtype_promotion(request):
  name = os.path.basename(str(request.node.fspath))
  if name.startswith(STRICT_PROMOTION_FILES):
    with jax.numpy_dtype_promotion("strict"):
      yield
  else:
    yield
