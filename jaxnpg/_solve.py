"""Iterating the NPG step: ``run`` (fixed length, lax.scan) and ``solve`` (to tolerance).

Both are written for one game and work under ``jax.vmap`` (over games, ``tau``,
``eta`` or initial policies), so a batch runs as one compiled call. ``num_iters``,
``record_every``, ``max_iters`` and ``measure`` are static; ``tau``, ``eta`` and
``tol`` are traced, so new values never recompile.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching, lax

from jaxnpg import _gaps, _stacking, _tolerance
from jaxnpg._algorithms import NPG, get_algorithm
from jaxnpg._policy import uniform_policy
from jaxnpg._status import Status
from jaxnpg._verdict import verdict
from jaxnpg._validation import (check_eta, check_policy, check_positive_int,
                                check_tau, is_concrete)


class RunResult(NamedTuple):
  """Output of :func:`run` (one game; batch axes lead when vmapped).

  Attributes:
    logp: final log-policy after ``num_iters`` steps, ``logp[i].shape == (A_i,)``.
    qre_gap: ``(T,)`` QRE-gap of the iterate ``pi^k`` for each ``k`` in
      ``iterations``; NaN (never 0) where the policy or payoffs are not finite.
    ne_gap: ``(T,)`` NE-gap of the same iterates.
    iterations: ``(T,)`` int, the ``k`` of each record: ``0, r, 2r, ...`` and
      ``num_iters`` (``r = record_every``), so ``T = num_iters // r + 1`` when
      ``r`` divides ``num_iters``.
    status: int8 scalar, the verdict of the run (a :class:`jaxnpg.Status` code,
      exactly as a ``jaxnpg.sweep`` cell with these records would get it):
      converged, not converged, blew up, stalled or at the rounding floor.
    tol: scalar, the QRE-gap tolerance the status used (the given ``tol``, or the
      default rule of :mod:`jaxnpg._tolerance` at the final iterate).
    floor: scalar, the dtype's rounding floor of the QRE-gap at the final
      iterate; when it exceeds ``tol`` the dtype cannot resolve ``tol`` here.
  """
  logp: tuple[Any, ...]
  qre_gap: jax.Array
  ne_gap: jax.Array
  iterations: jax.Array
  status: jax.Array
  tol: jax.Array
  floor: jax.Array


class SolveResult(NamedTuple):
  """Output of :func:`solve` (one game; batch axes lead when vmapped).

  Attributes:
    logp: the last iterate's log-policy.
    num_iters: int scalar, the NPG steps taken.
    converged: bool scalar, the stopping measure is finite and ``<= tol``.
    measure: scalar, the stopping measure at the last iterate.
    qre_gap: scalar, the QRE-gap at the last iterate (NaN if it blew up).
    ne_gap: scalar, the NE-gap at the last iterate.
    status: int8 scalar, a :class:`jaxnpg.Status` code: ``CONVERGED``,
      ``NOT_CONVERGED`` (``max_iters`` reached above ``tol``), ``BLEW_UP`` (a
      non-finite measure or gap) or ``AT_FLOOR`` (stopped at the dtype's rounding
      floor, which lies above ``tol``).
    tol: scalar, the tolerance used.
    floor: scalar, the rounding floor of the measure at the last iterate.
  """
  logp: tuple[Any, ...]
  num_iters: jax.Array
  converged: jax.Array
  measure: jax.Array
  qre_gap: jax.Array
  ne_gap: jax.Array
  status: jax.Array
  tol: jax.Array
  floor: jax.Array


MEASURES = ("residual", "qre_gap")
# Fraction of a run's records fitted for the "stalled" test (as in jaxnpg.sweep).
VERDICT_TAIL = 0.5


def _prepare(game, tau, eta, init):
  """Checks shared by run and solve; returns the initial policy."""
  if game.batch_shape:
    raise ValueError(
        f"Got a batch of games of shape {game.batch_shape}; `run` and `solve` take "
        "one game. Batch them with jax.vmap, or use jaxnpg.sweep.")
  check_tau(tau)
  check_eta(eta)
  for name, x in (("tau", tau), ("eta", eta)):
    if is_concrete(x) and jnp.ndim(x) != 0:
      raise ValueError(
          f"`{name}` must be a scalar, got shape {jnp.shape(x)}; vmap over it to "
          "batch.")
  if init is None:
    return uniform_policy(game)
  check_policy(game, init, batched=False)
  return tuple(jnp.asarray(lp, game.dtype) for lp in init)


def _gap_pair(game, logp, payoffs, tau):
  qre = jnp.max(game.qre_gap_per_agent(logp, tau, payoffs))
  ne = jnp.max(game.ne_gap_per_agent(logp, payoffs))
  return qre, ne


def run(game, tau, eta, num_iters: int, *, init=None, record_every: int = 1,
        algorithm="npg", key=None, tol=None) -> RunResult:
  """Run ``num_iters`` NPG steps from ``init`` and record the gaps (lax.scan).

  Each step's marginal payoffs are computed once and serve both the recorded gaps
  of ``pi^k`` and the update to ``pi^{k+1}``. The result carries the run's verdict
  (``status``), decided exactly as for a ``jaxnpg.sweep`` cell: a run whose policy
  or gaps become non-finite is ``BLEW_UP`` with NaN gaps, never a gap of 0.

  Args:
    game: one game (any game type).
    tau: entropy weight, scalar ``>= 0``.
    eta: step size, scalar ``> 0``.
    num_iters: number of NPG steps (static).
    init: initial log-policy (default: uniform).
    record_every: record the gaps every this many steps (static, ``>= 1``).
    algorithm: ``"npg"`` (default), ``"sampled_npg"``, ``"pg"``,
      ``"optimistic_npg"``, or an instance such as
      ``jaxnpg.SampledNPG(num_samples=16)`` (static; see ``jaxnpg.ALGORITHMS``).
    key: ``jax.random`` key for stochastic algorithms (``sampled_npg``).
    tol: QRE-gap tolerance of the verdict, ``> 0`` (default: the rule of
      ``jaxnpg.sweep``, ``1e-6 * (max|rbar| + tau log A)`` at the final iterate,
      the same in every dtype).

  Returns:
    A :class:`RunResult`.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> res = jaxnpg.run(game, 1.0, 0.02, 500, record_every=100)
    >>> res.qre_gap.shape, res.iterations.tolist()
    ((6,), [0, 100, 200, 300, 400, 500])
    >>> bool(res.qre_gap[-1] < res.qre_gap[0]), jaxnpg.Status(int(res.status)).name
    (True, 'CONVERGED')
  """
  num_iters = check_positive_int(num_iters, "num_iters", allow_zero=True)
  record_every = check_positive_int(record_every, "record_every")
  algorithm = get_algorithm(algorithm)
  logp = _prepare(game, tau, eta, init)
  check_tol(tol)
  algorithm.init(game, logp, key)  # checks the algorithm's needs (key, game)
  return _run(game, tau, eta, logp, key, tol, num_iters=num_iters,
              record_every=record_every, algorithm=algorithm)


def tol_and_floor(game, payoffs, tau, eta, tol=None):
  """The QRE-gap tolerance (given or default) and rounding floor, given the payoffs.

  ``game`` is a loop form (a game, or its batch-last form); ``eta`` is the
  scaled step size. See :mod:`jaxnpg._tolerance` for the rule. Shaped like the
  batch (scalars for one game).
  """
  return _tolerance.gap_tol_and_floor(
      game.loop_payoff_size(payoffs), tau, eta,
      _tolerance.log_max_actions(game.policy_shapes), game.dtype, tol)


# ---------------------------------------------------------------------------
# The loop. One implementation of the NPG iteration and its records, used by
# `run` (one game), `jax.vmap(run)` and `jaxnpg.sweep`, for every game type and
# algorithm. It iterates a game's *loop form* (`Game.loop_form`, see
# jaxnpg._protocol): the game itself (action axis last, one game), or a
# batch-last form (action axes first, batch axes trailing, every reduction over
# an action axis elementwise over the batch; one game is the empty batch).
#
# Batching: `_loop` is a `jax.custom_batching.custom_vmap` function of the flat
# leaves of its arguments. When a vmap maps it and both the form and the
# algorithm are batch-last, the rule moves the mapped axis of every input to the
# END (or appends a size-1 axis to an unmapped one, so shared inputs such as a
# game's rewards across step sizes are not copied) and calls `_loop` again, whose
# arrays now carry one more trailing batch axis; nested vmaps stack further
# trailing axes. Otherwise the rule is plain vmap of the same loop.


def _trail(x, batched):
  """Axis 0 of a mapped input to the end; a size-1 axis on an unmapped one."""
  return jnp.moveaxis(x, 0, -1) if batched else x[..., None]


def _loop_body(form, tau, eta, logp, key, tol, *, num_iters, record_every,
               algorithm):
  """``num_iters`` steps of ``algorithm`` on a loop form, records and verdict."""
  dtype = form.dtype
  tau = jnp.asarray(tau, dtype)
  eta = jnp.asarray(eta, dtype) * form.step_scale
  logp = tuple(jnp.asarray(lp, dtype) for lp in logp)
  if form.batch_last:  # the carried policy takes the full (broadcast) batch
    batch = _batch_of(form, tau, eta, logp, tol)
    logp = tuple(jnp.broadcast_to(lp, lp.shape[:1] + batch) for lp in logp)
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

  def record_of(state, payoffs):
    return form.loop_gaps(algorithm.policy(state), algorithm.probs(state),
                          payoffs, tau)

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
  # (the initial record, computed once; dropped below).
  num_blocks = num_iters // record_every
  remainder = num_iters - num_blocks * record_every
  state = algorithm.init(form, logp, key)
  carry = (state, record_of(state, payoffs_of(state)))
  carry, (qre, ne) = _stacking.scan(block(record_every), carry, None,
                                    length=num_blocks)
  starts = jnp.arange(num_blocks) * record_every
  if remainder:
    carry, (q, e) = block(remainder)(carry, None)
    qre, ne = jnp.concatenate([qre, q[None]]), jnp.concatenate([ne, e[None]])
    starts = jnp.append(starts, num_blocks * record_every)
  state, (q, e) = carry
  logp, probs = algorithm.policy(state), algorithm.probs(state)
  payoffs = form.loop_payoffs(logp, probs, tau)
  qre_last, ne_last = form.loop_gaps(logp, probs, payoffs, tau)
  qre = jnp.concatenate([qre, q[None]])[1:]     # drop the placeholder
  ne = jnp.concatenate([ne, e[None]])[1:]
  qre = jnp.concatenate([qre, qre_last[None]])
  ne = jnp.concatenate([ne, ne_last[None]])
  iterations = jnp.append(starts, num_iters)
  tol, floor = tol_and_floor(form, payoffs, tau, eta, tol)
  tol, floor = jnp.broadcast_to(tol, batch), jnp.broadcast_to(floor, batch)
  # The verdict of every batch element, records first (no transposes).
  status = verdict(qre, ne, iterations.astype(dtype), tol=tol, floor=floor,
                   tail=VERDICT_TAIL, num_iters=num_iters).status
  return RunResult(logp=tuple(logp), qre_gap=qre, ne_gap=ne,
                   iterations=iterations, status=status, tol=tol, floor=floor)


# Cells per block of the batch-last loop on CPU (see `_blocked`): measured on
# a 2-core AMD EPYC (benchmarks/RESULTS.md), 128 to 256 cells of a (3, 4, 5)
# game in float64 run fastest; 1024 games in one block run 25-40% slower.
BLOCK_CELLS = 256


def _batch_of(form, tau, eta, logp, tol):
  """The broadcast batch shape of the loop's inputs (batch axes trailing)."""
  shapes = [form.batch_shape, jnp.shape(tau), jnp.shape(eta)]
  shapes += [jnp.shape(lp)[1:] for lp in logp]
  if tol is not None:
    shapes.append(jnp.shape(tol))
  return jnp.broadcast_shapes(*shapes)


def _blocked(loop, treedef, leaves, batched, size):
  """``loop(*leaves)`` over the trailing axis in blocks, one after another.

  The batch-last loop streams its whole batch through every operation of every
  step, so the batch's working set should stay in the CPU's caches: the
  trailing axis (``size`` long; a leaf has it where ``batched``, else size 1)
  is cut into blocks of about ``BLOCK_CELLS`` cells and ``lax.map`` runs them in
  turn. Every operation is elementwise over the batch, so the result is bit for
  bit that of one call.
  """
  form, tau, eta, logp, _, tol = jax.tree_util.tree_unflatten(treedef, leaves)
  batch = _batch_of(form, tau, eta, logp, tol)
  per_block = max(1, BLOCK_CELLS // max(1, math.prod(batch[:-1])))
  if size <= per_block:
    return loop(*leaves)
  num_blocks = -(-size // per_block)
  pad = num_blocks * per_block - size

  def split(x):   # (..., size) -> (num_blocks, ..., per_block)
    if pad:   # repeat the last element: padded cells are valid, then dropped
      x = jnp.concatenate([x, jnp.repeat(x[..., -1:], pad, axis=-1)], axis=-1)
    x = x.reshape(x.shape[:-1] + (num_blocks, per_block))
    return jnp.moveaxis(x, -2, 0)

  def one(block):
    it = iter(block)
    return loop(*(next(it) if b else x for x, b in zip(leaves, batched)))

  out = lax.map(one, [split(x) for x, b in zip(leaves, batched) if b])

  def merge(x):   # (num_blocks, ..., per_block) -> (..., size)
    x = jnp.moveaxis(x, 0, -2)
    return x.reshape(x.shape[:-2] + (num_blocks * per_block,))[..., :size]

  return out._replace(
      logp=tuple(map(merge, out.logp)), qre_gap=merge(out.qre_gap),
      ne_gap=merge(out.ne_gap), iterations=out.iterations[0],
      status=merge(out.status), tol=merge(out.tol), floor=merge(out.floor))


@functools.lru_cache(maxsize=None)
def _loop_fn(treedef, num_iters, record_every, algorithm):
  """The loop for arguments of structure ``treedef`` as a custom_vmap function."""

  def body(*leaves):
    form, tau, eta, logp, key, tol = jax.tree_util.tree_unflatten(treedef,
                                                                  leaves)
    return _loop_body(form, tau, eta, logp, key, tol, num_iters=num_iters,
                      record_every=record_every, algorithm=algorithm)

  loop = custom_batching.custom_vmap(body)

  @loop.def_vmap
  def rule(axis_size, in_batched, *leaves):
    form = jax.tree_util.tree_unflatten(treedef, leaves)[0]
    if not (form.batch_last and algorithm.batch_last):
      out = jax.vmap(body, in_axes=tuple(0 if b else None for b in in_batched))(
          *leaves)
      return out, jax.tree_util.tree_map(lambda _: True, out)
    out = _blocked(loop, treedef,
                   [_trail(x, b) for x, b in zip(leaves, in_batched)],
                   in_batched, axis_size)
    front = lambda x: jnp.moveaxis(x, -1, 0)
    out = out._replace(logp=tuple(map(front, out.logp)),
                       qre_gap=front(out.qre_gap), ne_gap=front(out.ne_gap),
                       status=front(out.status), tol=front(out.tol),
                       floor=front(out.floor))
    batched = jax.tree_util.tree_map(lambda _: True, out)._replace(
        iterations=False)
    return out, batched

  return loop


@functools.partial(jax.jit, static_argnames=("num_iters", "record_every",
                                             "algorithm", "batch_last"))
def _run(game, tau, eta, logp, key=None, tol=None, *, num_iters, record_every,
         algorithm=NPG(), batch_last=True):
  """The loop on one game (``jax.vmap`` it to batch; see the notes above).

  The loop iterates the game's loop form when the algorithm works batch-last,
  else the game itself; ``batch_last=False`` always iterates the game itself
  (the same loop; ``jaxnpg.sweep(method="generic")``).
  """
  form = (game.loop_form() if batch_last and algorithm.batch_last else game)
  leaves, treedef = jax.tree_util.tree_flatten((form, tau, eta, logp, key, tol))
  return _loop_fn(treedef, num_iters, record_every, algorithm)(*leaves)


def check_tol(tol) -> None:
  """Raise ``ValueError`` unless ``tol`` is None or a finite scalar ``> 0``."""
  if tol is None or not is_concrete(tol):
    return
  arr = np.asarray(tol)
  if arr.ndim != 0 or arr.dtype.kind not in "iuf":
    raise ValueError(f"`tol` must be a scalar number, got {tol!r}.")
  value = float(arr)
  if not (value > 0 and value < float("inf")):
    raise ValueError(f"`tol` must be a finite number > 0, got {tol}.")


def solve(game, tau, eta, *, tol=None, max_iters: int = 10_000, init=None,
          measure: str = "residual", algorithm="npg", key=None) -> SolveResult:
  """Iterate NPG until the stopping measure is ``<= tol`` (lax.while_loop).

  The default measure is the fixed-point residual
  ``max_i ||log pi_i - log pi_i^*||_inf`` (``pi_i^*`` the soft best response to the
  current ``pi_-i``). It is linear in the distance to the QRE, whereas the QRE-gap
  is quadratic in it: a QRE-gap of 1e-15 still leaves policy errors near 1e-8, so a
  gap tolerance says little about the policy. ``measure="qre_gap"`` stops on the
  QRE-gap instead. At ``tau = 0`` the residual falls back to the NE-gap.

  ``converged`` means exactly that the measure met ``tol``. When ``max_iters`` is
  reached above ``tol`` but at or below the dtype's rounding floor for the
  problem (see ``floor``, which then lies above ``tol``), the result is
  ``converged=False`` with ``status == Status.AT_FLOOR``: this dtype cannot
  resolve ``tol`` here, never a false "converged". A run whose measure or gaps
  become non-finite stops with ``status == Status.BLEW_UP``. Under ``vmap`` every problem stops at its own
  iteration (finished ones are held fixed while others continue).

  Args:
    game: one game.
    tau: entropy weight, scalar ``>= 0``.
    eta: step size, scalar ``> 0``.
    tol: stopping tolerance, ``> 0``. Default: on the residual 1e-5 in float32
      and 1e-10 in float64; on the QRE-gap the rule of :func:`run`
      (``1e-6 * (max|rbar| + tau log A)``).
    max_iters: most NPG steps to take (static).
    init: initial log-policy (default: uniform).
    measure: ``"residual"`` (default) or ``"qre_gap"`` (static).
    algorithm: as in :func:`run` (static).
    key: ``jax.random`` key for stochastic algorithms.

  Returns:
    A :class:`SolveResult`.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> sol = jaxnpg.solve(game, 1.0, 0.02, tol=1e-5, max_iters=5000)
    >>> bool(sol.converged), bool(sol.qre_gap < 1e-6), jaxnpg.Status(int(sol.status)).name
    (True, True, 'CONVERGED')
  """
  max_iters = check_positive_int(max_iters, "max_iters", allow_zero=True)
  if measure not in MEASURES:
    raise ValueError(f"`measure` must be one of {MEASURES}, got {measure!r}.")
  algorithm = get_algorithm(algorithm)
  logp = _prepare(game, tau, eta, init)
  check_tol(tol)
  algorithm.init(game, logp, key)
  return _solve(game, tau, eta, tol, logp, key, max_iters=max_iters,
                measure=measure, algorithm=algorithm)


@functools.partial(
    jax.jit, static_argnames=("max_iters", "measure", "algorithm"))
def _solve(game, tau, eta, tol, logp, key=None, *, max_iters, measure,
           algorithm=NPG()):
  dtype = game.dtype
  tau = jnp.asarray(tau, dtype)
  eta = jnp.asarray(eta, dtype) * game.step_scale

  def tol_floor(logp, payoffs):
    if measure == "qre_gap":
      return tol_and_floor(game, payoffs, tau, eta, tol)
    t = _tolerance.default_residual_tol(dtype) if tol is None else tol
    l_size = _tolerance.log_size(_stacking.agent_groups(logp))
    return (jnp.asarray(t, dtype),
            _tolerance.residual_floor(l_size, tau, eta, dtype).astype(dtype))

  def evaluate(logp, payoffs):
    if measure == "residual":
      return _gaps.fixed_point_residual_from_payoffs(logp, payoffs, tau)
    return jnp.max(game.qre_gap_per_agent(logp, tau, payoffs))

  def cond(carry):
    k, state, payoffs, m = carry
    t, _ = tol_floor(algorithm.policy(state), payoffs)
    # An infinite residual is legitimate (zero probabilities against a positive
    # soft best response); only NaN stops the loop.
    return (k < max_iters) & (m > t) & ~jnp.isnan(m)

  def body(carry):
    k, state, payoffs, _ = carry
    state = algorithm.step(game, state, payoffs, tau=tau, eta=eta)
    logp = algorithm.policy(state)
    payoffs = game.payoffs_at(logp, tau)
    return k + 1, state, payoffs, evaluate(logp, payoffs)

  payoffs = game.payoffs_at(logp, tau)
  carry = (jnp.zeros((), jnp.int32), algorithm.init(game, logp, key), payoffs,
           evaluate(logp, payoffs))
  k, state, payoffs, m = _stacking.while_loop(cond, body, carry)
  logp = algorithm.policy(state)
  qre, ne = _gap_pair(game, logp, payoffs, tau)
  t, floor = tol_floor(logp, payoffs)
  finite = ~jnp.isnan(m) & jnp.isfinite(qre) & jnp.isfinite(ne)
  converged = finite & (m <= t)
  status = jnp.where(
      ~finite, Status.BLEW_UP,
      jnp.where(converged, Status.CONVERGED,
                jnp.where(m <= floor, Status.AT_FLOOR, Status.NOT_CONVERGED)))
  return SolveResult(logp=logp, num_iters=k, converged=converged, measure=m,
                     qre_gap=qre, ne_gap=ne, status=status.astype(jnp.int8),
                     tol=t, floor=floor)
