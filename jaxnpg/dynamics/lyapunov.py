"""The largest Lyapunov exponent of the NPG map, by tangent propagation.

Along a trajectory ``x_{t+1} = F(x_t)`` of log-policies, a tangent vector is pushed
forward by ``jax.jvp`` of the NPG step and renormalised every step:
``v_{t+1} = J_t v_t / ||J_t v_t||``, ``J_t = DF(x_t)``. The exponent is the mean of
``log ||J_t v_t||`` after a burn-in (docs/spec.md, "Learning dynamics beyond convergence").

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
from jaxnpg.core.step import scaled_eta
from jaxnpg.core.validation import check_positive_int
from jaxnpg.loop.algorithms import NPG, get_algorithm
from jaxnpg.loop.run import prepare as prepare_run


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

  Example:
    >>> import jax, jaxnpg
    >>> pennies = jaxnpg.NormalFormGame.from_matrices([[1, -1], [-1, 1]],
    ...                                               [[-1, 1], [1, -1]])
    >>> import jax.numpy as jnp
    >>> start = jaxnpg.policy_from_probs([[0.9, 0.1], [0.2, 0.8]])
    >>> r = jaxnpg.lyapunov_exponent(pennies, 1.0, 0.5, 200, burn_in=100, init=start)
    >>> rho = jaxnpg.local_rate(pennies, 1.0, 0.5, jaxnpg.qre(pennies, 1.0)).rho
    >>> round(float(r.exponent), 4), round(float(jnp.log(rho)), 4)  # log rho(J) at a fixed point
    (-0.3466, -0.3466)
  """
  exponent: jax.Array
  logp: tuple[Any, ...]
  stderr: jax.Array
  tangent: tuple[Any, ...]


def prepare(game, tau, eta, init, key, tangent, algorithm="npg"):
  """Eager checks of :func:`lyapunov_exponent`; ``(logp, tangent, algorithm)``."""
  if game.batch_shape:
    raise ValueError(
        f"Got a batch of games of shape {game.batch_shape}; this function takes "
        "one game. Batch with jax.vmap.")
  algorithm = get_algorithm(algorithm)
  if algorithm.uses_key:
    raise ValueError(
        f"Lyapunov exponents follow a deterministic map; algorithm "
        f"{algorithm.name!r} draws random samples.")
  logp = prepare_run(game, tau, eta, init)
  algorithm.init(game, logp, None)   # the algorithm's own check of the game
  if tangent is None:
    key = jax.random.key(0) if key is None else key
    keys = jax.random.split(key, game.num_agents)
    return logp, tuple(jax.random.normal(k, s, game.dtype)
                       for k, s in zip(keys, game.policy_shapes)), algorithm
  if (not isinstance(tangent, (tuple, list)) or len(tangent) != game.num_agents
      or any(jnp.shape(v) != s for v, s in zip(tangent, game.policy_shapes))):
    raise ValueError(
        "`tangent` must be a tuple of one array per agent with the log-policy "
        f"shapes {game.policy_shapes}.")
  return logp, tuple(jnp.asarray(v, game.dtype) for v in tangent), algorithm


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


def state_map(game, tau, eta, algorithm):
  """One step of ``algorithm`` as a function ``state -> state`` (``eta`` unscaled).

  The map whose exponents, periods and fixed points the dynamics tools study:
  for NPG, eq. (2) on the log-policy (its state also carries the probabilities).
  """
  tau = jnp.asarray(tau, game.dtype)
  eta = scaled_eta(game, eta)

  def f(state):
    payoffs = (game.loop_payoffs(algorithm.policy(state),
                                 algorithm.probs(state), tau)
               if algorithm.uses_payoffs else None)
    return algorithm.step(game, state, payoffs, tau=tau, eta=eta)
  return f


def propagate(game, tau, eta, logp, tangent, *, burn_in, num_iters, num_blocks,
              algorithm=NPG()):
  """Traceable core of :func:`lyapunov_exponent` (no checks; ``eta`` unscaled).

  The trajectory and its tangent live in the algorithm's state (for NPG the
  log-policy and its probabilities); the tangent's size is measured on its
  log-policy part, masked on zero-probability actions (whose entries never feed
  back into the map).

  Returns:
    ``(LyapunovResult, final state)``.
  """
  dtype = game.dtype
  f = state_map(game, tau, eta, algorithm)
  init = lambda lp: algorithm.init(game, lp, None)

  def advance(length):
    def body(carry, _):
      state, dstate, total = carry
      state, jv = jax.jvp(f, (state,), (dstate,))
      norm = _norm(_mask(algorithm.policy(state), algorithm.policy(jv)))
      scale = 1.0 / jnp.where(norm > 0, norm, 1.0)
      dstate = jax.tree_util.tree_map(lambda t: t * scale, jv)
      return (state, dstate, total + jnp.log(norm)), None

    def run(state, dstate):
      # Derived from the state, so that it varies like it under shard_map.
      zero = jnp.zeros_like(_norm(algorithm.policy(dstate)), dtype)
      (state, dstate, total), _ = _stacking.scan(
          body, (state, dstate, zero), None, length=length)
      return state, dstate, total
    return run

  v = project(logp, tangent)
  v = tuple(t / _norm(v) for t in v)
  state, dstate = jax.jvp(init, (tuple(logp),), (v,))
  state, dstate, _ = advance(burn_in)(state, dstate)
  block_len, remainder = divmod(num_iters, num_blocks)

  def block(carry, _):
    state, dstate, total = advance(block_len)(*carry)
    return (state, dstate), total

  (state, dstate), sums = _stacking.scan(block, (state, dstate), None,
                                         length=num_blocks)
  state, dstate, rest = advance(remainder)(state, dstate)
  exponent = (jnp.sum(sums) + rest) / num_iters
  means = sums / block_len
  if num_blocks > 1:
    stderr = jnp.std(means, ddof=1) / jnp.sqrt(num_blocks)
  else:
    stderr = jnp.full((), jnp.inf, dtype)
  logp = tuple(algorithm.policy(state))
  finite = jnp.all(jnp.stack([jnp.all(~jnp.isnan(g) & (g != jnp.inf))
                              for g in _stacking.agent_groups(logp)]))
  exponent = jnp.where(finite, exponent, jnp.nan)
  stderr = jnp.where(finite, stderr, jnp.nan)
  tangent = _mask(logp, tuple(algorithm.policy(dstate)))
  return LyapunovResult(exponent=exponent, logp=logp, stderr=stderr,
                        tangent=tangent), state


@functools.partial(jax.jit, static_argnames=(
    "burn_in", "num_iters", "num_blocks", "algorithm"))
def _lyapunov(game, tau, eta, logp, tangent, *, burn_in, num_iters, num_blocks,
              algorithm):
  return propagate(game, tau, eta, logp, tangent, burn_in=burn_in,
                   num_iters=num_iters, num_blocks=num_blocks,
                   algorithm=algorithm)[0]


def check_lengths(num_iters, burn_in, num_blocks):
  """Validate the static lengths; returns them as ints (blocks capped at ``T``)."""
  num_iters = check_positive_int(num_iters, "num_iters")
  burn_in = check_positive_int(burn_in, "burn_in", allow_zero=True)
  num_blocks = check_positive_int(num_blocks, "num_blocks")
  return num_iters, burn_in, min(num_blocks, num_iters)


def lyapunov_exponent(game, tau, eta, num_iters: int, *, init=None,
                      burn_in: int = 1000, key=None, tangent=None,
                      num_blocks: int = 10,
                      algorithm="npg") -> LyapunovResult:
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
    algorithm: the map whose exponent is measured: ``"npg"`` (default) or any
      deterministic algorithm (``jaxnpg.ALGORITHMS`` or an
      :class:`jaxnpg.Algorithm`; static). The tangent then lives in the
      algorithm's state (e.g. an optimizer's moments) and is measured on its
      log-policy part.

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
  logp, tangent, algorithm = prepare(game, tau, eta, init, key, tangent,
                                     algorithm)
  return _lyapunov(game, tau, eta, logp, tangent, burn_in=burn_in,
                   num_iters=num_iters, num_blocks=num_blocks,
                   algorithm=algorithm)
