"""Logit QRE by pseudo-arclength continuation in ``lambda = 1/tau`` (Gambit's branch).

The logit equilibrium at precision ``lambda`` solves, on every agent's logits ``y_i``,

    H(y, lambda) = y - lambda * C(rbar(softmax(y))) = 0,

with ``C`` the centring (each agent's mean subtracted; docs/spec.md, "Local rate"). At
``lambda = 0`` the only solution is ``y = 0`` (uniform play), and the *principal
branch* is the curve of solutions through that point. Gambit's
``logit_solve_lambda`` follows it in arclength and returns, for each requested
``lambda``, the first point of the branch that reaches it; so does :func:`qre`.

The branch can fold back in ``lambda`` (turning points), and on structured games
(symmetric ones above all) it can meet a *branch point*, where another solution
curve crosses it. Both are detected along the trace (:mod:`jaxnpg.theory.qre_trace`:
the sign of ``dlambda/ds`` and of ``det [J; t^T]``), counted per requested
``lambda`` and reported with their lambdas and a :class:`jaxnpg.QREStatus`. At a
branch point the choice of arm is a convention, ``branch=``: by default the arm
that a small bonus to the first agent's first action selects (Gambit 17's arm on
2-player symmetric games), or the smooth continuation through it. The crossing of
each requested ``lambda`` is polished by Newton's method at fixed ``lambda`` to
machine precision and verified. Jacobians come from ``jax.jacfwd`` through
``game.payoffs``, so any static game type works. Everything is written for one
game and jitted; ``vmap`` batches games (or :func:`jaxnpg.qre_batch`, which drops
finished games between rounds).

Against Gambit 16.7 on random (3, 4, 5) games for lambda up to 50 the answers agree
to ~1e-14, except where Gambit's default steps (``first_step=0.03``,
``max_accel=1.1``) stop its corrector near a residual of 1e-7, or step over the top
of a fold that barely exceeds the requested lambda and so return a later crossing;
with ``first_step=0.003, max_accel=1`` Gambit then agrees with this solver (about 2
in 1000 (game, lambda) pairs; see ``tests/theory/test_qre.py``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import lax

from jaxnpg.core import gaps as _gaps
from jaxnpg.core.validation import check_positive_int, is_concrete
from jaxnpg.theory.qre_status import STATUS_MESSAGES, QREStatus
from jaxnpg.theory.qre_trace import BRANCH_RULES, Tracer, TraceState, advance

# Old names of the status codes (kept for stored results that used the ints).
QRE_CONVERGED = int(QREStatus.CONVERGED)
QRE_TURNING_POINT = int(QREStatus.TURNING_POINT)
QRE_BIFURCATION = int(QREStatus.BIFURCATION)
QRE_MAX_STEPS = int(QREStatus.MAX_STEPS)
QRE_STEP_FAILED = int(QREStatus.STEP_FAILED)
QRE_NOT_CONVERGED = int(QREStatus.NOT_CONVERGED)
__all__ = ["QREResult", "QREStatus", "STATUS_MESSAGES", "qre", "check_qre_tau"]

_MAX_NEWTON = 12


class QREResult(NamedTuple):
  """Output of :func:`qre` for one game (batch axes lead when vmapped).

  ``E`` is ``max_events`` (default 16).

  Attributes:
    logp: the equilibrium, ``logp[i].shape == tau.shape + (A_i,)``.
    tau: the requested ``tau`` (``lambda = 1/tau`` exactly), any shape.
    residual: ``max_i ||log pi_i - log pi_i^*||_inf`` at the result (``pi_i^*`` the
      soft best response), shaped like ``tau``; linear in the error. Measured
      whatever the status (after ``MAX_STEPS`` or ``STEP_FAILED`` the point is
      Newton's at the requested lambda from the trace's last point).
    qre_gap: QRE-gap (eq. 4) at the result, shaped like ``tau``.
    status: int32 :class:`jaxnpg.QREStatus` code per ``tau``.
    converged: bool per ``tau``: the point solves the fixed point at
      ``lambda = 1/tau`` to ``tol`` (status ``CONVERGED``, ``TURNING_POINT`` or
      ``BIFURCATION``).
    num_turning_points: int32 per ``tau``, folds of the branch passed before the
      returned point (``> 0`` means several QREs exist at this ``tau``).
    num_bifurcations: int32 per ``tau``, branch points passed before the
      returned point (``> 0``: another solution curve crosses the branch there,
      and other solvers may follow it).
    turning_point_lambdas: ``(E,)`` the lambdas of the folds of the whole trace,
      in trace order (NaN padded); the first ``num_turning_points`` of them
      precede each ``tau``.
    bifurcation_lambdas: ``(E,)`` the same for the branch points (located by
      linear interpolation of ``det [J; t^T]`` over the step that passed one:
      to about 1e-3 in lambda). Events beyond ``E`` are counted, not located.
    num_steps: int32, accepted continuation steps of the whole trace (the same for
      every ``tau`` of one game).

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> eq = jaxnpg.qre(game, 1.0)
    >>> type(eq).__name__, bool(eq.converged), int(eq.num_turning_points)
    ('QREResult', True, 0)
    >>> bool(eq.residual < 1e-4)
    True
  """
  logp: tuple[Any, ...]
  tau: jax.Array
  residual: jax.Array
  qre_gap: jax.Array
  status: jax.Array
  converged: jax.Array
  num_turning_points: jax.Array
  num_bifurcations: jax.Array
  turning_point_lambdas: jax.Array
  bifurcation_lambdas: jax.Array
  num_steps: jax.Array


def qre(game, tau, *, max_steps: int = 2000, first_step: float = 0.1,
        max_step: float = 4.0, tol=None, branch: str = "gambit",
        max_events: int = 16) -> QREResult:
  """Logit QRE on Gambit's principal branch, by continuation from ``lambda = 0``.

  Works where NPG does not converge (small ``tau``, repelling or several QREs): it
  never iterates the NPG map. One trace from ``lambda = 0`` serves every requested
  ``tau`` (as Gambit's ``logit_solve_lambda`` with a list of lambdas), and each is
  returned at the branch's first crossing of ``lambda = 1/tau``, polished by Newton
  at that ``lambda`` and verified: ``converged`` only where
  ``||y - lambda C(rbar)||_inf <= tol``.

  Turning points and branch points met on the way are counted per ``tau``
  (``num_turning_points``, ``num_bifurcations``) and located
  (``turning_point_lambdas``, ``bifurcation_lambdas``); the status says the worst
  (:class:`jaxnpg.QREStatus`). ``CONVERGED`` means neither was met: the returned
  point is the unique continuation of uniform play.

  At a branch point, ``branch="gambit"`` (default) takes the arm that a small
  bonus to the first agent's first action selects; ``branch="continue"`` the
  smooth curve through it (on a symmetric game, the symmetric solution). On the
  Battle of the Sexes (payoffs (3, 2), (0, 0) / (0, 0), (2, 3)), whose symmetric
  branch has a pitchfork near ``lambda = 0.76``, at ``lambda = 1``: ``"gambit"``
  gives ``((0.883, 0.117), (0.805, 0.195))``, as Gambit 17; ``"continue"``
  ``((0.555, 0.445), (0.445, 0.555))``. Both are QREs; both say ``BIFURCATION``.

  Args:
    game: one game whose ``payoffs`` do not depend on ``tau``: any static game,
      or a Markov game of the ``logit`` convention (then the result is the
      stationary logit Markov QRE); batch games with ``jax.vmap``.
    tau: entropy weight(s), ``> 0``, scalar or any shape (all traced together).
    max_steps: most continuation step attempts (accepted or rejected).
    first_step: initial arclength step in ``(y, lambda)``.
    max_step: largest arclength step (the step control also bounds it by the
      curvature and the corrector's contraction, so a large value is safe).
    tol: accepted ``||y - lambda C(rbar)||_inf`` of the final Newton polish
      (default ``1e3 * eps * (1 + ||y||_inf)``, about ``1e-12`` in float64).
    branch: ``"gambit"`` or ``"continue"``, the arm taken at a branch point.
    max_events: length of the padded event arrays.

  Returns:
    A :class:`QREResult`.

  Raises:
    ValueError: ``tau <= 0`` or not finite, a batched game, bad options.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> eq = jaxnpg.qre(game, jnp.array([1.0, 0.1]))
    >>> eq.logp[0].shape, eq.converged.tolist()
    ((2, 3), [True, True])
    >>> bool(jnp.all(eq.residual < 1e-4))
    True

    The Battle of the Sexes passes a branch point before ``lambda = 1``:

    >>> bos = jaxnpg.NormalFormGame(jnp.array(
    ...     [[[3.0, 0.0], [0.0, 2.0]], [[2.0, 0.0], [0.0, 3.0]]]))
    >>> eq = jaxnpg.qre(bos, 1.0)
    >>> jaxnpg.QREStatus(int(eq.status)).name, int(eq.num_bifurcations)
    ('BIFURCATION', 1)
    >>> [round(float(p), 2) for p in jnp.exp(eq.logp[0])]
    [0.88, 0.12]
    >>> sym = jaxnpg.qre(bos, 1.0, branch="continue")
    >>> [round(float(p), 2) for p in jnp.exp(sym.logp[0])]
    [0.56, 0.44]

    A batch of games: ``jax.vmap(lambda g: jaxnpg.qre(g, taus))(games)``.
  """
  check_qre_options(game, tau, max_steps=max_steps, first_step=first_step,
                    max_step=max_step, tol=tol, branch=branch,
                    max_events=max_events)
  tau = jnp.asarray(tau, game.dtype)
  dtype = game.dtype
  return _qre(game, tau, tol, jnp.asarray(max_steps, jnp.int32),
              jnp.asarray(first_step, dtype), jnp.asarray(max_step, dtype),
              branch=branch, max_events=max_events)


def check_qre_options(game, tau, *, max_steps, first_step, max_step, tol, branch,
                      max_events) -> None:
  """``ValueError`` naming the first bad argument of :func:`qre`."""
  if game.batch_shape:
    raise ValueError(
        f"`qre` takes one game, got a batch of shape {game.batch_shape}; batch "
        "with jax.vmap(lambda g: jaxnpg.qre(g, tau))(games).")
  check_positive_int(max_steps, "max_steps")
  check_positive_int(max_events, "max_events")
  for name, v in (("first_step", first_step), ("max_step", max_step)):
    if not (np.isfinite(v) and v > 0):
      raise ValueError(f"`{name}` must be a finite number > 0, got {v}.")
  if first_step > max_step:
    raise ValueError(
        f"`first_step` ({first_step}) must not exceed `max_step` ({max_step}).")
  if tol is not None and is_concrete(tol) and not float(tol) > 0:
    raise ValueError(f"`tol` must be > 0, got {tol}.")
  if branch not in BRANCH_RULES:
    raise ValueError(f"`branch` must be one of {BRANCH_RULES}, got {branch!r}.")
  check_qre_tau(tau)
  if game.payoffs_depend_on_tau:
    raise ValueError(
        f"`qre` needs payoffs that do not depend on tau (this "
        f"{type(game).__name__}'s do: payoffs_depend_on_tau). It solves static "
        "games and Markov games of the 'logit' convention.")


def check_qre_tau(tau) -> None:
  """``ValueError`` unless every concrete ``tau`` is finite and ``> 0``."""
  if not is_concrete(tau):
    return
  arr = np.asarray(tau)
  if arr.dtype.kind not in "biuf":
    raise ValueError(f"`tau` must be real numbers, got dtype {arr.dtype}.")
  if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
    raise ValueError(
        f"The QRE solver needs finite tau > 0 (lambda = 1/tau), got {arr}. At "
        "tau = 0 the logit QRE becomes a Nash equilibrium, which the branch only "
        "approaches as lambda -> infinity.")


def _tau_ok(tau):
  """In-graph: each ``tau`` finite and ``> 0`` (what :func:`check_qre_tau` asks)."""
  return jnp.isfinite(tau) & (tau > 0)


def inputs_valid(game, tau, tol):
  """In-graph validity of a QRE problem: a bool per requested ``tau`` (flat).

  The compiled counterpart of :func:`check_qre_options`' value checks, for what a
  trace hides: every ``tau`` finite and ``> 0``, ``tol`` (if given) finite and
  ``> 0``, and the game's own invariants (:meth:`jaxnpg.Game.valid`: finite
  payoffs; for a Markov game stochastic transitions and a discount in ``[0, 1)``).
  A ``False`` lane reads :attr:`QREStatus.INVALID_INPUT` with NaN results.
  """
  ok = _tau_ok(jnp.reshape(tau, (-1,))) & game.valid()
  if tol is not None:
    tol = jnp.asarray(tol, game.dtype)
    ok = ok & jnp.isfinite(tol) & (tol > 0)
  return ok


def make_tracer(game, tau, *, branch, max_events) -> Tracer:
  """The :class:`Tracer` of one game for the requested ``tau`` (any shape).

  An invalid ``tau`` (:func:`inputs_valid`) is traced to ``lambda = 1`` instead:
  the trace is shared by every ``tau`` of the game, and a ``lambda`` it can never
  reach (``tau <= 0``, NaN) would run it to ``max_steps``. Its lane is reported
  ``INVALID_INPUT`` by :func:`finish`.
  """
  tau = jnp.reshape(tau, (-1,)).astype(game.dtype)
  ok = _tau_ok(tau)
  lam = jnp.where(ok, 1.0 / jnp.where(ok, tau, 1.0), 1.0)
  return Tracer(game, lam, branch=branch, max_events=max_events)


@functools.partial(jax.jit, static_argnames=("branch", "max_events"))
def _qre(game, tau, tol, max_steps, first_step, max_step, *, branch, max_events):
  tracer = make_tracer(game, tau, branch=branch, max_events=max_events)
  # A game that fails its own checks is not traced at all.
  limit = jnp.where(jnp.any(inputs_valid(game, tau, tol)), max_steps, 0)
  s = advance(tracer, tracer.init(first_step), max_step, limit)
  return finish(game, tracer, s, tau, tol)


def polish(tracer: Tracer, s: TraceState, tol):
  """Newton at each requested lambda from its bracketing step: ``(y, ok)``."""
  n, dtype = tracer.n, tracer.dtype
  eps = float(np.finfo(dtype).eps)
  stop = 10 * eps          # relative Newton step at which the polish stops

  def one(lam, zlo, zhi, found):
    span = zhi[n] - zlo[n]
    frac = jnp.clip((lam - zlo[n]) / jnp.where(span > 0, span, 1.0), 0.0, 1.0)
    y0 = jnp.where(found, zlo[:n] + frac * (zhi[:n] - zlo[:n]), s.z[:n])
    fix = lambda y: tracer.h_fn(jnp.concatenate([y, lam[None]]))
    jac_y = jax.jacfwd(fix)

    def cond(c):
      it, _, dn = c
      return (it < _MAX_NEWTON) & (dn > stop) & jnp.isfinite(dn)

    def body(c):
      it, y, _ = c
      d = jsl.lu_solve(jsl.lu_factor(jac_y(y)), fix(y))
      y = y - d
      return it + 1, y, jnp.max(jnp.abs(d)) / (1.0 + jnp.max(jnp.abs(y)))

    _, y, _ = lax.while_loop(cond, body, (jnp.int32(0), y0, jnp.asarray(1.0, dtype)))
    res = jnp.max(jnp.abs(fix(y)))
    scale = 1.0 + jnp.max(jnp.abs(y))
    limit = 1e3 * eps * scale if tol is None else jnp.asarray(tol, dtype)
    return y, jnp.isfinite(res) & (res <= limit)

  return jax.vmap(one)(tracer.lam_t, s.zlo, s.zhi, s.found)


def status_codes(s: TraceState, polished):
  """The :class:`QREStatus` of each requested lambda."""
  code = jnp.where(
      s.bifs_at > 0, QREStatus.BIFURCATION,
      jnp.where(s.folds_at > 0, QREStatus.TURNING_POINT, QREStatus.CONVERGED))
  code = jnp.where(polished, code, QREStatus.NOT_CONVERGED)
  code = jnp.where(s.found, code, jnp.where(s.failed, QREStatus.STEP_FAILED,
                                            QREStatus.MAX_STEPS))
  return code.astype(jnp.int32)


def finish(game, tracer: Tracer, s: TraceState, tau, tol) -> QREResult:
  """Polish, verify and measure a finished trace: the :class:`QREResult`."""
  layout = tracer.layout
  y, polished = polish(tracer, s, tol)
  valid = inputs_valid(game, tau, tol)
  status = jnp.where(valid, status_codes(s, polished),
                     QREStatus.INVALID_INPUT).astype(jnp.int32)

  def measures(y_k, tau_k):
    logp = layout.normalize(y_k)
    payoffs = game.payoffs(logp)
    resid = _gaps.fixed_point_residual_from_payoffs(logp, payoffs, tau_k)
    gap = jnp.max(game.qre_gap_per_agent(logp, tau_k, payoffs))
    return logp, resid, gap

  logp, resid, gap = jax.vmap(measures)(y, jnp.reshape(tau, (-1,)))
  bad = lambda x: jnp.where(
      jnp.reshape(valid, valid.shape + (1,) * (x.ndim - 1)), x, jnp.nan)
  logp, resid, gap = tuple(map(bad, logp)), bad(resid), bad(gap)
  shape = tau.shape
  logp = tuple(jnp.reshape(lp, shape + lp.shape[1:]) for lp in logp)
  reshape = lambda x: jnp.reshape(x, shape)
  return QREResult(
      logp=logp, tau=tau, residual=reshape(resid), qre_gap=reshape(gap),
      status=reshape(status),
      converged=reshape(status <= QREStatus.BIFURCATION),
      num_turning_points=reshape(s.folds_at), num_bifurcations=reshape(s.bifs_at),
      turning_point_lambdas=s.fold_lam, bifurcation_lambdas=s.bif_lam,
      num_steps=jnp.broadcast_to(s.steps, shape))
