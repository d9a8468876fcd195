"""Which equilibrium each sweep cell reached: pure Nash equilibria and the QRE branch.

:func:`reached_equilibria` reads the final log-policies a sweep kept
(:attr:`jaxnpg.SweepResult.final_logp`) and names, per cell, the pure Nash
equilibrium of its game the policy lies next to (small ``tau`` drives NPG there)
and whether it is the logit QRE on Gambit's principal branch at that cell's
``tau`` (:func:`jaxnpg.qre`). Both are cheap for small dense games, which is what
it supports.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.sweeps.results import SweepResult
from jaxnpg.theory.logit import qre as logit_qre


class ReachedEquilibria(NamedTuple):
  """What each cell of a sweep reached (cell axes ``(G, T, E[, S])``).

  Attributes:
    pure_ne: per game, the pure Nash equilibria as an ``(K_g, n)`` int array of
      action profiles (ties within ``1e-12`` of the best reply count).
    nearest: int, the index into ``pure_ne[g]`` of the pure equilibrium the
      cell's final policy lies within ``tol`` of (``-1``: none).
    distance: ``max_i (1 - pi_i(a*_i))`` to the nearest pure equilibrium ``a*``
      (the largest probability any agent puts off it; NaN without any).
    principal: bool, the final policy lies within ``tol`` (largest probability
      difference) of the principal-branch QRE at the cell's ``tau``; False at
      ``tau = 0`` and where the QRE solve did not converge.
    tol: the tolerance used.

  Example:
    >>> import jaxnpg
    >>> jaxnpg.ReachedEquilibria._fields   # made by jaxnpg.reached_equilibria
    ('pure_ne', 'nearest', 'distance', 'principal', 'tol')
  """
  pure_ne: list
  nearest: np.ndarray
  distance: np.ndarray
  principal: np.ndarray
  tol: float


def pure_nash_equilibria(rewards) -> np.ndarray:
  """Pure Nash equilibria of one dense game ``(n, A_1, ..., A_n)``: ``(K, n)`` int.

  Example:
    >>> import numpy as np
    >>> from jaxnpg.sweeps.equilibria import pure_nash_equilibria
    >>> bos = np.array([[[3, 0], [0, 2]], [[2, 0], [0, 3]]])
    >>> pure_nash_equilibria(bos).tolist()
    [[0, 0], [1, 1]]
  """
  r = np.asarray(rewards, dtype=np.float64)
  n = r.shape[0]
  ok = np.ones(r.shape[1:], bool)
  for i in range(n):
    best = np.max(r[i], axis=i, keepdims=True)
    ok &= r[i] >= best - 1e-12 * np.maximum(1.0, np.abs(best))
  return np.argwhere(ok).astype(np.int64)


def reached_equilibria(result: SweepResult, game=None, *, tol: float = 0.05,
                       principal: bool = True) -> ReachedEquilibria:
  """Which equilibrium each cell of ``result`` reached.

  Args:
    result: a sweep that kept its final policies (``keep_logp``, the default).
    game: the sweep's games (``batch_shape == (G,)``) when they cannot be
      rebuilt (a sweep of your own games); a family sweep's are rebuilt.
    tol: largest probability an agent may put off a pure equilibrium (or
      differ from the QRE) for the cell to count as having reached it.
    principal: also compare with the principal-branch QRE at each ``tau``
      (one :func:`jaxnpg.qre` trace per game).

  Returns:
    A :class:`ReachedEquilibria`.

  Raises:
    ValueError: no final policies in ``result``, games that are not dense
      (``has_dense_form``) or disagree with the sweep, or a bad ``tol``.

  Example:
    >>> import jaxnpg
    >>> bos = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                           [[2, 0], [0, 3]])
    >>> res = jaxnpg.sweep(game=jaxnpg.stack_games([bos]), taus=[0.01, 4.0],
    ...                    etas=[0.2], num_iters=2000, init="uniform")
    >>> eq = jaxnpg.reached_equilibria(res, jaxnpg.stack_games([bos]))
    >>> eq.pure_ne[0].tolist()           # BoS has two pure equilibria ...
    [[0, 0], [1, 1]]
    >>> eq.nearest[0, :, 0].tolist(), eq.principal[0, :, 0].tolist()
    ([-1, -1], [False, True])

    From the uniform start both cells stay on the symmetric solution curve (the
    mixed QRE) and reach neither pure equilibrium. At ``tau = 4`` (lambda 0.25)
    that is the principal branch; at ``tau = 0.01`` it is not: the principal
    branch (Gambit's, and :func:`jaxnpg.qre`'s) leaves the symmetric curve at the
    pitchfork near lambda = 0.81 for the arm of the ``(0, 0)`` equilibrium
    (status ``jaxnpg.QREStatus.BIFURCATION``).
  """
  if result.final_logp is None:
    raise ValueError("This sweep kept no final policies (run it with "
                     "keep_logp=True, the default since v0.2).")
  if not (isinstance(tol, (int, float)) and 0 < tol < 1):
    raise ValueError(f"`tol` must be in (0, 1), got {tol!r}.")
  games = result.games() if game is None else game
  if games.batch_shape != (result.shape[0],):
    raise ValueError(f"`game` holds a batch of {games.batch_shape}, the sweep "
                     f"{result.shape[0]} games.")
  if not games.has_dense_form:
    raise ValueError(f"{type(games).__name__} has no dense form to find its "
                     "pure equilibria in.")
  rewards = np.asarray(games.to_dense().rewards, dtype=np.float64)
  probs = [np.exp(np.asarray(lp, dtype=np.float64)) for lp in result.final_logp]
  pure = [pure_nash_equilibria(r) for r in rewards]
  nearest, distance = _nearest(probs, pure)
  near_qre = (_principal(games, result, probs, tol) if principal
              else np.zeros(result.shape, bool))
  return ReachedEquilibria(pure_ne=pure,
                           nearest=np.where(distance <= tol, nearest, -1),
                           distance=distance, principal=near_qre, tol=float(tol))


def _nearest(probs, pure):
  """Per cell, the nearest pure profile of its game and the distance to it."""
  shape = probs[0].shape[:-1]                   # (G, T, E[, S])
  nearest = np.full(shape, -1, np.int64)
  distance = np.full(shape, np.nan)
  for g, profiles in enumerate(pure):
    if not len(profiles):
      continue
    # off[k] = max_i (1 - pi_i(a*_i)) for each profile k: (K, T, E[, S])
    off = np.stack([np.max(np.stack([1 - p[g][..., a[i]]
                                     for i, p in enumerate(probs)]), axis=0)
                    for a in profiles])
    nearest[g] = np.argmin(off, axis=0)
    distance[g] = np.min(off, axis=0)
  return nearest, distance


def _principal(games, result, probs, tol):
  """Per cell, whether the policy is within ``tol`` of the principal QRE."""
  taus = np.asarray(result.tau, dtype=np.float64)
  positive = taus > 0
  out = np.zeros(result.shape, bool)
  if not positive.any():
    return out
  t = jnp.asarray(taus[positive], games.dtype)
  eq = jax.jit(jax.vmap(lambda g: logit_qre(g, t)))(games)
  qre_probs = [np.exp(np.asarray(lp, dtype=np.float64)) for lp in eq.logp]
  ok = np.asarray(eq.converged)                                  # (G, T+)
  extra = (1,) * (len(result.shape) - 2)                         # eta, seed
  diff = np.max(np.stack([
      np.max(np.abs(p[:, positive] - q.reshape(q.shape[:2] + extra
                                               + q.shape[2:])), axis=-1)
      for p, q in zip(probs, qre_probs)]), axis=0)
  out[:, positive] = (diff <= tol) & ok.reshape(ok.shape + extra)
  return out
