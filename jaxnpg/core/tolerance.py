"""Default tolerances and rounding floors: the one rule behind every verdict.

Agent ``i``'s QRE-gap is a difference of its regularized rewards
``<pi_i, rbar_i> + tau H(pi_i)``, whose size is about ``Q_i + tau log A_i``
(``Q_i = max_a |rbar_i(a)|``). The **default QRE-gap tolerance** is each agent's
own, relative to that size,

    tol_i = GAP_RTOL * (Q_i + tau * log A_i),        GAP_RTOL = 1e-6,

evaluated at the final iterate, and a run meets it when every agent meets its own
(so an agent whose rewards are a million times larger does not set the others'
tolerance; before v0.2 one tolerance, from the largest ``Q_i`` and ``A_i``, judged
the largest gap). It is the same in float32 and float64, so both dtypes draw the
same phase diagram of the same games (float32 resolves it wherever its rounding
floor is below it; float64 users who want more pass ``tol``, one absolute
tolerance for every agent).

The **rounding floor** of a cell is the smallest QRE-gap the dtype can resolve
there. Two parts, with ``eps`` the dtype's machine epsilon:

* evaluating ``tau * KL(pi || pi*)`` rounds each term ``p_a (log p_a - log p*_a)``
  by about ``eps p_a (|log p_a| + |log p*_a|)``; summed, at most about
  ``EVAL_FACTOR * eps * (Q + tau log A)`` (the entropy bounds ``sum p |log p|``;
  float32 runs of random (3,4,5) games settle near ``0.3 eps (Q + tau log A)``);
* the iteration itself (only in the paper's regime ``0 < eta tau <= 1``): every
  step rounds the log-probabilities that carry weight by about
  ``eps (max(log A, 1) + eta Q)`` and contracts by at best ``1 - eta tau``, so the
  iterate sits about ``d = FLOOR_FACTOR * eps (max(log A, 1) + eta Q) / (eta tau)``
  from the fixed point in log space, where the QRE-gap (quadratic) is about
  ``tau d^2``.

Both are per agent (its own ``Q_i`` and ``A_i``), like the tolerance.

For ``solve``'s fixed-point residual, a max-norm over *all* actions (rare ones
included), the floor is :func:`residual_floor`, ``FLOOR_FACTOR * eps * max(L, 1) /
(eta tau)`` with ``L = max |log pi|``.

A cell whose gap is above ``tol`` but at or below its floor, with the floor above
``tol``, gets the status ``AT_FLOOR`` (see :mod:`jaxnpg.loop.status`) rather than a
converged/not-converged verdict. All functions are pure, jittable and elementwise
over batch axes.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxnpg.core import stacking as _stacking

GAP_RTOL = 1e-6       # default QRE-gap tolerance relative to Q + tau log A
FLOOR_FACTOR = 8.0    # safety factor on eps in the iteration's rounding floors
EVAL_FACTOR = 2.0     # on eps in the evaluation floor (measured: about 0.3)
# solve's default tolerance on the fixed-point residual (linear in the distance).
RESIDUAL_TOL = {4: 1e-5, 8: 1e-10}


def payoff_size(payoffs):
  """``Q = max_{i,a} |payoff_i(a)|`` over the finite entries (trailing axes reduced).

  Args:
    payoffs: tuple of per-agent arrays ``(*batch, A_i)`` or ``(A_i,)`` (Markov:
      ``(S, A_i)``; one game only then).
  """
  return _max_finite_abs(payoffs)


def log_size(logp):
  """``L = max |log pi|`` over the finite entries of a policy tuple."""
  return _max_finite_abs(logp)


def _max_finite_abs(arrays):
  return jnp.max(jnp.stack([jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0))
                            for x in arrays]))


def payoff_sizes(payoffs):
  """``Q_i = max_a |payoff_i(a)|`` over the finite entries, per agent: ``(n,)``.

  Args:
    payoffs: tuple of per-agent arrays of one game (``(A_i,)`` or ``(S, A_i)``).
  """
  stacked = _stacking.stack_uniform(payoffs)
  if stacked is not None:
    finite = jnp.where(jnp.isfinite(stacked), jnp.abs(stacked), 0.0)
    return jnp.max(finite, axis=tuple(range(1, stacked.ndim)))
  return jnp.stack([jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0))
                    for x in payoffs])


def log_max_actions(shapes) -> float:
  """``log A`` of the largest action count (last axis of each policy shape)."""
  return math.log(max(int(s[-1]) for s in shapes))


def log_actions(shapes) -> np.ndarray:
  """``log A_i`` of every agent, ``(n,)`` (last axis of each policy shape)."""
  return np.log(np.asarray([int(s[-1]) for s in shapes], dtype=np.float64))


def default_gap_tol(q_size, tau, log_a):
  """The default QRE-gap tolerance ``GAP_RTOL * (Q + tau log A)`` (any dtype)."""
  return GAP_RTOL * (q_size + tau * log_a)


def _contraction(eta, tau):
  """``eta tau`` where it is in ``(0, 1]`` (the paper's regime), else 0."""
  et = eta * tau
  return jnp.where((et > 0) & (et <= 1 + 1e-6), jnp.minimum(et, 1.0), 0.0)


def gap_floor(q_size, tau, eta, log_a, dtype):
  """Smallest QRE-gap the dtype resolves at this cell (see the module docstring).

  Args:
    q_size: ``Q``, the payoff size at the final iterate.
    tau: entropy weight.
    eta: the *scaled* step size (``eta * game.step_scale``).
    log_a: ``log A`` of the largest action count.
    dtype: the computation's floating dtype.
  """
  eps = float(jnp.finfo(dtype).eps)
  evaluation = EVAL_FACTOR * eps * (q_size + tau * log_a)
  c = _contraction(eta, tau)
  safe = jnp.where(c > 0, c, 1.0)
  d = FLOOR_FACTOR * eps * (jnp.maximum(log_a, 1.0) + eta * q_size) / safe
  return evaluation + jnp.where(c > 0, tau * d * d, 0.0)


def residual_floor(l_size, tau, eta, dtype):
  """Smallest fixed-point residual the iteration resolves: ``8 eps max(L, 1) / (eta tau)``.

  A step moves ``log pi`` by ``eta tau`` times its distance to the fixed point, so
  distances below the rounding of ``log pi`` divided by ``eta tau`` cannot shrink.
  Zero outside ``0 < eta tau <= 1`` (no contraction to speak of; at ``tau = 0``
  the residual is the NE-gap).
  """
  eps = float(jnp.finfo(dtype).eps)
  c = _contraction(eta, tau)
  safe = jnp.where(c > 0, c, 1.0)
  return jnp.where(c > 0, FLOOR_FACTOR * eps * jnp.maximum(l_size, 1.0) / safe,
                   0.0)


def gap_tol_and_floor(q_size, tau, eta, log_a, dtype, tol=None):
  """The QRE-gap tolerance (``tol``, or the default rule) and the rounding floor.

  Elementwise over batch axes; both are returned in ``dtype`` with the broadcast
  shape of ``q_size``, ``tau`` and ``eta``. ``eta`` is the scaled step size.
  """
  if tol is None:
    tol = default_gap_tol(q_size, tau, log_a)
  floor = gap_floor(q_size, tau, eta, log_a, dtype)
  shape = jnp.broadcast_shapes(jnp.shape(floor), jnp.shape(tol))
  return (jnp.broadcast_to(jnp.asarray(tol, dtype), shape),
          jnp.broadcast_to(floor.astype(dtype), shape))


def default_residual_tol(dtype) -> float:
  """``solve``'s default tolerance on the fixed-point residual for a dtype."""
  return RESIDUAL_TOL[jnp.dtype(dtype).itemsize]
