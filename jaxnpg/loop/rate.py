"""Empirical linear rate of a gap trajectory."""

from __future__ import annotations

import jax.numpy as jnp


def default_floor(dtype) -> float:
  """Gap values at or below this are treated as the floating-point floor."""
  return 100 * float(jnp.finfo(dtype).eps)


def linear_rate(gaps, iterations=None, *, tail: float = 0.5, floor=None):
  """Per-iteration linear rate ``rho`` fitted to ``gap_k ~ C rho^k`` over the tail.

  Points at or below ``floor`` (the floating-point floor) or non-finite are ignored.
  Of the remaining points up to the last one above the floor, the last ``tail``
  fraction (by iteration) is fitted by least squares of ``log gap`` on ``k``, and
  ``rho = exp(slope)``. ``rho < 1`` means linear convergence; ``rho ~ 1`` a stall or
  cycle. Pure and jittable; vmap it over trajectories.

  Args:
    gaps: ``(T,)`` gap trajectory (QRE-gap, residual, ...).
    iterations: ``(T,)`` iteration numbers of the records (default ``0..T-1``); pass
      :attr:`RunResult.iterations` when ``record_every > 1``.
    tail: fraction of the usable trajectory to fit, in ``(0, 1]``.
    floor: values ``<= floor`` are ignored (default ``100 * eps`` of the dtype
      times the trajectory's largest finite value, at least 1: the floor of a
      gap scales with the gap's own size, e.g. with ``tau``).

  Returns:
    Scalar rate per iteration; NaN when fewer than 3 usable points remain.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> gaps = 0.5 ** jnp.arange(40.0)
    >>> round(float(jaxnpg.linear_rate(gaps)), 6)
    0.5
  """
  if not 0 < tail <= 1:
    raise ValueError(f"`tail` must be in (0, 1], got {tail}.")
  gaps = jnp.asarray(gaps)
  if not jnp.issubdtype(gaps.dtype, jnp.floating):
    gaps = gaps.astype(jnp.result_type(float))
  if gaps.ndim != 1:
    raise ValueError(
        f"`gaps` must be one trajectory of shape (T,), got {gaps.shape}; vmap "
        "over batches.")
  if gaps.shape[0] == 0:
    return jnp.asarray(jnp.nan, gaps.dtype)
  k = (jnp.arange(gaps.shape[0]) if iterations is None
       else jnp.asarray(iterations))
  return fit_rate(gaps, k, tail=tail, floor=floor)


def fit_rate(gaps, iterations, *, tail: float, floor=None):
  """:func:`linear_rate` of trajectories laid out records first.

  Args:
    gaps: ``(T, *batch)``: ``T >= 1`` records of each trajectory of the batch.
    iterations: ``(T,)`` iteration of each record.
    tail, floor: as in :func:`linear_rate` (``floor`` broadcasts against
      ``batch``).

  Returns:
    ``batch``-shaped rates. Every reduction runs over axis 0, so a batch laid
    out last is reduced elementwise across it (no transposes).
  """
  dtype = gaps.dtype
  k = jnp.asarray(iterations).astype(dtype).reshape(
      (-1,) + (1,) * (gaps.ndim - 1))
  if floor is None:
    scale = jnp.max(jnp.where(jnp.isfinite(gaps), jnp.abs(gaps), 0.0), axis=0)
    floor = default_floor(dtype) * jnp.maximum(scale, 1.0)
  usable = jnp.isfinite(gaps) & (gaps > floor)
  last = jnp.max(jnp.where(usable, k, k[0]), axis=0)
  start = last - tail * (last - k[0])
  mask = usable & (k >= start)
  w = mask.astype(dtype)
  count = jnp.sum(w, axis=0)
  y = jnp.log(jnp.where(mask, gaps, 1.0))
  kbar = jnp.sum(w * k, axis=0) / jnp.maximum(count, 1)
  ybar = jnp.sum(w * y, axis=0) / jnp.maximum(count, 1)
  sxx = jnp.sum(w * (k - kbar) ** 2, axis=0)
  sxy = jnp.sum(w * (k - kbar) * (y - ybar), axis=0)
  slope = sxy / jnp.where(sxx > 0, sxx, 1.0)
  return jnp.where((count >= 3) & (sxx > 0), jnp.exp(slope), jnp.nan)
