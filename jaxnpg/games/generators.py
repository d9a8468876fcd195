"""Seeded generators of structured normal-form games, and reward rescaling.

Each generator is a pure function of a ``jax.random`` key with static sizes, so
``jax.vmap(lambda k: gen(k, sizes))(keys)`` builds a batch of games in one call.

* :func:`cooperative_game`: identical interest, one reward tensor shared by all.
* :func:`potential_game`: ``r_i(a) = (phi(a) + h_i(a_-i)) / 2`` with a random
  potential ``phi`` and per-agent terms ``h_i`` that ignore agent ``i``'s own action,
  so every unilateral deviation changes ``r_i`` and ``phi / 2`` equally.
* :func:`zero_sum_game`: two players, ``r_2 = -r_1``.
* :func:`bimatrix_game`: two players, independent payoff matrices.

:func:`rescale_rewards` maps any game's rewards affinely onto ``[0, 1]`` (the
theory's assumption) and reports the map, so ``tau`` and ``eta`` can be translated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.games.dense import NormalFormGame


def check_sizes(num_actions, *, players: int | None = None) -> tuple[int, ...]:
  try:
    sizes = tuple(num_actions)
  except TypeError:
    sizes = None
  if (not sizes or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                       or a < 1 for a in sizes)):
    raise ValueError(
        f"`num_actions` must be a non-empty sequence of integers >= 1 (one per "
        f"agent), got {num_actions!r}.")
  if players is not None and len(sizes) != players:
    raise ValueError(
        f"This is a {players}-player game: `num_actions` needs {players} entries, "
        f"got {sizes}.")
  return tuple(int(a) for a in sizes)


def _check_range(low, high):
  if not (np.isfinite(low) and np.isfinite(high) and low < high):
    raise ValueError(f"Need finite `low < high`, got low={low}, high={high}.")


def float_dtype(dtype):
  return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def cooperative_game(key, num_actions: Sequence[int], *, low: float = 0.0,
                     high: float = 1.0, dtype=None) -> NormalFormGame:
  """An identical-interest game: every agent gets the same i.i.d. uniform reward.

  Args:
    key: a ``jax.random`` key.
    num_actions: ``(A_1, ..., A_n)``, each ``>= 1``.
    low, high: reward range ``[low, high)``.
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame`` with ``rewards[i] == rewards[0]`` for every agent ``i``.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.cooperative_game(jax.random.key(0), (2, 3))
    >>> bool((game.rewards[0] == game.rewards[1]).all())
    True
  """
  sizes = check_sizes(num_actions)
  _check_range(low, high)
  shared = jax.random.uniform(key, sizes, dtype=float_dtype(dtype), minval=low,
                              maxval=high)
  return NormalFormGame(jnp.broadcast_to(shared, (len(sizes),) + sizes))


def potential_game(key, num_actions: Sequence[int], *, low: float = 0.0,
                   high: float = 1.0, dtype=None) -> NormalFormGame:
  """An exact potential game with rewards in ``[low, high)``.

  ``r_i(a) = (phi(a) + h_i(a_-i)) / 2`` where the potential ``phi`` and the terms
  ``h_i`` (constant in agent ``i``'s own action) are i.i.d. uniform on
  ``[low, high)``. For every agent and unilateral deviation
  ``r_i(a_i', a_-i) - r_i(a) = Phi(a_i', a_-i) - Phi(a)`` with ``Phi = phi / 2``.

  Args:
    key: a ``jax.random`` key.
    num_actions: ``(A_1, ..., A_n)``, each ``>= 1``.
    low, high: range of ``phi`` and ``h_i`` (and so of the rewards).
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame`` of shape ``(n, A_1, ..., A_n)``.

  Example:
    >>> import jax, jaxnpg
    >>> jaxnpg.potential_game(jax.random.key(0), (2, 3, 2)).rewards.shape
    (3, 2, 3, 2)
  """
  sizes = check_sizes(num_actions)
  _check_range(low, high)
  dt = float_dtype(dtype)
  k_phi, k_h = jax.random.split(key)
  phi = jax.random.uniform(k_phi, sizes, dtype=dt, minval=low, maxval=high)
  keys = jax.random.split(k_h, len(sizes))
  rewards = []
  for i, k in enumerate(keys):
    own_free = sizes[:i] + (1,) + sizes[i + 1:]
    h = jax.random.uniform(k, own_free, dtype=dt, minval=low, maxval=high)
    rewards.append((phi + h) / 2)
  return NormalFormGame(jnp.stack(rewards))


def zero_sum_game(key, num_actions: Sequence[int], *, low: float = -1.0,
                  high: float = 1.0, dtype=None) -> NormalFormGame:
  """A two-player zero-sum game: ``r_1`` i.i.d. uniform on ``[low, high)``, ``r_2 = -r_1``.

  Args:
    key: a ``jax.random`` key.
    num_actions: ``(A_1, A_2)``.
    low, high: range of player 1's payoffs.
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame`` with ``rewards[0] + rewards[1] == 0``.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.zero_sum_game(jax.random.key(0), (3, 4))
    >>> float(abs(game.rewards.sum(axis=0)).max())
    0.0
  """
  sizes = check_sizes(num_actions, players=2)
  _check_range(low, high)
  m = jax.random.uniform(key, sizes, dtype=float_dtype(dtype), minval=low, maxval=high)
  return NormalFormGame(jnp.stack([m, -m]))


def bimatrix_game(key, num_actions: Sequence[int], *, low: float = 0.0,
                  high: float = 1.0, dtype=None) -> NormalFormGame:
  """A general two-player game: independent i.i.d. uniform payoff matrices.

  Args:
    key: a ``jax.random`` key.
    num_actions: ``(A_1, A_2)``.
    low, high: payoff range ``[low, high)``.
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame`` of shape ``(2, A_1, A_2)``.

  Example:
    >>> import jax, jaxnpg
    >>> jaxnpg.bimatrix_game(jax.random.key(0), (3, 2)).rewards.shape
    (2, 3, 2)
  """
  sizes = check_sizes(num_actions, players=2)
  _check_range(low, high)
  return NormalFormGame(jax.random.uniform(key, (2,) + sizes, dtype=float_dtype(dtype),
                                           minval=low, maxval=high))


class AffineMap(NamedTuple):
  """The reward map ``r' = scale * r + shift`` applied by :func:`rescale_rewards`.

  NPG on ``r'`` with ``(tau', eta')`` takes exactly the steps of NPG on ``r`` with
  ``tau = tau' / scale`` and ``eta = eta' * scale`` (same ``eta * tau``), has the
  same QRE, and its gaps are ``scale`` times the original ones.

  Attributes:
    scale: ``> 0`` (array; batch axes if the game was batched).
    shift: same shape as ``scale``.

  Example:
    >>> import jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[2, 0], [0, 4]], [[4, 0], [0, 2]])
    >>> scaled, affine = jaxnpg.rescale_rewards(game)
    >>> float(affine.scale), float(scaled.rewards.max()), float(scaled.rewards.min())
    (0.25, 1.0, 0.0)
  """
  scale: jax.Array
  shift: jax.Array

  def apply(self, rewards):
    """``scale * rewards + shift``."""
    return self.scale * rewards + self.shift

  def tau_to_original(self, tau):
    """The original game's ``tau`` equivalent to ``tau`` on the rescaled game."""
    return tau / self.scale

  def tau_to_rescaled(self, tau):
    """The rescaled game's ``tau`` equivalent to ``tau`` on the original game."""
    return tau * self.scale

  def eta_to_original(self, eta):
    """The original game's step size equivalent to ``eta`` on the rescaled game."""
    return eta * self.scale

  def eta_to_rescaled(self, eta):
    """The rescaled game's step size equivalent to ``eta`` on the original game."""
    return eta / self.scale


def _map_from_range(lo, hi):
  width = hi - lo
  ok = width > 0
  scale = jnp.where(ok, 1 / jnp.where(ok, width, 1), jnp.ones_like(width))
  return AffineMap(scale=scale, shift=-lo * scale)


def rescale_rewards(game):
  """Map a game's rewards affinely onto ``[0, 1]`` and report the map.

  The smallest reward over all agents and joint actions becomes 0 and the largest
  1 (one map for all agents, so the game's strategic structure and QREs keep their
  meaning; ``tau`` rescales by ``scale``, see :class:`AffineMap`). A constant game
  is only shifted (to 0). Jittable; a batched game gets one map per game.

  For a :class:`~jaxnpg.PolymatrixGame` the range is exact
  (``max_a r_i = max_{a_i} sum_j max_{a_j} B_ij``), the matrices are scaled, and the
  shift is added to each agent's first outgoing edge; an agent without outgoing
  edges keeps its constant reward 0 (which changes no step and no gap).

  Args:
    game: any game with ``has_reward_range`` (``NormalFormGame``,
      ``PolymatrixGame``, ``MarkovGame``; :meth:`jaxnpg.Game.affine`).

  Returns:
    ``(rescaled_game, AffineMap)`` with ``r' = map.scale * r + map.shift``.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame(jnp.array([[[-2., 2.]], [[0., 6.]]]))
    >>> scaled, m = jaxnpg.rescale_rewards(game)
    >>> scaled.rewards.ravel().tolist(), float(m.scale), float(m.shift)
    ([0.0, 0.5, 0.25, 1.0], 0.125, 0.25)
    >>> round(float(m.tau_to_original(0.1)), 6)  # tau'=0.1 on [0, 1]: tau=0.8 here
    0.8
  """
  if not getattr(game, "has_reward_range", False):
    raise TypeError(
        f"rescale_rewards supports games that report their reward range "
        f"(has_reward_range); {type(game).__name__} does not.")
  amap = _map_from_range(*game.reward_bounds())
  return game.affine(amap.scale, amap.shift), amap
