"""Sampled NPG, policy gradient, optimistic NPG and a user's algorithm (any object
with the ``jaxnpg.Algorithm`` protocol) against independent references."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnpg
from jaxnpg.loop.algorithms import regularized_reward
from jaxnpg.loop.describe import describe_algorithm


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
    # Adam at a constant step reaches the QRE, then (gradients ~ 0, its
    # denominator ~ eps) may step away again: the check is that it gets there.
    adam = jaxnpg.run(game, tau, 0.05, 1000, init=logp, record_every=100,
                      algorithm=jaxnpg.PolicyGradient(optax.adam(1.0)))
    assert float(jnp.min(adam.qre_gap)) < 1e-8


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


# --- A user's algorithm: any object with the jaxnpg.Algorithm protocol ---------


@dataclasses.dataclass(frozen=True)
class _DampedNPG:
  """NPG whose step size is multiplied by a fixed damping (written by a user).

  Works on any layout of the loop: the action axis is ``game.action_axis``, and
  ``tau``, ``eta`` broadcast against the policies (batch axes trailing there).
  """
  damping: float = 0.5
  uses_payoffs = True
  uses_key = False
  batch_last = True
  name = "damped_npg"

  def init(self, game, logp, key):
    del game, key
    return tuple(logp)

  def step(self, game, state, payoffs, tau, eta):
    eta = eta * self.damping
    out = []
    for lp, q in zip(state, payoffs):
      logits = (1 - eta * tau) * lp + eta * q
      out.append(logits - jax.nn.logsumexp(logits, axis=game.action_axis,
                                           keepdims=True))
    return tuple(out)

  def policy(self, state):
    return state

  def probs(self, state):
    return tuple(jnp.exp(lp) for lp in state)


def _damped_reference(rewards, logp, tau, eta, damping, num_iters):
  """Final policy and QRE-gap of damped NPG: float64 NumPy, explicit loops."""
  logp = [np.asarray(lp, np.float64) for lp in logp]
  e = eta * damping
  for _ in range(num_iters):
    rbar = _marginals_loop(rewards, [np.exp(lp) for lp in logp])
    new = []
    for lp, q in zip(logp, rbar):
      x = (1 - e * tau) * lp + e * q
      m = np.max(x)
      new.append(x - (m + np.log(np.sum(np.exp(x - m)))))
    logp = new
  rbar = _marginals_loop(rewards, [np.exp(lp) for lp in logp])
  gap = 0.0
  for lp, q in zip(logp, rbar):
    x = q / tau
    star = x - (np.max(x) + np.log(np.sum(np.exp(x - np.max(x)))))
    kl = sum(np.exp(lp[a]) * (lp[a] - star[a]) for a in range(len(lp)))
    gap = max(gap, tau * kl)
  return logp, gap


def test_user_algorithm_runs_through_run_and_sweep(x64):
  alg = _DampedNPG(0.5)
  assert isinstance(alg, jaxnpg.Algorithm)
  assert describe_algorithm(alg) == ("damped_npg", {"damping": 0.5})
  sizes, taus, eta, iters = (2, 3), [0.5, 2.0], 0.3, 40
  keys = jax.random.split(jax.random.key(11), 3)
  games = jax.vmap(lambda k: jaxnpg.random_game(k, sizes))(keys)
  init = jax.vmap(lambda k: jaxnpg.random_policy(k, jaxnpg.random_game(
      k, sizes)))(jax.random.split(jax.random.key(12), 3))
  want = {}
  for g in range(3):
    rewards = np.asarray(games.rewards[g], np.float64)
    for t, tau in enumerate(taus):
      want[g, t] = _damped_reference(rewards, [lp[g] for lp in init], tau, eta,
                                     alg.damping, iters)
  # jaxnpg.run on one game.
  game0 = jax.tree_util.tree_map(lambda x: x[0], games)
  res = jaxnpg.run(game0, taus[0], eta, iters, init=tuple(lp[0] for lp in init),
                   algorithm=alg)
  for a, b in zip(res.logp, want[0, 0][0]):
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(float(res.qre_gap[-1]), want[0, 0][1], rtol=1e-8,
                             atol=1e-15)
  # jaxnpg.sweep: the batch-last loop (auto) and the generic one.
  for method in ("auto", "generic"):
    swept = jaxnpg.sweep(game=games, init=init, taus=taus, etas=[eta],
                         num_iters=iters, algorithm=alg, method=method,
                         quiet=True)
    assert swept.attrs["algorithm"] == "damped_npg"
    assert swept.attrs["algorithm_options"] == {"damping": 0.5}
    assert swept.attrs["method"] == ("dense" if method == "auto" else method)
    for (g, t), (_, gap) in want.items():
      np.testing.assert_allclose(float(swept.qre_gap[g, t, 0]), gap, rtol=1e-8,
                                 atol=1e-15, err_msg=f"{method} {g} {t}")


class _NoProbs:
  """Lacks ``probs``."""
  name, uses_payoffs, uses_key, batch_last = "no_probs", True, False, False

  def init(self, game, logp, key):
    return logp

  def step(self, game, state, payoffs, tau, eta):
    return state

  def policy(self, state):
    return state


class _Unhashable(_DampedNPG):
  __hash__ = None


def test_algorithm_protocol_errors_name_what_is_missing():
  game = _game(0, (2, 2))
  with pytest.raises(ValueError, match="lacks `probs`"):
    jaxnpg.run(game, 1.0, 0.1, 3, algorithm=_NoProbs())
  with pytest.raises(ValueError, match="lacks `probs`"):
    jaxnpg.sweep(num_actions=(2, 2), num_games=2, taus=[1.0], etas=[0.1],
                 num_iters=3, algorithm=_NoProbs(), quiet=True)
  with pytest.raises(ValueError, match="lacks `name`, `uses_payoffs`.*`probs`"):
    jaxnpg.solve(game, 1.0, 0.1, algorithm=object())
  with pytest.raises(ValueError, match="hashable"):
    jaxnpg.run(game, 1.0, 0.1, 3, algorithm=_Unhashable())
  with pytest.raises(ValueError, match="instance"):
    jaxnpg.run(game, 1.0, 0.1, 3, algorithm=_DampedNPG)
