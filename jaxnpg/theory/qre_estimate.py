"""Maximum-likelihood logit QRE from observed play (public as ``jaxnpg.logit_estimate``).

Given counts ``n_i(a)`` of each agent's actions, the log-likelihood of precision
``lambda`` is ``L(lambda) = sum_i sum_a n_i(a) log pi_i(a; lambda)`` at the QRE on the
principal branch (:func:`jaxnpg.qre`). As Gambit's ``pygambit.qre.logit_estimate``
(default ``local_max=False``), :func:`logit_estimate` returns its global maximiser
along the branch:

1. one trace of the branch gives the QRE on a geometric grid of lambdas (``lambda
   = 0``, uniform play, is a candidate too); ``L`` is a dot product per grid point;
2. around the best grid point, the root of the score
   ``dL/dlambda = sum_i n_i . dlog pi_i/dlambda`` (implicit differentiation of
   ``H(y, lambda) = 0``: ``J_y dy/dlambda = C(rbar)``) is bracketed and found by
   bisection, with the QRE at each trial lambda by Newton from the last one.

The trace depends on the game only, so under ``jax.vmap`` over ``counts`` (many data
sets, e.g. a bootstrap) it runs once and only steps 1's dot products and 2 run per
data set. Where the branch folds, the grid holds each lambda's first crossing.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import lax

from jaxnpg.core.coords import Layout
from jaxnpg.core.validation import check_positive_int, is_concrete
from jaxnpg.theory.logit import qre
from jaxnpg.theory.qre_trace import residual_map

_BISECT, _NEWTON = 48, 8


class LogitEstimate(NamedTuple):
  """Output of :func:`logit_estimate` (batch axes lead when vmapped).

  Attributes:
    lam: ``()`` the maximum-likelihood precision ``lambda`` (``tau = 1/lambda``).
    log_like: ``()`` the log-likelihood ``sum_i sum_a n_i(a) log pi_i(a)`` there.
    logp: the QRE at ``lam``, ``logp[i].shape == policy_shapes[i]``.
    converged: ``()`` bool: the maximiser is interior to the grid
      (``lam < lam_max``), the branch's QREs were all found, and the score's
      root was bracketed (or ``lam = 0``).

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[9, 0], [0, 1]], [[0, 1], [1, 0]])
    >>> est = jaxnpg.logit_estimate(game, (jnp.array([65., 35.]),
    ...                                    jnp.array([40., 60.])))
    >>> type(est).__name__, est._fields
    ('LogitEstimate', ('lam', 'log_like', 'logp', 'converged'))
    >>> round(float(est.lam), 3), bool(est.converged)
    (0.177, True)
  """
  lam: jax.Array
  log_like: jax.Array
  logp: tuple[Any, ...]
  converged: jax.Array


def logit_estimate(game, counts, *, lam_max: float = 1e3, num_grid: int = 96,
                   max_steps: int = 4000) -> LogitEstimate:
  """Maximum-likelihood logit QRE (lambda and the QRE at it) from action counts.

  Jittable, and vmappable over ``counts`` (thousands of data sets in one call: the
  branch is traced once). Agrees with ``pygambit.qre.logit_estimate`` (default
  options) to about 1e-6 in lambda.

  Args:
    game: one game that :func:`jaxnpg.qre` solves.
    counts: per agent, observed counts (or frequencies) of its actions, shapes
      ``game.policy_shapes``; nonnegative.
    lam_max: the largest lambda considered (the grid spans
      ``lam_max * 1e-6 .. lam_max`` geometrically, plus ``0``).
    num_grid: grid points.
    max_steps: continuation step attempts for the trace.

  Returns:
    A :class:`LogitEstimate`.

  Raises:
    ValueError: counts of the wrong shapes or negative, bad options.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame(jnp.array(      # asymmetric matching pennies
    ...     [[[9.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]))
    >>> fit = jaxnpg.logit_estimate(game, (jnp.array([65.0, 35.0]),
    ...                                    jnp.array([40.0, 60.0])))
    >>> round(float(fit.lam), 3), round(float(fit.log_like), 2)
    (0.177, -133.57)

    A bootstrap in one call: ``jax.vmap(lambda c: jaxnpg.logit_estimate(game, c))``
    over counts with a leading axis.
  """
  counts = _check_counts(game, counts)
  num_grid = check_positive_int(num_grid, "num_grid")
  max_steps = check_positive_int(max_steps, "max_steps")
  if not (np.isfinite(lam_max) and lam_max > 0):
    raise ValueError(f"`lam_max` must be a finite number > 0, got {lam_max}.")
  dtype = game.dtype
  lams = jnp.asarray(np.geomspace(lam_max * 1e-6, lam_max, num_grid), dtype)
  return _estimate(game, counts, lams, max_steps)


def _check_counts(game, counts):
  shapes = tuple(tuple(s) for s in game.policy_shapes)
  counts = tuple(counts)
  if len(counts) != len(shapes):
    raise ValueError(f"`counts` needs one array per agent ({len(shapes)}), got "
                     f"{len(counts)}.")
  out = []
  for i, (c, s) in enumerate(zip(counts, shapes)):
    if tuple(jnp.shape(c)) != s:
      raise ValueError(f"`counts[{i}]` must have shape {s} (agent {i}'s "
                       f"actions), got {tuple(jnp.shape(c))}.")
    if is_concrete(c):
      arr = np.asarray(c, dtype=np.float64)
      if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"`counts[{i}]` must be finite and >= 0, got {arr}.")
    out.append(jnp.asarray(c, game.dtype))
  return tuple(out)


@functools.partial(jax.jit, static_argnames=("max_steps",))
def _estimate(game, counts, lams, max_steps):
  layout = Layout(game.policy_shapes)
  n = layout.size
  flat = layout.flatten(counts)
  eq = qre(game, 1.0 / lams, max_steps=max_steps)
  logp_grid = jnp.concatenate([jnp.reshape(lp, (lams.shape[0], -1))
                               for lp in eq.logp], axis=1)          # (G, n)
  log_like = lambda lp: jnp.sum(flat * lp)
  ll_grid = logp_grid @ flat
  ll0 = log_like(layout.flatten(layout.normalize(jnp.zeros((n,), game.dtype))))
  k = jnp.argmax(ll_grid)
  at_zero = ll0 >= ll_grid[k]
  h_fn = residual_map(game, layout)

  def solve_at(lam, y):
    fix = lambda v: h_fn(jnp.concatenate([v, lam[None]]))
    jac = jax.jacfwd(fix)
    y = lax.fori_loop(0, _NEWTON, lambda _, v: v - jsl.lu_solve(
        jsl.lu_factor(jac(v)), fix(v)), y)
    jy = jac(y)
    q_part = jax.jacfwd(lambda m: h_fn(jnp.concatenate([y, m[None]])))(lam)
    dy = jsl.lu_solve(jsl.lu_factor(jy), -q_part)
    lp = layout.flatten(layout.normalize(y))
    parts = layout.unflatten(dy)
    dlp = layout.flatten([d - jnp.sum(jnp.exp(q) * d, axis=-1, keepdims=True)
                          for d, q in zip(parts, layout.unflatten(lp))])
    return y, jnp.sum(flat * dlp)

  lo = jnp.where(k > 0, lams[jnp.maximum(k - 1, 0)], 0.0)
  hi = lams[jnp.minimum(k + 1, lams.shape[0] - 1)]
  y0 = _centred(layout, logp_grid[k])

  def body(_, c):
    lo, hi, y = c
    mid = 0.5 * (lo + hi)
    y, score = solve_at(mid, y)
    return jnp.where(score > 0, mid, lo), jnp.where(score > 0, hi, mid), y

  lo, hi, y = lax.fori_loop(0, _BISECT, body, (lo, hi, y0))
  lam = 0.5 * (lo + hi)
  y, _ = solve_at(lam, y)
  lam = jnp.where(at_zero, 0.0, lam)
  y = jnp.where(at_zero, 0.0, y)
  logp = layout.normalize(y)
  ok = (jnp.all(eq.converged) & (at_zero | (k < lams.shape[0] - 1))
        & jnp.all(jnp.isfinite(y)))
  return LogitEstimate(lam=lam, log_like=log_like(layout.flatten(logp)),
                       logp=logp, converged=ok)


def _centred(layout, logp_flat):
  """Logits ``y`` (centred) of a flat log-policy."""
  return layout.centre(logp_flat)
