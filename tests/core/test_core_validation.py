"""Bad input raises ValueError with a message that names the problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg


def _game():
  return jaxnpg.NormalFormGame(
      np.random.default_rng(0).uniform(size=(2, 2, 3)).astype(np.float32))


# --- NormalFormGame ---------------------------------------------------------------


@pytest.mark.parametrize("shape, match", [
    ((3, 2, 2), r"rank"),                 # first axis says 3 agents, rank 3
    ((2, 2, 2, 2), r"rank"),              # first axis says 2 agents, rank 4
    ((2,), r"shape"),                     # no action axes at all
    ((), r"shape"),
    ((2, 0, 3), r"at least one action"),  # an A_i of 0
    ((1, 0), r"at least one action"),
])
def test_game_bad_shapes(shape, match):
  with pytest.raises(ValueError, match=match):
    jaxnpg.NormalFormGame(np.zeros(shape, dtype=np.float32))


def test_game_batched_layout_mismatch():
  with pytest.raises(ValueError, match=r"n=3"):
    jaxnpg.NormalFormGame(np.zeros((4, 2, 2, 3), np.float32), num_agents=3)
  with pytest.raises(ValueError, match=r"num_agents"):
    jaxnpg.NormalFormGame(np.zeros((2, 2, 3), np.float32), num_agents=0)
  with pytest.raises(ValueError, match=r"at least one action"):
    jaxnpg.NormalFormGame(np.zeros((4, 2, 0, 3), np.float32), num_agents=2)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_game_non_finite_rewards(bad):
  rewards = np.zeros((2, 2, 3), np.float32)
  rewards[1, 0, 2] = bad
  with pytest.raises(ValueError, match=r"finite.*\(1, 0, 2\)"):
    jaxnpg.NormalFormGame(rewards)
  with pytest.raises(ValueError, match=r"finite"):
    jaxnpg.NormalFormGame(jnp.asarray(rewards))


def test_game_complex_rewards():
  with pytest.raises(ValueError, match=r"real"):
    jaxnpg.NormalFormGame(np.zeros((2, 2, 3), np.complex64))
  with pytest.raises(ValueError, match=r"real"):
    jaxnpg.NormalFormGame(np.array([[1 + 1j, 0.5]]))          # 1 agent, 2 actions


def test_game_integer_rewards_become_float():
  game = jaxnpg.NormalFormGame(np.ones((2, 2, 3), dtype=np.int32))
  assert jnp.issubdtype(game.dtype, jnp.floating)


# --- random_game ------------------------------------------------------------------


@pytest.mark.parametrize("sizes", [(), (3, 0), (2, -1), (2.5, 3), [0]])
def test_random_game_bad_sizes(sizes):
  with pytest.raises(ValueError, match=r"num_actions"):
    jaxnpg.random_game(jax.random.key(0), sizes)


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0), (0.0, np.inf),
                                       (np.nan, 1.0)])
def test_random_game_bad_range(low, high):
  with pytest.raises(ValueError, match=r"low < high"):
    jaxnpg.random_game(jax.random.key(0), (2, 2), low=low, high=high)


# --- tau and eta ------------------------------------------------------------------


@pytest.mark.parametrize("tau, match", [(-0.1, r"tau.*>= 0"),
                                        (np.nan, r"tau.*finite"),
                                        (np.inf, r"tau.*finite")])
def test_bad_tau(tau, match):
  game = _game()
  logp = jaxnpg.uniform_policy(game)
  for call in (lambda: jaxnpg.npg_step(game, logp, tau, 0.1),
               lambda: jaxnpg.qre_gap(game, logp, tau),
               lambda: jaxnpg.qre_gap_per_agent(game, logp, tau),
               lambda: jaxnpg.soft_best_response(game, logp, tau),
               lambda: jaxnpg.fixed_point_residual(game, logp, tau),
               lambda: jaxnpg.run(game, tau, 0.1, 3),
               lambda: jaxnpg.solve(game, tau, 0.1, max_iters=3),
               lambda: jaxnpg.paper_eta(tau, (2, 3))):
    with pytest.raises(ValueError, match=match):
      call()


@pytest.mark.parametrize("eta, match", [(0.0, r"eta.*> 0"),
                                        (-1.0, r"eta.*> 0"),
                                        (np.nan, r"eta.*finite"),
                                        (np.inf, r"eta.*finite")])
def test_bad_eta(eta, match):
  game = _game()
  logp = jaxnpg.uniform_policy(game)
  for call in (lambda: jaxnpg.npg_step(game, logp, 0.5, eta),
               lambda: jaxnpg.run(game, 0.5, eta, 3),
               lambda: jaxnpg.solve(game, 0.5, eta, max_iters=3)):
    with pytest.raises(ValueError, match=match):
      call()


def test_tau_array_with_one_negative_value():
  game = _game()
  logp = jaxnpg.uniform_policy(game)
  with pytest.raises(ValueError, match=r"tau"):
    jaxnpg.npg_step(game, logp, jnp.array([0.1, -0.1]), 0.1)


def test_run_and_solve_want_scalar_tau_eta():
  game = _game()
  with pytest.raises(ValueError, match=r"`tau` must be a scalar"):
    jaxnpg.run(game, jnp.array([0.1, 0.2]), 0.1, 3)
  with pytest.raises(ValueError, match=r"`eta` must be a scalar"):
    jaxnpg.solve(game, 0.1, jnp.array([0.1, 0.2]), max_iters=3)


# --- policies ---------------------------------------------------------------------


def _all_policy_takers(game, logp):
  return [
      lambda: jaxnpg.npg_step(game, logp, 0.5, 0.1),
      lambda: jaxnpg.marginal_rewards(game, logp),
      lambda: jaxnpg.soft_best_response(game, logp, 0.5),
      lambda: jaxnpg.qre_gap(game, logp, 0.5),
      lambda: jaxnpg.qre_gap_per_agent(game, logp, 0.5),
      lambda: jaxnpg.ne_gap(game, logp),
      lambda: jaxnpg.ne_gap_per_agent(game, logp),
      lambda: jaxnpg.fixed_point_residual(game, logp, 0.5),
      lambda: jaxnpg.kl_residual(game, logp, 0.5),
      lambda: jaxnpg.run(game, 0.5, 0.1, 3, init=logp),
      lambda: jaxnpg.solve(game, 0.5, 0.1, max_iters=3, init=logp),
  ]


def _log(*probs):
  return tuple(jnp.log(jnp.asarray(p, jnp.float32)) for p in probs)


@pytest.mark.parametrize("logp, match", [
    (_log([0.5, 0.5]), r"1 agents but the game has 2"),
    (_log([0.5, 0.5], [0.2, 0.3, 0.5], [1.0]), r"3 agents but the game has 2"),
    (_log([0.2, 0.3, 0.5], [0.5, 0.5]), r"Agent 0.*shape \(3,\), expected \(2,\)"),
    (_log([0.5, 0.5], [[0.2, 0.3, 0.5]]), r"Agent 1.*shape \(1, 3\)"),
    (_log([0.5, 0.5], 1.0), r"Agent 1.*shape"),
    (jnp.log(jnp.array([0.5, 0.5])), r"tuple"),
    ((jnp.array([jnp.nan, 0.0]), jnp.log(jnp.full(3, 1 / 3))), r"Agent 0.*NaN"),
    ((jnp.log(jnp.full(2, 0.5)), jnp.array([0.0, jnp.inf, 0.0])),
     r"Agent 1.*\+inf"),
    (_log([0.5, 0.6], [0.2, 0.3, 0.5]), r"Agent 0.*off the simplex"),
    (_log([0.5, 0.5], [0.2, 0.3, 0.4]), r"Agent 1.*off the simplex"),
    ((jnp.zeros(2), jnp.zeros(3)), r"Agent 0.*off the simplex"),   # probs, not logs
    (_log([0.0, 0.0], [0.2, 0.3, 0.5]), r"Agent 0.*off the simplex"),
], ids=["too_few", "too_many", "wrong_size", "extra_axis", "scalar", "not_tuple",
        "nan", "plus_inf", "sum_over", "sum_under", "probs_passed", "all_zero"])
def test_bad_policies(logp, match):
  game = _game()
  for call in _all_policy_takers(game, logp):
    with pytest.raises(ValueError, match=match):
      call()


def test_batched_policy_for_one_game():
  game = _game()
  logp = tuple(jnp.broadcast_to(lp, (4,) + lp.shape)
               for lp in jaxnpg.uniform_policy(game))
  with pytest.raises(ValueError, match=r"Agent 0.*shape \(4, 2\).*jax.vmap"):
    jaxnpg.npg_step(game, logp, 0.5, 0.1)


def test_batched_game_in_single_game_functions():
  games = jaxnpg.NormalFormGame(np.zeros((4, 2, 2, 3), np.float32), num_agents=2)
  logp = jaxnpg.uniform_policy(games)
  single = tuple(lp[0] for lp in logp)
  with pytest.raises(ValueError, match=r"batch"):
    jaxnpg.npg_step(games, single, 0.5, 0.1)
  with pytest.raises(ValueError, match=r"batch"):
    jaxnpg.qre_gap(games, single, 0.5)


# --- policy_from_probs ------------------------------------------------------------


@pytest.mark.parametrize("probs, match", [
    ([[0.5, 0.5], [1.2, -0.2]], r"Agent 1.*>= 0"),
    ([[0.5, 0.4]], r"Agent 0.*off the simplex"),
    ([[0.5, 0.5], [0.3, 0.3, 0.3]], r"Agent 1.*off the simplex"),
    ([[0.5, np.nan]], r"Agent 0.*finite"),
    ([[0.5, np.inf]], r"Agent 0.*finite"),
    ([0.5], r"Agent 0.*action axis"),
    ([["a", "b"]], r"Agent 0.*real"),
    (np.array([[0.5, 0.5]]), r"sequence"),
], ids=["negative", "sum_under", "sum_under_agent1", "nan", "inf", "scalar",
        "strings", "not_a_sequence"])
def test_policy_from_probs_bad(probs, match):
  with pytest.raises(ValueError, match=match):
    jaxnpg.policy_from_probs(probs)


def test_policy_from_probs_tolerance_follows_dtype():
  # 1e-6 off is fine in float32, not in float64.
  probs = [[0.5, 0.5 + 1e-6]]
  jaxnpg.policy_from_probs(probs, dtype=jnp.float32)
  with jax.enable_x64(True):
    with pytest.raises(ValueError, match=r"off the simplex"):
      jaxnpg.policy_from_probs(probs, dtype=jnp.float64)


# --- run and solve ----------------------------------------------------------------


def test_run_bad_arguments():
  game = _game()
  with pytest.raises(ValueError, match=r"num_iters.*>= 0"):
    jaxnpg.run(game, 0.5, 0.1, -1)
  with pytest.raises(ValueError, match=r"num_iters.*integer"):
    jaxnpg.run(game, 0.5, 0.1, 2.5)
  with pytest.raises(ValueError, match=r"record_every.*>= 1"):
    jaxnpg.run(game, 0.5, 0.1, 3, record_every=0)
  with pytest.raises(ValueError, match=r"record_every.*>= 1"):
    jaxnpg.run(game, 0.5, 0.1, 3, record_every=-2)


@pytest.mark.parametrize("tol", [0.0, -1e-6, np.nan])
def test_solve_bad_tol(tol):
  with pytest.raises(ValueError, match=r"tol.*> 0"):
    jaxnpg.solve(_game(), 0.5, 0.1, tol=tol, max_iters=3)


def test_solve_bad_arguments():
  game = _game()
  with pytest.raises(ValueError, match=r"measure.*'nash'"):
    jaxnpg.solve(game, 0.5, 0.1, measure="nash")
  with pytest.raises(ValueError, match=r"max_iters.*>= 0"):
    jaxnpg.solve(game, 0.5, 0.1, max_iters=-1)


def test_run_and_solve_reject_a_batch_of_games():
  games = jaxnpg.NormalFormGame(np.zeros((4, 2, 2, 3), np.float32), num_agents=2)
  with pytest.raises(ValueError, match=r"batch of games.*jax.vmap"):
    jaxnpg.run(games, 0.5, 0.1, 3)
  with pytest.raises(ValueError, match=r"batch of games.*jax.vmap"):
    jaxnpg.solve(games, 0.5, 0.1, max_iters=3)


# --- Declared abilities of a game type -------------------------------------------


class _Plain(jaxnpg.Game):
  """A user's game type that declares nothing: the base class's safe defaults."""
  num_agents, num_actions = 2, (2, 2)
  policy_shapes = ((2,), (2,))
  batch_shape = ()
  dtype = jnp.dtype(jnp.float32)

  def payoffs(self, logp, tau=0.0):
    return tuple(jnp.zeros(2, jnp.float32) for _ in logp)


def test_games_declare_their_abilities():
  dense = _game()
  poly = jaxnpg.PolymatrixGame([[0, 1], [1, 0]], np.ones((2, 2, 2), np.float32))
  for game in (dense, poly):
    assert game.is_static and game.can_sample and game.has_dense_form
    assert game.has_reward_range and not game.payoffs_depend_on_tau
    assert game.qre_gap_label == "QRE-gap"
    assert isinstance(game.to_dense(), jaxnpg.NormalFormGame)
  assert dense.to_dense() is dense
  plain = _Plain()
  assert plain.is_static and plain.qre_gap_label == "QRE-gap"
  assert not (plain.can_sample or plain.has_dense_form or plain.has_reward_range
              or plain.payoffs_depend_on_tau)
  for method, args in (("reward_range", ()), ("to_dense", ()),
                       ("rewards_at", ((np.zeros(1, int),) * 2,))):
    with pytest.raises(TypeError, match="is False"):
      getattr(plain, method)(*args)
  # Callers read the declarations.
  with pytest.raises(ValueError, match="reward_range="):
    jaxnpg.theory.theorem_3_3(plain, 1.0, 0.1)
  with pytest.raises(ValueError, match="can_sample"):
    jaxnpg.run(plain, 1.0, 0.1, 3, algorithm="sampled_npg",
               key=jax.random.key(0))
