"""Covariant games: exact ends, the correlation they promise, validation, batching."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_the_ends_are_exact(x64, n):
  sizes = (3,) * n if n < 5 else (2,) * n
  key = jax.random.key(n)
  zero_sum = jaxnpg.covariant_game(key, sizes, -1.0 / (n - 1)).rewards
  assert float(jnp.max(jnp.abs(jnp.sum(zero_sum, axis=0)))) < 1e-13
  # unit variance at the zero-sum end too (not just a sum of zero)
  assert 0.5 < float(jnp.var(zero_sum)) < 1.5
  identical = jaxnpg.covariant_game(key, sizes, 1.0).rewards
  for i in range(1, n):
    np.testing.assert_array_equal(identical[i], identical[0])


def test_zero_sum_end_in_float32():
  rewards = jaxnpg.covariant_game(jax.random.key(0), (4, 4, 4), -0.5).rewards
  assert rewards.dtype == jnp.float32
  assert float(jnp.max(jnp.abs(jnp.sum(rewards, axis=0)))) < 1e-5


@functools.partial(jax.jit, static_argnums=2)
def _batch_rewards(keys, rho, sizes):
  return jax.vmap(lambda k: jaxnpg.covariant_game(k, sizes, rho).rewards)(keys)


@pytest.mark.parametrize("n, rho", [(2, -1.0), (2, -0.4), (3, -0.5), (3, -0.2),
                                    (3, 0.0), (3, 0.3), (4, 0.8)])
def test_empirical_moments_match(x64, n, rho):
  sizes = (4,) * n
  keys = jax.random.split(jax.random.key(7), 4096 // 4 ** (n - 1))
  rewards = _batch_rewards(keys, rho, sizes)
  samples = np.moveaxis(np.asarray(rewards), 1, 0).reshape(n, -1)   # (n, N)
  num = samples.shape[1]
  assert num >= 4096
  np.testing.assert_allclose(samples.mean(axis=1), 0.0, atol=4 / np.sqrt(num))
  np.testing.assert_allclose(samples.var(axis=1), 1.0, atol=4 * np.sqrt(2 / num))
  corr = np.corrcoef(samples)
  stderr = max(1 - rho ** 2, 1e-3) / np.sqrt(num)   # of a sample correlation
  for i in range(n):
    for j in range(i + 1, n):
      assert abs(corr[i, j] - rho) < 4 * stderr + 1e-12, (i, j, corr[i, j])


@pytest.mark.parametrize("sizes, rho, match", [
    ((3, 3, 3), -0.6, r"\[-1/\(n-1\), 1\]"),
    ((3, 3), 1.01, r"\[-1/\(n-1\), 1\]"),
    ((3, 3), float("nan"), "correlation"),
    ((3, 3), np.array([0.1, 0.2]), "scalar"),
    ((3,), 0.0, "at least 2 agents"),
    ((3, 0), 0.0, "integers >= 1"),
])
def test_validation(sizes, rho, match):
  with pytest.raises(ValueError, match=match):
    jaxnpg.covariant_game(jax.random.key(0), sizes, rho)


def test_vmap_over_keys_and_traced_correlation():
  sizes = (2, 3, 2)
  keys = jax.random.split(jax.random.key(1), 3)
  rhos = jnp.array([-0.5, 0.2, 1.0])
  batch = jax.jit(jax.vmap(
      lambda k, r: jaxnpg.covariant_game(k, sizes, r)))(keys, rhos)
  assert batch.batch_shape == (3,) and batch.num_actions == sizes
  for b in range(3):
    one = jaxnpg.covariant_game(keys[b], sizes, float(rhos[b]))
    np.testing.assert_allclose(batch.rewards[b], one.rewards, rtol=1e-6,
                               atol=1e-6)


def test_family_registry():
  assert "covariant" in jaxnpg.families()
  key = jax.random.key(2)
  game = jaxnpg.make_game("covariant", key, (3, 3), correlation=0.5)
  np.testing.assert_array_equal(
      game.rewards, jaxnpg.covariant_game(key, (3, 3), 0.5).rewards)
  default = jaxnpg.make_game("covariant", key, (3, 3))
  np.testing.assert_array_equal(
      default.rewards, jaxnpg.covariant_game(key, (3, 3), 0.0).rewards)
  with pytest.raises(ValueError, match="options"):
    jaxnpg.make_game("covariant", key, (3, 3), rho=0.5)
  res = jaxnpg.run(game, 1.0, 0.05, 30, record_every=10)
  assert np.all(np.isfinite(res.qre_gap)) and res.qre_gap[-1] < res.qre_gap[0]
