"""Predicted local rates and convergence boundaries for batches of games.

:func:`predicted_rates` and :func:`predicted_boundary` answer, for a batch of
games over grids of ``tau`` and ``eta`` and without running NPG, the question of
:func:`jaxnpg.theory.local_rate`: does the QRE on Gambit's principal branch
(:func:`jaxnpg.qre`) attract the iteration, and at what rate? These are the
arrays the sweep plots draw beside the observed rates.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.validation import check_eta, check_positive_int
from jaxnpg.theory.jacobian import eigs_at, rates_from_eigenvalues, stability
from jaxnpg.theory.logit import check_qre_tau, qre


class PredictedRates(NamedTuple):
  """Predicted local rates over games x taus x etas (see :func:`predicted_rates`).

  Shapes use ``G = game.batch_shape`` (``()`` for one game), ``T`` taus, ``E`` etas.

  Attributes:
    taus: ``(T,)``.
    etas: ``(T, E)``, the step size of each column at each ``tau``.
    rho: ``(*G, T, E)`` spectral radius of the NPG Jacobian at the principal-branch
      QRE (``nan`` where the QRE solve failed).
    attracting: ``(*G, T, E)`` bool, ``rho < 1``.
    max_real: ``(*G, T)`` largest ``Re mu_k``; ``>= tau`` means no step converges.
    eta_max: ``(*G, T)`` largest converging step size (0 if none).
    qre_status: ``(*G, T)`` status codes of :func:`jaxnpg.qre`.
    num_turning_points: ``(*G, T)`` folds of the branch before this ``tau``
      (``> 0``: several QREs exist, the prediction is about the principal one).
    qre_logp: tuple of ``(*G, T, A_i)`` principal-branch QREs.
  """
  taus: Any
  etas: Any
  rho: Any
  attracting: Any
  max_real: Any
  eta_max: Any
  qre_status: Any
  num_turning_points: Any
  qre_logp: Any

  @property
  def qre_gap_rate(self):
    """``rho**2``: the predicted per-iteration rate of the QRE-gap (quadratic in
    the distance), comparable with :func:`jaxnpg.linear_rate` of QRE-gap records
    (e.g. ``SweepResult.linear_rate``)."""
    return self.rho ** 2


def _check_grid(taus, etas):
  taus_np = np.asarray(taus, dtype=np.float64)
  if taus_np.ndim != 1 or taus_np.size == 0:
    raise ValueError(f"`taus` must be a non-empty 1-D grid, got shape "
                     f"{taus_np.shape}.")
  check_qre_tau(taus_np)
  if np.any(np.diff(taus_np) <= 0):
    raise ValueError(f"`taus` must be strictly increasing, got {taus_np}.")
  t = taus_np.size
  if callable(etas):
    etas_np = np.asarray(etas(jnp.asarray(taus_np)), dtype=np.float64)
    if etas_np.ndim == 1 and etas_np.size == t:
      etas_np = etas_np[:, None]                         # one rule: one column
  else:
    etas_np = np.asarray(etas, dtype=np.float64)
  if etas_np.ndim == 0:
    etas_np = np.full((t, 1), float(etas_np))
  elif etas_np.ndim == 1:
    etas_np = np.broadcast_to(etas_np[None, :], (t, etas_np.size))
  elif etas_np.ndim == 2 and etas_np.shape[0] == t:
    pass
  else:
    raise ValueError(
        f"`etas` must have shape (E,) (the same step sizes at every tau) or "
        f"(T, E) with T = {t} taus, or be a callable tau -> eta; got shape "
        f"{etas_np.shape}.")
  check_eta(etas_np, "etas")
  return taus_np, np.ascontiguousarray(etas_np)


def _flat_games(game):
  """``(flat_game, G)``: leading batch axes merged into one."""
  g = game.batch_shape
  leaves, treedef = jax.tree_util.tree_flatten(game)
  if not g:
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.expand_dims(x, 0) for x in leaves]), g
  nb = len(g)
  flat = [jnp.reshape(x, (-1,) + x.shape[nb:]) for x in leaves]
  return jax.tree_util.tree_unflatten(treedef, flat), g


@functools.partial(jax.jit, static_argnames=("eig_on_host", "qre_options"))
def _predict(games, taus, etas, *, eig_on_host, qre_options):
  opts = dict(qre_options)

  def one(g):
    eq = qre(g, taus, **opts)
    mu = eigs_at(g, taus, eq.logp, eig_on_host=eig_on_host)
    scale = g.step_scale
    rho = rates_from_eigenvalues(mu[..., None, :], taus[:, None], etas, scale)
    rho = jnp.where(eq.converged[..., None], rho, jnp.nan)
    max_re, eta_max = stability(mu, taus, scale)
    return eq, rho, max_re, eta_max

  eq, rho, max_re, eta_max = jax.vmap(one)(games)
  return eq, rho, max_re, eta_max


def predicted_rates(game, taus, etas, *, eig_on_host: bool | None = None,
                    **qre_options) -> PredictedRates:
  """Local rates at the principal-branch QRE for games x taus x etas.

  For every game and ``tau`` the QRE is traced with :func:`jaxnpg.qre` (one trace
  per game serves all ``taus``) and ``M`` is decomposed once; every step size then
  costs one formula. Everything is batched in one compiled call.

  Args:
    game: one game or a batch (any ``batch_shape``).
    taus: ``(T,)`` strictly increasing, ``> 0``.
    etas: ``(E,)`` step sizes used at every ``tau``, ``(T, E)`` per ``tau``, a
      scalar, or a callable ``taus -> (T,) or (T, E)`` (e.g. a step-size rule;
      ``(T,)`` is one column).
    eig_on_host: see :func:`eigvals`.
    **qre_options: passed to :func:`jaxnpg.qre` (``max_steps``, ...).

  Returns:
    A :class:`PredictedRates` with ``rho`` of shape ``(*G, T, E)``.

  Example:
    >>> import jax, jaxnpg
    >>> keys = jax.random.split(jax.random.key(0), 4)
    >>> games = jax.vmap(lambda k: jaxnpg.random_game(k, (3, 4, 5)))(keys)
    >>> pr = jaxnpg.theory.predicted_rates(games, [0.1, 1.0], [0.02, 0.2])
    >>> pr.rho.shape, bool(pr.attracting[:, 1].all())
    ((4, 2, 2), True)
  """
  taus_np, etas_np = _check_grid(taus, etas)
  games, g = _flat_games(game)
  dtype = game.dtype
  eq, rho, max_re, eta_max = _predict(
      games, jnp.asarray(taus_np, dtype), jnp.asarray(etas_np, dtype),
      eig_on_host=eig_on_host, qre_options=tuple(sorted(qre_options.items())))
  unflat = lambda x: jnp.reshape(x, g + x.shape[1:])
  return PredictedRates(
      taus=jnp.asarray(taus_np, dtype), etas=jnp.asarray(etas_np, dtype),
      rho=unflat(rho), attracting=unflat(rho < 1), max_real=unflat(max_re),
      eta_max=unflat(eta_max), qre_status=unflat(eq.status),
      num_turning_points=unflat(eq.num_turning_points),
      qre_logp=tuple(unflat(lp) for lp in eq.logp))


class Boundary(NamedTuple):
  """Predicted convergence boundary in ``tau`` (see :func:`predicted_boundary`).

  Attributes:
    tau: ``(*G, E)`` the smallest grid ``tau`` from which the principal QRE attracts
      at every larger grid ``tau`` (refined between grid points when asked);
      ``nan`` where it does not attract even at the largest ``tau``.
    first_tau: ``(*G, E)`` the smallest grid ``tau`` at which it attracts at all
      (differs from ``tau`` where attraction is not monotone in ``tau``).
    below_grid: ``(*G, E)`` bool, it attracts already at ``taus[0]``: the boundary
      lies at or below the grid (``tau`` is then only an upper bound).
    rates: the :class:`PredictedRates` the boundary was read from.
  """
  tau: Any
  first_tau: Any
  below_grid: Any
  rates: PredictedRates


def predicted_boundary(game, taus, etas, *, refine: int = 0,
                       eig_on_host: bool | None = None,
                       **qre_options) -> Boundary:
  """For each game and step size, the smallest ``tau`` at which the QRE attracts NPG.

  "Attracts" is ``rho(J) < 1`` at the QRE on Gambit's principal branch. ``tau`` is
  read on the grid (the first grid point from which every larger one attracts) and,
  with ``refine > 0``, narrowed by that many bisection steps on ``rho(J) = 1``
  between it and the grid point below (each step traces the QRE again, batched).

  Args:
    game: one game or a batch.
    taus: ``(T,)`` strictly increasing grid, ``> 0``.
    etas: as in :func:`predicted_rates`; with ``refine > 0`` a ``(T, E)`` array is
      interpolated linearly in ``tau`` (pass a callable rule to avoid that).
    refine: bisection steps (static).
    eig_on_host: see :func:`eigvals`.
    **qre_options: passed to :func:`jaxnpg.qre`.

  Returns:
    A :class:`Boundary` with ``tau`` of shape ``(*G, E)``.

  Example:
    >>> import jax, jaxnpg
    >>> keys = jax.random.split(jax.random.key(0), 4)
    >>> games = jax.vmap(lambda k: jaxnpg.random_game(k, (3, 4, 5)))(keys)
    >>> b = jaxnpg.theory.predicted_boundary(games, [0.1, 1.0], [0.02, 0.2])
    >>> b.tau.shape, b.rates.rho.shape
    ((4, 2), (4, 2, 2))
  """
  refine = check_positive_int(refine, "refine", allow_zero=True)
  rates = predicted_rates(game, taus, etas, eig_on_host=eig_on_host,
                          **qre_options)
  att = np.asarray(rates.attracting)                       # (*G, T, E)
  taus_np = np.asarray(rates.taus, dtype=np.float64)
  t = taus_np.size
  # Index of the first grid tau from which all larger ones attract.
  tail_ok = np.flip(np.logical_and.accumulate(np.flip(att, -2), axis=-2), -2)
  any_tail = tail_ok.any(axis=-2)
  first_tail = np.where(any_tail, np.argmax(tail_ok, axis=-2), t)
  first_any = np.where(att.any(axis=-2), np.argmax(att, axis=-2), t)
  pad = np.append(taus_np, np.nan)
  tau_b = pad[first_tail]
  first_tau = pad[first_any]
  below = first_tail == 0
  if refine and np.any((first_tail > 0) & (first_tail < t)):
    tau_b = _refine(game, taus_np, etas, rates, first_tail, tau_b, refine,
                    eig_on_host, qre_options)
  dtype = game.dtype
  return Boundary(tau=jnp.asarray(tau_b, dtype),
                  first_tau=jnp.asarray(first_tau, dtype),
                  below_grid=jnp.asarray(below), rates=rates)


def _refine(game, taus_np, etas, rates, first_tail, tau_b, steps, eig_on_host,
            qre_options):
  """Bisection on ``rho = 1`` inside ``(taus[k-1], taus[k])``, all problems batched."""
  games, g = _flat_games(game)
  nb = int(np.prod(g, dtype=np.int64)) if g else 1
  e = first_tail.shape[-1]
  first = first_tail.reshape(nb, e)
  sel = (first > 0) & (first < taus_np.size)
  gi, ei = np.nonzero(sel)
  lo = taus_np[first[gi, ei] - 1]
  hi = taus_np[first[gi, ei]]
  etas_grid = np.asarray(rates.etas, dtype=np.float64)

  def eta_at(tau_vals):
    if callable(etas):
      vals = np.asarray(etas(jnp.asarray(tau_vals)), dtype=np.float64)
      return vals if vals.ndim == 1 else vals[np.arange(len(ei)), ei]
    return np.array([np.interp(tv, taus_np, etas_grid[:, k])
                     for tv, k in zip(tau_vals, ei)])

  sub = jax.tree_util.tree_map(lambda x: x[jnp.asarray(gi)], games)
  dtype = game.dtype
  opts = tuple(sorted(qre_options.items()))
  for _ in range(steps):
    mid = 0.5 * (lo + hi)
    rho = np.asarray(_rho_at(sub, jnp.asarray(mid, dtype),
                             jnp.asarray(eta_at(mid), dtype),
                             eig_on_host=eig_on_host, qre_options=opts))
    ok = rho < 1
    hi = np.where(ok, mid, hi)
    lo = np.where(ok, lo, mid)
  out = tau_b.reshape(nb, e).copy()
  out[gi, ei] = hi
  return out.reshape(tau_b.shape)


@functools.partial(jax.jit, static_argnames=("eig_on_host", "qre_options"))
def _rho_at(games, tau, eta, *, eig_on_host, qre_options):
  opts = dict(qre_options)

  def one(g, t, e):
    eq = qre(g, t, **opts)
    mu = eigs_at(g, t, eq.logp, eig_on_host=eig_on_host)
    rho = rates_from_eigenvalues(mu, t, e, g.step_scale)
    return jnp.where(eq.converged, rho, jnp.nan)

  return jax.vmap(one)(games, tau, eta)


def predict_for_sweep(result, *, max_games: int = 128,
                      **qre_options) -> PredictedRates:
  """Predicted local rates for the games of a family sweep (for its plots).

  Rebuilds the first ``max_games`` games of ``result`` (a :class:`jaxnpg.SweepResult`
  from a family sweep) exactly as the sweep made them, and calls
  :func:`predicted_rates` with the sweep's ``tau`` axis and step sizes.

  Returns:
    A :class:`PredictedRates` with ``rho`` of shape ``(min(G, max_games), T, E)``.

  Raises:
    ValueError: the sweep was not made from a family (see
      :meth:`jaxnpg.SweepResult.games`), or a ``tau <= 0``.
  """
  count = min(int(result.shape[0]), int(max_games))
  games = result.games(count)   # ValueError unless a family sweep
  return predicted_rates(games, np.asarray(result.tau),
                         np.asarray(result.step_size), **qre_options)

