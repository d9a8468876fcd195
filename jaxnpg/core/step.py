"""The entropy-regularized independent NPG step, soft best responses, and gaps.

Every function takes one game (batch with ``jax.vmap``), is pure and jittable, and
treats ``tau`` and ``eta`` as ordinary arrays, so sweeping them never recompiles.
Inputs are checked (``ValueError``) when they are concrete, i.e. when called
outside of ``jit``/``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnpg.core import gaps as _gaps
from jaxnpg.core import stacking as _stacking
from jaxnpg.core.validation import check_eta, check_policy, check_tau


def _check(game, logp, tau=None, eta=None):
  check_policy(game, logp, batched=False)
  if game.batch_shape:
    raise ValueError(
        f"This function takes one game, got a batch of shape {game.batch_shape}; "
        "use jax.vmap over the game (and policy) to batch it.")
  if tau is not None:
    check_tau(tau)
  if eta is not None:
    check_eta(eta)


def marginal_rewards(game, logp, tau=0.0):
  """Every agent's marginal payoff under the joint policy ``exp(logp)``.

  For a normal-form game ``rbar_i(a_i) = E_{a_-i ~ pi_-i} r_i(a_i, a_-i)``; for a
  Markov game, the marginal Q-values ``Qbar_i(s, a_i)`` of its convention (soft
  Q-values at entropy weight ``tau`` for the ``soft`` convention).

  Args:
    game: one game (no batch axes).
    logp: tuple of log-policies, ``logp[i].shape == game.policy_shapes[i]``.
    tau: entropy weight; only a ``soft`` Markov game's payoffs depend on it.

  Returns:
    Tuple of ``n`` arrays shaped like ``logp``.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame(jnp.array([[[1., 0.], [0., 1.]],
    ...                                         [[0., 1.], [1., 0.]]]))
    >>> rbar = jaxnpg.marginal_rewards(game, jaxnpg.uniform_policy(game))
    >>> [r.tolist() for r in rbar]
    [[0.5, 0.5], [0.5, 0.5]]
  """
  _check(game, logp, tau)
  return game.payoffs(tuple(logp), tau)


def scaled_eta(game, eta):
  """The step the update takes: ``eta * game.step_scale``, in the game's dtype.

  The one place the step size is scaled (docs/spec.md): ``1`` for static games,
  ``1 / (1 - gamma)`` for Markov games (``eta_bar = eta / (1 - gamma)``). Every
  loop, the Jacobians and the tolerances use the scaled step; step-size rules
  that set the scaled step (:func:`jaxnpg.paper_eta` given a game) divide by the
  same ``step_scale``.
  """
  return jnp.asarray(eta, game.dtype) * game.step_scale


def unscaled_eta(game, eta_bar):
  """The ``eta`` whose scaled step (:func:`scaled_eta`) is ``eta_bar``.

  For step-size rules stated on the scaled step (the paper's rule, docs/spec.md):
  ``eta_bar * (1 - gamma)`` for a Markov game, ``eta_bar`` for a static one.
  """
  return jnp.asarray(eta_bar) / game.step_scale


def carry_coefficient(eta, tau):
  """``1 - eta*tau``, snapped to exactly 0 within rounding of ``eta*tau = 1``.

  ``eta = 1/tau`` is the soft best response; in floating point ``eta * tau`` can
  land one ulp below 1, leaving a tiny positive weight on the old policy that keeps
  zero-probability actions at zero forever. Within ``4 eps`` of 0 the coefficient
  is therefore exactly 0 (the difference is below the dtype's resolution anyway).
  """
  coef = 1 - eta * tau
  eps = jnp.finfo(coef.dtype).eps
  return jnp.where(jnp.abs(coef) <= 4 * eps, jnp.zeros_like(coef), coef)


def _fold(op, x, axis):
  """``op``-reduce ``x`` over ``axis`` keeping it (size 1).

  Over a leading action axis (batch axes trailing, see :mod:`jaxnpg.loop.run`) the
  reduction is written as a chain of slices, so every operation is elementwise
  over the batch and vectorizes across it.
  """
  if axis >= 0:   # a leading action axis (after any state axes)
    lead = (slice(None),) * axis
    out = x[lead + (0,)]
    for a in range(1, x.shape[axis]):
      out = op(out, x[lead + (a,)])
    return jnp.expand_dims(out, axis)
  return (jnp.sum if op is jnp.add else jnp.max)(x, axis=axis, keepdims=True)


def npg_update(logp, payoffs, tau, eta, *, axis: int = -1,
               with_probs: bool = False):
  """The log-space update given the payoffs (no checks; ``eta`` already scaled).

  ``log pi_i' = (1 - eta*tau) log pi_i + eta * payoff_i - logsumexp(same)``.
  Zero-probability actions (``-inf``) stay at zero while ``eta*tau < 1``; at
  ``eta*tau >= 1`` (within rounding, see :func:`carry_coefficient`) the old policy
  carries no weight (``pi^0 = 1``) and they re-enter: ``eta = 1/tau`` is exactly
  the soft best response from any start.

  Args:
    logp, payoffs: tuples of per-agent arrays of equal shapes.
    tau, eta: scalars, or arrays broadcasting against ``logp[i]`` (batch axes
      trailing when ``axis == 0``).
    axis: the action axis (static): ``-1`` (one game, or batch axes leading),
      or ``0`` (batch axes trailing), or ``1`` (a Markov game's batch-last
      ``(S, A_i, *batch)`` policies).
    with_probs: also return the new probabilities, from the same exponentials
      as the log-sum-exp (one ``exp`` per action and step).

  Returns:
    The new log-policy (a tuple), or ``(logp, probs)`` with ``with_probs``.
  """
  dtype = payoffs[0].dtype
  tau = jnp.asarray(tau, dtype)
  eta = jnp.asarray(eta, dtype)
  coef = carry_coefficient(eta, tau)

  def update(lp, q):
    lp = lp.astype(dtype)
    zero_prob = jnp.isneginf(lp)
    carried = jnp.where(zero_prob, jnp.where(coef > 0, -jnp.inf, 0.0),
                        coef * jnp.where(zero_prob, 0.0, lp))
    logits = carried + eta * q
    if not with_probs:
      return logits - jax.nn.logsumexp(logits, axis=axis, keepdims=True)
    m = _fold(jnp.maximum, logits, axis)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    e = jnp.exp(logits - m)
    s = _fold(jnp.add, e, axis)
    return logits - (jnp.log(s) + m), e * (1.0 / s)

  # Many equally shaped agents: one stacked op instead of one per agent (same
  # values; keeps compile time flat in the number of agents, see _stacking).
  if axis == -1:
    lp_all = _stacking.stack_uniform(logp)
    q_all = _stacking.stack_uniform(payoffs)
    if lp_all is not None and q_all is not None:
      out = update(lp_all, q_all)
      if with_probs:
        return _stacking.AgentTuple(out[0]), _stacking.AgentTuple(out[1])
      return _stacking.AgentTuple(out)
  out = [update(lp, q) for lp, q in zip(logp, payoffs)]
  if with_probs:
    return tuple(o[0] for o in out), tuple(o[1] for o in out)
  return tuple(out)


def npg_step(game, logp, tau, eta):
  """One simultaneous entropy-regularized NPG step of all agents (eq. 2).

  .. math::
    \\log \\pi_i^{k+1} = (1 - \\eta\\tau) \\log \\pi_i^k + \\eta s\\, \\bar r_i^k
    - \\operatorname{logsumexp}(\\cdot)

  with ``s = game.step_scale`` (1 for static games, ``1/(1-gamma)`` for Markov
  games, see docs/spec.md). Pure; works under ``jit``, ``vmap`` (over games, policies,
  ``tau``, ``eta``) and ``grad``.

  Args:
    game: one game.
    logp: tuple of log-policies, ``logp[i].shape == game.policy_shapes[i]``.
    tau: entropy weight, ``>= 0`` (scalar array; ``0`` is multiplicative weights).
    eta: step size, ``> 0`` (the paper assumes ``eta * tau <= 1``).

  Returns:
    The new log-policy, same structure, shapes and dtype as the game's.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> logp = jaxnpg.npg_step(game, jaxnpg.uniform_policy(game), 0.1, 0.02)
    >>> [lp.shape for lp in logp]
    [(3,), (4,), (5,)]
  """
  _check(game, logp, tau, eta)
  logp = tuple(logp)
  return npg_update(logp, game.payoffs(logp, tau), tau, scaled_eta(game, eta))


def soft_best_response(game, logp, tau):
  """Each agent's soft best response ``softmax(payoff_i / tau)`` as log-probabilities.

  At ``tau = 0`` it is the (uniformly tie-broken) best response, with ``-inf`` on
  actions that are not maximizing.

  Returns:
    Tuple shaped like ``logp``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> uniform = jaxnpg.uniform_policy(game)
    >>> [jnp.exp(lp).tolist() for lp in jaxnpg.soft_best_response(game, uniform, 0.0)]
    [[1.0, 0.0], [0.0, 1.0]]
    >>> [round(float(jnp.exp(lp[0])), 4) for lp in jaxnpg.soft_best_response(game, uniform, 1.0)]
    [0.6225, 0.3775]
  """
  _check(game, logp, tau)
  return tuple(_gaps.log_soft_best_response(q, tau)
               for q in game.payoffs(tuple(logp), tau))


def qre_gap_per_agent(game, logp, tau):
  """Per-agent QRE-gap ``tau * KL(pi_i || pi_i^*)`` (eq. 4), shape ``(n,)``.

  For a Markov game, the value gap to each agent's soft-optimal policy in the MDP
  that the others induce (docs/spec.md); for its ``logit`` convention, which has no value
  gap, the KL residual (see ``jaxnpg.MarkovGame``).

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> logp = jaxnpg.uniform_policy(game)
    >>> gaps = jaxnpg.qre_gap_per_agent(game, logp, 1.0)
    >>> gaps.shape, bool((gaps >= 0).all())
    ((2,), True)
    >>> float(gaps.max()) == float(jaxnpg.qre_gap(game, logp, 1.0))
    True
  """
  _check(game, logp, tau)
  return game.qre_gap_per_agent(tuple(logp), tau)


def qre_gap(game, logp, tau):
  """``max_i`` QRE-gap: 0 exactly at a QRE, and the NE-gap when ``tau = 0``.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (2, 2))
    >>> float(jaxnpg.qre_gap(game, jaxnpg.uniform_policy(game), 1e3)) < 1e-3
    True
  """
  return jnp.max(qre_gap_per_agent(game, logp, tau))


def ne_gap_per_agent(game, logp):
  """Per-agent NE-gap ``max_a rbar_i(a) - <pi_i, rbar_i>``, shape ``(n,)``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> jaxnpg.ne_gap_per_agent(game, jaxnpg.uniform_policy(game)).tolist()
    [0.25, 0.25]
  """
  _check(game, logp)
  return game.ne_gap_per_agent(tuple(logp))


def ne_gap(game, logp):
  """``max_i`` NE-gap: how much the best unilateral deviation gains.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> float(jaxnpg.ne_gap(game, jaxnpg.uniform_policy(game)))
    0.25
    >>> float(jaxnpg.ne_gap(game, jaxnpg.policy_from_probs([[1, 0], [1, 0]])))
    0.0
  """
  return jnp.max(ne_gap_per_agent(game, logp))


def kl_residual(game, logp, tau):
  """``tau * max_{i(,s)} KL(pi_i || softmax(payoff_i / tau))``.

  Vanishes exactly at the fixed point of the NPG update. For a static game it equals
  the QRE-gap; for a Markov game it uses the game's own convention's ``Qbar``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> logp = jaxnpg.policy_from_probs([[0.9, 0.1], [0.3, 0.7]])
    >>> kl = jaxnpg.kl_residual(game, logp, 0.5)
    >>> bool(jnp.allclose(kl, jaxnpg.qre_gap(game, logp, 0.5)))  # static game
    True
  """
  _check(game, logp, tau)
  logp = tuple(logp)
  return _gaps.kl_residual_from_payoffs(logp, game.payoffs(logp, tau), tau)


def fixed_point_residual(game, logp, tau):
  """``max_i ||log pi_i - log pi_i^*||_inf``: linear in the distance to the QRE.

  At ``tau = 0`` (no soft best response) the NE-gap is returned instead.

  Example:
    >>> import jax, jaxnpg
    >>> pennies = jaxnpg.NormalFormGame.from_matrices([[1, -1], [-1, 1]],
    ...                                               [[-1, 1], [1, -1]])
    >>> float(jaxnpg.fixed_point_residual(pennies, jaxnpg.uniform_policy(pennies), 1.0))
    0.0
    >>> off = jaxnpg.policy_from_probs([[0.9, 0.1], [0.5, 0.5]])
    >>> float(jaxnpg.fixed_point_residual(pennies, off, 1.0)) > 0
    True
  """
  _check(game, logp, tau)
  logp = tuple(logp)
  return _gaps.fixed_point_residual_from_payoffs(logp, game.payoffs(logp, tau),
                                                 tau)
