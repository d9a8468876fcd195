"""The verdict of one recorded run: status, iterations to tolerance, rate, monotonicity.

``jaxnpg.run`` and every ``jaxnpg.sweep`` cell call :func:`verdict` on their
recorded gaps, so a run and a sweep cell with the same records get the same status.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxnpg.loop.rate import default_floor, fit_rate
from jaxnpg.loop.status import Status


class Verdict(NamedTuple):
  """What a trajectory of recorded gaps says (scalars, one run).

  Attributes:
    status: int8, a :class:`jaxnpg.Status` code.
    qre_gap: the final QRE-gap (NaN when the run blew up).
    ne_gap: the final NE-gap (NaN when the run blew up).
    iterations_to_tol: int32, first recorded iteration with QRE-gap ``<= tol``;
      ``-1`` if never or if the run blew up.
    linear_rate: :func:`jaxnpg.linear_rate` of the tail (NaN if it blew up or
      cannot be fitted).
    monotone: bool, the recorded QRE-gap never increased (ignoring values at the
      floating-point floor); False if the run blew up.
  """
  status: jax.Array
  qre_gap: jax.Array
  ne_gap: jax.Array
  iterations_to_tol: jax.Array
  linear_rate: jax.Array
  monotone: jax.Array


def decide(finite, met, at_floor, stalled=False):
  """The one status ladder: ``BLEW_UP``, ``CONVERGED``, ``AT_FLOOR``, ``STALLED``,
  else ``NOT_CONVERGED`` (int8, elementwise).

  Args:
    finite: every recorded value is finite.
    met: the measure met the tolerance.
    at_floor: the measure is at or below the dtype's rounding floor.
    stalled: no progress towards the tolerance (``verdict``'s test on the
      records; False for a single measurement, as in ``solve``).
  """
  status = jnp.where(
      ~finite, Status.BLEW_UP,
      jnp.where(met, Status.CONVERGED,
                jnp.where(at_floor, Status.AT_FLOOR,
                          jnp.where(stalled, Status.STALLED,
                                    Status.NOT_CONVERGED))))
  return status.astype(jnp.int8)


def verdict(qre, ne, iterations, *, tol, floor, tail: float,
            num_iters: int) -> Verdict:
  """The verdict of one run from its recorded gaps.

  Args:
    qre, ne: ``(R,)`` recorded QRE- and NE-gaps, or ``(R, *batch)`` for a
      batch of runs laid out records first (every field is then
      ``batch``-shaped; each run's verdict is the one it gets alone).
    iterations: ``(R,)`` iteration of each record.
    tol: the QRE-gap tolerance (scalar, or broadcasting against ``batch``).
    floor: the cell's rounding floor of the QRE-gap (likewise; see
      :mod:`jaxnpg.core.tolerance`).
    tail: fraction of the trajectory fitted by ``linear_rate`` (static).
    num_iters: the run's length (static).

  Status, in order: ``BLEW_UP`` if any record is not finite; ``CONVERGED`` if
  the final QRE-gap is ``<= tol``; ``AT_FLOOR`` if it is above ``tol`` but at or
  below ``floor`` (only possible when ``floor > tol``); ``STALLED`` if over the
  fitted tail (``tail * num_iters`` iterations) the gap falls by less than a factor
  2 or no rate can be fitted; else ``NOT_CONVERGED``.
  """
  dtype = qre.dtype
  tol = jnp.asarray(tol, dtype)
  finite = (jnp.all(jnp.isfinite(qre), axis=0)
            & jnp.all(jnp.isfinite(ne), axis=0))
  hit = qre <= tol
  its = jnp.asarray(iterations).reshape((-1,) + (1,) * (qre.ndim - 1))
  never = (jnp.iinfo(its.dtype).max if jnp.issubdtype(its.dtype, jnp.integer)
           else jnp.inf)
  first = jnp.min(jnp.where(hit, its, never), axis=0)
  iters_to_tol = jnp.where(finite & jnp.any(hit, axis=0), first,
                           -1).astype(jnp.int32)
  scale = jnp.max(jnp.where(jnp.isfinite(qre), jnp.abs(qre), 0.0), axis=0)
  rate_floor = default_floor(dtype) * jnp.maximum(scale, 1.0)   # fit_rate's
  rate = fit_rate(qre, iterations, tail=tail, floor=rate_floor)
  later, earlier = qre[1:], qre[:-1]
  monotone = finite & jnp.all((later <= earlier) | (later <= rate_floor),
                              axis=0)
  span = tail * num_iters
  stalled = ~jnp.isfinite(rate) | (span * jnp.log(rate) > jnp.log(0.5))
  status = decide(finite, qre[-1] <= tol, qre[-1] <= floor, stalled)
  nan = jnp.asarray(jnp.nan, dtype)
  return Verdict(status=status,
                 qre_gap=jnp.where(finite, qre[-1], nan),
                 ne_gap=jnp.where(finite, ne[-1], nan),
                 iterations_to_tol=iters_to_tol,
                 linear_rate=jnp.where(finite, rate, nan).astype(dtype),
                 monotone=monotone)
