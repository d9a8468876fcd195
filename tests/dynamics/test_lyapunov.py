"""The largest Lyapunov exponent of the NPG map (tangent propagation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference

MATCHING_PENNIES = [[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]]


def test_exponent_is_log_local_rate_at_a_converging_cell(x64):
  sizes = (3, 4, 5)
  game = jaxnpg.random_game(jax.random.key(0), sizes)
  tau = 1.0
  eta = float(jaxnpg.paper_eta(tau, sizes))
  eq = jaxnpg.qre(game, tau)
  log_rho = float(jnp.log(jaxnpg.local_rate(game, tau, eta, eq).rho))
  res = jaxnpg.lyapunov_exponent(game, tau, eta, 2000, burn_in=2000)
  assert abs(float(res.exponent) - log_rho) < 1e-3, (res.exponent, log_rho)
  assert float(res.stderr) < 1e-3
  # the run reached the QRE it was compared with
  np.testing.assert_allclose(res.logp[0], eq.logp[0], atol=1e-8)


def test_markov_game_exponent_is_log_local_rate(x64):
  game = jaxnpg.random_markov_game(jax.random.key(2), 2, (2, 3), 0.5)
  tau, eta = 0.5, 0.2
  res = jaxnpg.lyapunov_exponent(game, tau, eta, 500, burn_in=1000)
  assert res.tangent[0].shape == (2, 2)
  assert float(jaxnpg.fixed_point_residual(game, res.logp, tau)) < 1e-12
  log_rho = float(jnp.log(jaxnpg.local_rate(game, tau, eta, res.logp).rho))
  assert abs(float(res.exponent) - log_rho) < 1e-3, (res.exponent, log_rho)


def test_matching_pennies_without_regularization_is_neutral(x64):
  game = jaxnpg.NormalFormGame(jnp.array(MATCHING_PENNIES))
  init = jaxnpg.policy_from_probs([jnp.array([0.7, 0.3]), jnp.array([0.4, 0.6])])
  res = jaxnpg.lyapunov_exponent(game, 0.0, 0.01, 4000, burn_in=1000, init=init)
  exponent, stderr = float(res.exponent), float(res.stderr)
  assert abs(exponent) < 1e-2
  assert exponent > -3 * stderr - 1e-4       # not negative beyond the noise


# ----- a float64 NumPy reference, explicit loops, for the tangent geometry -----

def _raw_map(rewards, x, tau, eta):
  """The NPG step on *unnormalised* log-policies ``x`` (what jvp differentiates)."""
  rbar = reference.marginal_rewards(rewards, [np.exp(xi) for xi in x])
  out = []
  for xi, ri in zip(x, rbar):
    z = (1 - eta * tau) * xi + eta * ri
    out.append(z - np.log(np.sum(np.exp(z - z.max()))) - z.max())
  return out


def _reference_exponent(rewards, x, v, tau, eta, steps, centre, h=1e-6):
  """Mean log-growth of a tangent pushed by central finite differences."""
  v = [vi - centre(xi, vi) for xi, vi in zip(x, v)]
  norm = np.sqrt(sum(np.sum(vi ** 2) for vi in v))
  v = [vi / norm for vi in v]
  total = 0.0
  for _ in range(steps):
    plus = _raw_map(rewards, [xi + h * vi for xi, vi in zip(x, v)], tau, eta)
    minus = _raw_map(rewards, [xi - h * vi for xi, vi in zip(x, v)], tau, eta)
    jv = [(p - m) / (2 * h) for p, m in zip(plus, minus)]
    norm = np.sqrt(sum(np.sum(j ** 2) for j in jv))
    total += np.log(norm)
    v = [j / norm for j in jv]
    x = _raw_map(rewards, x, tau, eta)
  return total / steps


def _pi_mean(x, v):
  return np.sum(np.exp(x) * v)


def _plain_mean(x, v):
  del x
  return np.mean(v)


@pytest.mark.parametrize("burn_in, steps", [(0, 1), (0, 3), (2, 2)])
def test_tangent_matches_a_finite_difference_reference(x64, rng, burn_in, steps):
  sizes = (2, 3, 2)
  rewards = reference.random_rewards(rng, sizes)
  probs = reference.random_probs(rng, sizes, min_prob=0.05)
  x = [np.log(p) for p in probs]
  v = [rng.normal(size=a) for a in sizes]
  tau, eta = 0.3, 2.0
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  res = jaxnpg.lyapunov_exponent(
      game, tau, eta, steps, burn_in=burn_in, init=tuple(jnp.asarray(xi) for xi in x),
      tangent=tuple(jnp.asarray(vi) for vi in v))

  # The reference counts burn-in steps separately: run it for burn_in + steps
  # and remove the burn-in part of the sum.
  def ref(centre):
    full = _reference_exponent(rewards, x, v, tau, eta, burn_in + steps, centre)
    if not burn_in:
      return full
    head = _reference_exponent(rewards, x, v, tau, eta, burn_in, centre)
    return (full * (burn_in + steps) - head * burn_in) / steps

  expected, plain = ref(_pi_mean), ref(_plain_mean)
  np.testing.assert_allclose(float(res.exponent), expected, atol=1e-7)
  # The test can tell the two projections apart.
  if burn_in == 0:
    assert abs(plain - expected) > 1e-2


def test_covariant_games_chaos_for_negative_correlation():
  # SPEC: 2 agents, 50 actions, eta = 1, tau = 0.05: rho = -0.5 chaotic in all
  # games, rho = +0.5 not.
  keys = jax.random.split(jax.random.key(1), 4)
  rhos = jnp.array([-0.5] * 4 + [0.5] * 4)

  @jax.jit
  @jax.vmap
  def one(key, rho):
    game = jaxnpg.covariant_game(key, (50, 50), rho)
    init = jaxnpg.random_policy(key, game)
    return jaxnpg.lyapunov_exponent(game, 0.05, 1.0, 2000, burn_in=1000,
                                    init=init)

  res = one(jnp.concatenate([keys, keys]), rhos)
  exps, errs = np.asarray(res.exponent), np.asarray(res.stderr)
  assert np.all(exps[:4] > 0.02) and np.all(exps[:4] > 3 * errs[:4]), exps
  assert np.all(exps[4:] <= 0), exps


def test_vmap_over_games_and_cells_equals_a_loop():
  keys = jax.random.split(jax.random.key(3), 3)
  games = jax.vmap(lambda k: jaxnpg.random_game(k, (2, 3)))(keys)
  taus = jnp.array([0.1, 0.5, 1.0])
  etas = jnp.array([1.0, 0.5, 0.2])
  batched = jax.vmap(lambda g, t, e: jaxnpg.lyapunov_exponent(
      g, t, e, 50, burn_in=20))(games, taus, etas)
  for b in range(3):
    game = jaxnpg.random_game(keys[b], (2, 3))
    one = jaxnpg.lyapunov_exponent(game, float(taus[b]), float(etas[b]), 50,
                                   burn_in=20)
    np.testing.assert_allclose(batched.exponent[b], one.exponent, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(batched.stderr[b], one.stderr, rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(batched.logp[1][b], one.logp[1], atol=1e-6)


def test_nan_start_and_blow_up_give_nan():
  game = jaxnpg.random_game(jax.random.key(0), (2, 3))
  good = jaxnpg.uniform_policy(game)
  bad = (jnp.array([jnp.nan, -1.0]), good[1])
  inits = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), good, bad)
  res = jax.vmap(lambda lp: jaxnpg.lyapunov_exponent(
      game, 0.5, 0.5, 20, burn_in=5, init=lp))(inits)
  assert np.isfinite(res.exponent[0]) and np.isnan(res.exponent[1])
  assert np.isnan(res.stderr[1])
  # Rewards so large that eta * rbar overflows: the run blows up.
  huge = jaxnpg.NormalFormGame(jnp.full((2, 2, 3), 3e38))
  out = jaxnpg.lyapunov_exponent(huge, 0.0, 10.0, 10, burn_in=0)
  assert np.isnan(out.exponent)


def test_zero_probability_actions_stay_out_of_the_tangent(x64):
  # An action with probability 0 is frozen: the run equals the game without it.
  game = jaxnpg.random_game(jax.random.key(4), (3, 2))
  init = (jnp.log(jnp.array([0.5, 0.5, 0.0])), jnp.log(jnp.array([0.3, 0.7])))
  tangent = (jnp.array([0.3, -0.1, 5.0]), jnp.array([1.0, -2.0]))
  sub = jaxnpg.NormalFormGame(game.rewards[:, :2, :])
  for burn_in, num_iters in [(0, 1), (50, 200)]:
    res = jaxnpg.lyapunov_exponent(game, 0.5, 0.5, num_iters, burn_in=burn_in,
                                   init=init, tangent=tangent)
    assert res.tangent[0][2] == 0 and np.isneginf(res.logp[0][2])
    same = jaxnpg.lyapunov_exponent(
        sub, 0.5, 0.5, num_iters, burn_in=burn_in, init=(init[0][:2], init[1]),
        tangent=(tangent[0][:2], tangent[1]))
    np.testing.assert_allclose(res.exponent, same.exponent, rtol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_iters": 0}, "num_iters"),
    ({"burn_in": -1}, "burn_in"),
    ({"num_blocks": 0}, "num_blocks"),
    ({"tau": -1.0}, "tau"),
    ({"eta": 0.0}, "eta"),
    ({"tangent": (jnp.ones(3),)}, "tangent"),
    ({"tangent": (jnp.ones(2), jnp.ones(2))}, "tangent"),
    ({"init": (jnp.zeros(2), jnp.zeros(3))}, "simplex"),
])
def test_validation(kwargs, match):
  game = jaxnpg.random_game(jax.random.key(0), (2, 3))
  args = {"tau": 0.5, "eta": 0.5, "num_iters": 10, **kwargs}
  with pytest.raises(ValueError, match=match):
    jaxnpg.lyapunov_exponent(game, args.pop("tau"), args.pop("eta"),
                             args.pop("num_iters"), **args)
  batch = jax.vmap(lambda k: jaxnpg.random_game(k, (2, 3)))(
      jax.random.split(jax.random.key(0), 2))
  with pytest.raises(ValueError, match="batch"):
    jaxnpg.lyapunov_exponent(batch, 0.5, 0.5, 10)
