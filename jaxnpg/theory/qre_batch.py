"""Many games' QREs at once, finished games leaving the batch (``jaxnpg.qre_batch``).

Under ``jax.vmap(jaxnpg.qre)`` the continuation's ``while_loop`` runs every game until
the slowest has finished: on random (3, 4, 5) games at lambda = 50 the slowest takes
about four times the median number of steps. :func:`qre_batch` runs the same trace
(:mod:`jaxnpg.theory.qre_trace`, state in and out) in rounds of ``round_steps`` step
attempts, and after each round keeps only the unfinished games, in device batches of
a power-of-two size up to ``max_batch`` (so few shapes compile; small batches stay
in cache, which on CPU matters as much as the dropped games). The answers are those
of ``jax.vmap(qre)`` to rounding (1e-13 in float64; the cut between rounds changes
nothing in a trace, the batch shape can change XLA's rounding).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.validation import check_positive_int
from jaxnpg.theory.logit import (
  QREResult,
  check_qre_options,
  finish,
  inputs_valid,
  make_tracer,
)
from jaxnpg.theory.qre_trace import advance


@functools.partial(jax.jit, static_argnames=("branch", "max_events"))
def _init(games, tau, first_step, *, branch, max_events):
  return jax.vmap(lambda g, t: make_tracer(
      g, t, branch=branch, max_events=max_events).init(first_step))(
      games, tau)


@functools.partial(jax.jit, static_argnames=("branch", "max_events"))
def _round(games, tau, state, idx, max_step, max_steps, round_steps, *, branch,
           max_events):
  """``round_steps`` attempts on the games ``idx``; the whole state back, and which
  games still run."""
  def one(g, t, s):
    tr = make_tracer(g, t, branch=branch, max_events=max_events)
    traced = jnp.any(inputs_valid(g, t, None))   # an invalid game is not traced
    limit = jnp.where(traced, jnp.minimum(s.attempts + round_steps, max_steps), 0)
    s = advance(tr, s, max_step, limit)
    return s, traced & tr.running(s) & (s.attempts < max_steps)
  sub, running = jax.vmap(one)(_take(games, idx), tau[idx], _take(state, idx))
  state = jax.tree_util.tree_map(lambda f, p: f.at[idx].set(p), state, sub)
  return state, jnp.zeros(tau.shape[:1], bool).at[idx].set(running)


@functools.partial(jax.jit, static_argnames=("branch", "max_events"))
def _finish(games, tau, state, tol, *, branch, max_events):
  return jax.vmap(lambda g, t, s: finish(
      g, make_tracer(g, t, branch=branch, max_events=max_events), s,
                                         t, tol))(games, tau, state)


def _take(tree, idx):
  return jax.tree_util.tree_map(lambda x: x[idx], tree)


def qre_batch(games, tau, *, max_steps: int = 2000, first_step: float = 0.1,
              max_step: float = 4.0, tol=None, branch: str = "gambit",
              max_events: int = 16, round_steps: int = 8,
              min_batch: int = 32, max_batch: int = 256) -> QREResult:
  """``jax.vmap(jaxnpg.qre)(games, tau)``, faster: finished games leave the batch.

  Not jittable itself (a host loop over jitted rounds); the options are those of
  :func:`jaxnpg.qre`, plus the round length and the smallest device batch.

  Args:
    games: a batch of games, ``batch_shape == (G,)``.
    tau: ``(G,) + shape`` (one set of ``tau`` per game) or ``shape`` (the same for
      every game).
    max_steps, first_step, max_step, tol, branch, max_events: as :func:`qre`.
    round_steps: step attempts per round between compactions.
    min_batch: the smallest device batch (rounds pad up to a power of two).
    max_batch: the largest device batch (more unfinished games run as several
      batches per round: small batches stay in cache).

  Returns:
    A :class:`jaxnpg.QREResult` with a leading game axis ``G``.

  Raises:
    ValueError: a game batch that is not 1-D, bad ``tau`` or options.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> keys = jax.random.split(jax.random.key(0), 4)
    >>> games = jax.vmap(lambda k: jaxnpg.random_game(k, (2, 3)))(keys)
    >>> eq = jaxnpg.qre_batch(games, jnp.array([1.0, 0.1]))
    >>> eq.logp[1].shape, bool(jnp.all(eq.converged))
    ((4, 2, 3), True)
  """
  if len(games.batch_shape) != 1:
    raise ValueError(f"`qre_batch` takes a 1-D batch of games, got batch shape "
                     f"{games.batch_shape}.")
  num = games.batch_shape[0]
  one = _take(games, 0)
  check_qre_options(one, tau, max_steps=max_steps, first_step=first_step,
                    max_step=max_step, tol=tol, branch=branch, max_events=max_events)
  round_steps = check_positive_int(round_steps, "round_steps")
  min_batch = check_positive_int(min_batch, "min_batch")
  max_batch = max(check_positive_int(max_batch, "max_batch"), min_batch)
  dtype = games.dtype
  tau = jnp.asarray(tau, dtype)
  if tau.ndim == 0 or tau.shape[0] != num:
    tau = jnp.broadcast_to(tau, (num,) + tau.shape)
  static = {"branch": branch, "max_events": max_events}
  state = _init(games, tau, jnp.asarray(first_step, dtype), **static)
  max_h = jnp.asarray(max_step, dtype)
  active = np.arange(num)
  while active.size:
    still = []
    for chunk in np.array_split(active, -(-active.size // max_batch)):
      size = min(num, max(min_batch, 1 << int(np.ceil(np.log2(chunk.size)))))
      idx = np.concatenate([chunk, np.full(size - chunk.size, chunk[-1])])
      state, running = _round(games, tau, state, jnp.asarray(idx), max_h,
                              jnp.int32(max_steps), jnp.int32(round_steps),
                              **static)
      still.append(chunk[np.asarray(running)[chunk]])
    active = np.concatenate(still)
  return _finish(games, tau, state, tol, **static)
