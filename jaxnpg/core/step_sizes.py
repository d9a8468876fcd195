"""Step-size rules."""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxnpg.core.protocol import Game
from jaxnpg.core.step import unscaled_eta
from jaxnpg.core.validation import check_tau, is_concrete


def paper_eta(tau, game: Game | Sequence[int], discount=0.0):
  """The default step size for the paper's figures: ``(1 - gamma) / (2 (tau + 2 sum_i A_i))``.

  The paper prints ``1 / (2 (tau - 2) sum_i A_i)``, negative for ``tau < 2``, so it
  cannot be what was run at small ``tau`` (docs/spec.md). This rule satisfies Theorem 3.3's
  step-size condition ``eta < 1 / (tau - 2 S)`` for every ``tau`` and keeps
  ``eta * tau < 1/2``. Works on arrays of ``tau`` (and under jit/vmap).

  The rule sets the *scaled* step ``eta_bar = eta * game.step_scale`` to
  ``1 / (2 (tau + 2 S))``. For a Markov game the update uses
  ``eta_bar = eta / (1 - gamma)`` (docs/spec.md), so the step returned carries the factor
  ``1 - gamma`` and ``eta_bar * tau < 1/2`` for every ``tau`` (without it, the
  paper's sizes blow up from ``tau`` of about 7 at ``gamma = 0.9``).

  Args:
    tau: entropy weight(s), ``>= 0``.
    game: a game (its ``num_actions`` and ``step_scale`` are used; a batch of
      Markov games broadcasts its discounts against ``tau``), or the action
      counts ``(A_1, ..., A_n)``.
    discount: with action counts, a Markov game's ``gamma`` in ``[0, 1)``
      (0 for static games); with a game, it must be left at 0 (the game knows).

  Example:
    >>> import jax, jaxnpg
    >>> round(float(jaxnpg.paper_eta(0.0, (3, 4, 5))), 6)  # 1 / 48
    0.020833
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> float(jaxnpg.paper_eta(0.0, game)) == float(jaxnpg.paper_eta(0.0, (3, 4, 5)))
    True
  """
  check_tau(tau)
  if is_concrete(discount) and not np.all((np.asarray(discount) >= 0)
                                          & (np.asarray(discount) < 1)):
    raise ValueError(f"`discount` (gamma) must be in [0, 1), got {discount}.")
  if isinstance(game, Game):
    if is_concrete(discount) and np.any(np.asarray(discount) != 0):
      raise ValueError("Pass `discount` only with action counts; a game "
                       "carries its own (its step_scale).")
    return unscaled_eta(game, _rule(tau, game.num_actions))
  try:
    actions = tuple(int(a) for a in game)
  except TypeError:
    raise ValueError(
        f"`paper_eta` takes a game or the action counts (A_1, ..., A_n), got "
        f"{type(game).__name__}.") from None
  return (1.0 - jnp.asarray(discount)) * _rule(tau, actions)


def _rule(tau, num_actions):
  """``1 / (2 (tau + 2 S))``, the scaled step of the paper's rule."""
  s = sum(int(a) for a in num_actions)
  return 1.0 / (2.0 * (jnp.asarray(tau) + 2.0 * s))
