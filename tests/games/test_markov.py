"""Markov games against the plain NumPy reference (tests/markov_reference.py).

The reference evaluates values by iterating the Bellman equation and best
responses by (soft) value iteration, with explicit loops over states and joint
actions; jaxnpg uses linear solves and policy iteration. Every jaxnpg quantity is
computed through one jitted function per game shape (compiles are the cost here).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import markov_reference as ref

TAUS = [0.0, 0.3, 2.0]
ETA = 0.05


@functools.partial(jax.jit, static_argnames=())
def _everything(game, logp, tau, eta):
  """Every Markov quantity at once (one compile per shape, dtype, convention)."""
  values, qbar = game.evaluate(logp, tau)
  return dict(
      values=values, qbar=qbar,
      step=jaxnpg.npg_step(game, logp, tau, eta),
      qre=game.qre_gap_per_agent(logp, tau),
      ne=game.ne_gap_per_agent(logp),
      kl=jaxnpg.kl_residual(game, logp, tau),
      br=game.best_response(logp, tau),
  )


def _case(seed, num_states, sizes, gamma, dtype, convention="soft"):
  rng = np.random.default_rng(seed)
  rewards, transitions = ref.random_markov(rng, num_states, sizes)
  probs = ref.random_markov_probs(rng, num_states, sizes)
  rho = rng.dirichlet(np.ones(num_states))
  game = jaxnpg.MarkovGame(jnp.asarray(rewards, dtype),
                           jnp.asarray(transitions, dtype), gamma,
                           jnp.asarray(rho, dtype), convention)
  logp = tuple(jnp.asarray(np.log(p), dtype) for p in probs)
  return (rewards, transitions, rho, probs), game, logp


CASES = [
    # (num_states, sizes, gamma, dtype, convention)
    pytest.param(3, (2, 3), 0.7, "float64", "soft", id="f64-soft-(2,3)-S3"),
    pytest.param(3, (2, 3), 0.7, "float64", "logit", id="f64-logit-(2,3)-S3"),
    pytest.param(2, (2, 2, 3), 0.5, "float64", "soft", id="f64-soft-(2,2,3)-S2"),
    pytest.param(4, (3,), 0.9, "float64", "soft", id="f64-soft-mdp-(3,)-S4"),
    pytest.param(3, (2, 3), 0.7, "float32", "soft", id="f32-soft-(2,3)-S3"),
]


@pytest.mark.parametrize("num_states,sizes,gamma,dtype,convention", CASES)
def test_against_reference(num_states, sizes, gamma, dtype, convention):
  with jax.enable_x64(dtype == "float64"):
    (R, P, rho, probs), game, logp = _case(7, num_states, sizes, gamma, dtype,
                                          convention)
    rtol, atol = (1e-10, 1e-11) if dtype == "float64" else (2e-4, 2e-5)
    for tau in TAUS:
      out = _everything(game, logp, jnp.asarray(tau, dtype),
                        jnp.asarray(ETA, dtype))
      assert out["values"].dtype == np.dtype(dtype)
      assert all(s.dtype == np.dtype(dtype) for s in out["step"])
      # Values and marginal Q-values of the game's convention.
      v = ref.values(R, P, gamma, probs, tau, convention)
      np.testing.assert_allclose(out["values"], v, rtol=rtol, atol=atol)
      q = ref.q_values(R, P, gamma, probs, v)
      for i in range(len(sizes)):
        np.testing.assert_allclose(out["qbar"][i], q[i], rtol=rtol, atol=atol)
      # The SPEC's update, eta_bar = eta / (1 - gamma).
      new = ref.npg_step(R, P, gamma, probs, tau, ETA, convention)
      for i in range(len(sizes)):
        np.testing.assert_allclose(np.exp(out["step"][i]), new[i], rtol=rtol,
                                   atol=atol)
      # Gaps: NE-gap (both conventions), Markov QRE-gap (soft) or KL residual.
      np.testing.assert_allclose(out["ne"],
                                 ref.gaps_per_agent(R, P, gamma, rho, probs, 0.0),
                                 rtol=rtol, atol=10 * atol)
      kl = ref.kl_residual(R, P, gamma, probs, tau, convention) if tau else None
      if tau > 0:
        np.testing.assert_allclose(out["kl"], kl, rtol=rtol, atol=atol)
      if convention == "soft":
        np.testing.assert_allclose(
            out["qre"], ref.gaps_per_agent(R, P, gamma, rho, probs, tau),
            rtol=rtol, atol=10 * atol)
      elif tau > 0:
        np.testing.assert_allclose(np.max(out["qre"]), kl, rtol=rtol, atol=atol)
      # The MDP best response: (soft) value iteration in each induced MDP.
      for i in range(len(sizes)):
        r_i, p_i = ref.induced_mdp(R, P, probs, i)
        _, star = ref.optimal(r_i, p_i, gamma, tau)
        np.testing.assert_allclose(np.exp(out["br"][i]), star, rtol=rtol,
                                   atol=10 * atol)


@jax.jit
def _public(game, logp, tau, eta):
  """The public per-game functions, under one jit."""
  return dict(
      q=jaxnpg.marginal_rewards(game, logp, tau),
      step=jaxnpg.npg_step(game, logp, tau, eta),
      qre=jaxnpg.qre_gap(game, logp, tau),
      kl=jaxnpg.kl_residual(game, logp, tau),
      fp=jaxnpg.fixed_point_residual(game, logp, tau),
      # The logit NE-gap is the same code as the soft one (values without
      # entropy); skipping it there saves a compile.
      ne=(jaxnpg.ne_gap_per_agent(game, logp)
          if getattr(game, "convention", None) != "logit" else None),
  )


def test_one_state_discount_zero_equals_static_game(x64):
  rng = np.random.default_rng(11)
  sizes = (2, 3, 2)
  rewards = rng.uniform(size=(3,) + sizes)
  static = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  probs = [rng.dirichlet(np.ones(a)) for a in sizes]
  logp = tuple(jnp.asarray(np.log(p)) for p in probs)
  init = tuple(lp[None] for lp in logp)
  for convention in ("soft", "logit"):
    game = jaxnpg.MarkovGame(jnp.asarray(rewards[:, None]),
                             jnp.ones((1,) + sizes + (1,)), 0.0,
                             convention=convention)
    assert float(game.step_scale) == 1.0
    for tau in (0.0, 0.4):
      args = (jnp.asarray(tau), jnp.asarray(0.3))
      a, b = _public(game, init, *args), _public(static, logp, *args)
      for x, y in zip(a["q"], b["q"]):
        np.testing.assert_allclose(x[0], y, rtol=1e-14, atol=1e-15)
      for x, y in zip(a["step"], b["step"]):
        np.testing.assert_allclose(x[0], y, rtol=1e-13, atol=1e-14)
      for name in ("qre", "kl", "fp", "ne"):
        if a[name] is not None:
          np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-15,
                                     err_msg=name)
  # run (soft convention, the default).
  game = jaxnpg.MarkovGame(jnp.asarray(rewards[:, None]),
                           jnp.ones((1,) + sizes + (1,)), 0.0)
  a = jaxnpg.run(game, 0.5, 0.2, 30, init=init, record_every=10)
  b = jaxnpg.run(static, 0.5, 0.2, 30, init=logp, record_every=10)
  np.testing.assert_allclose(a.qre_gap, b.qre_gap, rtol=1e-9, atol=1e-15)
  np.testing.assert_allclose(a.ne_gap, b.ne_gap, rtol=1e-10, atol=1e-15)
  for x, y in zip(a.logp, b.logp):
    np.testing.assert_allclose(x[0], y, rtol=1e-12, atol=1e-13)


# Equilibria: one shape for all of them, so solve compiles once per convention.
EQ_STATES, EQ_SIZES = 3, (3, 3)


def _solve_both(R, P, gamma, tau):
  """Soft and logit QREs of the same game arrays (float64, tight tolerance)."""
  out = {}
  for convention in ("soft", "logit"):
    game = jaxnpg.MarkovGame(jnp.asarray(R), jnp.asarray(P), gamma,
                             convention=convention)
    sol = jaxnpg.solve(game, tau, 0.25 * (1 - gamma) / tau, tol=1e-12,
                       max_iters=20_000)
    assert bool(sol.converged), (convention, tau)
    out[convention] = (game, [np.exp(np.asarray(lp)) for lp in sol.logp])
  return out


def test_soft_qre_is_each_agents_soft_best_response(x64):
  rng = np.random.default_rng(5)
  R, P = ref.random_markov(rng, EQ_STATES, EQ_SIZES)
  gamma, tau = 0.8, 0.3
  game, probs = _solve_both(R, P, gamma, tau)["soft"]
  logp = tuple(jnp.asarray(np.log(p)) for p in probs)
  for i in range(len(EQ_SIZES)):
    r_i, p_i = ref.induced_mdp(R, P, probs, i)
    _, star = ref.optimal(r_i, p_i, gamma, tau)
    np.testing.assert_allclose(probs[i], star, atol=1e-9)
    br, resid = game.best_response(logp, tau, return_residual=True)
    np.testing.assert_allclose(np.exp(br[i]), star, atol=1e-9)
    assert 0 <= float(resid) < 1e-12
  assert float(jaxnpg.qre_gap(game, logp, tau)) < 1e-14
  assert ref.gaps_per_agent(R, P, gamma, np.ones(EQ_STATES) / EQ_STATES,
                            probs, tau).max() < 1e-12


def test_conventions_differ_and_each_is_its_own_fixed_point(x64):
  rng = np.random.default_rng(6)
  R, P = ref.random_markov(rng, EQ_STATES, EQ_SIZES)
  gamma, tau = 0.8, 0.2
  both = _solve_both(R, P, gamma, tau)
  soft, logit = both["soft"][1], both["logit"][1]
  # Each is the fixed point of its own convention's Q, not of the other's.
  assert ref.kl_residual(R, P, gamma, soft, tau, "soft") < 1e-14
  assert ref.kl_residual(R, P, gamma, logit, tau, "logit") < 1e-14
  assert ref.kl_residual(R, P, gamma, logit, tau, "soft") > 1e-8
  assert ref.kl_residual(R, P, gamma, soft, tau, "logit") > 1e-8
  diff = max(np.max(np.abs(a - b)) for a, b in zip(soft, logit))
  assert diff > 1e-4
  # The logit QRE is not a soft QRE: it has a positive soft Markov QRE-gap.
  soft_game = both["soft"][0]
  gap = jaxnpg.qre_gap(soft_game, tuple(jnp.log(jnp.asarray(p)) for p in logit),
                       tau)
  rho = np.ones(EQ_STATES) / EQ_STATES
  np.testing.assert_allclose(gap, ref.gaps_per_agent(R, P, gamma, rho, logit,
                                                     tau).max(), rtol=1e-6)
  assert gap > 1e-8
  # qre_gap of a logit game is its KL residual (SPEC: no value gap for logit).
  logit_game = both["logit"][0]
  lp = tuple(jnp.log(jnp.asarray(p)) for p in soft)
  np.testing.assert_allclose(jaxnpg.qre_gap(logit_game, lp, tau),
                             jaxnpg.kl_residual(logit_game, lp, tau), rtol=1e-12)
  assert logit_game.qre_gap_label.startswith("KL residual")


def test_conventions_agree_as_tau_goes_to_zero_at_a_strict_equilibrium(x64):
  # Action 0 earns 2 more than any other in every state; with gamma = 0.5 the
  # continuation values differ by at most 0.2 / (1 - 0.5) * 0.5 = 0.2, so action 0
  # is a strict equilibrium of the Markov game.
  rng = np.random.default_rng(8)
  R, P = ref.random_markov(rng, EQ_STATES, EQ_SIZES, high=0.2)
  R[0, :, 0, :] += 2.0
  R[1, :, :, 0] += 2.0
  diffs = []
  for tau in (1.0, 0.3, 0.1):
    both = _solve_both(R, P, 0.5, tau)
    diffs.append(max(np.max(np.abs(a - b))
                     for a, b in zip(both["soft"][1], both["logit"][1])))
    for probs in (both["soft"][1], both["logit"][1]):
      assert min(p[:, 0].min() for p in probs) > 1 - 20 * np.exp(-1.5 / tau)
  assert diffs[0] > 1e-4
  assert diffs[0] > diffs[1] > diffs[2]
  assert diffs[2] < 1e-6


def test_bad_inputs_raise_clear_errors():
  rewards = np.zeros((2, 3, 2, 2))
  trans = np.full((3, 2, 2, 3), 1 / 3)
  jaxnpg.MarkovGame(rewards, trans, 0.9)  # fine
  bad = trans.copy()
  bad[1, 0, 1] = [0.5, 0.6, -0.1]
  with pytest.raises(ValueError, match="nonnegative"):
    jaxnpg.MarkovGame(rewards, bad, 0.9)
  bad = trans.copy()
  bad[2, 1, 0] = [0.5, 0.5, 0.1]
  with pytest.raises(ValueError, match=r"sum to 1 .*index \(2, 1, 0\).*tolerance"):
    jaxnpg.MarkovGame(rewards, bad, 0.9)
  with pytest.raises(ValueError, match="finite"):
    jaxnpg.MarkovGame(rewards, np.where(trans > 0, np.nan, 0), 0.9)
  for gamma in (1.0, -0.1, np.nan, 1.5):
    with pytest.raises(ValueError, match=r"discount.*\[0, 1\)"):
      jaxnpg.MarkovGame(rewards, trans, gamma)
  with pytest.raises(ValueError, match="transitions.*expected"):
    jaxnpg.MarkovGame(rewards, np.full((3, 2, 2, 2), 0.5), 0.9)
  with pytest.raises(ValueError, match="transitions.*expected"):
    jaxnpg.MarkovGame(rewards, np.full((2, 2, 2, 2), 0.5), 0.9)
  with pytest.raises(ValueError, match="rank"):
    jaxnpg.MarkovGame(np.zeros((2, 3, 2)), trans, 0.9)
  with pytest.raises(ValueError, match="rewards.*finite"):
    jaxnpg.MarkovGame(np.full((2, 3, 2, 2), np.inf), trans, 0.9)
  with pytest.raises(ValueError, match="initial.*sum to 1"):
    jaxnpg.MarkovGame(rewards, trans, 0.9, initial=[0.5, 0.5, 0.5])
  with pytest.raises(ValueError, match="initial.*shape"):
    jaxnpg.MarkovGame(rewards, trans, 0.9, initial=[0.5, 0.5])
  with pytest.raises(ValueError, match="convention"):
    jaxnpg.MarkovGame(rewards, trans, 0.9, convention="nash")
  with pytest.raises(ValueError, match="max_iters"):
    jaxnpg.MarkovGame(rewards, trans, 0.9).best_response(
        (jnp.zeros((3, 2)) - jnp.log(2.0),) * 2, 0.1, max_iters=0)
  with pytest.raises(ValueError, match="num_states"):
    jaxnpg.random_markov_game(jax.random.key(0), 0, (2, 2), 0.9)
  with pytest.raises(ValueError, match="expected \\(3, 2\\)"):
    jaxnpg.npg_step(jaxnpg.MarkovGame(rewards, trans, 0.9),
                    (jnp.zeros(2) - jnp.log(2.0),) * 2, 0.1, 0.1)
  with pytest.raises(ValueError, match="same agents"):
    jaxnpg.markov_game_from_stage_games([rewards[:, 0], np.zeros((2, 2, 3))],
                                        trans, 0.9)


def test_payoffs_take_tau_and_the_game_declares_its_kind(x64):
  """One payoffs method: soft Q-values move with tau, logit ones ignore it."""
  _, soft, logp = _case(9, 3, (2, 3), 0.7, "float64", "soft")
  logit = jaxnpg.MarkovGame(soft.rewards, soft.transitions, 0.7, soft.initial,
                            "logit")
  at_zero = soft.payoffs(logp)
  for a, b, c in zip(at_zero, soft.payoffs(logp, 0.0),
                     jaxnpg.marginal_rewards(soft, logp)):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
  at_half = soft.payoffs(logp, 0.5)
  for a, b, c in zip(at_half, jaxnpg.marginal_rewards(soft, logp, 0.5),
                     soft.evaluate(logp, 0.5)[1]):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
  assert max(float(jnp.max(jnp.abs(a - b)))
             for a, b in zip(at_half, at_zero)) > 1e-3
  for a, b in zip(logit.payoffs(logp, 0.5), logit.payoffs(logp)):
    np.testing.assert_array_equal(a, b)
  for game in (soft, logit):
    assert not (game.is_static or game.can_sample or game.has_dense_form)
    assert game.has_reward_range
  assert soft.payoffs_depend_on_tau and not logit.payoffs_depend_on_tau
  assert soft.qre_gap_label.startswith("Markov QRE-gap")


def test_stage_games_constructor():
  rng = np.random.default_rng(2)
  R, P = ref.random_markov(rng, 3, (2, 3))
  stages = [jaxnpg.NormalFormGame(R[:, s]) if s % 2 else R[:, s]
            for s in range(3)]
  game = jaxnpg.markov_game_from_stage_games(stages, P, 0.6, convention="logit")
  np.testing.assert_array_equal(np.asarray(game.rewards),
                                np.asarray(R, game.dtype))
  assert game.convention == "logit" and game.num_states == 3


@pytest.mark.slow   # ~35 s; the batch-last Markov tests cover vmap(run) (`pytest -m slow`)
def test_family_vmap_run_and_robustness():
  """Batched games from the registered family: jit(vmap(run)) against a per-game
  loop of single steps (the loop reuses test_against_reference's f32 compile)."""
  keys = jax.random.split(jax.random.key(4), 5)
  make = lambda k: jaxnpg.make_game("markov", k, (2, 3), num_states=3,
                                    discount=0.7)
  games = jax.jit(jax.vmap(make))(keys)
  assert games.batch_shape == (5,) and games.discount.shape == (5,)
  single = make(keys[1])
  np.testing.assert_array_equal(games.transitions[1], single.transitions)
  run = jax.jit(jax.vmap(
      lambda g, tau, eta: jaxnpg.run(g, tau, eta, 6, record_every=3)))
  taus, etas = jnp.full(5, 0.3), jnp.full(5, 0.1)
  batched = run(games, taus, etas)
  assert batched.qre_gap.dtype == jnp.float32 and batched.qre_gap.shape == (5, 3)
  logp = jaxnpg.uniform_policy(single)
  for k in range(7):
    out = _everything(single, logp, taus[1], etas[1])
    if k % 3 == 0:
      np.testing.assert_allclose(batched.qre_gap[1, k // 3], out["qre"].max(),
                                 rtol=1e-4, atol=1e-6)
      np.testing.assert_allclose(batched.ne_gap[1, k // 3], out["ne"].max(),
                                 rtol=1e-4, atol=1e-6)
    logp = out["step"]
  # No NaN or inf (same compiled call): tau = 0, large tau, eta_bar * tau = 1,
  # large rewards with and without entropy.
  big = games.rewards.at[3:].multiply(1e6)
  games = jaxnpg.MarkovGame(big, games.transitions, games.discount,
                            num_agents=2)
  taus = jnp.array([0.0, 1e3, 2.0, 0.1, 0.0])
  etas = jnp.array([0.5, 1e-4, 0.5 * 0.3, 1e-8, 1e-6])
  res = run(games, taus, etas)
  for x in (res.qre_gap, res.ne_gap):
    assert np.all(np.isfinite(np.asarray(x)))
  for x in res.logp:
    assert not np.any(np.isnan(np.asarray(x)) | (np.asarray(x) == np.inf))


@pytest.mark.slow
def test_figure_2c_quick(tmp_path):
  from jaxnpg.paper import figures as _paper
  iterations, curves = _paper.figure_2c(str(tmp_path), quick=True)
  assert (tmp_path / "figure_2c.png").stat().st_size > 0
  assert (tmp_path / "figure_2c.json").exists()
  assert set(curves) == set(_paper.FIGURE_2C_TAUS)
  # tau >= 0.1 converges (SPEC: eta_bar * tau = 0.25 on the paper's sizes).
  for tau, gap in curves.items():
    if tau >= 0.1:
      assert gap[-1] < 1e-4 * gap[0]
