"""Batches of games: many games of one type and size as one game with a leading axis.

Games are pytrees, so a batch is the same game type whose arrays carry a leading
axis; ``jax.vmap`` maps over it and ``jaxnpg.sweep(game=...)`` runs it.
:func:`stack_games` builds one from a list of games (``[game]`` for a batch of one).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxnpg.core.protocol import Game


def stack_games(games: Sequence[Game]) -> Game:
  """One batch of games from a list of games of the same type and sizes.

  Args:
    games: ``G >= 1`` games (no batch axes), all of one type with the same
      agents, actions (states, graph, convention, ...) and dtype.

  Returns:
    A game of that type with ``batch_shape == (G,)``.

  Raises:
    ValueError: an empty list, a batched game, or games that differ in type,
      sizes or dtype (the first difference is named).

  Example:
    >>> import jax, jaxnpg
    >>> keys = jax.random.split(jax.random.key(0), 3)
    >>> batch = jaxnpg.stack_games([jaxnpg.random_game(k, (2, 3)) for k in keys])
    >>> batch.batch_shape, batch.rewards.shape
    ((3,), (3, 2, 2, 3))
    >>> one = jaxnpg.stack_games([jaxnpg.random_game(keys[0], (2, 3))])
    >>> one.batch_shape                   # a batch of one, e.g. for jaxnpg.sweep
    (1,)
  """
  games = list(games)
  if not games:
    raise ValueError("`games` is empty; give at least one game.")
  first = games[0]
  for i, g in enumerate(games):
    if not isinstance(g, Game):
      raise ValueError(f"Game {i} is a {type(g).__name__}, not a jaxnpg game.")
    if g.batch_shape:
      raise ValueError(f"Game {i} is already a batch (batch shape "
                       f"{g.batch_shape}); stack single games.")
    if type(g) is not type(first):
      raise ValueError(f"Game {i} is a {type(g).__name__} but game 0 is a "
                       f"{type(first).__name__}; a batch holds one game type.")
    if jax.tree_util.tree_structure(g) != jax.tree_util.tree_structure(first):  # type: ignore[operator]
      raise ValueError(f"Game {i} differs from game 0 in its structure "
                       f"(agents, graph, convention, ...): {g!r} vs {first!r}.")
    shapes = [(jnp.shape(x), jnp.result_type(x))
              for x in jax.tree_util.tree_leaves(g)]
    want = [(jnp.shape(x), jnp.result_type(x))
            for x in jax.tree_util.tree_leaves(first)]
    if shapes != want:
      raise ValueError(f"Game {i} has arrays {shapes} but game 0 has {want}; "
                       "a batch needs equal sizes and dtypes.")
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *games)
