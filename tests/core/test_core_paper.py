"""The paper's claims on its random (3, 4, 5) game (section IV-A, Theorem 3.3).

One random game and one random initial policy serve every ``tau``, as in the paper,
with ``eta = jaxnpg.paper_eta(tau, (3, 4, 5))``. Seed 2 is used because it is a game
on which unregularized NPG (multiplicative weights) cycles, as in the paper's
figure: on many random (3, 4, 5) games (seeds 0, 1 and 3, for instance) tau = 0
instead converges slowly to a pure Nash equilibrium, so the tau = 0 claim is a claim
about this kind of game, not about every random game.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference
from conftest import random_game_and_policy

SIZES = (3, 4, 5)
S = sum(SIZES)
SEED = 2


def _paper_setup():
  """The game and initial policy (random_game and random_policy, jitted)."""
  game, init = random_game_and_policy(jax.random.key(SEED), SIZES)
  assert game.dtype == jnp.float64
  return jaxnpg.NormalFormGame(game.rewards), init   # validated


def test_unregularized_npg_does_not_converge(x64):
  game, init = _paper_setup()
  eta = float(jaxnpg.paper_eta(0.0, SIZES))
  res = jaxnpg.run(game, 0.0, eta, 4000, init=init, record_every=10)
  gaps = np.asarray(res.qre_gap)
  assert np.all(np.isfinite(gaps))
  # At tau = 0 the QRE-gap is the NE-gap.
  np.testing.assert_array_equal(gaps, np.asarray(res.ne_gap))
  # It never comes near zero: it stays above a clear level throughout.
  assert gaps.min() > 0.02, gaps.min()
  assert gaps[len(gaps) // 2:].min() > 0.02
  # The NumPy reference agrees that the last iterate is far from equilibrium.
  probs = [np.exp(np.asarray(lp)) for lp in res.logp]
  np.testing.assert_allclose(
      reference.ne_gap(np.asarray(game.rewards), probs), gaps[-1], rtol=1e-10)


@pytest.mark.parametrize("tau", [30.0, 50.0])
def test_theorem_3_3_bound_holds_at_every_iterate(tau, x64):
  game, init = _paper_setup()
  rewards = np.asarray(game.rewards)
  assert rewards.min() >= 0 and rewards.max() <= 1   # the theorem's assumption
  eta = float(jaxnpg.paper_eta(tau, SIZES))
  assert tau > 2 * S and 0 < eta < 1 / (tau - 2 * S)
  rho = 1 - eta * tau + 2 * eta * S
  assert 0 < rho < 1
  # max_i || log pi_i^0 - log pi_i^{0*} ||_inf, pi_i^{0*} = softmax(rbar_i^0 / tau),
  # computed here with the NumPy reference.
  probs0 = [np.exp(np.asarray(lp)) for lp in init]
  rbar0 = reference.marginal_rewards(rewards, probs0)
  dist0 = max(
      np.max(np.abs(np.log(p) - np.log(reference.soft_best_response(r, tau))))
      for p, r in zip(probs0, rbar0))
  num_iters = 200
  res = jaxnpg.run(game, tau, eta, num_iters, init=init)
  np.testing.assert_array_equal(np.asarray(res.iterations),
                                np.arange(num_iters + 1))
  gaps = np.asarray(res.qre_gap)
  bound = 2 * tau * rho ** np.arange(num_iters + 1) * dist0
  # The computed gap tau * KL has a rounding floor of order tau * eps, reached
  # once the true gap (and the bound) fall below it.
  floor = 100 * tau * np.finfo(np.float64).eps
  assert np.all(gaps <= bound + floor), np.max(gaps - bound)
  # The bound is not vacuous on the iterates it governs: the gap really decays.
  assert gaps[0] > 1e-3 and gaps[60] < 1e-6 * gaps[0]


def test_larger_tau_converges_faster(x64):
  game, init = _paper_setup()
  taus = jnp.array([0.2, 0.5, 1.0, 2.0])
  etas = jaxnpg.paper_eta(taus, SIZES)

  def one(tau, eta):
    return jaxnpg.run(game, tau, eta, 4000, init=init, record_every=10)

  res = jax.vmap(one)(taus, etas)
  rates = np.asarray(jax.vmap(jaxnpg.linear_rate)(res.qre_gap, res.iterations))
  assert np.all(np.isfinite(rates))
  assert np.all((rates > 0) & (rates < 1)), rates          # linear convergence
  assert np.all(np.diff(rates) < 0), rates                  # faster as tau grows
  # Every run ends at its QRE (the gap fell by many orders of magnitude).
  final = np.asarray(res.qre_gap)[:, -1]
  initial = np.asarray(res.qre_gap)[:, 0]
  assert np.all(final < 1e-8 * initial), final
