"""The one NPG loop: iterate a game's loop form, record the gaps, give the verdict.

:func:`iterate` is the only implementation of the NPG iteration and its records.
``jaxnpg.run`` calls it on one game, ``jax.vmap(jaxnpg.run)`` and
``jaxnpg.sweep`` on batches (through :mod:`jaxnpg.loop.batch_last`), for every game
type and algorithm; ``jaxnpg.solve`` runs the same step in a ``while_loop``.

It iterates a game's *loop form* (``Game.loop_form``, see :mod:`jaxnpg.core.protocol`):
the game itself (action axis last, one game, batched by plain ``vmap``), or a
batch-last form (action axes first, batch axes trailing, every reduction over an
action axis elementwise over the batch; one game is the empty batch).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnpg.core import stacking as _stacking
from jaxnpg.core import tolerance as _tolerance
from jaxnpg.core.step import scaled_eta
from jaxnpg.core.validation import inputs_ok
from jaxnpg.loop.verdict import verdict

# Fraction of a run's records fitted for the "stalled" test (as in jaxnpg.sweep).
VERDICT_TAIL = 0.5


class RunResult(NamedTuple):
  """Output of :func:`run` (one game; batch axes lead when vmapped).

  Attributes:
    logp: final log-policy after ``num_iters`` steps, ``logp[i].shape == (A_i,)``.
    qre_gap: ``(T,)`` QRE-gap (the largest agent's) of the iterate ``pi^k`` for
      each ``k`` in ``iterations``; NaN (never 0) where the policy or payoffs are
      not finite or the inputs were invalid.
    ne_gap: ``(T,)`` NE-gap of the same iterates.
    iterations: ``(T,)`` int, the ``k`` of each record: ``0, r, 2r, ...`` and
      ``num_iters`` (``r = record_every``), so ``T = num_iters // r + 1`` when
      ``r`` divides ``num_iters``.
    status: int8 scalar, the verdict of the run (a :class:`jaxnpg.Status` code,
      exactly as a ``jaxnpg.sweep`` cell with these records would get it).
    tol: ``(n,)`` every agent's QRE-gap tolerance (the given ``tol``, or the
      default rule of :mod:`jaxnpg.core.tolerance` at the final iterate: each
      agent's own scale); the run converged when every agent met its own.
    floor: ``(n,)`` every agent's rounding floor of its QRE-gap at the final
      iterate; where it exceeds ``tol`` the dtype cannot resolve ``tol``.
    state: the algorithm's whole state after ``num_iters`` steps (a pytree:
      NPG's ``(logp, probs)``, an optax optimizer's ``opt_state``, a sampler's
      key stream and step counter); ``run(..., init_state=state)`` continues
      from it exactly.
    qre_gap_relative: ``(T,)`` the largest ratio of an agent's QRE-gap to its own
      reward size ``Q_i + tau log A_i`` at each record: the series the default
      tolerance (``1e-6``) judges.
    agent_qre_gap: ``(n,)`` every agent's QRE-gap at the final iterate.
    iterations_to_tol: int32, first recorded iteration at which every agent met
      its tolerance (``-1``: never).
    linear_rate: the fitted linear rate of the QRE-gap's tail (NaN: none).
    iterations_needed: for a ``NOT_CONVERGED`` run, the iterations it would need
      in all at its fitted rate (NaN otherwise).
    monotone: bool, the recorded QRE-gap never increased (ignoring values at the
      floating-point floor).

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> res = jaxnpg.run(game, 1.0, 0.2, 100, record_every=10)
    >>> res.qre_gap.shape, res.iterations[:3].tolist()
    ((11,), [0, 10, 20])
    >>> jaxnpg.Status(int(res.status)).name
    'CONVERGED'
  """
  logp: tuple[Any, ...]
  qre_gap: jax.Array
  ne_gap: jax.Array
  iterations: jax.Array
  status: jax.Array
  tol: jax.Array
  floor: jax.Array
  state: Any = None
  qre_gap_relative: Any = None
  agent_qre_gap: Any = None
  iterations_to_tol: Any = None
  linear_rate: Any = None
  iterations_needed: Any = None
  monotone: Any = None


def tol_and_floor(game, payoffs, tau, eta, tol=None, sizes=None):
  """Every agent's QRE-gap tolerance (given or default) and rounding floor.

  ``game`` is a loop form (a game, or its batch-last form); ``eta`` is the
  scaled step size; ``sizes`` the agents' ``game.loop_payoff_size(payoffs)``
  where known. See :mod:`jaxnpg.core.tolerance` for the rule. Shaped
  ``(n, *batch)`` (``(n,)`` for one game).
  """
  if sizes is None:
    sizes = game.loop_payoff_size(payoffs)                       # (n, *batch)
  log_a = _log_actions(game, sizes)
  return _tolerance.gap_tol_and_floor(sizes, tau, eta, log_a, game.dtype, tol)


def _log_actions(form, like):
  """``log A_i`` shaped to broadcast against ``like`` ``(n, *batch)``."""
  log_a = _tolerance.log_actions(form.policy_shapes).astype(form.dtype)
  return jnp.asarray(log_a).reshape((-1,) + (1,) * (jnp.ndim(like) - 1))


def _agent_max(x):
  """The largest agent's value of ``x`` ``(n, *batch)``, NaN if any is NaN.

  A chain of elementwise maxima of the agents' slices, never ``jnp.max(x, 0)``:
  XLA:CPU runs a reduce over the stacked agents (with the gaps fused into it)
  as a scalar loop: with it, recording every step ran at 0.55x the speed of
  v0.1's loop (``benchmarks/paths.py``, one core). The slices of the stacked agents
  fold away, and the maxima fuse with the gaps' elementwise work.
  """
  return functools.reduce(jnp.maximum, [x[i] for i in range(x.shape[0])])


def batch_of(form, tau, eta, logp, tol, state=None, algorithm=None):
  """The broadcast batch shape of the loop's inputs (batch axes trailing)."""
  if state is not None:
    logp = algorithm.policy(state)
  shapes = [form.batch_shape, jnp.shape(tau), jnp.shape(eta)]
  shapes += [jnp.shape(lp)[len(s):]
             for lp, s in zip(logp, form.policy_shapes)]
  if tol is not None:
    shapes.append(jnp.shape(tol))
  return jnp.broadcast_shapes(*shapes)


def _full_batch(state, batch):
  """Every state leaf broadcast to the full trailing ``batch`` (batch-last)."""
  nb = len(batch)

  def full(x):
    if nb and (jnp.ndim(x) < nb or any(
        d not in (1, b) for d, b in zip(jnp.shape(x)[-nb:], batch))):
      raise ValueError(
          f"A batch-last algorithm's state leaves must end in the batch axes "
          f"{batch}; got a leaf of shape {jnp.shape(x)}.")
    return jnp.broadcast_to(x, jnp.shape(x)[:jnp.ndim(x) - nb] + batch)
  return jax.tree_util.tree_map(full, state)


def iterate(form, tau, eta, logp, key, tol, state=None, *, num_iters,
            record_every, algorithm, tail=VERDICT_TAIL):
  """``num_iters`` steps of ``algorithm`` on a loop form, records and verdict.

  The loop starts from ``state`` when given (a state handed back by an earlier
  run), else from ``algorithm.init(form, logp, key)``. Each record holds the
  QRE-gap and NE-gap (largest agent's) and the largest relative QRE-gap; the
  inputs are checked once, in the graph (:func:`inputs_ok`).
  """
  dtype = form.dtype
  tau = jnp.asarray(tau, dtype)
  eta = scaled_eta(form, eta)
  logp = tuple(jnp.asarray(lp, dtype) for lp in logp)
  if form.batch_last:  # the carried policy takes the full (broadcast) batch
    batch = batch_of(form, tau, eta, logp, tol, state, algorithm)
    logp = tuple(jnp.broadcast_to(lp, lp.shape[:len(s)] + batch)
                 for lp, s in zip(logp, form.policy_shapes))
  else:
    batch = ()
  form = form.loop_ready()
  step = functools.partial(algorithm.step, form, tau=tau, eta=eta)

  def payoffs_of(state):
    return form.loop_payoffs(algorithm.policy(state), algorithm.probs(state),
                             tau)

  def plain(state, _):
    return step(state, payoffs_of(state) if algorithm.uses_payoffs
                else None), None

  def gaps_of(state, payoffs):
    return form.loop_gaps(algorithm.policy(state), algorithm.probs(state),
                          payoffs, tau)

  def record_from(gaps, sizes):
    qre_i, ne_i = gaps                                           # (n, *batch)
    scale = sizes + tau * _log_actions(form, sizes)
    relative = qre_i / jnp.where(scale > 0, scale, 1.0)
    return _agent_max(qre_i), _agent_max(relative), _agent_max(ne_i)

  def record_of(state, payoffs):
    return record_from(gaps_of(state, payoffs), form.loop_payoff_size(payoffs))

  def block(length):
    # Each step emits the record of the step before (carried) and carries its
    # own: the scan then only copies finished records into its output, and
    # the gaps are computed with the update's other elementwise work.
    # (Computed inside that copy instead, XLA:CPU ran the gaps in a slow
    # in-place loop, at twice the cost.)
    def body(carry, _):
      state, previous = carry
      payoffs = payoffs_of(state)
      record = record_of(state, payoffs)
      state = step(state, payoffs if algorithm.uses_payoffs else None)
      if length > 1:
        state, _ = _stacking.scan(plain, state, None, length=length - 1)
      return (state, record), previous
    return body

  # Records at k = 0, r, 2r, ... below num_iters (the last block may be
  # shorter), then at num_iters. The scan's first output is a placeholder
  # (zeros; dropped below).
  num_blocks = num_iters // record_every
  remainder = num_iters - num_blocks * record_every
  if state is None:
    state = algorithm.init(form, logp, key)
  if form.batch_last:
    state = _full_batch(state, batch)
  valid = (inputs_ok(tau, eta, tol, algorithm.policy(state),
                     action_axis=form.action_axis) & form.loop_valid())
  # The first output's placeholder needs only a shape (computing the record of
  # the initial state here would put a whole second copy of the payoffs and
  # gaps in the program, outside the loop: compile time, no result).
  # It is derived from the state (one policy entry times 0), not built from
  # constants, so that it varies over a shard_map's axes as the records do.
  placeholder = jax.eval_shape(lambda s: record_of(s, payoffs_of(s)), state)
  lp0 = algorithm.policy(state)[0]
  zero = lp0[(0,) * len(form.policy_shapes[0])] * 0
  carry = (state, jax.tree_util.tree_map(
      lambda x: jnp.broadcast_to(zero, x.shape).astype(x.dtype), placeholder))
  carry, records = _stacking.scan(block(record_every), carry, None,
                                  length=num_blocks)
  starts = jnp.arange(num_blocks) * record_every
  if remainder:
    carry, extra = block(remainder)(carry, None)
    records = jax.tree_util.tree_map(
        lambda r, x: jnp.concatenate([r, x[None]]), records, extra)
    starts = jnp.append(starts, num_blocks * record_every)
  return _result(form, algorithm, tau, eta, tol, batch, valid, carry, records,
                 starts, record_from, gaps_of, num_iters=num_iters, tail=tail)


def _result(form, algorithm, tau, eta, tol, batch, valid, carry, records, starts,
            record_from, gaps_of, *, num_iters, tail) -> RunResult:
  """The :class:`RunResult` of :func:`iterate`'s scan: the final record, the
  records (NaN where the inputs were invalid), tolerances and the verdict."""
  dtype = form.dtype
  state, carried = carry
  logp, probs = algorithm.policy(state), algorithm.probs(state)
  payoffs = form.loop_payoffs(logp, probs, tau)
  # The final gaps and sizes once (the program holds one copy of each).
  gaps, sizes = gaps_of(state, payoffs), form.loop_payoff_size(payoffs)
  final = record_from(gaps, sizes)
  agent_gaps = gaps[0]                                             # (n, *batch)
  # [placeholder, records..., carried record, final record], placeholder dropped
  qre, relative, ne = (
      jnp.where(valid, jnp.concatenate([r, c[None], f[None]])[1:], jnp.nan)
      for r, c, f in zip(records, carried, final))
  iterations = jnp.append(starts, num_iters)
  tols, floors = tol_and_floor(form, payoffs, tau, eta, tol, sizes)
  shape = (len(form.policy_shapes),) + batch
  tols, floors = jnp.broadcast_to(tols, shape), jnp.broadcast_to(floors, shape)
  # The verdict of every batch element, records first (no transposes).
  v = verdict(qre, ne, iterations.astype(dtype),
              judged=relative if tol is None else qre,
              threshold=_tolerance.GAP_RTOL if tol is None else tol,
              agent_gaps=agent_gaps, tol=tols, floor=floors,
              tail=tail, num_iters=num_iters, valid=valid)
  # Plain tuples for the agents' stacked views (the structure the caller sees).
  state = jax.tree_util.tree_map(lambda x: x, state)
  return RunResult(
      logp=tuple(logp), qre_gap=qre, ne_gap=ne, iterations=iterations,
      status=v.status, tol=tols, floor=floors, state=state,
      qre_gap_relative=relative,
      agent_qre_gap=jnp.where(valid, agent_gaps, jnp.nan),
      iterations_to_tol=v.iterations_to_tol, linear_rate=v.linear_rate,
      iterations_needed=v.iterations_needed, monotone=v.monotone)
