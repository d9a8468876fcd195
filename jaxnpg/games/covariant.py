"""Covariant games (GAMUT): Gaussian payoffs with a set correlation between agents.

For every joint action ``a`` the payoff vector ``(r_1(a), ..., r_n(a))`` is
Gaussian with mean 0, unit variance and pairwise correlation ``rho``, independently
across joint actions. ``rho`` interpolates between zero-sum (``rho = -1/(n-1)``)
and identical interest (``rho = 1``); Sanders, Galla & Farmer (Sci. Rep. 2018)
write ``Gamma = (n - 1) rho`` (so ``Gamma`` runs over ``[-1, n - 1]``, and
``Gamma = -1`` is zero-sum for every ``n``).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.validation import is_concrete
from jaxnpg.games.dense import NormalFormGame
from jaxnpg.games.generators import check_sizes, float_dtype


def _check_correlation(correlation, n: int) -> None:
  if n < 2:
    raise ValueError(
        f"A covariant game needs at least 2 agents (a correlation between "
        f"agents), got num_actions for {n}.")
  if not is_concrete(correlation):
    return
  if np.ndim(correlation) != 0:
    raise ValueError(
        f"`correlation` must be a scalar, got shape {np.shape(correlation)}; "
        "vmap over it to batch.")
  rho = float(correlation)
  low = -1.0 / (n - 1)
  if np.isnan(rho) or not low <= rho <= 1.0:
    raise ValueError(
        f"`correlation` must lie in [-1/(n-1), 1] = [{low:.6g}, 1] for {n} "
        f"agents, got {rho}.")


def covariant_game(key, num_actions: Sequence[int], correlation=0.0, *,
                   dtype=None) -> NormalFormGame:
  """A covariant game: Gaussian payoffs, pairwise correlation ``rho`` between agents.

  With ``Gamma = (n - 1) rho`` (Sanders et al.'s parameter) and i.i.d. standard
  normals ``c(a)`` (common), ``z_i(a)`` and ``w_i(a)`` per agent:

  * ``rho >= 0``: ``r_i = sqrt(rho) c + sqrt(1 - rho) z_i``;
  * ``rho < 0``: ``r_i = sqrt(-Gamma) u_i + sqrt(1 + Gamma) z_i``, where
    ``u_i = sqrt(n / (n-1)) (w_i - mean_j w_j)`` has unit variance, correlation
    ``-1/(n-1)`` and ``sum_i u_i = 0``.

  Both give the covariance ``(1 - rho) I + rho 11^T`` exactly, and the ends exactly:
  at ``rho = 1`` every agent gets ``c`` (identical interest) and at
  ``rho = -1/(n-1)`` the payoffs are ``u`` and sum to zero at every joint action (to
  rounding). Rewards are unbounded (not in [0, 1]); theory tools use the actual
  reward range. Pure in ``key`` and jittable with a traced ``correlation`` (its
  value is checked only when concrete), so ``jax.vmap`` over keys builds a batch.

  Args:
    key: a ``jax.random`` key.
    num_actions: ``(A_1, ..., A_n)``, ``n >= 2``, each ``A_i >= 1``.
    correlation: ``rho``, scalar in ``[-1/(n-1), 1]``.
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame`` with ``rewards.shape == (n, A_1, ..., A_n)``.

  Raises:
    ValueError: fewer than 2 agents, bad sizes, ``rho`` NaN or out of range.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.covariant_game(jax.random.key(0), (3, 4, 2), -0.5)
    >>> game.rewards.shape
    (3, 3, 4, 2)
    >>> bool(abs(game.rewards.sum(axis=0)).max() < 1e-5)   # rho = -1/(n-1)
    True
  """
  sizes = check_sizes(num_actions)
  n = len(sizes)
  _check_correlation(correlation, n)
  dt = float_dtype(dtype)
  rho = jnp.asarray(correlation, dt)
  gamma = (n - 1) * rho
  # Snap 1 + Gamma to 0 within rounding of rho = -1/(n-1), so that end is exact.
  eps = jnp.finfo(dt).eps
  indep_neg = jnp.where(1 + gamma <= 8 * eps, 0.0, 1 + gamma)
  coef_common = jnp.sqrt(jnp.maximum(rho, 0.0))
  coef_zero_sum = jnp.sqrt(jnp.maximum(-gamma, 0.0))
  coef_indep = jnp.sqrt(jnp.maximum(jnp.where(rho >= 0, 1 - rho, indep_neg), 0.0))

  k_common, k_zero_sum, k_indep = jax.random.split(key, 3)
  common = jax.random.normal(k_common, sizes, dt)
  w = jax.random.normal(k_zero_sum, (n,) + sizes, dt)
  u = jnp.sqrt(n / (n - 1)) * (w - jnp.mean(w, axis=0))
  z = jax.random.normal(k_indep, (n,) + sizes, dt)
  rewards = coef_common * common + coef_zero_sum * u + coef_indep * z
  return NormalFormGame(rewards)
