"""jaxnpg.linear_rate: the empirical per-iteration linear rate of a trajectory.

Most synthetic trajectories have the same length ``T`` so that the eager calls share
one set of compiled operations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg

T = 120


def _pad(values, fill=0.0):
  """``values`` followed by ``fill`` up to length ``T``."""
  values = list(values)
  return np.asarray(values + [fill] * (T - len(values)), dtype=np.float64)


def test_recovers_a_known_geometric_rate(precision):
  dtype, _, _ = precision
  floor = 100 * np.finfo(dtype).eps * 3.0
  for rho in [0.3, 0.9, 0.99]:
    gaps = 3.0 * rho ** np.arange(T)
    assert np.sum(gaps > floor) >= 10
    got = float(jaxnpg.linear_rate(jnp.asarray(gaps, dtype)))
    tol = 1e-9 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, rho, rtol=tol, err_msg=f"rho={rho}")


def test_fits_only_the_tail(x64):
  """A trajectory that changes rate: the tail's rate is reported."""
  k = np.arange(T)
  gaps = np.where(k < 40, 0.95 ** k, 0.95 ** 40 * 0.8 ** (k - 40))
  assert gaps.min() > 1e-11          # nowhere near the floor
  # The last half (k >= 59.5) lies in the second regime ...
  np.testing.assert_allclose(float(jaxnpg.linear_rate(gaps)), 0.8, rtol=1e-9)
  # ... the first 40 points in the first (the rest hidden as NaN); all of it
  # mixes both.
  first = np.where(k < 40, gaps, np.nan)
  np.testing.assert_allclose(float(jaxnpg.linear_rate(first, tail=1.0)), 0.95,
                             rtol=1e-9)
  mixed = float(jaxnpg.linear_rate(gaps, tail=1.0))
  assert 0.8 < mixed < 0.95


@pytest.mark.parametrize("floor_value", [0.0, 1e-17, "noise"])
def test_ignores_values_at_the_floating_point_floor(floor_value, precision):
  dtype, _, _ = precision
  eps = np.finfo(dtype).eps
  k = np.arange(T)
  gaps = 0.5 ** k
  at_floor = gaps <= 10 * eps
  if floor_value == "noise":  # what a converged gap looks like: a few eps, jumpy
    fill = np.random.default_rng(0).uniform(0, 10 * eps, size=k.shape)
  else:
    fill = np.full(k.shape, floor_value)
  gaps = np.where(at_floor, fill, gaps)
  assert at_floor.sum() > 40      # most of the trajectory sits at the floor
  got = float(jaxnpg.linear_rate(jnp.asarray(gaps, dtype)))
  np.testing.assert_allclose(got, 0.5,
                             rtol=1e-4 if dtype == np.float32 else 1e-9)


def test_ignores_non_finite_values(x64):
  gaps = 0.8 ** np.arange(float(T))
  gaps[[5, 17, 40, 90]] = [np.nan, np.inf, -np.inf, np.nan]
  np.testing.assert_allclose(float(jaxnpg.linear_rate(gaps)), 0.8, rtol=1e-9)


@pytest.mark.parametrize("gaps", [
    _pad([1.0, 0.5]),
    _pad([], fill=1e-20),
    _pad([np.nan, 1.0, np.inf, 0.5, np.nan], fill=np.nan),
    np.asarray([1.0]),
    np.asarray([]),
], ids=["two_then_floor", "all_floor", "two_finite", "one", "empty"])
def test_nan_when_fewer_than_three_usable_points(gaps, x64):
  got = jaxnpg.linear_rate(gaps)
  assert np.isnan(float(got))


def test_three_usable_points_are_enough(x64):
  got = float(jaxnpg.linear_rate(_pad([1.0, 0.5, 0.25]), tail=1.0))
  np.testing.assert_allclose(got, 0.5, rtol=1e-12)


def test_works_with_iterations_from_record_every(x64):
  rho, r = 0.97, 10
  k = np.arange(0, r * T, r)
  got = float(jaxnpg.linear_rate(2.0 * rho ** k, k))
  np.testing.assert_allclose(got, rho, rtol=1e-9)   # per iteration, not per record
  # On a real run: the same rate from every record and from every 10th record
  # (eta small enough that 200 steps stay well above the floating-point floor).
  game = jaxnpg.NormalFormGame(
      np.random.default_rng(0).uniform(size=(3, 3, 4, 5)))
  full = jaxnpg.run(game, 1.0, 0.02, 200, record_every=1)
  sparse = jaxnpg.run(game, 1.0, 0.02, 200, record_every=r)
  assert float(full.qre_gap[-1]) > 1e-10
  np.testing.assert_array_equal(np.asarray(sparse.iterations),
                                np.arange(0, 201, r))
  rate_full = float(jaxnpg.linear_rate(full.qre_gap, full.iterations))
  rate_sparse = float(jaxnpg.linear_rate(sparse.qre_gap, sparse.iterations))
  assert 0 < rate_full < 1
  np.testing.assert_allclose(rate_sparse, rate_full, rtol=1e-3)
  # Ignoring the iterations would report the rate per record, about rho ** r.
  per_record = float(jaxnpg.linear_rate(sparse.qre_gap))
  np.testing.assert_allclose(per_record, rate_full ** r, rtol=1e-2)


def test_jit_and_vmap(x64):
  rhos = jnp.array([0.2, 0.6, 0.9])
  trajectories = rhos[:, None] ** jnp.arange(40.0)
  got = jax.jit(jax.vmap(jaxnpg.linear_rate))(trajectories)
  np.testing.assert_allclose(np.asarray(got), np.asarray(rhos), rtol=1e-9)


def test_bad_arguments():
  with pytest.raises(ValueError, match="tail"):
    jaxnpg.linear_rate(jnp.ones(5), tail=0.0)
  with pytest.raises(ValueError, match="tail"):
    jaxnpg.linear_rate(jnp.ones(5), tail=1.5)
  with pytest.raises(ValueError, match="one trajectory"):
    jaxnpg.linear_rate(jnp.ones((2, 5)))
