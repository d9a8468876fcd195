"""The largest Lyapunov exponent of the NPG map, by tangent propagation.

Along a trajectory ``x_{t+1} = F(x_t)`` of log-policies, a tangent vector is pushed
forward by ``jax.jvp`` of the NPG step and renormalised every step:
``v_{t+1} = J_t v_t / ||J_t v_t||``, ``J_t = DF(x_t)``. The exponent is the mean of
``log ||J_t v_t||`` after a burn-in (SPEC, "Learning dynamics beyond convergence").

Normalised log-policies move in ``{v : sum_k pi_k v_k = 0}`` (per agent, and per
state for Markov games), and the ``jvp`` of the normalised map stays there. The
initial tangent is projected into that space with the ``pi``-weighted mean; the
plain mean would leave it (``exp(log pi + c)`` is not a policy) and excite a
non-physical direction.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnpg.core import stacking as _stacking
from jaxnpg.core.step import npg_update
from jaxnpg.loop.run import _prepare
from jaxnpg.core.validation import check_positive_int


class LyapunovResult(NamedTuple):
  """Output of :func:`lyapunov_exponent` (one game; batch axes lead when vmapped).

  Attributes:
    exponent: scalar, the largest Lyapunov exponent per NPG step (natural log);
      NaN if the trajectory became non-finite, ``-inf`` if the tangent was
      annihilated (a superstable point).
    logp: the final log-policy (after ``burn_in + num_iters`` steps).
    stderr: scalar, standard error of ``exponent`` from ``num_blocks`` block
      means of the per-step log-growths (``inf`` with fewer than 2 blocks).
    tangent: the final unit tangent, shaped like ``logp``.
  """
  exponent: jax.Array
  logp: tuple[Any, ...]
  stderr: jax.Array
  tangent: tuple[Any, ...]


def prepare(game, tau, eta, init, key, tangent):
  """Eager checks of :func:`lyapunov_exponent`; returns ``(logp, tangent)``."""
  if game.batch_shape:
    raise ValueError(
        f"Got a batch of games of shape {game.batch_shape}; this function takes "
        "one game. Batch with jax.vmap.")
  logp = _prepare(game, tau, eta, init)
  if tangent is None:
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, game.num_agents)
    return logp, tuple(jax.random.normal(k, s, game.dtype)
                       for k, s in zip(keys, game.policy_shapes))
  if (not isinstance(tangent, (tuple, list)) or len(tangent) != game.num_agents
      or any(jnp.shape(v) != s for v, s in zip(tangent, game.policy_shapes))):
    raise ValueError(
        "`tangent` must be a tuple of one array per agent with the log-policy "
        f"shapes {game.policy_shapes}.")
  return logp, tuple(jnp.asarray(v, game.dtype) for v in tangent)


def _mask(logp, v):
  """Zero the tangent on zero-probability actions (they never move)."""
  return tuple(jnp.where(jnp.isneginf(lp), 0.0, t) for lp, t in zip(logp, v))


def _norm(v):
  return jnp.sqrt(sum(jnp.sum(jnp.square(g))
                      for g in _stacking.agent_groups(v)))


def project(logp, v):
  """Project ``v`` onto ``{v : sum_k pi_k v_k = 0}`` (pi-weighted mean out).

  Entries of zero-probability actions are set to 0.
  """
  return _mask(logp, tuple(t - jnp.sum(jnp.exp(lp) * t, axis=-1, keepdims=True)
                           for lp, t in zip(logp, v)))


def npg_map(game, tau, eta):
  """The NPG step ``logp -> F(logp)`` as a function (no checks; ``eta`` unscaled)."""
  tau = jnp.asarray(tau, game.dtype)
  eta_eff = jnp.asarray(eta, game.dtype) * game.step_scale

  def f(logp):
    logp = tuple(logp)
    return npg_update(logp, game.payoffs(logp, tau), tau, eta_eff)
  return f


def propagate(game, tau, eta, logp, tangent, *, burn_in, num_iters, num_blocks):
  """Traceable core of :func:`lyapunov_exponent` (no checks; ``eta`` unscaled).

  Returns:
    A :class:`LyapunovResult`.
  """
  dtype = game.dtype
  f = npg_map(game, tau, eta)

  def advance(length):
    def body(carry, _):
      lp, v, total = carry
      lp, jv = jax.jvp(f, (tuple(lp),), (tuple(v),))
      jv = _mask(lp, jv)
      norm = _norm(jv)
      v = tuple(t / jnp.where(norm > 0, norm, 1.0) for t in jv)
      return (lp, v, total + jnp.log(norm)), None

    def run(lp, v):
      # Derived from the state, so that it varies like it under shard_map.
      zero = jnp.zeros_like(_norm(v), dtype)
      (lp, v, total), _ = _stacking.scan(body, (lp, v, zero), None,
                                         length=length)
      return lp, v, total
    return run

  v = project(logp, tangent)
  v = tuple(t / _norm(v) for t in v)
  logp, v, _ = advance(burn_in)(logp, v)
  block_len, remainder = divmod(num_iters, num_blocks)

  def block(carry, _):
    lp, v, total = advance(block_len)(*carry)
    return (lp, v), total

  (logp, v), sums = _stacking.scan(block, (logp, v), None, length=num_blocks)
  logp, v, rest = advance(remainder)(logp, v)
  exponent = (jnp.sum(sums) + rest) / num_iters
  means = sums / block_len
  if num_blocks > 1:
    stderr = jnp.std(means, ddof=1) / jnp.sqrt(num_blocks)
  else:
    stderr = jnp.full((), jnp.inf, dtype)
  finite = jnp.all(jnp.stack([jnp.all(~jnp.isnan(g) & (g != jnp.inf))
                              for g in _stacking.agent_groups(logp)]))
  exponent = jnp.where(finite, exponent, jnp.nan)
  stderr = jnp.where(finite, stderr, jnp.nan)
  return LyapunovResult(exponent=exponent, logp=tuple(logp), stderr=stderr,
                        tangent=tuple(v))


@functools.partial(jax.jit,
                   static_argnames=("burn_in", "num_iters", "num_blocks"))
def _lyapunov(game, tau, eta, logp, tangent, *, burn_in, num_iters, num_blocks):
  return propagate(game, tau, eta, logp, tangent, burn_in=burn_in,
                   num_iters=num_iters, num_blocks=num_blocks)


def check_lengths(num_iters, burn_in, num_blocks):
  """Validate the static lengths; returns them as ints (blocks capped at ``T``)."""
  num_iters = check_positive_int(num_iters, "num_iters")
  burn_in = check_positive_int(burn_in, "burn_in", allow_zero=True)
  num_blocks = check_positive_int(num_blocks, "num_blocks")
  return num_iters, burn_in, min(num_blocks, num_iters)


def lyapunov_exponent(game, tau, eta, num_iters: int, *, init=None,
                      burn_in: int = 1000, key=None, tangent=None,
                      num_blocks: int = 10) -> LyapunovResult:
  """Largest Lyapunov exponent of the NPG map along the trajectory from ``init``.

  .. math::
    \\lambda = \\frac{1}{T} \\sum_{t=b}^{b+T-1} \\log \\|J_t v_t\\|, \\qquad
    v_{t+1} = \\frac{J_t v_t}{\\|J_t v_t\\|}, \\qquad J_t = DF(x_t)

  with ``F`` the NPG step (eq. 2, ``eta`` scaled by ``game.step_scale``), ``x`` the
  log-policies, ``b = burn_in`` steps that move the state and the tangent but are
  not averaged, and ``T = num_iters``. ``J_t v_t`` is ``jax.jvp`` of the step; the
  norm is Euclidean over all agents' (and states') entries. The initial tangent is
  projected onto ``{v : sum_k pi_k v_k = 0}`` with the ``pi``-weighted mean and
  zeroed on zero-probability actions. At a fixed point the exponent tends to
  ``log rho(J)`` (``jaxnpg.local_rate``); a positive exponent means nearby
  trajectories separate exponentially (chaos, given a bounded orbit).

  Works for any game type and under ``jax.vmap`` over games, ``tau``, ``eta``,
  ``init`` and ``tangent``. ``num_iters``, ``burn_in`` and ``num_blocks`` are
  static; ``tau`` and ``eta`` are traced.

  Args:
    game: one game.
    tau: entropy weight, scalar ``>= 0``.
    eta: step size, scalar ``> 0``.
    num_iters: ``T``, the steps averaged (static, ``>= 1``).
    init: initial log-policy (default: uniform).
    burn_in: steps taken before averaging (static, ``>= 0``).
    key: ``jax.random`` key for the random initial tangent (default: key 0).
    tangent: initial tangent, a tuple shaped like the log-policy (overrides
      ``key``); projected as above.
    num_blocks: ``B``, blocks of ``T // B`` steps whose mean log-growths give the
      standard error (static; capped at ``T``).

  Returns:
    A :class:`LyapunovResult`.

  Raises:
    ValueError: bad ``tau``, ``eta``, ``init``, ``tangent`` or lengths, or a batch
      of games.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> res = jaxnpg.lyapunov_exponent(game, 1.0, 0.02, 500, burn_in=500)
    >>> bool(res.exponent < 0), bool(res.stderr < 1e-2)   # a stable QRE
    (True, True)
  """
  num_iters, burn_in, num_blocks = check_lengths(num_iters, burn_in, num_blocks)
  logp, tangent = prepare(game, tau, eta, init, key, tangent)
  return _lyapunov(game, tau, eta, logp, tangent, burn_in=burn_in,
                   num_iters=num_iters, num_blocks=num_blocks)
