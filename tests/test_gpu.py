"""GPU checks (``pytest -m gpu``): results on a GPU equal the CPU's.

Deselected by default and in CI (``addopts`` in pyproject.toml); where JAX sees no
GPU (a CPU-only jaxlib, or no device) each test is skipped and says why. Install
``jaxnpg[cuda]`` on a machine with an NVIDIA GPU to run them.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg

pytestmark = pytest.mark.gpu


def _gpus():
  try:
    return jax.devices("gpu")
  except RuntimeError:   # no GPU backend in this jaxlib, or no device
    return []


@pytest.fixture
def gpus():
  devices = _gpus()
  if not devices:
    pytest.skip(f"JAX sees no GPU (backend {jax.default_backend()!r}, devices "
                f"{jax.devices()}); install jaxnpg[cuda] on a GPU machine")
  return devices


def _small_sweep(devices):
  return jaxnpg.sweep("random", num_actions=(3, 4, 5), num_games=16, seed=3,
                      taus=[0.05, 0.3, 1.0, 5.0], etas="paper",
                      eta_multipliers=[1.0, 4.0], num_iters=600,
                      trajectory_points=8, tol=1e-9, devices=devices, quiet=True)


def test_sweep_on_gpu_equals_cpu(gpus, x64):
  on_gpu = _small_sweep(gpus)
  on_cpu = _small_sweep(jax.devices("cpu"))
  assert on_gpu.qre_gap.shape == on_cpu.qre_gap.shape == (16, 4, 2)
  for field in ("qre_gap", "ne_gap", "qre_gap_trajectory"):
    np.testing.assert_allclose(np.asarray(getattr(on_gpu, field)),
                               np.asarray(getattr(on_cpu, field)),
                               rtol=1e-7, atol=1e-13, err_msg=field)
  np.testing.assert_array_equal(np.asarray(on_gpu.status), np.asarray(on_cpu.status))
  # Both converge and both stall in the same cells (tau = 5 always converges).
  assert np.all(np.asarray(on_gpu.status)[:, -1] == 0)


def test_solve_and_qre_on_gpu_equal_cpu(gpus, x64):
  game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
  taus = jnp.array([1.0, 0.1])
  results = {}
  for name, device in (("gpu", gpus[0]), ("cpu", jax.devices("cpu")[0])):
    g = jax.device_put(game, device)
    sol = jaxnpg.solve(g, 1.0, 0.2, tol=1e-12, max_iters=2000)
    eq = jaxnpg.qre(g, jax.device_put(taus, device))
    assert sol.logp[0].devices() == {device}
    results[name] = (sol, eq)
  (sol_g, eq_g), (sol_c, eq_c) = results["gpu"], results["cpu"]
  assert bool(sol_g.converged) and bool(sol_c.converged)
  assert bool(jnp.all(eq_g.converged)) and bool(jnp.all(eq_c.converged))
  for a, b in zip(sol_g.logp + eq_g.logp, sol_c.logp + eq_c.logp):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-10)
