"""Equilibrium gaps of a static game, given the marginal payoffs.

All functions here are pure, jittable and work on one game; the payoffs
``rbar[i]`` are what ``game.payoffs(logp)`` returns. Conventions (docs/spec.md):

* ``QRE-gap_i = tau * KL(pi_i || pi_i^*)`` with ``pi_i^* = softmax(rbar_i / tau)``
  (eq. 4), which equals the difference of regularized rewards
  ``rhat_i(pi_i^*, pi_-i) - rhat_i(pi_i, pi_-i)``;
* ``NE-gap_i = max_a rbar_i(a) - <pi_i, rbar_i>``, the ``tau = 0`` case.

``tau = 0`` is handled exactly (the QRE-gap is then the NE-gap); no NaN or inf is
produced for ``tau = 0``, zero probabilities, or large rewards.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnpg.core import stacking as _stacking


def safe_tau(tau):
  """``tau`` where positive, 1 elsewhere: a divisor that never makes NaN."""
  return jnp.where(tau > 0, tau, jnp.ones_like(tau))


def log_soft_best_response(rbar, tau):
  """``log softmax(rbar / tau)`` over the last axis; the argmax indicator's log at 0.

  At ``tau = 0`` this returns ``0`` on maximizing actions (split evenly in
  probability) and ``-inf`` elsewhere, the limit of the soft best response.
  """
  tau = jnp.asarray(tau, rbar.dtype)
  logits = rbar / safe_tau(tau)
  soft = jax.nn.log_softmax(logits, axis=-1)
  is_max = rbar >= jnp.max(rbar, axis=-1, keepdims=True)
  hard = jnp.where(is_max, 0.0, -jnp.inf).astype(rbar.dtype)
  hard = hard - jnp.log(jnp.sum(is_max, axis=-1, keepdims=True).astype(rbar.dtype))
  return jnp.where(tau > 0, soft, hard)


def expect(logp, values):
  """``<pi, values>`` over the last axis, with ``0 * (-inf) = 0``.

  Only exact zeros (``logp == -inf``) drop their term: a NaN probability or value
  makes the expectation NaN (a blown-up policy never reads as a gap of 0).
  """
  return jnp.sum(jnp.where(jnp.isneginf(logp), 0.0, jnp.exp(logp) * values),
                 axis=-1)


def _poison(gap, logp_i, rbar_i):
  """``gap``, or NaN where the policy or the payoffs are not finite.

  A policy entry that is NaN or ``+inf``, or a payoff that is not finite, cannot
  give a meaningful gap; zero probabilities (``-inf``) are fine.
  """
  bad = (jnp.any(jnp.isnan(logp_i) | jnp.isposinf(logp_i), axis=-1)
         | jnp.any(~jnp.isfinite(rbar_i), axis=-1))
  return jnp.where(bad, jnp.nan, gap)


def ne_gap_from_payoffs(logp_i, rbar_i):
  """``max_a rbar_i(a) - <pi_i, rbar_i>`` over the last axis (>= 0)."""
  gap = jnp.max(rbar_i, axis=-1) - expect(logp_i, rbar_i)
  return _poison(jnp.maximum(gap, 0.0), logp_i, rbar_i)


def kl_to_soft_best_response(logp_i, rbar_i, tau):
  """``tau * KL(pi_i || softmax(rbar_i / tau))`` over the last axis (>= 0).

  Computed in log space (accurate to ~eps near zero, unlike the difference of
  regularized rewards). At ``tau = 0`` it is the NE-gap.
  """
  tau = jnp.asarray(tau, rbar_i.dtype)
  log_star = jax.nn.log_softmax(rbar_i / safe_tau(tau), axis=-1)
  kl = expect(logp_i, logp_i - log_star)
  soft = _poison(jnp.maximum(tau * kl, 0.0), logp_i, rbar_i)
  return jnp.where(tau > 0, soft, ne_gap_from_payoffs(logp_i, rbar_i))


def static_qre_gap_per_agent(logp, rbar, tau):
  """Per-agent QRE-gap of a static game, shape ``(n,)`` (eq. 4)."""
  groups = _stacking.paired_groups(logp, rbar)
  if len(groups) == 1 and len(logp) > 1:  # all agents stacked: (n, A) -> (n,)
    return kl_to_soft_best_response(*groups[0], tau)
  return jnp.stack([kl_to_soft_best_response(lp, r, tau)
                    for lp, r in zip(logp, rbar)])


def static_ne_gap_per_agent(logp, rbar):
  """Per-agent NE-gap of a static game, shape ``(n,)``."""
  groups = _stacking.paired_groups(logp, rbar)
  if len(groups) == 1 and len(logp) > 1:  # all agents stacked: (n, A) -> (n,)
    return ne_gap_from_payoffs(*groups[0])
  return jnp.stack([ne_gap_from_payoffs(lp, r) for lp, r in zip(logp, rbar)])


def fixed_point_residual_from_payoffs(logp, payoffs, tau):
  """``max_i ||log pi_i - log pi_i^*||_inf`` with ``pi_i^*`` the soft best response.

  This is linear in the distance to the QRE (the QRE-gap is quadratic), so it is the
  better stopping measure. At ``tau = 0`` the soft best response is a pure
  best response and this distance is infinite away from a pure equilibrium; the NE-gap
  is returned instead.
  """
  dtype = payoffs[0].dtype
  tau = jnp.asarray(tau, dtype)
  worst = []
  for lp, q in _stacking.paired_groups(logp, payoffs):
    log_star = jax.nn.log_softmax(q / safe_tau(tau), axis=-1)
    diff = jnp.abs(jnp.where(jnp.isneginf(lp) & jnp.isneginf(log_star), 0.0,
                             lp - log_star))
    worst.append(jnp.max(diff))
  residual = jnp.max(jnp.stack(worst))
  ne = jnp.max(jnp.stack([jnp.max(ne_gap_from_payoffs(lp, q))
                          for lp, q in _stacking.paired_groups(logp, payoffs)]))
  return jnp.where(tau > 0, residual, ne)


def kl_residual_from_payoffs(logp, payoffs, tau):
  """``tau * max over agents (and states) of KL(pi_i || softmax(payoff_i / tau))``."""
  return jnp.max(jnp.stack([jnp.max(kl_to_soft_best_response(lp, q, tau))
                            for lp, q in _stacking.paired_groups(logp,
                                                                 payoffs)]))
