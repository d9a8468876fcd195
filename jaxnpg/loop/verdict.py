"""The verdict of one recorded run: status, iterations to tolerance, rates.

``jaxnpg.run`` and every ``jaxnpg.sweep`` cell get their status from
:func:`verdict` on their recorded gaps, so a run and a sweep cell with the same
records get the same status; ``jaxnpg.solve`` uses the same ladder
(:func:`decide`) on its one final measure.

What each status needs (the ladder, in order; :class:`jaxnpg.Status`):

* ``INVALID_INPUT``: an input the eager checks refuse reached the compiled
  program (a traced ``tau < 0``, ``eta <= 0``, a discount outside ``[0, 1)``, ...);
* ``BLEW_UP``: a recorded gap or the final policy is not finite;
* ``CONVERGED``: every agent's final QRE-gap is within its own tolerance;
* ``AT_FLOOR``: above tolerance, but every agent within the larger of its
  tolerance and its rounding floor;
* ``STALLED``: evidence that more iterations will not help: over the fitted tail
  of the records, neither the smallest nor the largest gap of its second half
  fell by ``PROGRESS`` below those of its first half, *and* the second half
  repeats an earlier stretch of the tail (:func:`recurs`: a plateau, or a cycle
  of the recorded gaps);
* ``NOT_CONVERGED``: everything else above tolerance: still falling (its fitted
  rate then says how many iterations it would need, ``iterations_needed``), or
  irregular without repeating. An irregular (chaotic-looking) tail is not
  evidence: on 64 random (3, 4, 5) games at small tau with 4x the paper step, 7 of
  the 24 cells whose tail showed no progress at 20,000 iterations converged by
  200,000 (transient chaos); none of those tails repeats, so none is STALLED.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxnpg.loop.rate import default_floor, fit_rate
from jaxnpg.loop.status import Status

# A tail half counts as progress when its smallest and largest gaps are both
# at least this fraction below the other half's.
PROGRESS = 0.01
# The second half of the tail repeats an earlier stretch when every record lies
# within this fraction of the tail's largest gap of the record a fixed lag
# before it.
RECURRENCE_RTOL = 1e-3
# The test reads at most this many tail records, evenly strided (a plateau
# stays a plateau and a cycle a cycle): its cost grows with their square, and
# at record_every = 1 over 1000 iterations all 500 tail records cost 20% of a
# sweep (benchmarks/paths.py).
RECURRENCE_RECORDS = 64


class Verdict(NamedTuple):
  """What a trajectory of recorded gaps says (one run; batch-shaped for many).

  Attributes:
    status: int8, a :class:`jaxnpg.Status` code.
    qre_gap: the final QRE-gap (NaN when the run blew up or its input was
      invalid).
    ne_gap: the final NE-gap (likewise).
    iterations_to_tol: int32, first recorded iteration at which every agent met
      its tolerance; ``-1`` if never (or blew up, or invalid).
    linear_rate: :func:`jaxnpg.linear_rate` of the QRE-gap's tail (NaN if it
      blew up or cannot be fitted).
    monotone: bool, the recorded QRE-gap never increased (ignoring values at the
      floating-point floor); False if the run blew up.
    iterations_needed: for ``NOT_CONVERGED`` with a falling tail, the
      iterations the run would need in all at its fitted rate to meet the
      tolerance; NaN otherwise (an irregular tail, or no rate below 1).
  """
  status: jax.Array
  qre_gap: jax.Array
  ne_gap: jax.Array
  iterations_to_tol: jax.Array
  linear_rate: jax.Array
  monotone: jax.Array
  iterations_needed: jax.Array


def decide(finite, met, at_floor, stalled=False, valid=True):
  """The one status ladder (int8, elementwise; see the module docstring).

  Args:
    finite: every recorded value is finite.
    met: the measure met the tolerance.
    at_floor: the measure is within the larger of tolerance and rounding floor.
    stalled: no progress towards the tolerance (:func:`verdict`'s test on the
      records; False for a single measurement, as in ``solve``).
    valid: the inputs passed the in-graph checks.
  """
  status = jnp.where(
      ~valid, Status.INVALID_INPUT,
      jnp.where(~finite, Status.BLEW_UP,
                jnp.where(met, Status.CONVERGED,
                          jnp.where(at_floor, Status.AT_FLOOR,
                                    jnp.where(stalled, Status.STALLED,
                                              Status.NOT_CONVERGED)))))
  return status.astype(jnp.int8)


def _halves(y, k, start, last):
  """Smallest and largest finite ``y`` in ``[start, mid)`` and ``[mid, last]``."""
  mid = 0.5 * (start + last)
  ok = jnp.isfinite(y)
  first = ok & (k >= start) & (k < mid)
  second = ok & (k >= mid) & (k <= last)

  def lo_hi(mask):
    lo = jnp.min(jnp.where(mask, y, jnp.inf), axis=0)
    hi = jnp.max(jnp.where(mask, y, -jnp.inf), axis=0)
    return lo, hi, jnp.any(mask, axis=0)
  return lo_hi(first), lo_hi(second)


def no_progress(y, iterations, *, tail: float):
  """True where the tail of ``y`` (records first) shows no progress.

  The last ``tail`` fraction of the records (by iteration) is cut in two halves;
  progress means the second half's smallest and largest values both lie at
  least ``PROGRESS`` below the first half's. A slowly falling gap progresses; a
  plateau, a cycle or a chaotic gap does not. Where a half holds no record
  there is no evidence either way (False).
  """
  dtype = y.dtype
  k = jnp.asarray(iterations).astype(dtype).reshape((-1,) + (1,) * (y.ndim - 1))
  last, first_k = k[-1], k[0]
  start = last - tail * (last - first_k)
  (lo1, hi1, any1), (lo2, hi2, any2) = _halves(y, k, start, last)
  progress = (lo2 < (1 - PROGRESS) * lo1) & (hi2 < (1 - PROGRESS) * hi1)
  return any1 & any2 & ~progress


def recurs(y, *, tail: float):
  """True where the second half of ``y``'s tail repeats an earlier stretch.

  ``y`` is ``(R, *batch)``, records first. The tail is the last ``tail``
  fraction of the records before the final one (whose spacing may differ),
  read every ``stride`` records so that at most ``RECURRENCE_RECORDS`` are; it
  repeats when, for some lag ``L`` of at least one of those, each of its second
  half lies within ``RECURRENCE_RTOL`` times the tail's largest finite value of
  the one ``L`` before it: a plateau (``L = 1``) or a cycle whose period
  divides ``L``. A NaN never repeats. Fewer than four tail records are no
  evidence (False).
  """
  num = y.shape[0]
  length = int(round(tail * (num - 1)))
  stride = max(1, -(-length // RECURRENCE_RECORDS))
  length //= stride
  if length < 4:
    return jnp.zeros(y.shape[1:], bool)
  last = num - 2                    # the final record is not read
  z = y[last - stride * (length - 1):last + 1:stride]
  half = length // 2
  second = z[length - half:]
  scale = jnp.max(jnp.where(jnp.isfinite(z), jnp.abs(z), 0.0), axis=0)

  def lag(L, best):
    before = lax.dynamic_slice_in_dim(z, length - half - L, half, axis=0)
    d = jnp.max(jnp.abs(second - before), axis=0)
    return jnp.minimum(best, jnp.where(jnp.isnan(d), jnp.inf, d))
  # inf from the data, not a constant: it varies over a shard_map's axes as
  # the records do (a loop carry must).
  best = lax.fori_loop(1, length - half + 1, lag, scale * 0 + jnp.inf)
  return best <= RECURRENCE_RTOL * scale


def verdict(qre, ne, iterations, *, judged, threshold, agent_gaps, tol, floor,
            tail: float, num_iters: int, valid=True) -> Verdict:
  """The verdict of one run from its recorded gaps.

  Args:
    qre, ne: ``(R,)`` recorded QRE- and NE-gaps (the max over agents), or
      ``(R, *batch)`` for a batch of runs laid out records first (every field
      is then ``batch``-shaped; each run's verdict is the one it gets alone).
    iterations: ``(R,)`` iteration of each record.
    judged: ``(R, *batch)`` the series the tolerance judges: each record's
      largest ratio of an agent's QRE-gap to its own scale under the default
      rule (``threshold = GAP_RTOL``), or ``qre`` itself under a given ``tol``.
    threshold: the value ``judged`` must reach (broadcasting against
      ``batch``).
    agent_gaps: ``(n, *batch)`` every agent's QRE-gap at the final iterate.
    tol, floor: ``(n, *batch)`` every agent's tolerance and rounding floor (see
      :mod:`jaxnpg.core.tolerance`).
    tail: fraction of the trajectory fitted by ``linear_rate`` and tested for
      progress (static).
    num_iters: the run's length (static).
    valid: the in-graph input checks passed (broadcasting against ``batch``).
  """
  dtype = qre.dtype
  finite = (jnp.all(jnp.isfinite(qre), axis=0) & jnp.all(jnp.isfinite(ne), axis=0)
            & jnp.all(jnp.isfinite(judged), axis=0)
            & jnp.all(jnp.isfinite(agent_gaps), axis=0))
  its = jnp.asarray(iterations).reshape((-1,) + (1,) * (qre.ndim - 1))
  hit = judged <= threshold
  never = (jnp.iinfo(its.dtype).max if jnp.issubdtype(its.dtype, jnp.integer)
           else jnp.inf)
  first = jnp.min(jnp.where(hit, its, never), axis=0)
  ok = finite & valid
  iters_to_tol = jnp.where(ok & jnp.any(hit, axis=0), first,
                           -1).astype(jnp.int32)
  scale = jnp.max(jnp.where(jnp.isfinite(qre), jnp.abs(qre), 0.0), axis=0)
  rate_floor = default_floor(dtype) * jnp.maximum(scale, 1.0)   # fit_rate's
  rate = fit_rate(qre, iterations, tail=tail, floor=rate_floor)
  later, earlier = qre[1:], qre[:-1]
  monotone = ok & jnp.all((later <= earlier) | (later <= rate_floor), axis=0)
  met = jnp.all(agent_gaps <= tol, axis=0)
  at_floor = jnp.all(agent_gaps <= jnp.maximum(tol, floor), axis=0)
  flat = no_progress(judged, iterations, tail=tail)
  stalled = flat & recurs(judged, tail=tail)
  status = decide(finite, met, at_floor, stalled, valid)
  # The judged series is dimensionless (relative gaps): its floor is relative to
  # its own largest value.
  judged_scale = jnp.max(jnp.where(jnp.isfinite(judged), jnp.abs(judged), 0.0),
                         axis=0)
  judged_rate = fit_rate(judged, iterations, tail=tail,
                         floor=default_floor(dtype) * judged_scale)
  needed = num_iters + jnp.log(threshold / judged[-1]) / jnp.log(judged_rate)
  # Only a falling tail has a rate to extrapolate (an irregular one may fit a
  # rate below 1 by chance).
  estimable = ((status == Status.NOT_CONVERGED) & ~flat
               & jnp.isfinite(judged_rate) & (judged_rate < 1))
  nan = jnp.asarray(jnp.nan, dtype)
  return Verdict(status=status,
                 qre_gap=jnp.where(ok, qre[-1], nan),
                 ne_gap=jnp.where(ok, ne[-1], nan),
                 iterations_to_tol=iters_to_tol,
                 linear_rate=jnp.where(ok, rate, nan).astype(dtype),
                 monotone=monotone,
                 iterations_needed=jnp.where(estimable, needed,
                                             nan).astype(dtype))
