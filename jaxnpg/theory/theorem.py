"""Theorem 3.3 of the paper: its conditions, rate and bound, for a game's reward range.

The one place the theorem is written: :func:`theorem_3_3` (one game, with the
bound curve) and :func:`theorem_rate` (the rate alone, for grids of ``tau`` and
``eta``, as the sweep plots draw it) share :func:`conditions`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import gaps as _gaps
from jaxnpg.core.policy import uniform_policy
from jaxnpg.core.validation import (
  check_eta,
  check_policy,
  check_positive_int,
  check_tau,
)


def conditions(tau, eta, sum_actions, width=1.0):
  """``(holds, rho, tau_min, eta_max)`` of Theorem 3.3 (arrays broadcast).

  With ``S = sum_i A_i`` and reward width ``W``: ``tau_min = 2 W S``,
  ``eta_max = 1 / (tau - tau_min)`` (``inf`` where ``tau <= tau_min``),
  ``rho = 1 - eta (tau - tau_min)``, and the theorem holds where
  ``tau > tau_min``, ``eta < eta_max`` and ``eta * tau <= 1`` (the paper's
  standing assumption, which its proof uses).
  """
  tau_min = 2.0 * float(width) * float(sum_actions)
  excess = tau - tau_min
  eta_max = jnp.where(excess > 0, 1.0 / jnp.where(excess > 0, excess, 1.0),
                      jnp.inf)
  holds = (excess > 0) & (eta < eta_max) & (eta * tau <= 1.0)
  return holds, 1.0 - eta * excess, tau_min, eta_max


def theorem_rate(tau, eta, sum_actions, width=1.0) -> np.ndarray:
  """Theorem 3.3's rate ``1 - eta tau + 2 eta W S`` where it holds, else NaN.

  Float64 NumPy arrays of the broadcast shape of ``tau`` and ``eta`` (see
  :func:`conditions`).

  Example:
    >>> import numpy as np
    >>> from jaxnpg.theory.theorem import theorem_rate
    >>> theorem_rate(np.array([30.0, 30.0, 10.0]), 0.01, 12).round(4).tolist()
    [0.94, 0.94, nan]
    >>> float(theorem_rate(30.0, 0.04, 12))   # eta * tau > 1: the proof needs <= 1
    nan
  """
  tau = np.asarray(tau, dtype=np.float64)
  eta = np.asarray(eta, dtype=np.float64)
  holds, rho, _, _ = conditions(tau, eta, sum_actions, width)
  return np.where(np.asarray(holds), np.asarray(rho, dtype=np.float64), np.nan)


class Theorem33(NamedTuple):
  """What Theorem 3.3 says for one game, ``tau`` and ``eta`` (arrays broadcast).

  Attributes:
    holds: bool, all conditions hold: ``tau > tau_min``, ``eta < eta_max`` and
      ``eta * tau <= 1`` (the paper's standing assumption, which its proof uses).
    rho: ``1 - eta tau + 2 eta W S``, the theorem's contraction factor (``< 1``
      exactly when ``tau > tau_min``).
    tau_min: ``2 W S``; the theorem needs ``tau`` above it.
    eta_max: ``1 / (tau - 2 W S)`` (``inf`` where ``tau <= tau_min``).
    d0: ``max_i ||log pi_i^0 - log pi_i^{0*}||_inf`` at the start.
    bound: ``2 tau rho^k d0`` for ``k = 0 .. num_iters``, shape
      ``broadcast(tau, eta).shape + (num_iters + 1,)``: the theorem's bound on
      ``QRE-gap^k`` (meaningful only where ``holds``).
    width: ``W``, the reward range width the theorem was applied with.
    sum_actions: ``S = sum_i A_i``.
  """
  holds: Any
  rho: Any
  tau_min: float
  eta_max: Any
  d0: Any
  bound: Any
  width: float
  sum_actions: int


def theorem_3_3(game, tau, eta, *, init=None, num_iters: int = 0,
                reward_range=None) -> Theorem33:
  """Theorem 3.3 of the paper, for the game's real reward range.

  The paper assumes rewards in ``[0, 1]``: with ``S = sum_i A_i``, ``tau > 2S`` and
  ``eta < 1/(tau - 2S)`` give ``QRE-gap^k <= 2 tau rho^k d0`` with
  ``rho = 1 - eta tau + 2 eta S``. Adding a constant to an agent's rewards changes
  nothing, and rewards in ``[lo, hi]`` with width ``W = hi - lo`` are rewards in
  ``[0, 1]`` at ``(tau / W, eta W)``, so the theorem holds with ``S`` replaced by
  ``W S``: ``tau > 2 W S``, ``eta < 1/(tau - 2 W S)``,
  ``rho = 1 - eta tau + 2 eta W S``, and the same bound. ``W = 1`` is the paper's
  statement literally (pass ``reward_range=(0, 1)``). Its proof also uses
  ``eta tau <= 1`` (the paper's standing assumption), which ``holds`` includes.

  For the paper's random (3, 4, 5) game this asks for ``tau > 24`` while NPG
  converges already near ``tau = 0.1``: see :func:`local_rate` for the exact rate.

  Args:
    game: one static game with concrete rewards (``game.reward_range()``).
    tau: entropy weight(s), ``>= 0``.
    eta: step size(s), ``> 0``; broadcast against ``tau``.
    init: the start ``pi^0`` (default uniform), for ``d0`` and the bound curve.
    num_iters: length of the bound curve (``bound`` has ``num_iters + 1`` points).
    reward_range: ``(lo, hi)`` to use instead of the game's own range.

  Returns:
    A :class:`Theorem33` (arrays shaped like ``broadcast(tau, eta)``).

  Raises:
    ValueError: ``tau < 0``, ``eta <= 0``, a batched or Markov game, a bad range.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> th = jaxnpg.theory.theorem_3_3(game, 0.1, 0.02, reward_range=(0, 1))
    >>> bool(th.holds), th.tau_min
    (False, 24.0)
    >>> th = jaxnpg.theory.theorem_3_3(game, 30.0, 0.03, num_iters=100)
    >>> bool(th.holds), th.bound.shape
    (True, (101,))
  """
  check_tau(tau)
  check_eta(eta)
  num_iters = check_positive_int(num_iters, "num_iters", allow_zero=True)
  if game.batch_shape:
    raise ValueError(
        f"`theorem_3_3` takes one game, got a batch of shape {game.batch_shape}.")
  if not game.is_static:
    raise ValueError(
        "Theorem 3.3 is stated for static games; this game has state-dependent "
        f"policies of shapes {game.policy_shapes}.")
  if reward_range is None and not game.has_reward_range:
    raise ValueError(
        f"{type(game).__name__} does not report its reward range; pass "
        "`reward_range=(lo, hi)`.")
  lo, hi = game.reward_range() if reward_range is None else reward_range
  lo, hi = float(lo), float(hi)
  if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
    raise ValueError(f"`reward_range` must be finite (lo, hi) with lo <= hi, got "
                     f"{(lo, hi)}.")
  width = hi - lo
  s = sum(int(a) for a in game.num_actions)
  dtype = game.dtype
  tau_b, eta_b = jnp.broadcast_arrays(jnp.asarray(tau, dtype),
                                      jnp.asarray(eta, dtype))
  holds, rho, tau_min, eta_max = conditions(tau_b, eta_b, s, width)

  logp0 = uniform_policy(game) if init is None else init
  check_policy(game, logp0, batched=False)
  logp0 = tuple(jnp.asarray(lp, dtype) for lp in logp0)
  d0, bound = _theorem_curves(game, logp0, tau_b, rho, num_iters=num_iters)
  return Theorem33(holds=holds, rho=rho, tau_min=tau_min, eta_max=eta_max, d0=d0,
                   bound=bound, width=width, sum_actions=s)


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _theorem_curves(game, logp0, tau, rho, *, num_iters):
  """``d0`` per ``tau`` and the bound ``2 tau rho^k d0``, ``k = 0..num_iters``."""
  payoffs = game.payoffs(logp0)
  d0 = jax.vmap(lambda t: _gaps.fixed_point_residual_from_payoffs(
      logp0, payoffs, t))(jnp.reshape(tau, (-1,))).reshape(tau.shape)
  k = jnp.arange(num_iters + 1, dtype=tau.dtype)
  bound = (2.0 * tau[..., None] * d0[..., None]
           * jnp.power(jnp.maximum(rho, 0.0)[..., None], k))
  return d0, bound

