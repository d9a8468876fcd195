"""Iterating the NPG step: ``run`` (fixed length, lax.scan) and ``solve`` (to tolerance).

Both are written for one game and work under ``jax.vmap`` (over games, ``tau``,
``eta`` or initial policies), so a batch runs as one compiled call. ``num_iters``,
``record_every``, ``max_iters`` and ``measure`` are static; ``tau``, ``eta`` and
``tol`` are traced, so new values never recompile.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import gaps as _gaps
from jaxnpg.core import stacking as _stacking
from jaxnpg.core import tolerance as _tolerance
from jaxnpg.core.policy import uniform_policy
from jaxnpg.core.step import scaled_eta
from jaxnpg.core.validation import (
  check_eta,
  check_policy,
  check_positive_int,
  check_tau,
  check_tol,
  inputs_ok,
  is_concrete,
  warn_overshoot,
)
from jaxnpg.loop.algorithms import NPG, get_algorithm
from jaxnpg.loop.batch_last import LoopStatics, loop_fn
from jaxnpg.loop.iterate import VERDICT_TAIL, RunResult, tol_and_floor
from jaxnpg.loop.verdict import decide


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
      non-finite measure or gap), ``AT_FLOOR`` (stopped at the dtype's rounding
      floor, which lies above ``tol``) or ``INVALID_INPUT`` (a traced input the
      eager checks refuse; the measure and gaps are then NaN).
    tol: the tolerance used: a scalar on the residual; ``(n,)``, one per agent,
      on the QRE-gap (the run converged when every agent met its own).
    floor: the rounding floor of the measure at the last iterate (likewise).
    state: the algorithm's whole state at the last iterate (see
      :attr:`RunResult.state`); ``solve(..., init_state=state)`` goes on from it.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> sol = jaxnpg.solve(game, 1.0, 0.2)
    >>> bool(sol.converged), jaxnpg.Status(int(sol.status)).name
    (True, 'CONVERGED')
    >>> bool(sol.measure <= 1e-5), int(sol.num_iters) > 0
    (True, True)
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
  state: Any = None


MEASURES = ("residual", "qre_gap")


def prepare(game, tau, eta, init):
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
  if is_concrete(tau) and is_concrete(eta) and is_concrete(game.step_scale):
    warn_overshoot(np.asarray(eta) * np.asarray(game.step_scale)
                   * np.asarray(tau))
  if init is None:
    return uniform_policy(game)
  check_policy(game, init, batched=False)
  return tuple(jnp.asarray(lp, game.dtype) for lp in init)


def check_state(algorithm, game, logp, key, init_state):
  """The algorithm's check of the game and key, and of a given ``init_state``.

  Without ``init_state``, ``algorithm.init`` runs once on the concrete inputs
  (it raises ``ValueError`` where the game or key does not suit it). With one,
  its structure, shapes and dtypes must be those of ``algorithm.init``'s state
  (checked abstractly; the key is then not needed: the state carries it).
  """
  if init_state is None:
    algorithm.init(game, logp, key)
    return
  if key is None and algorithm.uses_key:
    key = jax.random.key(0)
  want = jax.eval_shape(lambda: algorithm.init(game, logp, key))
  got = jax.eval_shape(lambda: init_state)
  spec = lambda t: jax.tree_util.tree_map(lambda x: (x.shape, str(x.dtype)), t)
  if (jax.tree_util.tree_structure(want) != jax.tree_util.tree_structure(got)
      or spec(want) != spec(got)):
    raise ValueError(
        f"`init_state` is not a state of the {algorithm.name} algorithm on this "
        f"game: expected {spec(want)}, got {spec(got)}. Pass the `state` of an "
        "earlier RunResult or SolveResult of the same algorithm and game.")


def run(game, tau, eta, num_iters: int, *, init=None, record_every: int = 1,
        algorithm="npg", key=None, tol=None, init_state=None) -> RunResult:
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
      ``"optimistic_npg"``, an instance such as
      ``jaxnpg.SampledNPG(num_samples=16)``, or any hashable object with the
      :class:`jaxnpg.Algorithm` protocol (static; see ``jaxnpg.ALGORITHMS``).
    key: ``jax.random`` key for stochastic algorithms (``sampled_npg``).
    tol: QRE-gap tolerance of the verdict, ``> 0`` (default: the rule of
      ``jaxnpg.sweep``, ``1e-6 * (max|rbar| + tau log A)`` at the final iterate,
      the same in every dtype).
    init_state: the algorithm's state to start from, e.g. ``res.state`` of an
      earlier run of the same algorithm on the same game (then ``init`` and
      ``key`` are not used): ``run(n1)`` then ``run(n2, init_state=...)``
      ends exactly where ``run(n1 + n2)`` does, optimizer moments, memory and
      key streams included.

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
  logp = prepare(game, tau, eta, init)
  check_tol(tol)
  check_state(algorithm, game, logp, key, init_state)
  return run_loop(game, tau, eta, logp, key, tol, init_state,
                  num_iters=num_iters, record_every=record_every,
                  algorithm=algorithm)


@functools.partial(jax.jit, static_argnames=(
    "num_iters", "record_every", "algorithm", "batch_last", "threads", "tail"))
def run_loop(game, tau, eta, logp, key=None, tol=None, state=None, *,
             num_iters, record_every, algorithm=NPG(), batch_last=True,
             threads=True, tail=VERDICT_TAIL):
  """The loop on one game (``jax.vmap`` it to batch; see :mod:`jaxnpg.loop.batch_last`).

  The loop iterates the game's loop form when the algorithm works batch-last,
  else the game itself; ``batch_last=False`` always iterates the game itself
  (the same loop; ``jaxnpg.sweep(method="generic")``). ``threads=False`` keeps a
  batch in the caller's program on CPU (``jaxnpg.sweep`` runs its own threads).
  """
  form = (game.loop_form() if batch_last and algorithm.batch_last else game)
  leaves, treedef = jax.tree_util.tree_flatten(
      (form, tau, eta, logp, key, tol, state))
  statics = LoopStatics(num_iters, record_every, algorithm, float(tail))
  return loop_fn(treedef, statics, threads)(*leaves)


def solve(game, tau, eta, *, tol=None, max_iters: int = 10_000, init=None,
          measure: str = "residual", algorithm="npg", key=None,
          init_state=None) -> SolveResult:
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
    init_state: the algorithm's state to start from (as in :func:`run`).

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
  logp = prepare(game, tau, eta, init)
  check_tol(tol)
  check_state(algorithm, game, logp, key, init_state)
  return _solve(game, tau, eta, tol, logp, key, init_state, max_iters=max_iters,
                measure=measure, algorithm=algorithm)


@functools.partial(
    jax.jit, static_argnames=("max_iters", "measure", "algorithm"))
def _solve(game, tau, eta, tol, logp, key=None, state=None, *, max_iters,
           measure, algorithm=NPG()):
  dtype = game.dtype
  tau = jnp.asarray(tau, dtype)
  eta = scaled_eta(game, eta)

  def measure_of(logp, payoffs):
    """``(measure, met, at_floor, tol, floor)`` at ``logp``."""
    if measure == "residual":
      m = _gaps.fixed_point_residual_from_payoffs(logp, payoffs, tau)
      t = jnp.asarray(_tolerance.default_residual_tol(dtype) if tol is None
                      else tol, dtype)
      l_size = _tolerance.log_size(_stacking.agent_groups(logp))
      floor = _tolerance.residual_floor(l_size, tau, eta, dtype).astype(dtype)
      return m, m <= t, m <= jnp.maximum(t, floor), t, floor
    gaps = game.qre_gap_per_agent(logp, tau, payoffs)            # (n,)
    t, floor = tol_and_floor(game, payoffs, tau, eta, tol)       # per agent
    return (jnp.max(gaps), jnp.all(gaps <= t),
            jnp.all(gaps <= jnp.maximum(t, floor)), t, floor)

  def cond(carry):
    k, _, _, m, met = carry
    # An infinite residual is legitimate (zero probabilities against a positive
    # soft best response); only NaN stops the loop.
    return (k < max_iters) & ~met & ~jnp.isnan(m)

  def body(carry):
    k, state, payoffs, _, _ = carry
    state = algorithm.step(game, state, payoffs, tau=tau, eta=eta)
    logp = algorithm.policy(state)
    payoffs = game.payoffs(logp, tau)
    m, met = measure_of(logp, payoffs)[:2]
    return k + 1, state, payoffs, m, met

  state = algorithm.init(game, logp, key) if state is None else state
  logp = algorithm.policy(state)
  valid = (inputs_ok(tau, eta, tol, logp, action_axis=-1) & game.valid())
  payoffs = game.payoffs(logp, tau)
  m, met = measure_of(logp, payoffs)[:2]
  m = jnp.where(valid, m, jnp.nan)           # an invalid input stops at once
  carry = (jnp.zeros((), jnp.int32), state, payoffs, m, met)
  k, state, payoffs, m, _ = _stacking.while_loop(cond, body, carry)
  logp = algorithm.policy(state)
  qre_i, ne_i = game.loop_gaps(logp, None, payoffs, tau)
  qre, ne = jnp.max(qre_i), jnp.max(ne_i)
  m, met, at_floor, t, floor = measure_of(logp, payoffs)
  finite = ~jnp.isnan(m) & jnp.isfinite(qre) & jnp.isfinite(ne)
  status = decide(finite, met, at_floor, valid=valid)
  nan = jnp.asarray(jnp.nan, dtype)
  return SolveResult(logp=logp, num_iters=k, converged=valid & finite & met,
                     measure=jnp.where(valid, m, nan),
                     qre_gap=jnp.where(valid, qre, nan),
                     ne_gap=jnp.where(valid, ne, nan), status=status, tol=t,
                     floor=floor, state=state)
