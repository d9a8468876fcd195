"""Sampled NPG, policy gradient and optimistic NPG against independent references."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnpg
from jaxnpg._algorithms import regularized_reward


def _game(seed, sizes):
  return jaxnpg.random_game(jax.random.key(seed), sizes)


def _marginals_loop(rewards, probs):
  """Plain loops: rbar_i(a_i) = sum_{a_-i} prod_{j != i} p_j(a_j) r_i(a)."""
  n = len(probs)
  out = [np.zeros(len(p)) for p in probs]
  for a in itertools.product(*[range(len(p)) for p in probs]):
    for i in range(n):
      w = np.prod([probs[j][a[j]] for j in range(n) if j != i])
      out[i][a[i]] += w * rewards[(i,) + a]
  return out


@pytest.mark.parametrize("explore", [0.0, 0.3])
def test_sampled_estimate_is_unbiased(explore):
  with jax.enable_x64(True):
    game = _game(0, (2, 3, 4))
    logp = jaxnpg.random_policy(jax.random.key(1), game)
    alg = jaxnpg.SampledNPG(num_samples=32, explore=explore)
    keys = jax.random.split(jax.random.key(2), 4000)
    est = jax.vmap(lambda k: alg.estimate(game, logp, k))(keys)
    exact = _marginals_loop(np.asarray(game.rewards),
                            [np.exp(np.asarray(lp)) for lp in logp])
    for e, x in zip(est, exact):
      e = np.asarray(e)
      mean, se = e.mean(0), e.std(0) / np.sqrt(len(e))
      assert np.all(np.abs(mean - x) <= 4 * se + 1e-12), (mean, x, se)


def test_sampled_npg_tracks_exact_npg_with_many_samples():
  with jax.enable_x64(True):
    game = _game(3, (3, 4, 5))
    logp = jaxnpg.random_policy(jax.random.key(4), game)
    tau, eta = 1.0, 0.05
    exact = jaxnpg.run(game, tau, eta, 50, init=logp)
    errs = []
    for m in (16, 4096):
      res = jaxnpg.run(game, tau, eta, 50, init=logp,
                       algorithm=jaxnpg.SampledNPG(num_samples=m),
                       key=jax.random.key(5))
      errs.append(max(float(jnp.max(jnp.abs(a - b)))
                      for a, b in zip(res.logp, exact.logp)))
    assert errs[1] < errs[0] / 5
    assert errs[1] < 0.02


def test_sampled_npg_needs_key_and_validates():
  game = _game(0, (2, 2))
  with pytest.raises(ValueError, match="key"):
    jaxnpg.run(game, 1.0, 0.1, 5, algorithm="sampled_npg")
  with pytest.raises(ValueError, match="num_samples"):
    jaxnpg.SampledNPG(num_samples=0)
  with pytest.raises(ValueError, match="explore"):
    jaxnpg.SampledNPG(explore=1.5)
  with pytest.raises(ValueError, match="Unknown algorithm"):
    jaxnpg.run(game, 1.0, 0.1, 5, algorithm="adam")


def test_pg_gradient_is_appendix_a_closed_form():
  with jax.enable_x64(True):
    game = _game(6, (3, 4, 2))
    logp = jaxnpg.random_policy(jax.random.key(7), game)
    tau = 0.7
    rbar = jaxnpg.marginal_rewards(game, logp)
    grads = jax.grad(lambda th: regularized_reward(th, rbar, tau).sum())(logp)
    for g, lp, r in zip(grads, logp, rbar):
      p = np.exp(np.asarray(lp))
      r = np.asarray(r)
      rhat = p @ r - tau * p @ np.log(p)
      closed = p * (r - tau * np.log(p) - rhat)
      np.testing.assert_allclose(np.asarray(g), closed, rtol=1e-10, atol=1e-13)


def test_pg_step_is_gradient_ascent_and_takes_optax():
  with jax.enable_x64(True):
    game = _game(8, (3, 3))
    logp = jaxnpg.random_policy(jax.random.key(9), game)
    tau, eta = 0.5, 0.1
    res = jaxnpg.run(game, tau, eta, 1, init=logp, algorithm="pg")
    rbar = jaxnpg.marginal_rewards(game, logp)
    for new, lp, r in zip(res.logp, logp, rbar):
      p = np.exp(np.asarray(lp))
      r = np.asarray(r)
      grad = p * (r - tau * np.log(p) - (p @ r - tau * p @ np.log(p)))
      theta = np.asarray(lp) + eta * grad
      expect = theta - np.log(np.exp(theta).sum())
      np.testing.assert_allclose(np.asarray(new), expect, atol=1e-12)
    adam = jaxnpg.run(game, tau, 0.05, 3000, init=logp,
                      algorithm=jaxnpg.PolicyGradient(optax.adam(1.0)))
    assert float(adam.qre_gap[-1]) < 1e-8


def _zero_sum(seed, a, b):
  mat = jax.random.uniform(jax.random.key(seed), (a, b), dtype=jnp.float64)
  return jaxnpg.NormalFormGame(jnp.stack([mat, -mat])), float(jnp.max(jnp.abs(mat)))


def test_optimistic_fixed_point_is_the_qre():
  with jax.enable_x64(True):
    game = _game(10, (3, 4, 5))
    tau = 1.0
    qre = jaxnpg.solve(game, tau, 0.02, tol=1e-13, max_iters=20000)
    assert bool(qre.converged)
    res = jaxnpg.run(game, tau, 0.02, 10, init=qre.logp,
                     algorithm="optimistic_npg")
    for a, b in zip(res.logp, qre.logp):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-11)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimistic_converges_linearly_on_zero_sum(seed):
  with jax.enable_x64(True):
    game, norm = _zero_sum(seed, 4, 5)
    tau = 0.05
    eta = 1.0 / (tau + 2 * norm)       # Cen et al.'s condition, at its edge
    init = jaxnpg.random_policy(jax.random.key(seed + 100), game)
    res = jaxnpg.run(game, tau, eta, 3000, init=init,
                     algorithm="optimistic_npg", record_every=10)
    gaps = np.asarray(res.qre_gap)
    assert gaps[-1] < 1e-12 * max(1.0, gaps[0]) or gaps[-1] < 1e-14
    rate = float(jaxnpg.linear_rate(res.qre_gap, res.iterations))
    # The QRE-gap is quadratic in the distance, whose rate is at most 1 - eta*tau.
    assert rate <= (1 - eta * tau) ** 2 + 1e-3
