"""Exact evaluation of a Markov game's joint policy, best responses and value gaps.

Pure building blocks for one game (batch with ``jax.vmap``), on the arrays of a
:class:`jaxnpg.MarkovGame` (conventions in :mod:`jaxnpg.games.markov`):
:func:`joint_values` (the values and marginal Q-values the NPG step uses),
:func:`induced_mdps` (each agent's MDP against the others), soft
:func:`policy_iteration` in those MDPs (best responses) and :func:`value_gap`
(the Markov QRE- and NE-gaps by the soft performance-difference lemma). The
linear solves are Gauss-Jordan eliminations (:func:`solve`), unrolled for few
states.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxnpg.core import gaps as _gaps
from jaxnpg.games.dense import dense_marginals

#: Up to this many states the linear solves are unrolled (no loop in the graph).
UNROLL_SOLVE_STATES = 64


def _entropy(logp):
  return -_gaps.expect(logp, logp)


def _shared_marginals(tensor, probs):
  """``out[i](a_i) = sum_{a_-i} prod_{j != i} probs[j][a_j] tensor[a]`` for all i.

  The suffix chain of :func:`jaxnpg.games.dense.dense_marginals` on one tensor shared by
  every agent (``tensor.shape == (A_1, ..., A_n)``, ``probs[i].shape == (A_i,)``).
  """
  n = len(probs)
  out = [None] * n
  suffix = tensor
  for k in range(n, 0, -1):
    t = suffix
    for j in range(k - 1):
      t = jnp.tensordot(probs[j], t, axes=(0, 0))
    out[k - 1] = t
    if k > 1:
      suffix = suffix @ probs[k - 1]
  return tuple(out)


def induced_mdps(rewards, transitions, probs):
  """Each agent's induced MDP when the others play ``probs``.

  Args:
    rewards: ``(n, S, A_1, ..., A_n)``.
    transitions: ``(S, A_1, ..., A_n, S)``.
    probs: tuple of ``(S, A_i)`` probabilities.

  Returns:
    ``(rbar, pbar)``: ``rbar[i]`` of shape ``(S, A_i)`` is
    ``E_{a_-i} r_i(s, a_i, a_-i)``; ``pbar[i]`` of shape ``(S, A_i, S)`` is
    ``E_{a_-i} P(. | s, a_i, a_-i)``.
  """
  probs = tuple(probs)
  rbar = jax.vmap(dense_marginals, in_axes=(1, 0))(rewards, probs)
  # Over states s, then next states s' (the trailing axis): shared marginals.
  # (On CPU this is about 5x faster than one einsum per agent.)
  per_state = jax.vmap(_shared_marginals, in_axes=(-1, None), out_axes=-1)
  pbar = jax.vmap(per_state, in_axes=(0, 0))(transitions, probs)
  return tuple(rbar), tuple(pbar)


def _joint_probs(probs):
  """``J[s, a_1, ..., a_n] = prod_i probs[i][s, a_i]``."""
  n = len(probs)
  joint = probs[0]
  for k in range(1, n):
    p = probs[k]
    joint = joint[..., None] * p.reshape(p.shape[:1] + (1,) * k + p.shape[1:])
  return joint


def _next_state_expectation(transitions, values):
  """``W[i, s, a] = sum_s' P(s' | s, a) values[i, s']``, shape ``(n, S, A...)``.

  For few states the sum over ``s'`` is unrolled into elementwise terms (one
  fused pass; on CPU several times faster than a matmul or a reduction over the
  short trailing axis); for many states it is one contraction.
  """
  num_states = transitions.shape[-1]
  extra = (1,) * (transitions.ndim - 1)
  if num_states <= 16:
    return sum(transitions[None, ..., t] * values[:, t].reshape((-1,) + extra)
               for t in range(num_states))
  return jnp.einsum("...t,it->i...", transitions, values)


def solve(p, rhs, discount, *, transpose=False):
  """``(I - gamma P)^{-1} rhs``, or with ``(I - gamma P)^T``, by Gauss-Jordan.

  ``p``: ``(..., S, S)`` row-stochastic; ``rhs``: ``(..., S, K)``.
  ``I - gamma P`` is strictly diagonally dominant by rows for ``gamma < 1`` (and
  its transpose by columns), so elimination without pivoting is stable (growth
  factor at most 2) and the matrix is well conditioned (infinity-norm condition
  number at most ``(1 + gamma) / (1 - gamma)``). Up to ``UNROLL_SOLVE_STATES``
  states the elimination is unrolled, so the graph holds no loop: LAPACK's LU
  (``jnp.linalg.solve``) brings loops and custom calls that, nested in ``run``'s
  record loop at large batches, deadlocked XLA:CPU with YNN fusions (jaxlib
  0.10.2: 1024 float64 or 2048 float32 games of the paper's size).
  """
  num_states = p.shape[-1]
  eye = jnp.eye(num_states, dtype=p.dtype)
  a = eye - discount * p
  if transpose:
    a = jnp.swapaxes(a, -1, -2)
  rows = jnp.arange(num_states)[:, None]

  def eliminate(k, ab):
    a, b = ab
    row_a = lax.dynamic_slice_in_dim(a, k, 1, axis=-2)          # (..., 1, S)
    row_b = lax.dynamic_slice_in_dim(b, k, 1, axis=-2)          # (..., 1, K)
    pivot = lax.dynamic_slice_in_dim(row_a, k, 1, axis=-1)      # (..., 1, 1)
    row_a, row_b = row_a / pivot, row_b / pivot
    col = lax.dynamic_slice_in_dim(a, k, 1, axis=-1)            # (..., S, 1)
    is_k = rows == k
    return (jnp.where(is_k, row_a, a - col * row_a),
            jnp.where(is_k, row_b, b - col * row_b))

  state = (a, rhs.astype(a.dtype))
  if num_states <= UNROLL_SOLVE_STATES:
    for k in range(num_states):
      state = eliminate(k, state)
  else:
    state = lax.fori_loop(0, num_states, eliminate, state)
  return state[1]


def joint_values(rewards, transitions, discount, logp, tau):
  """Values ``(n, S)`` and marginal Q-values of all agents under one joint policy.

  Exact evaluation: ``(I - gamma P_pi) V_i = r_i^pi + tau H_i^pi`` for all agents
  at once (one factorization, ``n`` right-hand sides), then
  ``Q_i = r_i + gamma P V_i`` and its marginals ``Qbar_i(s, a_i)``. The joint
  policy is contracted with ``P`` and ``r`` directly (two passes over ``P``);
  the induced MDPs are not needed for the step. ``tau=None`` evaluates without
  entropy (the ``logit`` convention; also ``soft`` at ``tau = 0``).
  """
  n, num_states = rewards.shape[:2]
  probs = tuple(jnp.exp(lp) for lp in logp)
  joint = _joint_probs(probs).reshape(num_states, -1)               # (S, K)
  p_pi = (joint[:, None, :]
          @ transitions.reshape(num_states, -1, num_states))[:, 0]   # (S, S)
  r_pi = jnp.sum(joint * rewards.reshape(n, num_states, -1), axis=-1)  # (n, S)
  if tau is not None:
    r_pi = r_pi + tau * jnp.stack([_entropy(lp) for lp in logp])
  values = solve(p_pi, r_pi.T, discount).T                         # (n, S)
  q = rewards + discount * _next_state_expectation(transitions, values)
  qbar = jax.vmap(dense_marginals, in_axes=(1, 0))(q, probs)
  return values, tuple(qbar)


def _own_q(rbar, pbar, logp, discount, tau):
  """Each agent's Q in its own induced MDP under its policy ``logp[i]``."""
  p_own = jnp.stack([jnp.einsum("sa,sat->st", jnp.exp(lp), pb)
                     for lp, pb in zip(logp, pbar)])
  rhs = jnp.stack([_gaps.expect(lp, r) + tau * _entropy(lp)
                   for lp, r in zip(logp, rbar)])
  values = solve(p_own, rhs[..., None], discount)[..., 0]
  return tuple(r + discount * jnp.einsum("sat,t->sa", pb, v)
               for r, pb, v in zip(rbar, pbar, values))


def _bellman_residual(logp, q, tau):
  """``max_{i,s} (T V - V)(s)``: ``tau KL(pi || softmax(Q / tau))``, or at 0 the greedy gain."""
  return jnp.max(jnp.stack([jnp.max(_gaps.kl_to_soft_best_response(lp, qi, tau))
                            for lp, qi in zip(logp, q)]))


def policy_iteration(rbar, pbar, discount, logp, tau, tol, max_iters):
  """Soft policy iteration in every agent's induced MDP, started from ``logp``.

  Stops when the Bellman residual of the policy just evaluated is ``<= tol``
  (or after ``max_iters`` steps) and returns one further improvement.

  Returns:
    ``(br, q0, residual)``: the (soft-)optimal log-policies, each agent's Q of
    ``logp`` itself in its induced MDP (``Qbar_i`` of the soft convention at
    ``tau``), and the last Bellman residual (``V* - V^br <= residual/(1-gamma)``).
  """
  def improve(q):
    return tuple(_gaps.log_soft_best_response(qi, tau) for qi in q)

  def cond(state):
    k, _, resid = state
    return (k < max_iters) & (resid > tol)

  def body(state):
    k, q, _ = state
    lp = improve(q)
    q = _own_q(rbar, pbar, lp, discount, tau)
    return k + 1, q, _bellman_residual(lp, q, tau)

  q0 = _own_q(rbar, pbar, logp, discount, tau)
  state = (jnp.zeros((), jnp.int32), q0, _bellman_residual(logp, q0, tau))
  _, q, resid = lax.while_loop(cond, body, state)
  return improve(q), q0, resid


def value_gap(pbar, discount, initial, logp, q_pi, br, tau):
  """``V_i(br_i, pi_-i)(rho) - V_i(pi)(rho)`` per agent, ``(n,)`` (>= 0).

  Soft performance-difference lemma: the gap is ``rho^T (I - gamma P_br)^{-1} g``
  with ``g(s) = E_br[Q_pi - tau log br] - V_pi = tau KL(pi || pi*) - tau KL(br || pi*)``,
  ``pi* = softmax(Q_pi / tau)`` (at ``tau = 0``: ``<br - pi, Q_pi>``).
  """
  g = jnp.stack([_gaps.kl_to_soft_best_response(lp, q, tau)
                 - _gaps.kl_to_soft_best_response(b, q, tau)
                 for lp, q, b in zip(logp, q_pi, br)])                # (n, S)
  p_br = jnp.stack([jnp.einsum("sa,sat->st", jnp.exp(b), pb)
                    for b, pb in zip(br, pbar)])                       # (n, S, S)
  # Occupancy rho^T (I - gamma P_br)^{-1}: solve with the transposed matrix.
  occupancy = solve(p_br, jnp.broadcast_to(initial, g.shape)[..., None],
                     discount, transpose=True)[..., 0]
  return jnp.maximum(jnp.sum(occupancy * g, axis=-1), 0.0)
