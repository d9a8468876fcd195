"""What a run settles into: fixed point, cycle, chaos, or undetermined.

Pure, vmappable pieces for one game (the sweep maps them over cells):
:func:`detect_period` (recurrence at the end of a trajectory), :func:`classify`
(one code per run), :func:`count_distinct` (distinct limits among several starts),
and :func:`attractor`, which runs one trajectory with its tangent and classifies it.

Chaos threshold: a run is chaotic when its largest Lyapunov exponent exceeds
``max(threshold, 3 * stderr)`` (default ``threshold = 0.01`` per step). The
``3 * stderr`` term is the statistical uncertainty of a finite-``T`` average (block
means, see :func:`jaxnpg.lyapunov_exponent`). The fixed floor covers what the
standard error does not: a neutral or quasi-periodic orbit (matching pennies at
``tau = 0``) has exponent 0, but its tangent grows polynomially, which biases the
finite-``T`` estimate upwards by about ``log(T) / T`` (4e-3 at ``T = 2000``). Chaotic
covariant games (50 actions, ``rho = -0.5``, ``eta = 1``, ``tau = 0.05``) measure
0.035 to 0.055, well above it.

Example:
  >>> import jaxnpg
  >>> jaxnpg.ATTRACTOR_NAMES[jaxnpg.Attractor.CHAOTIC]
  'chaotic'
"""

from __future__ import annotations

import enum
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import gaps as _gaps
from jaxnpg.core import stacking as _stacking
from jaxnpg.core import tolerance as _tolerance
from jaxnpg.core.step import scaled_eta
from jaxnpg.core.validation import check_positive_int
from jaxnpg.dynamics.lyapunov import check_lengths, prepare, propagate, state_map
from jaxnpg.loop.algorithms import NPG


class Attractor(enum.IntEnum):
  """Attractor type of one run (stored as ``int8``).

  Attributes:
    FIXED_POINT: converged (fixed-point residual ``<= tol``) or recurs after 1
      step.
    PERIODIC: recurs within ``period_tol`` after ``P`` steps, ``2 <= P <= P_max``.
    CHAOTIC: no recurrence, and the Lyapunov exponent exceeds
      ``max(threshold, 3 * stderr)``.
    UNDETERMINED: none of these (slow convergence, long period, quasi-periodic
      drift, an exponent not significantly positive, or a non-finite run).

  Example:
    >>> import jaxnpg
    >>> [a.name for a in jaxnpg.Attractor]
    ['FIXED_POINT', 'PERIODIC', 'CHAOTIC', 'UNDETERMINED']
    >>> jaxnpg.Attractor(2).name
    'CHAOTIC'
  """

  FIXED_POINT = 0
  PERIODIC = 1
  CHAOTIC = 2
  UNDETERMINED = 3

  @property
  def label(self) -> str:
    """The human-readable name (``ATTRACTOR_NAMES[code]``)."""
    return ATTRACTOR_NAMES[int(self)]


ATTRACTOR_NAMES = ("fixed point", "periodic", "chaotic", "undetermined")
"""The label of every :class:`Attractor` code, indexed by the code."""
CHAOS_THRESHOLD = 0.01   # per step; see the module docstring


def _max_abs_diff(xs, ys):
  """``max |x - y|`` over all agents and entries (equal infinities count as 0)."""
  return jnp.max(jnp.stack([
      jnp.max(jnp.abs(jnp.where(x == y, 0.0, x - y)))
      for x, y in _stacking.paired_groups(xs, ys)]))


def detect_period(history_logp, tol, max_period: int):
  """Smallest ``P <= max_period`` with which the end of a trajectory recurs.

  ``P`` qualifies when each of the last ``P`` states lies within ``tol`` (max-abs
  over all log-policy entries) of the state ``P`` steps before it, i.e. a whole
  period repeats. NaN states never recur.

  Args:
    history_logp: tuple of per-agent arrays ``(H, *policy_shapes[i])``, the last
      ``H >= 2 * max_period`` states in order.
    tol: recurrence tolerance, scalar.
    max_period: ``P_max`` (static, ``>= 1``).

  Returns:
    int32 scalar: the period, ``0`` when none ``<= max_period`` fits (a fixed
    point has period 1).

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> h = jnp.log(jnp.array([[.9, .1], [.2, .8]] * 4))   # flips every step
    >>> int(jaxnpg.detect_period((h,), 1e-8, 4))
    2
  """
  max_period = check_positive_int(max_period, "max_period")
  length = history_logp[0].shape[0]
  if length < 2 * max_period:
    raise ValueError(
        f"`history_logp` holds {length} states; detecting periods up to "
        f"{max_period} needs at least {2 * max_period}.")
  checks = []
  for p in range(1, max_period + 1):
    now = tuple(h[length - p:] for h in history_logp)
    before = tuple(h[length - 2 * p:length - p] for h in history_logp)
    checks.append(_max_abs_diff(now, before) <= tol)
  recurs = jnp.stack(checks)
  return jnp.where(jnp.any(recurs), jnp.argmax(recurs) + 1, 0).astype(jnp.int32)


def classify(converged, period, exponent, exponent_stderr,
             threshold=CHAOS_THRESHOLD):
  """The :class:`Attractor` code of one run, as ``int8`` (vmappable).

  In order: ``FIXED_POINT`` if ``converged`` or ``period == 1``; ``PERIODIC`` if
  ``period >= 2``; ``CHAOTIC`` if ``exponent > max(threshold, 3 *
  exponent_stderr)`` (see the module docstring for the threshold); else
  ``UNDETERMINED`` (also for NaN exponents).

  Example:
    >>> import jaxnpg
    >>> jaxnpg.Attractor(int(jaxnpg.classify(False, 0, 0.05, 0.004))).label
    'chaotic'
  """
  chaotic = exponent > jnp.maximum(threshold, 3 * exponent_stderr)
  code = jnp.where(
      converged | (period == 1), Attractor.FIXED_POINT,
      jnp.where(period >= 2, Attractor.PERIODIC,
                jnp.where(chaotic, Attractor.CHAOTIC, Attractor.UNDETERMINED)))
  return code.astype(jnp.int8)


def count_distinct(limits_logp, tol=1e-3, valid=None):
  """Number of distinct points among ``K`` limits (e.g. from ``K`` initial policies).

  Limit ``k`` counts as new when no earlier valid limit lies within ``tol`` of it
  (max-abs distance over all log-policy entries). The default ``1e-3`` is far above
  the error of converged runs (``tol`` of :func:`attractor`) and far below the
  distance between distinct equilibria, which is of order one in log space.

  Args:
    limits_logp: tuple of per-agent arrays ``(K, *policy_shapes[i])``.
    tol: distance below which two limits are the same point.
    valid: optional bool ``(K,)``: only these limits count (e.g. the converged
      ones). Non-finite limits never count.

  Returns:
    int32 scalar in ``[0, K]``.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> lp = jnp.log(jnp.array([[.9, .1], [.1, .9], [.9, .1]]))
    >>> int(jaxnpg.count_distinct((lp,), 1e-6))
    2
  """
  k = limits_logp[0].shape[0]
  finite = jnp.all(jnp.stack([
      jnp.all(~jnp.isnan(lp) & (lp != jnp.inf), axis=tuple(range(1, lp.ndim)))
      for lp in limits_logp]), axis=0)
  valid = finite if valid is None else finite & jnp.asarray(valid, bool)

  def dist(a, b):
    return _max_abs_diff(tuple(lp[a] for lp in limits_logp),
                         tuple(lp[b] for lp in limits_logp))

  idx = jnp.arange(k)
  d = jax.vmap(lambda a: jax.vmap(lambda b: dist(a, b))(idx))(idx)
  earlier = (idx[:, None] < idx[None, :]) & valid[:, None]
  near_earlier = jnp.any(earlier & (d <= tol), axis=0)
  return jnp.sum(valid & ~near_earlier).astype(jnp.int32)


class AttractorResult(NamedTuple):
  """Output of :func:`attractor` (one game; batch axes lead when vmapped).

  Attributes:
    attractor: int8 :class:`Attractor` code.
    exponent: largest Lyapunov exponent per step (NaN for a non-finite run).
    stderr: its standard error from block means.
    period: int32, the detected period (``0`` when none ``<= max_period``).
    converged: bool, ``residual <= tol``.
    residual: fixed-point residual ``max_i ||log pi_i - log pi_i^*||_inf`` at the
      final policy (the NE-gap at ``tau = 0``).
    logp: the final log-policy.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> r = jaxnpg.attractor(game, 1.0, 0.5, 200, burn_in=100)
    >>> jaxnpg.Attractor(int(r.attractor)).name, bool(r.converged), int(r.period)
    ('FIXED_POINT', True, 1)
  """
  attractor: jax.Array
  exponent: jax.Array
  stderr: jax.Array
  period: jax.Array
  converged: jax.Array
  residual: jax.Array
  logp: tuple[Any, ...]


def attractor(game, tau, eta, num_iters: int, *, init=None, burn_in: int = 1000,
              max_period: int = 16, tol=None, period_tol=None,
              threshold=CHAOS_THRESHOLD, key=None, tangent=None,
              num_blocks: int = 10, algorithm="npg") -> AttractorResult:
  """Run NPG once with its tangent, and say what the trajectory settles into.

  Takes ``burn_in + num_iters`` steps propagating a tangent (the Lyapunov
  exponent, as :func:`jaxnpg.lyapunov_exponent`), then ``2 * max_period`` more
  steps whose states give the period (:func:`detect_period`); the last of them is
  the final policy, where the fixed-point residual is measured. :func:`classify`
  combines the three. Vmappable over games, ``tau``, ``eta``, ``init``;
  ``num_iters``, ``burn_in``, ``max_period``, ``num_blocks`` are static.

  Args:
    game: one game.
    tau: entropy weight, scalar ``>= 0``.
    eta: step size, scalar ``> 0``.
    num_iters: steps averaged for the exponent (static).
    init: initial log-policy (default: uniform).
    burn_in: steps before averaging (static).
    max_period: largest period looked for (static).
    tol: convergence tolerance on the residual. By default that of
      ``jaxnpg.solve`` (1e-5 in float32, 1e-10 in float64), raised to the
      iteration's rounding floor where that is higher (``jaxnpg.core.tolerance``).
    period_tol: recurrence tolerance in log-policy space (default
      ``sqrt(eps)``: 3.5e-4 in float32, 1.5e-8 in float64).
    threshold: chaos threshold on the exponent (see the module docstring).
    key, tangent, num_blocks, algorithm: as in
      :func:`jaxnpg.lyapunov_exponent` (the map classified is the algorithm's,
      NPG by default).

  Returns:
    An :class:`AttractorResult`.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> res = jaxnpg.attractor(game, 1.0, 0.02, 500, burn_in=1000)
    >>> jaxnpg.Attractor(int(res.attractor)).label, bool(res.exponent < 0)
    ('fixed point', True)
  """
  num_iters, burn_in, num_blocks = check_lengths(num_iters, burn_in, num_blocks)
  max_period = check_positive_int(max_period, "max_period")
  logp, tangent, algorithm = prepare(game, tau, eta, init, key, tangent,
                                     algorithm)
  floor_aware = tol is None
  if tol is None:
    tol = _tolerance.default_residual_tol(game.dtype)
  if period_tol is None:
    period_tol = float(np.sqrt(np.finfo(game.dtype).eps))   # also when traced
  return _attractor(game, tau, eta, logp, tangent, tol, period_tol, threshold,
                    burn_in=burn_in, num_iters=num_iters, num_blocks=num_blocks,
                    max_period=max_period, floor_aware=floor_aware,
                    algorithm=algorithm)


@functools.partial(jax.jit, static_argnames=(
    "burn_in", "num_iters", "num_blocks", "max_period", "floor_aware",
    "algorithm"))
def _attractor(game, tau, eta, logp, tangent, tol, period_tol, threshold, *,
               burn_in, num_iters, num_blocks, max_period, floor_aware,
               algorithm=NPG()):
  return classify_run(game, tau, eta, logp, tangent, tol, period_tol, threshold,
                      burn_in=burn_in, num_iters=num_iters,
                      num_blocks=num_blocks, max_period=max_period,
                      floor_aware=floor_aware, algorithm=algorithm)


def classify_run(game, tau, eta, logp, tangent, tol, period_tol, threshold, *,
                 burn_in, num_iters, num_blocks, max_period, floor_aware,
                 algorithm):
  """Traceable core of :func:`attractor` (no checks; ``eta`` unscaled)."""
  lyap, state = propagate(game, tau, eta, logp, tangent, burn_in=burn_in,
                          num_iters=num_iters, num_blocks=num_blocks,
                          algorithm=algorithm)
  f = state_map(game, tau, eta, algorithm)

  def body(state, _):
    state = f(state)
    return state, tuple(algorithm.policy(state))

  state, history = _stacking.scan(body, state, None, length=2 * max_period)
  logp = tuple(algorithm.policy(state))
  period = detect_period(history, period_tol, max_period)
  dtype = game.dtype
  tau = jnp.asarray(tau, dtype)
  residual = _gaps.fixed_point_residual_from_payoffs(
      logp, game.payoffs(logp, tau), tau)
  if floor_aware:
    tol = jnp.maximum(tol, _tolerance.residual_floor(
        _tolerance.log_size(_stacking.agent_groups(logp)), tau,
        scaled_eta(game, eta), dtype))
  converged = residual <= tol
  code = classify(converged, period, lyap.exponent, lyap.stderr, threshold)
  return AttractorResult(attractor=code, exponent=lyap.exponent,
                         stderr=lyap.stderr, period=period, converged=converged,
                         residual=residual, logp=logp)
