"""How the games, initial policies and keys of a sweep are derived.

Games come from a registered family, generated inside the compiled call from
``(seed, game index)`` (so no host loop over games), or from a user's batched game.
Every random quantity of game ``index`` of a sweep with ``seed`` hangs off the key
``fold_in(key(seed), index)``:

* ``..., 0)``: the game (:func:`family_game`);
* ``..., 1)``: its random initial policy (:func:`family_game`);
* ``..., 2)``: the keys of a stochastic algorithm, one per seed (:func:`sweep_key`);
* ``..., 3)``: the extra starts of the atlas's attractor runs (:func:`init_key`).

A user's batch of games is identified in the sweep's manifest by its SHA-256
instead (:func:`jaxnpg.sweeps.config.game_digest`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnpg.core.policy import random_policy, uniform_policy
from jaxnpg.games.families import make_game

# Initial policies a sweep knows by name.
INITS = ("random", "uniform")


def family_game(family: str, seed: int, index, num_actions, options=None,
                init: str = "random", *, dtype=None):
  """Game ``index`` of a family sweep and its initial policy, as the sweep makes them.

  The game's key is ``fold_in(fold_in(key(seed), index), 0)`` and the random
  initial policy's ``fold_in(fold_in(key(seed), index), 1)``. Both are drawn in
  float32 and then cast to ``dtype`` (default: JAX's default float), so a
  float32 and a float64 sweep of a family run exactly the same games from the
  same starts. Vmappable over ``index``; call it with a Python int to rebuild
  one cell's game.

  Returns:
    ``(game, logp)``.

  Example:
    >>> import jaxnpg
    >>> game, logp = jaxnpg.family_game("random", 0, 3, (3, 4, 5))
    >>> game.num_actions, [lp.shape for lp in logp]
    ((3, 4, 5), [(3,), (4,), (5,)])
  """
  key = jax.random.fold_in(jax.random.key(seed), index)
  game = make_game(family, jax.random.fold_in(key, 0), tuple(num_actions),
                   dtype=jnp.float32, **(options or {}))
  game = game.astype(jnp.result_type(float) if dtype is None else dtype)
  if init == "random":
    logp = random_policy(jax.random.fold_in(key, 1), game,
                         draw_dtype=jnp.float32)
  elif init == "uniform":
    logp = uniform_policy(game)
  else:
    raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")
  return game, logp


def sweep_key(seed: int, index, seed_index=0):
  """The ``jax.random`` key a stochastic algorithm gets in a sweep cell.

  Game ``index`` (the family's game index, or the position in a user's batch)
  and seed ``seed_index`` of a sweep with ``seed`` use
  ``fold_in(fold_in(fold_in(key(seed), index), 2), seed_index)``: next to the
  game's (``... , 0)``) and initial policy's (``..., 1)``) keys of
  :func:`family_game`, and the same for every ``(tau, eta)`` of the game (common
  random numbers across the phase diagram). A sweep without ``num_seeds`` uses
  ``seed_index = 0``. Vmappable over ``index`` and ``seed_index``.

  Example:
    >>> import jax, jaxnpg
    >>> game, logp = jaxnpg.family_game("random", 0, 3, (2, 3))
    >>> res = jaxnpg.run(game, 1.0, 0.1, 20, init=logp, algorithm="sampled_npg",
    ...                  key=jaxnpg.sweep_key(0, 3, seed_index=1))
    >>> res.qre_gap.shape     # cell (3, tau, eta, seed 1) of such a sweep
    (21,)
  """
  key = jax.random.fold_in(jax.random.key(seed), index)
  return jax.random.fold_in(jax.random.fold_in(key, 2), seed_index)


def init_key(seed: int, index, init_index):
  """The ``jax.random`` key of start ``init_index >= 1`` of game ``index`` (atlas).

  With ``num_inits=K``, game ``index`` of a sweep with ``seed`` runs its attractor
  classification from ``K`` initial policies: start 0 is the sweep's own initial
  policy (:func:`family_game`'s, or the given one), and start ``k >= 1`` is a
  Dirichlet(1) policy (drawn in float32, as :func:`family_game` draws) from the
  key ``fold_in(fold_in(fold_in(key(seed), index), 3), k)``, next to the game's
  (``..., 0)``), initial policy's (``..., 1)``) and :func:`sweep_key`'s
  (``..., 2)``) keys. The same starts serve every ``(tau, eta)`` of the game.
  Vmappable over ``index`` and ``init_index``.

  Example:
    >>> import jax, jaxnpg
    >>> game, _ = jaxnpg.family_game("covariant", 0, 5, (4, 4))
    >>> start_2 = jaxnpg.random_policy(jaxnpg.init_key(0, 5, 2), game,
    ...                                draw_dtype=jax.numpy.float32)
    >>> [lp.shape for lp in start_2]      # start 2 of game 5 of such a sweep
    [(4,), (4,)]
  """
  key = jax.random.fold_in(jax.random.key(seed), index)
  return jax.random.fold_in(jax.random.fold_in(key, 3), init_index)
