"""jit, vmap, grad, recompilation and dtypes of the core functions.

Compiling is the expensive part of these tests, so they share shapes ((3, 4, 5),
as in the other test files) and static arguments with each other, and the vmapped
variants are compiled once, in one jitted function.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference
from conftest import CORE_FUNCTIONS, core_outputs, core_outputs_jit

SIZES = (3, 4, 5)
BATCH = 4


def _game_and_policy(seed, dtype):
  """A random game and policy built in NumPy (no eager jax.random)."""
  rng = np.random.default_rng(seed)
  rewards = reference.random_rewards(rng, SIZES).astype(dtype)
  probs = reference.random_probs(rng, SIZES, min_prob=1e-3)
  game = jaxnpg.NormalFormGame(rewards)
  return game, tuple(jnp.asarray(np.log(p), dtype) for p in probs)


def _assert_trees_close(got, want, rtol, atol=0.0):
  got_leaves, got_def = jax.tree_util.tree_flatten(got)
  want_leaves, want_def = jax.tree_util.tree_flatten(want)
  assert got_def == want_def
  for g, w in zip(got_leaves, want_leaves):
    assert g.shape == w.shape and g.dtype == w.dtype
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol,
                               atol=atol)


def _stack(trees):
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def _unbatch(tree, b):
  return jax.tree_util.tree_map(lambda x: x[b], tree)


def test_jit_matches_eager(precision):
  dtype, rtol, atol = precision
  game, logp = _game_and_policy(0, dtype)
  for tau, eta in [(0.0, 0.2), (0.4, 0.2), (2.0, 0.5)]:
    want = core_outputs(game, logp, tau, eta)
    got = core_outputs_jit(game, logp, tau, eta)
    assert set(got) == set(CORE_FUNCTIONS)
    _assert_trees_close(got, want, rtol=rtol, atol=atol)


# The functions that depend on tau, and on eta.
WITH_TAU = ("npg_step", "soft_best_response", "qre_gap_per_agent",
            "fixed_point_residual")
WITH_ETA = ("npg_step",)
WITH_POLICY = ("npg_step", "qre_gap_per_agent", "ne_gap_per_agent",
               "marginal_rewards")


def _some(names):
  return lambda g, lp, tau, eta: {
      name: CORE_FUNCTIONS[name](g, lp, tau, eta) for name in names}


@jax.jit
def _batched(games, logps, game, logp, taus, etas):
  """The core functions vmapped over games (with policies), tau, eta, policies."""
  return {
      "games": jax.vmap(core_outputs, in_axes=(0, 0, None, None))(
          games, logps, 0.3, 0.2),
      "tau": jax.vmap(_some(WITH_TAU), in_axes=(None, None, 0, None))(
          game, logp, taus, 0.2),
      "eta": jax.vmap(_some(WITH_ETA), in_axes=(None, None, None, 0))(
          game, logp, 0.3, etas),
      "policy": jax.vmap(_some(WITH_POLICY), in_axes=(None, 0, None, None))(
          game, logps, 0.3, 0.2),
  }


TAUS = (0.0, 0.1, 0.5, 2.0)
ETAS = (0.01, 0.1, 0.5, 1.0)


_random_games = jax.jit(jax.vmap(lambda k: jaxnpg.random_game(k, SIZES)))
_random_policies = jax.jit(jax.vmap(jaxnpg.random_policy))


def _batched_case(how):
  # rbg keys: any realization serves here, and threefry is slow to compile.
  keys = jax.random.split(jax.random.key(1, impl="rbg"), BATCH)
  if how == "vmap_random_game":
    games = _random_games(keys)
  else:
    rewards = np.random.default_rng(1).uniform(size=(BATCH, 3) + SIZES)
    games = jaxnpg.NormalFormGame(rewards, num_agents=3)
  assert games.batch_shape == (BATCH,) and games.num_actions == SIZES
  assert games.num_agents == 3
  logps = _random_policies(keys, games)
  assert [lp.shape for lp in logps] == [(BATCH, a) for a in SIZES]
  game = jaxnpg.NormalFormGame(games.rewards[0])
  logp = _unbatch(logps, 0)
  out = _batched(games, logps, game, logp, jnp.asarray(TAUS), jnp.asarray(ETAS))
  return games, logps, game, logp, out


@pytest.mark.parametrize("how", ["vmap_random_game", "num_agents"])
def test_vmap_over_games_and_policies(how, x64):
  games, logps, _, _, out = _batched_case(how)
  singles = [(jaxnpg.NormalFormGame(games.rewards[b]), _unbatch(logps, b))
             for b in range(BATCH)]
  want = _stack([core_outputs_jit(g, lp, 0.3, 0.2) for g, lp in singles])
  _assert_trees_close(out["games"], want, rtol=1e-13, atol=1e-15)
  # The batch also agrees with the NumPy reference, game by game.
  for b, (g, lp) in enumerate(singles):
    probs = [np.exp(np.asarray(x)) for x in lp]
    np.testing.assert_allclose(
        float(out["games"]["qre_gap"][b]),
        reference.qre_gap(np.asarray(g.rewards), probs, 0.3), rtol=1e-12,
        atol=1e-14)


@pytest.mark.parametrize("axis", ["tau", "eta", "policy"])
def test_vmap_over_tau_eta_policy(axis, x64):
  _, logps, game, logp, out = _batched_case("num_agents")
  if axis == "tau":
    want = _stack([{k: core_outputs_jit(game, logp, t, 0.2)[k] for k in WITH_TAU}
                   for t in TAUS])
  elif axis == "eta":
    want = _stack([{k: core_outputs_jit(game, logp, 0.3, e)[k] for k in WITH_ETA}
                   for e in ETAS])
  else:
    want = _stack([{k: core_outputs_jit(game, _unbatch(logps, b), 0.3, 0.2)[k]
                    for k in WITH_POLICY} for b in range(BATCH)])
  _assert_trees_close(out[axis], want, rtol=1e-13, atol=1e-15)


# Static arguments shared with test_core_identities / test_core_numerics, so the
# single-problem runs below reuse their compiled code.
RUN_ARGS = dict(num_iters=12, record_every=3)
SOLVE_ARGS = dict(max_iters=3000)


def _run(game, tau, eta, init):
  return jaxnpg.run(game, tau, eta, init=init, **RUN_ARGS)


def _solve(game, tau, eta, init):
  return jaxnpg.solve(game, tau, eta, tol=1e-9, init=init, **SOLVE_ARGS)


@pytest.mark.parametrize("fn", [_run, _solve], ids=["run", "solve"])
def test_vmap_run_and_solve_equal_loops(fn, x64):
  games, inits, _, _, _ = _batched_case("num_agents")
  taus = jnp.array([0.2, 0.5, 1.0, 0.0])
  etas = jnp.array([0.3, 0.2, 0.5, 0.1])
  got = jax.vmap(fn)(games, taus, etas, inits)
  want = _stack([
      fn(jaxnpg.NormalFormGame(games.rewards[b]), float(taus[b]),
         float(etas[b]), _unbatch(inits, b)) for b in range(BATCH)])
  if fn is _run:
    # The rate is a least-squares slope of log-gaps: it magnifies the gaps'
    # last-bit differences (vmap may sum in another order) by the fit's
    # condition number, so it gets its own, looser, tolerance.
    np.testing.assert_allclose(got.linear_rate, want.linear_rate, rtol=1e-9)
    got, want = (r._replace(linear_rate=jnp.zeros(())) for r in (got, want))
  _assert_trees_close(got, want, rtol=1e-12, atol=1e-14)
  if fn is _solve:
    # Each problem stops at its own iteration; tau = 0 does not converge.
    np.testing.assert_array_equal(np.asarray(got.converged),
                                  [True, True, True, False])
    assert len(set(np.asarray(got.num_iters).tolist())) == BATCH


def test_jitted_npg_step_does_not_recompile_for_new_tau_or_eta():
  game, logp = _game_and_policy(5, np.float32)
  step = jax.jit(chex.assert_max_traces(jaxnpg.npg_step, n=1))
  a = step(game, logp, 0.1, 0.2)
  b = step(game, logp, 0.7, 0.05)
  c = step(game, logp, 0.3, 0.5)
  # The trace was reused, and the values did change with tau and eta.
  assert not np.allclose(np.asarray(a[0]), np.asarray(b[0]))
  _assert_trees_close(c, jaxnpg.npg_step(game, logp, 0.3, 0.5), rtol=1e-6)
  # Arrays (not weakly typed) are one more signature, then reused too.
  step = jax.jit(chex.assert_max_traces(
      lambda g, lp, tau, eta: jaxnpg.npg_step(g, lp, tau, eta), n=1))
  for tau, eta in [(0.1, 0.2), (0.0, 1.0), (5.0, 0.01)]:
    step(game, logp, jnp.float32(tau), jnp.float32(eta))


@jax.tree_util.register_pytree_node_class
class _CountingGame(jaxnpg.NormalFormGame):
  """A dense game that counts how often its payoffs are traced."""
  traces = 0

  def payoffs(self, logp, tau=0.0):
    type(self).traces += 1
    return super().payoffs(logp, tau)


@pytest.mark.parametrize("which", ["run", "solve"])
def test_run_and_solve_do_not_recompile_for_new_tau_eta_tol(which):
  rewards = np.random.default_rng(6).uniform(size=(2, 2, 3)).astype(np.float32)
  game = _CountingGame(rewards)
  if which == "run":
    call = lambda tau, eta, tol: jaxnpg.run(game, tau, eta, 7, record_every=2)
  else:
    call = lambda tau, eta, tol: jaxnpg.solve(game, tau, eta, tol=tol,
                                              max_iters=50)
  first = call(0.3, 0.1, 1e-3)
  traced = _CountingGame.traces
  assert traced > 0
  second = call(0.9, 0.05, 1e-4)
  third = call(0.0, 0.5, 1e-2)
  assert _CountingGame.traces == traced, "a new tau/eta/tol value retraced"
  assert not np.allclose(np.asarray(first.logp[1]), np.asarray(second.logp[1]))
  assert not np.allclose(np.asarray(second.logp[1]), np.asarray(third.logp[1]))


def _weights(game, seed):
  rng = np.random.default_rng(seed)
  return tuple(jnp.asarray(rng.normal(size=a)) for a in game.num_actions)


def _weighted_step(rewards, logp, tau, eta, weights):
  new = jaxnpg.npg_step(jaxnpg.NormalFormGame(rewards), logp, tau, eta)
  return sum(jnp.sum(w * lp) for w, lp in zip(weights, new))


# Jitted once for all the parameters below (tau and eta are traced).
_f = jax.jit(_weighted_step)
_df_dtau = jax.jit(jax.grad(_weighted_step, argnums=2))
_df_drewards = jax.jit(jax.grad(_weighted_step, argnums=0))


@pytest.mark.parametrize("tau", [0.0, 0.3, 2.0])
def test_grad_npg_step_wrt_tau(tau, x64):
  game, logp = _game_and_policy(7, np.float64)
  w = _weights(game, 7)
  eta = 0.2
  f = lambda t: _f(game.rewards, logp, t, eta, w)
  g = float(_df_dtau(game.rewards, logp, jnp.asarray(tau), eta, w))
  h = 1e-5
  if tau > h:
    fd = (float(f(tau + h)) - float(f(tau - h))) / (2 * h)
  else:  # second-order one-sided difference: tau must stay >= 0
    fd = (-3 * float(f(tau)) + 4 * float(f(tau + h)) - float(f(tau + 2 * h))) / (
        2 * h)
  assert np.isfinite(g) and g != 0
  np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_grad_npg_step_wrt_rewards(tau, x64):
  game, logp = _game_and_policy(8, np.float64)
  w = _weights(game, 8)
  eta = 0.3
  f = lambda r: _f(r, logp, tau, eta, w)
  rewards = game.rewards
  grad = _df_drewards(rewards, logp, tau, eta, w)
  assert grad.shape == rewards.shape and bool(jnp.all(jnp.isfinite(grad)))
  assert float(jnp.max(jnp.abs(grad))) > 0
  direction = jnp.asarray(np.random.default_rng(9).normal(size=rewards.shape))
  h = 1e-5
  fd = (float(f(rewards + h * direction)) - float(f(rewards - h * direction))) / (
      2 * h)
  np.testing.assert_allclose(float(jnp.vdot(grad, direction)), fd, rtol=1e-7,
                             atol=1e-10)
  # And one entry at a time, for a few entries.
  for idx in [(0, 0, 0, 0), (1, 2, 0, 1), (2, 1, 3, 4), (0, 2, 1, 3)]:
    e = jnp.zeros_like(rewards).at[idx].set(1.0)
    fd = (float(f(rewards + h * e)) - float(f(rewards - h * e))) / (2 * h)
    np.testing.assert_allclose(float(grad[idx]), fd, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("x64_mode, dtype", [
    (False, "float32"), (True, "float32"), (True, "float64")],
    ids=["x32-float32", "x64-float32", "x64-float64"])
def test_output_dtype_follows_input(dtype, x64_mode):
  """float32 in, float32 out (even with x64 on); float64 in, float64 out.

  Checked on the abstract evaluation (``jax.eval_shape``, no compile); the
  concrete outputs' dtypes are checked in test_jit_matches_eager,
  test_core_reference and test_core_numerics.
  """
  with jax.enable_x64(x64_mode):
    game, logp = _game_and_policy(10, dtype)
    assert game.dtype == dtype
    assert all(lp.dtype == dtype for lp in logp)
    assert jaxnpg.uniform_policy(game)[0].dtype == dtype
    shapes = jax.eval_shape(lambda g, lp: core_outputs(g, lp, 0.5, 0.1), game,
                            logp)
    for name, out in shapes.items():
      for leaf in jax.tree_util.tree_leaves(out):
        assert leaf.dtype == dtype, name
    res = jax.eval_shape(
        lambda g, lp: jaxnpg.run(g, 0.5, 0.1, 4, init=lp, record_every=2),
        game, logp)
    for leaf in (*res.logp, res.qre_gap, res.ne_gap):
      assert leaf.dtype == dtype
    assert jnp.issubdtype(res.iterations.dtype, jnp.integer)
    sol = jax.eval_shape(
        lambda g, lp: jaxnpg.solve(g, 0.5, 0.1, max_iters=20, init=lp),
        game, logp)
    for leaf in (*sol.logp, sol.measure, sol.qre_gap, sol.ne_gap):
      assert leaf.dtype == dtype
    assert sol.converged.dtype == bool
    assert jnp.issubdtype(sol.num_iters.dtype, jnp.integer)
    key = jax.random.key(0)
    assert jax.eval_shape(
        lambda k: jaxnpg.random_game(k, (2, 2), dtype=dtype), key).dtype == dtype
    assert jax.eval_shape(jaxnpg.random_policy, key, game)[2].dtype == dtype


def test_random_game_default_dtype_follows_x64():
  key = jax.random.key(0)
  make = lambda k: jaxnpg.random_game(k, (2, 2))
  assert jax.eval_shape(make, key).dtype == jnp.float32
  with jax.enable_x64(True):
    assert jax.eval_shape(make, key).dtype == jnp.float64
