"""Numerical robustness: no NaN or inf in the step, the gaps, run and solve."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference

SIZES = (3, 4, 5)

# (tau, eta): unregularized; very large tau (eta * tau = 1); eta * tau = 1 exactly
# with representable values; an ordinary point.
TAU_ETA = [(0.0, 0.1), (1e3, 1e-3), (2.0, 0.5), (0.5, 0.1)]


def _policies(dtype):
  """Policies that stress the log space, by name."""
  zero = jaxnpg.policy_from_probs(
      [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0], [0.2, 0.0, 0.0, 0.0, 0.8]],
      dtype=dtype)
  out = {"zero": zero}
  if dtype == np.float64:
    # Probabilities far below 1e-30 (down to ~1e-43), still positive.
    logits = ([-75.0, 0.0, -80.0], [0.0, -70.0, -71.0, -99.0],
              [-100.0, 0.0, 0.0, 0.0, -69.0])
    out["tiny"] = tuple(jnp.asarray(np.asarray(x) - np.log(np.exp(x).sum()))
                        for x in map(np.asarray, logits))
    assert min(float(jnp.min(jnp.exp(lp))) for lp in out["tiny"]) < 1e-30
  return out


def _rewards(scale, dtype):
  rng = np.random.default_rng(11)
  return reference.random_rewards(rng, SIZES, -scale, scale).astype(dtype)


def _assert_log_policy_ok(logp, dtype):
  for lp in logp:
    lp = np.asarray(lp)
    assert lp.dtype == dtype
    assert not np.any(np.isnan(lp)) and not np.any(lp == np.inf), lp
    np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(), 1.0,
                               atol=10 * np.finfo(dtype).eps * lp.size)


@pytest.mark.parametrize("scale", [1.0, 1e3], ids=["unit", "1e3"])
def test_npg_step_and_gaps_stay_finite(scale, precision, core_jit):
  dtype, _, _ = precision
  rewards = _rewards(scale, dtype)
  game = jaxnpg.NormalFormGame(rewards)
  policies = {"uniform": jaxnpg.uniform_policy(game), **_policies(dtype)}
  for name, logp in policies.items():
    probs = [np.exp(np.asarray(lp, np.float64)) for lp in logp]
    for tau, eta in TAU_ETA:
      msg = f"policy={name}, tau={tau}, eta={eta}"
      out = core_jit(game, logp, tau, eta)
      eager = jaxnpg.npg_step(game, logp, tau, eta)
      for new in (out["npg_step"], eager):
        _assert_log_policy_ok(new, dtype)
      for key in ("qre_gap", "ne_gap", "qre_gap_per_agent", "ne_gap_per_agent",
                  "kl_residual"):
        value = np.asarray(out[key])
        assert np.all(np.isfinite(value)) and np.all(value >= 0), (key, msg)
      assert not np.isnan(out["fixed_point_residual"]), msg
      for lp in out["soft_best_response"]:
        assert not np.any(np.isnan(np.asarray(lp))), msg
      if dtype == np.float64:
        # The values themselves, against the reference (in probability space,
        # where the reference's own exp may underflow to 0).
        want = reference.npg_step(rewards, probs, tau, eta)
        for g, w in zip(eager, want):
          np.testing.assert_allclose(np.exp(np.asarray(g)), w, rtol=1e-9,
                                     atol=1e-14, err_msg=msg)
        np.testing.assert_allclose(
            float(out["qre_gap"]), reference.qre_gap(rewards, probs, tau),
            rtol=1e-9, atol=1e-12 * scale, err_msg=msg)
        np.testing.assert_allclose(
            float(out["ne_gap"]), reference.ne_gap(rewards, probs), rtol=1e-9,
            atol=1e-12 * scale, err_msg=msg)


def test_zero_probabilities_stay_zero_unless_eta_tau_is_one(x64):
  game = jaxnpg.NormalFormGame(_rewards(1.0, np.float64))
  logp = _policies(np.float64)["zero"]
  for tau, eta in [(0.0, 0.3), (0.5, 0.2), (1.0, 0.999)]:
    new = jaxnpg.npg_step(game, logp, tau, eta)
    for old, lp in zip(logp, new):
      np.testing.assert_array_equal(np.isneginf(np.asarray(lp)),
                                    np.isneginf(np.asarray(old)))
  # At eta * tau = 1 the old policy has no weight: the step is the soft best
  # response, and every action re-enters.
  new = jaxnpg.npg_step(game, logp, 2.0, 0.5)
  for lp, br in zip(new, jaxnpg.soft_best_response(game, logp, 2.0)):
    assert np.all(np.isfinite(np.asarray(lp)))
    np.testing.assert_allclose(np.asarray(lp), np.asarray(br), rtol=1e-13)


@pytest.mark.parametrize("scale", [1.0, 1e3], ids=["unit", "1e3"])
def test_run_and_solve_stay_finite(scale, precision):
  dtype, _, _ = precision
  game = jaxnpg.NormalFormGame(_rewards(scale, dtype))
  policies = {"uniform": jaxnpg.uniform_policy(game), **_policies(dtype)}
  for name, init in policies.items():
    for tau, eta in TAU_ETA:
      msg = f"policy={name}, tau={tau}, eta={eta}"
      res = jaxnpg.run(game, tau, eta, 12, init=init, record_every=3)
      for gaps in (res.qre_gap, res.ne_gap):
        gaps = np.asarray(gaps)
        assert gaps.dtype == dtype
        assert np.all(np.isfinite(gaps)) and np.all(gaps >= 0), msg
      _assert_log_policy_ok(res.logp, dtype)
      sol = jaxnpg.solve(game, tau, eta, init=init, max_iters=3000)
      _assert_log_policy_ok(sol.logp, dtype)
      assert np.isfinite(float(sol.qre_gap)) and float(sol.qre_gap) >= 0, msg
      assert np.isfinite(float(sol.ne_gap)) and float(sol.ne_gap) >= 0, msg
      assert not np.isnan(float(sol.measure)), msg


@pytest.mark.parametrize("tau, eta", [(1e3, 1e-3), (2.0, 0.5)])
def test_solve_from_zero_probabilities_at_eta_tau_one(tau, eta, x64):
  """At eta * tau = 1 one NPG step from any policy is the soft best response.

  From a policy with zero probabilities (``policy_from_probs`` accepts them) the
  NPG iteration is then an ordinary iteration after one step; solve should follow
  it like a Python loop of npg_step does, not stop before the first step because
  the initial log-space residual is infinite.
  """
  game = jaxnpg.NormalFormGame(_rewards(1.0, np.float64))
  init = _policies(np.float64)["zero"]
  # The Python loop of npg_step converges.
  k, cur = 0, init
  while float(jaxnpg.fixed_point_residual(game, cur, tau)) > 1e-10 and k < 100:
    cur = jaxnpg.npg_step(game, cur, tau, eta)
    k += 1
  assert 0 < k < 100
  sol = jaxnpg.solve(game, tau, eta, tol=1e-10, max_iters=3000, init=init)
  assert bool(sol.converged), (int(sol.num_iters), float(sol.measure))
  assert int(sol.num_iters) == k
  assert float(sol.qre_gap) < 1e-12
