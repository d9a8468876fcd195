"""Identities the definitions imply: eq. (4), fixed points, tau = 0, run and solve."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference
from conftest import core_outputs_jit

SIZES = (3, 4, 5)


# The Python loops below call the core functions jitted (``core_outputs_jit``,
# shared with the other test files): the same functions, compiled once.
def _step(game, logp, tau, eta):
  return core_outputs_jit(game, logp, tau, eta)["npg_step"]


def _qre_gap(game, logp, tau):
  return core_outputs_jit(game, logp, tau, 0.1)["qre_gap"]


def _ne_gap(game, logp):
  return core_outputs_jit(game, logp, 0.0, 0.1)["ne_gap"]


def _case(seed, sizes=SIZES):
  rng = np.random.default_rng(seed)
  rewards = reference.random_rewards(rng, sizes)
  probs = reference.random_probs(rng, sizes, min_prob=1e-3)
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  logp = tuple(jnp.asarray(np.log(p)) for p in probs)
  return rewards, probs, game, logp


@pytest.mark.parametrize("tau", [0.05, 0.5, 3.0])
def test_qre_gap_is_difference_of_regularized_rewards(tau, x64, core_jit):
  """Eq. (4): tau KL(pi_i || pi_i^*) = rhat_i(pi_i^*, pi_-i) - rhat_i(pi_i, pi_-i)."""
  rewards, probs, game, logp = _case(1)
  out = core_jit(game, logp, tau, 0.1)
  # The long way, from jaxnpg's own marginals and soft best responses ...
  for i, (p, rbar, log_star) in enumerate(zip(
      probs, out["marginal_rewards"], out["soft_best_response"])):
    rbar = np.asarray(rbar)
    star = np.exp(np.asarray(log_star))
    long_way = (reference.regularized_reward(star, rbar, tau)
                - reference.regularized_reward(p, rbar, tau))
    np.testing.assert_allclose(float(out["qre_gap_per_agent"][i]), long_way,
                               rtol=1e-10, atol=1e-14)
    # ... and the KL form of the same quantity, in the reference.
    np.testing.assert_allclose(long_way, tau * reference.kl(p, star),
                               rtol=1e-10, atol=1e-14)
  # The soft best response maximizes rhat_i against pi_-i: no other policy beats it.
  rng = np.random.default_rng(2)
  rbar = np.asarray(out["marginal_rewards"][2])
  best = reference.regularized_reward(
      np.exp(np.asarray(out["soft_best_response"][2])), rbar, tau)
  for other in reference.random_probs(rng, [5] * 200):
    assert reference.regularized_reward(other, rbar, tau) <= best + 1e-15


@pytest.fixture
def qre_tau1(x64):
  """A QRE at tau = 1 in float64: the limit of jaxnpg.solve."""
  rewards, _, game, _ = _case(3)
  sol = jaxnpg.solve(game, 1.0, 0.5, tol=1e-13, max_iters=3000)
  assert bool(sol.converged)
  return rewards, game, sol.logp


def test_qre_is_a_fixed_point_of_the_soft_best_response(qre_tau1):
  rewards, game, logp = qre_tau1
  br = jaxnpg.soft_best_response(game, logp, 1.0)
  for b, lp in zip(br, logp):
    np.testing.assert_allclose(np.asarray(b), np.asarray(lp), rtol=0,
                               atol=1e-12)
  assert float(jaxnpg.qre_gap(game, logp, 1.0)) < 1e-15
  assert float(jaxnpg.fixed_point_residual(game, logp, 1.0)) <= 1e-13
  # The reference agrees, independently: a QRE by eq. (3) with gap ~ 0 by eq. (4).
  probs = [np.exp(np.asarray(lp)) for lp in logp]
  assert reference.fixed_point_residual(rewards, probs, 1.0) < 1e-12
  assert abs(reference.qre_gap(rewards, probs, 1.0)) < 1e-14
  # And it is a fixed point of the NPG step for any step size.
  for eta in [0.01, 0.5, 1.0]:
    for new, lp in zip(jaxnpg.npg_step(game, logp, 1.0, eta), logp):
      np.testing.assert_allclose(np.asarray(new), np.asarray(lp), rtol=0,
                                 atol=1e-12)
  # But not a QRE at another temperature.
  assert float(jaxnpg.qre_gap(game, logp, 0.5)) > 1e-4


@pytest.mark.parametrize("seed", [4, 5])
def test_qre_gap_at_tau_zero_is_ne_gap_exactly(seed, precision, core_jit):
  dtype, _, _ = precision
  rng = np.random.default_rng(seed)
  rewards = reference.random_rewards(rng, SIZES)
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards, dtype))
  policies = [tuple(jnp.asarray(np.log(p), dtype)
                    for p in reference.random_probs(rng, SIZES))]
  policies.append(jaxnpg.uniform_policy(game))
  policies.append(jaxnpg.policy_from_probs(
      [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.2, 0.0, 0.0, 0.0, 0.8]],
      dtype=dtype))
  for logp in policies:
    out = core_jit(game, logp, 0.0, 0.1)
    np.testing.assert_array_equal(np.asarray(out["qre_gap_per_agent"]),
                                  np.asarray(out["ne_gap_per_agent"]))
    np.testing.assert_array_equal(np.asarray(out["qre_gap"]),
                                  np.asarray(out["ne_gap"]))
    np.testing.assert_array_equal(np.asarray(out["kl_residual"]),
                                  np.asarray(out["ne_gap"]))
    # The residual falls back to the NE-gap at tau = 0 (documented).
    np.testing.assert_array_equal(np.asarray(out["fixed_point_residual"]),
                                  np.asarray(out["ne_gap"]))
    assert float(out["ne_gap"]) > 0


@pytest.mark.parametrize("num_iters, record_every", [
    (12, 3), (10, 4), (7, 10), (0, 4)])
def test_run_records_every_r_iterations(num_iters, record_every, x64):
  """Records at 0, r, 2r, ... (every multiple of r up to num_iters) and num_iters.

  The record at iteration 0 is the initial policy's, whatever ``record_every``.
  """
  rewards, probs, game, logp = _case(7)
  want_iters = sorted(set(range(0, num_iters + 1, record_every)) | {num_iters})
  for tau, eta in [(0.3, 0.25), (0.0, 0.5)]:
    res = jaxnpg.run(game, tau, eta, num_iters, init=logp,
                     record_every=record_every)
    # Iteration 0 is the initial policy, by the NumPy reference.
    assert int(res.iterations[0]) == 0
    np.testing.assert_allclose(float(res.qre_gap[0]),
                               reference.qre_gap(rewards, probs, tau),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(float(res.ne_gap[0]),
                               reference.ne_gap(rewards, probs),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.asarray(res.iterations), want_iters)
    # The gaps recorded are those of the iterates of a Python loop of npg_step.
    iterates = [logp]
    for _ in range(num_iters):
      iterates.append(_step(game, iterates[-1], tau, eta))
    assert res.qre_gap.shape == res.ne_gap.shape == (len(want_iters),)
    for j, k in enumerate(np.asarray(res.iterations)):
      np.testing.assert_allclose(float(res.qre_gap[j]),
                                 float(_qre_gap(game, iterates[k], tau)),
                                 rtol=1e-10, atol=1e-15)
      np.testing.assert_allclose(float(res.ne_gap[j]),
                                 float(_ne_gap(game, iterates[k])),
                                 rtol=1e-10, atol=1e-15)
    for got, want in zip(res.logp, iterates[-1]):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12,
                                 atol=1e-13)


@pytest.mark.parametrize("tau, eta, tol", [
    (1.0, 0.1, 1e-9), (0.3, 0.3, 1e-6), (0.0, 0.5, 1e-3)])
def test_solve_matches_python_loop(tau, eta, tol, x64):
  rewards, probs, game, logp = _case(8)
  sol = jaxnpg.solve(game, tau, eta, tol=tol, max_iters=3000, init=logp)
  # A Python loop of npg_step until fixed_point_residual <= tol.
  k, cur = 0, logp
  out = core_outputs_jit(game, cur, tau, eta)
  while k < 3000 and float(out["fixed_point_residual"]) > tol:
    cur = out["npg_step"]
    k += 1
    out = core_outputs_jit(game, cur, tau, eta)
  m = float(out["fixed_point_residual"])
  assert int(sol.num_iters) == k
  assert bool(sol.converged) == (m <= tol)
  np.testing.assert_allclose(float(sol.measure), m, rtol=1e-9)
  np.testing.assert_allclose(float(sol.qre_gap), float(out["qre_gap"]),
                             rtol=1e-9, atol=1e-16)
  np.testing.assert_allclose(float(sol.ne_gap), float(out["ne_gap"]),
                             rtol=1e-9, atol=1e-16)
  for got, want in zip(sol.logp, cur):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10,
                               atol=1e-12)
  if tau > 0:
    assert bool(sol.converged) and k > 0


def test_solve_reference_loop_and_limits(x64):
  """solve against the NumPy reference loop; max_iters and an initial stop."""
  rewards, probs, game, logp = _case(9)
  tau, eta, tol = 0.5, 0.4, 1e-8
  want_probs, want_k, want_conv = reference.solve(rewards, probs, tau, eta, tol,
                                                  3000)
  sol = jaxnpg.solve(game, tau, eta, tol=tol, max_iters=3000, init=logp)
  assert want_conv and bool(sol.converged)
  assert int(sol.num_iters) == want_k
  for got, want in zip(sol.logp, want_probs):
    np.testing.assert_allclose(np.exp(np.asarray(got)), want, rtol=1e-10,
                               atol=1e-13)
  # Stopped by max_iters: not converged, exactly max_iters steps.
  short = jaxnpg.solve(game, tau, eta, tol=tol, max_iters=want_k - 1, init=logp)
  assert not bool(short.converged) and int(short.num_iters) == want_k - 1
  assert float(short.measure) > tol
  # Already within tol at the start: zero steps, converged, policy unchanged.
  again = jaxnpg.solve(game, tau, eta, tol=tol, max_iters=3000, init=sol.logp)
  assert bool(again.converged) and int(again.num_iters) == 0
  for got, want in zip(again.logp, sol.logp):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
  # measure="qre_gap" stops on the QRE-gap instead.
  by_gap = jaxnpg.solve(game, tau, eta, tol=1e-12, max_iters=3000, init=logp,
                        measure="qre_gap")
  assert bool(by_gap.converged)
  assert float(by_gap.measure) == float(by_gap.qre_gap) <= 1e-12
  k, cur = 0, [np.asarray(p) for p in probs]
  while reference.qre_gap(rewards, cur, tau) > 1e-12:
    cur = reference.npg_step(rewards, cur, tau, eta)
    k += 1
  assert abs(int(by_gap.num_iters) - k) <= 1   # the long-way gap rounds differently
