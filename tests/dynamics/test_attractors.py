"""Attractor classification: fixed points, cycles, chaos, distinct limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference

COORDINATION = np.stack([np.eye(2), np.eye(2)])   # both get 1 when they match
ANTI_COORDINATION = 1 - COORDINATION                # 1 when they differ
MATCHING_PENNIES = [[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]]


def _label(code):
  return jaxnpg.Attractor(int(code)).label


def test_fixed_point(x64):
  game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
  res = jaxnpg.attractor(game, 1.0, 0.02, 500, burn_in=1500)
  assert _label(res.attractor) == "fixed point"
  assert bool(res.converged) and int(res.period) == 1
  assert float(res.residual) < 1e-10 and float(res.exponent) < 0


def test_period_two_in_an_anti_coordination_game(x64):
  # eta = 8, tau = 0.1: both agents start favouring action 0, both switch, and
  # they keep switching together (and keep clashing): a stable 2-cycle.
  tau, eta, burn_in, num_iters, max_period = 0.1, 8.0, 200, 200, 4
  probs = [np.array([0.75, 0.25]), np.array([0.85, 0.15])]
  game = jaxnpg.NormalFormGame(jnp.asarray(ANTI_COORDINATION))
  res = jaxnpg.attractor(game, tau, eta, num_iters, burn_in=burn_in,
                         init=jaxnpg.policy_from_probs(probs),
                         max_period=max_period)
  assert _label(res.attractor) == "periodic" and int(res.period) == 2
  assert not bool(res.converged) and float(res.exponent) < 0   # a stable cycle
  # A plain NumPy iteration reaches the same cycle.
  states = [probs]
  for _ in range(burn_in + num_iters + 2 * max_period):
    states.append(reference.npg_step(ANTI_COORDINATION, states[-1], tau, eta))
  for i in range(2):
    np.testing.assert_allclose(np.exp(res.logp[i]), states[-1][i], atol=1e-10)
    np.testing.assert_allclose(states[-1][i], states[-3][i], atol=1e-10)
    assert abs(states[-1][i][0] - states[-2][i][0]) > 0.5   # it really flips


def test_matching_pennies_cycles_with_period_four(x64):
  game = jaxnpg.NormalFormGame(jnp.asarray(MATCHING_PENNIES))
  res = jaxnpg.attractor(game, 0.1, 10.0, 200, burn_in=200, max_period=8,
                         init=jaxnpg.policy_from_probs(
                             [jnp.array([0.6, 0.4]), jnp.array([0.5, 0.5])]))
  assert _label(res.attractor) == "periodic" and int(res.period) == 4


def test_quasi_periodic_drift_is_undetermined(x64):
  # The QRE of matching pennies repels at eta = 1, tau = 0.05: the orbit drifts
  # on an invariant curve with exponent about 0, neither chaotic nor periodic.
  game = jaxnpg.NormalFormGame(jnp.asarray(MATCHING_PENNIES))
  res = jaxnpg.attractor(game, 0.05, 1.0, 2000, burn_in=500,
                         init=jaxnpg.policy_from_probs(
                             [jnp.array([0.7, 0.3]), jnp.array([0.4, 0.6])]))
  assert _label(res.attractor) == "undetermined" and int(res.period) == 0
  assert abs(float(res.exponent)) < 0.01


def test_chaos_in_a_covariant_game():
  key = jax.random.key(1)
  game = jaxnpg.covariant_game(key, (50, 50), -0.5)
  res = jaxnpg.attractor(game, 0.05, 1.0, 2000, burn_in=1000,
                         init=jaxnpg.random_policy(key, game))
  assert _label(res.attractor) == "chaotic", res
  assert int(res.period) == 0 and float(res.exponent) > 3 * float(res.stderr)


def test_distinct_fixed_points_from_different_starts(x64):
  game = jaxnpg.NormalFormGame(jnp.asarray(COORDINATION))
  p1 = jnp.array([[0.7, 0.3], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6]])
  p2 = jnp.array([[0.6, 0.4], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
  inits = jaxnpg.policy_from_probs([p1, p2])

  def limits(tau, eta):
    return jax.vmap(lambda lp: jaxnpg.attractor(
        game, tau, eta, 300, burn_in=300, init=lp))(inits)

  cold = limits(0.1, 1.0)            # two strict equilibria, both reached
  assert np.all(np.asarray(cold.attractor) == jaxnpg.Attractor.FIXED_POINT)
  assert int(jaxnpg.count_distinct(cold.logp, valid=cold.converged)) == 2
  hot = limits(2.0, 0.25)            # one QRE
  assert int(jaxnpg.count_distinct(hot.logp, valid=hot.converged)) == 1
  one = jaxnpg.attractor(game, 0.1, 1.0, 300, burn_in=300,
                         init=tuple(lp[2] for lp in inits))
  np.testing.assert_allclose(one.logp[0], cold.logp[0][2], atol=1e-12)
  assert int(one.attractor) == int(cold.attractor[2])


def test_detect_period():
  period3 = jnp.log(jnp.array([[.5, .5], [.2, .8], [.9, .1]] * 4))
  assert int(jaxnpg.detect_period((period3,), 1e-6, 4)) == 3
  assert int(jaxnpg.detect_period((period3,), 1e-6, 2)) == 0
  fixed = jnp.log(jnp.full((6, 3), 1 / 3))
  assert int(jaxnpg.detect_period((fixed, fixed[:, :2]), 1e-6, 3)) == 1
  with_nan = period3.at[-1, 0].set(jnp.nan)
  assert int(jaxnpg.detect_period((with_nan,), 1e-6, 4)) == 0
  # -inf entries (zero probability) recur too
  pure = jnp.log(jnp.array([[1.0, 0.0]] * 4))
  assert int(jaxnpg.detect_period((pure,), 1e-6, 2)) == 1
  with pytest.raises(ValueError, match="at least 8"):
    jaxnpg.detect_period((period3[:7],), 1e-6, 4)


@pytest.mark.parametrize("args, label", [
    ((True, 0, 0.5, 0.0), "fixed point"),
    ((False, 1, 0.5, 0.0), "fixed point"),
    ((False, 3, 0.5, 0.0), "periodic"),
    ((False, 0, 0.05, 0.01), "chaotic"),
    ((False, 0, 0.05, 0.02), "undetermined"),    # not 3 stderr above 0
    ((False, 0, 0.005, 0.0), "undetermined"),    # below the threshold
    ((False, 0, float("nan"), 0.0), "undetermined"),
])
def test_classify(args, label):
  assert _label(jaxnpg.classify(*args)) == label
  assert jaxnpg.classify(*args).dtype == jnp.int8


def test_classify_vmaps():
  codes = jax.vmap(jaxnpg.classify)(
      jnp.array([True, False, False, False]), jnp.array([0, 2, 0, 0]),
      jnp.array([0.0, 0.0, 0.1, -0.1]), jnp.zeros(4))
  assert [_label(c) for c in codes] == [
      "fixed point", "periodic", "chaotic", "undetermined"]
  assert jaxnpg.ATTRACTOR_NAMES[jaxnpg.Attractor.CHAOTIC] == "chaotic"


def test_count_distinct():
  a = jnp.log(jnp.array([[.9, .1], [.9, .1 + 1e-9], [.1, .9], [.5, .5]]))
  b = jnp.zeros((4, 1))
  assert int(jaxnpg.count_distinct((a, b), 1e-6)) == 3
  assert int(jaxnpg.count_distinct((a, b), 1e-6,
                                   valid=jnp.array([1, 1, 0, 0], bool))) == 1
  assert int(jaxnpg.count_distinct((a.at[0, 0].set(jnp.nan), b), 1e-6)) == 3
  assert int(jaxnpg.count_distinct((a, b), 10.0)) == 1
