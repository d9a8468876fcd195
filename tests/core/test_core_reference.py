"""The core functions against the plain NumPy reference (tests/reference.py).

The comparisons go through ``core_jit`` (all core functions under one shared
``jax.jit``: one compile per shape instead of eager op-by-op dispatch); one test runs
the eager, validated entry points against the reference too, and
test_core_transforms checks that jit and eager agree.
"""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference

# 1 to 5 agents, mixed sizes, agents with exactly one action included. Every
# shape costs a compile, so float32 (whose code path is the same) gets a subset.
SIZES_64 = [(4,), (1,), (3, 1), (1, 1), (3, 4, 5), (2, 1, 3, 2), (2, 2, 1, 2, 3)]
SIZES_32 = [(3, 1), (3, 4, 5)]
CASES = ([pytest.param(s, "float64", id=f"float64-{s}") for s in SIZES_64]
         + [pytest.param(s, "float32", id=f"float32-{s}") for s in SIZES_32])
TAUS = [0.0, 0.05, 0.3, 1.0, 5.0]
ETAS = [0.01, 0.3, 1.0]


def _case(rng, sizes, dtype):
  """A random game and policy: float64 NumPy originals and their jaxnpg versions."""
  rewards = reference.random_rewards(rng, sizes)
  probs = reference.random_probs(rng, sizes, min_prob=1e-3)
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards, dtype))
  logp = tuple(jnp.asarray(np.log(p), dtype) for p in probs)
  return rewards, probs, game, logp


def test_reference_matching_pennies_by_hand():
  """The reference itself on a game small enough to work out by hand."""
  rewards = np.array([[[1.0, 0.0], [0.0, 1.0]],
                      [[0.0, 1.0], [1.0, 0.0]]])
  probs = [np.array([0.25, 0.75]), np.array([0.4, 0.6])]
  rbar = reference.marginal_rewards(rewards, probs)
  # Agent 0 matches agent 1; agent 1 mismatches agent 0.
  np.testing.assert_allclose(rbar[0], [0.4, 0.6], rtol=0, atol=1e-15)
  np.testing.assert_allclose(rbar[1], [0.75, 0.25], rtol=0, atol=1e-15)
  np.testing.assert_allclose(reference.ne_gap_per_agent(rewards, probs),
                             [0.6 - (0.25 * 0.4 + 0.75 * 0.6),
                              0.75 - (0.4 * 0.75 + 0.6 * 0.25)], atol=1e-15)
  # Eq. (4): the difference of regularized rewards is tau * KL(pi_i || pi_i^*).
  tau = 0.7
  gaps = reference.qre_gap_per_agent(rewards, probs, tau)
  for i in range(2):
    star = reference.soft_best_response(rbar[i], tau)
    np.testing.assert_allclose(gaps[i], tau * reference.kl(probs[i], star),
                               rtol=1e-12)
  # Eq. (2) for agent 0 by hand.
  eta = 0.5
  w = probs[0] ** (1 - eta * tau) * np.exp(eta * rbar[0])
  np.testing.assert_allclose(reference.npg_step(rewards, probs, tau, eta)[0],
                             w / w.sum(), rtol=1e-14)


@pytest.mark.parametrize("sizes, precision", CASES, indirect=["precision"])
def test_marginal_rewards(sizes, precision, rng, core_jit):
  dtype, rtol, atol = precision
  rewards, probs, game, logp = _case(rng, sizes, dtype)
  got = core_jit(game, logp, 0.1, 0.1)["marginal_rewards"]
  want = reference.marginal_rewards(rewards, probs)
  assert len(got) == len(sizes)
  for g, w in zip(got, want):
    assert g.dtype == dtype and g.shape == w.shape
    np.testing.assert_allclose(np.asarray(g), w, rtol=rtol, atol=atol)


@pytest.mark.parametrize("sizes, precision", CASES, indirect=["precision"])
def test_npg_step(sizes, precision, rng, core_jit):
  dtype, rtol, atol = precision
  rewards, probs, game, logp = _case(rng, sizes, dtype)
  for tau, eta in itertools.product(TAUS, ETAS):
    got = core_jit(game, logp, tau, eta)["npg_step"]
    want = reference.npg_step(rewards, probs, tau, eta)
    for g, w in zip(got, want):
      assert g.dtype == dtype and g.shape == w.shape
      # log-probabilities are O(10) here, so the float32 tolerance is relative.
      np.testing.assert_allclose(np.asarray(g, np.float64), np.log(w),
                                 rtol=rtol, atol=10 * atol,
                                 err_msg=f"tau={tau}, eta={eta}")
      np.testing.assert_allclose(np.exp(np.asarray(g, np.float64)), w,
                                 rtol=rtol, atol=atol,
                                 err_msg=f"tau={tau}, eta={eta}")


@pytest.mark.parametrize("sizes, precision", CASES, indirect=["precision"])
def test_gaps(sizes, precision, rng, core_jit):
  dtype, rtol, atol = precision
  rewards, probs, game, logp = _case(rng, sizes, dtype)
  want_ne = reference.ne_gap_per_agent(rewards, probs)
  got_ne = core_jit(game, logp, 0.1, 0.1)["ne_gap_per_agent"]
  assert got_ne.shape == (len(sizes),) and got_ne.dtype == dtype
  np.testing.assert_allclose(np.asarray(got_ne), want_ne, rtol=rtol, atol=atol)
  got = core_jit(game, logp, 0.1, 0.1)["ne_gap"]
  assert got.shape == () and got.dtype == dtype
  np.testing.assert_allclose(float(got), want_ne.max(), rtol=rtol, atol=atol)
  for tau in TAUS:
    # The reference computes rhat_i(pi_i^*) - rhat_i(pi_i): the entropy terms are
    # O(tau log A), so the absolute error scales with 1 + tau.
    tol = dict(rtol=rtol, atol=atol * (1 + tau), err_msg=f"tau={tau}")
    want = reference.qre_gap_per_agent(rewards, probs, tau)
    out = core_jit(game, logp, tau, 0.1)
    got = out["qre_gap_per_agent"]
    assert got.shape == (len(sizes),) and got.dtype == dtype
    np.testing.assert_allclose(np.asarray(got), want, **tol)
    np.testing.assert_allclose(np.asarray(out["kl_residual"]), want.max(), **tol)
    got = out["qre_gap"]
    assert got.shape == () and got.dtype == dtype
    np.testing.assert_allclose(float(got), want.max(), **tol)


@pytest.mark.parametrize("sizes, precision", CASES, indirect=["precision"])
def test_soft_best_response_and_residual(sizes, precision, rng, core_jit):
  dtype, rtol, atol = precision
  rewards, probs, game, logp = _case(rng, sizes, dtype)
  rbar = reference.marginal_rewards(rewards, probs)
  for tau in TAUS:
    out = core_jit(game, logp, tau, 0.1)
    got = out["soft_best_response"]
    for g, r in zip(got, rbar):
      assert g.dtype == dtype and g.shape == r.shape
      want = reference.soft_best_response(r, tau)
      np.testing.assert_allclose(np.exp(np.asarray(g, np.float64)), want,
                                 rtol=rtol, atol=atol, err_msg=f"tau={tau}")
      if tau > 0:
        # rbar / tau is O(20) at tau = 0.05: float32 loses ~20 * eps there.
        np.testing.assert_allclose(np.asarray(g, np.float64), np.log(want),
                                   rtol=rtol, atol=atol * (1 + 1 / tau),
                                   err_msg=f"tau={tau}")
    got = out["fixed_point_residual"]
    assert got.shape == () and got.dtype == dtype
    want = reference.fixed_point_residual(rewards, probs, tau)
    np.testing.assert_allclose(
        float(got), want, rtol=rtol,
        atol=atol * (10 + (1 / tau if tau else 0)), err_msg=f"tau={tau}")


def test_soft_best_response_tau_zero_splits_ties(x64):
  """At tau = 0 the best response is uniform over the maximizing actions."""
  rewards = np.zeros((2, 3, 2))
  rewards[0, 0, :] = 1.0
  rewards[0, 2, :] = 1.0          # agent 0: actions 0 and 2 tie at the top
  rewards[1] = 0.5                # agent 1: indifferent between both
  game = jaxnpg.NormalFormGame(rewards)
  logp = jaxnpg.uniform_policy(game)
  br = jaxnpg.to_probs(jaxnpg.soft_best_response(game, logp, 0.0))
  np.testing.assert_allclose(np.asarray(br[0]), [0.5, 0.0, 0.5], atol=1e-15)
  np.testing.assert_allclose(np.asarray(br[1]), [0.5, 0.5], atol=1e-15)


@pytest.mark.parametrize("sizes", [(3, 4, 5)], ids=str)
def test_eager_entry_points_match_reference(sizes, x64, rng):
  """The validated, eager public functions against the reference (float64)."""
  rewards, probs, game, logp = _case(rng, sizes, np.float64)
  tol = dict(rtol=1e-12, atol=1e-13)
  rbar = reference.marginal_rewards(rewards, probs)
  for g, w in zip(jaxnpg.marginal_rewards(game, logp), rbar):
    np.testing.assert_allclose(np.asarray(g), w, **tol)
  np.testing.assert_allclose(np.asarray(jaxnpg.ne_gap_per_agent(game, logp)),
                             reference.ne_gap_per_agent(rewards, probs), **tol)
  np.testing.assert_allclose(float(jaxnpg.ne_gap(game, logp)),
                             reference.ne_gap(rewards, probs), **tol)
  for tau, eta in [(0.0, 0.5), (0.3, 0.2), (2.0, 0.5)]:
    for g, w in zip(jaxnpg.npg_step(game, logp, tau, eta),
                    reference.npg_step(rewards, probs, tau, eta)):
      np.testing.assert_allclose(np.asarray(g), np.log(w), **tol)
    for g, r in zip(jaxnpg.soft_best_response(game, logp, tau), rbar):
      np.testing.assert_allclose(np.exp(np.asarray(g)),
                                 reference.soft_best_response(r, tau), **tol)
    want = reference.qre_gap_per_agent(rewards, probs, tau)
    np.testing.assert_allclose(
        np.asarray(jaxnpg.qre_gap_per_agent(game, logp, tau)), want, **tol)
    np.testing.assert_allclose(float(jaxnpg.qre_gap(game, logp, tau)),
                               want.max(), **tol)
    np.testing.assert_allclose(float(jaxnpg.kl_residual(game, logp, tau)),
                               want.max(), **tol)
    np.testing.assert_allclose(
        float(jaxnpg.fixed_point_residual(game, logp, tau)),
        reference.fixed_point_residual(rewards, probs, tau), **tol)
