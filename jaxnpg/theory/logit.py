"""Logit QRE by pseudo-arclength continuation in ``lambda = 1/tau`` (Gambit's branch).

The logit equilibrium at precision ``lambda`` solves, on every agent's logits ``y_i``,

    H(y, lambda) = y - lambda * C(rbar(softmax(y))) = 0,

with ``C`` the centring (each agent's mean subtracted; docs/spec.md, "Local rate"). At
``lambda = 0`` the only solution is ``y = 0`` (uniform play), and the *principal
branch* is the curve of solutions through that point. Gambit's
``logit_solve_lambda`` follows it in arclength and returns, for each requested
``lambda``, the first point of the branch that reaches it; so does :func:`qre`.

The branch can fold back in ``lambda`` (turning points), where following it as a
function of ``lambda`` (Newton at fixed ``lambda``) breaks down. We trace it in
arclength over ``(y, lambda)`` with a tangent predictor and a chord-Newton corrector
on the pseudo-arclength system, so folds are passed, counted and reported, and beyond
the first fold several QREs exist at that ``lambda``. The crossing of each requested
``lambda`` is then polished by Newton's method at fixed ``lambda`` to machine precision.
Jacobians come from ``jax.jacfwd`` through ``game.payoffs``, so any static game type
works. Everything is written for one game and jitted; ``vmap`` batches games.

Against Gambit 16.7 on random (3, 4, 5) games for lambda up to 50 the answers agree
to ~1e-14, except where Gambit's default steps (``first_step=0.03``,
``max_accel=1.1``) stop its corrector near a residual of 1e-7, or step over the top
of a fold that barely exceeds the requested lambda and so return a later crossing;
with ``first_step=0.003, max_accel=1`` Gambit then agrees with this solver (about 2
in 1000 (game, lambda) pairs; see ``tests/test_qre.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import lax

from jaxnpg.core import gaps as _gaps
from jaxnpg.core.coords import Layout
from jaxnpg.core.validation import check_positive_int, is_concrete

# Status codes, one per (game, tau) problem.
QRE_CONVERGED = 0
QRE_TURNING_POINT = 1
QRE_MAX_STEPS = 2
QRE_STEP_FAILED = 3
QRE_NOT_CONVERGED = 4

STATUS_MESSAGES = {
    QRE_CONVERGED: "converged; no turning point on the branch before this lambda",
    QRE_TURNING_POINT: (
        "converged; the branch folded back in lambda before reaching it, so several "
        "QREs exist here and this is the branch's first crossing (Gambit's)"),
    QRE_MAX_STEPS: "continuation ran out of steps before reaching lambda",
    QRE_STEP_FAILED: "continuation step size collapsed (corrector kept failing)",
    QRE_NOT_CONVERGED: "Newton polish at the requested lambda did not converge",
}


class QREResult(NamedTuple):
  """Output of :func:`qre` for one game (batch axes lead when vmapped).

  Attributes:
    logp: the equilibrium, ``logp[i].shape == tau.shape + (A_i,)``.
    tau: the requested ``tau`` (``lambda = 1/tau`` exactly), any shape.
    residual: ``max_i ||log pi_i - log pi_i^*||_inf`` at the result (``pi_i^*`` the
      soft best response), shaped like ``tau``; linear in the error.
    qre_gap: QRE-gap (eq. 4) at the result, shaped like ``tau``.
    status: int32 code per ``tau``: ``0`` converged; ``1`` converged, but the
      branch folded back in lambda before reaching it (several QREs exist; this
      is the branch's first crossing, as Gambit's); ``2`` ran out of steps;
      ``3`` the step size collapsed (the corrector kept failing); ``4`` the
      Newton polish at the requested lambda did not reach ``tol``.
    converged: bool per ``tau``: status is ``QRE_CONVERGED`` or
      ``QRE_TURNING_POINT``.
    num_turning_points: int32 per ``tau``, folds of the branch passed before the
      returned point (``> 0`` means several QREs exist at this ``tau``).
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
  num_steps: jax.Array


def qre(game, tau, *, max_steps: int = 2000, first_step: float = 0.1,
        max_step: float = 4.0, tol=None) -> QREResult:
  """Logit QRE on Gambit's principal branch, by continuation from ``lambda = 0``.

  Works where NPG does not converge (small ``tau``, repelling or several QREs): it
  never iterates the NPG map. One trace from ``lambda = 0`` serves every requested
  ``tau`` (as Gambit's ``logit_solve_lambda`` with a list of lambdas), and each is
  returned at the branch's first crossing of ``lambda = 1/tau``.

  Args:
    game: one game whose ``payoffs`` do not depend on ``tau``: any static game,
      or a Markov game of the ``logit`` convention (then the result is the
      stationary logit Markov QRE); batch games with ``jax.vmap``.
    tau: entropy weight(s), ``> 0``, scalar or any shape (all traced together).
    max_steps: most continuation step attempts (accepted or rejected).
    first_step: initial arclength step in ``(y, lambda)``.
    max_step: largest arclength step.
    tol: accepted ``||y - lambda C(rbar)||_inf`` of the final Newton polish
      (default ``1e3 * eps * (1 + ||y||_inf)``, about ``1e-12`` in float64).

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

    A batch of games: ``jax.vmap(lambda g: jaxnpg.qre(g, taus))(games)``.
  """
  if game.batch_shape:
    raise ValueError(
        f"`qre` takes one game, got a batch of shape {game.batch_shape}; batch "
        "with jax.vmap(lambda g: jaxnpg.qre(g, tau))(games).")
  max_steps = check_positive_int(max_steps, "max_steps")
  for name, v in (("first_step", first_step), ("max_step", max_step)):
    if not (np.isfinite(v) and v > 0):
      raise ValueError(f"`{name}` must be a finite number > 0, got {v}.")
  if first_step > max_step:
    raise ValueError(
        f"`first_step` ({first_step}) must not exceed `max_step` ({max_step}).")
  if tol is not None and is_concrete(tol) and not float(tol) > 0:
    raise ValueError(f"`tol` must be > 0, got {tol}.")
  check_qre_tau(tau)
  if game.payoffs_depend_on_tau:
    raise ValueError(
        f"`qre` needs payoffs that do not depend on tau (this "
        f"{type(game).__name__}'s do: payoffs_depend_on_tau). It solves static "
        "games and Markov games of the 'logit' convention.")
  tau = jnp.asarray(tau, game.dtype)
  dtype = game.dtype
  return _qre(game, tau, tol, jnp.asarray(max_steps, jnp.int32),
              jnp.asarray(first_step, dtype), jnp.asarray(max_step, dtype))


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


def residual_map(game, layout: Layout):
  """``H(z) = y - lambda * C(rbar(softmax(y)))`` with ``z = (y, lambda)``."""
  n = layout.size

  def h(z):
    y, lam = z[:n], z[n]
    q = layout.flatten(game.payoffs(layout.normalize(y)))
    return y - lam * layout.centre(q.astype(y.dtype))
  return h


# Step control of the continuation. The path only has to be followed closely enough
# to stay on the branch (the polish at each requested lambda gives full precision):
# chord corrector to eps**0.45 relative (9e-8 in float64) within 6 iterations (under
# vmap every problem waits for the slowest, so the cap matters); a step is rejected
# (and halved) when the corrector fails or the tangent turns by more than
# acos(0.95), about 18 degrees; it grows by 1.5 after an easy step (<= 4 chord
# iterations, turn below acos(0.99), about 8 degrees).
_PATH_TOL_EXPONENT = 0.45
_MAX_CHORD, _MAX_NEWTON = 6, 12
_COS_MIN, _GROW, _GROW_ITS, _GROW_COS, _MIN_STEP = 0.95, 1.5, 4, 0.99, 1e-9


def _max_abs(x):
  return jnp.max(jnp.abs(x))


@jax.jit
def _qre(game, tau, tol, max_steps, first_step, max_step):
  dtype = game.dtype
  layout = Layout(game.policy_shapes)
  n = layout.size
  eps = float(np.finfo(dtype).eps)
  path_tol = eps ** _PATH_TOL_EXPONENT
  polish_tol = 10 * eps          # Newton step size at which the polish stops
  max_chord, max_newton = _MAX_CHORD, _MAX_NEWTON
  cos_min, grow, min_step = _COS_MIN, _GROW, _MIN_STEP
  lam_t = 1.0 / jnp.reshape(tau, (-1,)).astype(dtype)     # (T,)
  num_t = lam_t.shape[0]

  h_fn = residual_map(game, layout)
  jac = jax.jacfwd(h_fn)
  e_last = jnp.zeros((n + 1,), dtype).at[n].set(1.0)

  def tangent(jw, t_prev):
    a = jnp.concatenate([jw, t_prev[None]], axis=0)
    t = jsl.lu_solve(jsl.lu_factor(a), e_last)
    return t / jnp.linalg.norm(t)

  def corrector(zp, t, jz):
    lu = jsl.lu_factor(jnp.concatenate([jz, t[None]], axis=0))

    def cond(c):
      it, _, _, flag = c
      return (flag == 0) & (it < max_chord)

    def body(c):
      it, w, dn_prev, _ = c
      r = jnp.concatenate([h_fn(w), (t @ (w - zp))[None]])
      d = jsl.lu_solve(lu, r)
      w = w - d
      dn = _max_abs(d)
      conv = dn <= path_tol * (1.0 + _max_abs(w))
      bad = ~jnp.isfinite(dn) | ((it > 0) & (dn > 0.5 * dn_prev))
      flag = jnp.where(conv, 1, jnp.where(bad, 2, 0)).astype(jnp.int32)
      return it + 1, w, dn, flag

    init = (jnp.int32(0), zp, jnp.asarray(jnp.inf, dtype), jnp.int32(0))
    it, w, _, flag = lax.while_loop(cond, body, init)
    return w, flag == 1, it

  z0 = jnp.zeros((n + 1,), dtype)
  j0 = jac(z0)
  t0 = tangent(j0, e_last)
  state = dict(
      attempts=jnp.int32(0), steps=jnp.int32(0), z=z0, t=t0, jz=j0,
      h=jnp.asarray(first_step, dtype), folds=jnp.int32(0),
      found=jnp.zeros((num_t,), bool), zlo=jnp.zeros((num_t, n + 1), dtype),
      zhi=jnp.zeros((num_t, n + 1), dtype),
      folds_at=jnp.zeros((num_t,), jnp.int32), failed=jnp.asarray(False))

  def cond(s):
    return (~jnp.all(s["found"])) & (~s["failed"]) & (s["attempts"] < max_steps)

  def body(s):
    z, t = s["z"], s["t"]
    zp = z + s["h"] * t
    w, ok, its = corrector(zp, t, s["jz"])
    jw = jac(w)
    t_new = tangent(jw, t)
    cos = t @ t_new
    accept = (ok & (cos >= cos_min) & jnp.all(jnp.isfinite(t_new))
              & jnp.all(jnp.isfinite(jw)))
    fold = accept & (t_new[n] * t[n] < 0)
    cross = accept & (z[n] < lam_t) & (w[n] >= lam_t) & ~s["found"]
    folds_at = s["folds"] + (fold & (t_new[n] > 0)).astype(jnp.int32)
    expand = cross[:, None]
    h_next = jnp.where(
        accept,
        jnp.where((its <= _GROW_ITS) & (cos > _GROW_COS),
                  jnp.minimum(s["h"] * grow, max_step), s["h"]),
        0.5 * s["h"])
    return dict(
        attempts=s["attempts"] + 1,
        steps=s["steps"] + accept.astype(jnp.int32),
        z=jnp.where(accept, w, z), t=jnp.where(accept, t_new, t),
        jz=jnp.where(accept, jw, s["jz"]), h=h_next,
        folds=s["folds"] + fold.astype(jnp.int32),
        found=s["found"] | cross,
        zlo=jnp.where(expand, z, s["zlo"]), zhi=jnp.where(expand, w, s["zhi"]),
        folds_at=jnp.where(cross, folds_at, s["folds_at"]),
        failed=h_next < min_step)

  s = lax.while_loop(cond, body, state)

  def polish(lam, zlo, zhi, found):
    span = zhi[n] - zlo[n]
    frac = jnp.clip((lam - zlo[n]) / jnp.where(span > 0, span, 1.0), 0.0, 1.0)
    y0 = jnp.where(found, zlo[:n] + frac * (zhi[:n] - zlo[:n]), s["z"][:n])
    fix = lambda y: h_fn(jnp.concatenate([y, lam[None]]))
    jac_y = jax.jacfwd(fix)

    def ncond(c):
      it, _, dn = c
      return (it < max_newton) & (dn > polish_tol) & jnp.isfinite(dn)

    def nbody(c):
      it, y, _ = c
      d = jsl.lu_solve(jsl.lu_factor(jac_y(y)), fix(y))
      y = y - d
      return it + 1, y, _max_abs(d) / (1.0 + _max_abs(y))

    _, y, _ = lax.while_loop(ncond, nbody,
                             (jnp.int32(0), y0, jnp.asarray(1.0, dtype)))
    return y, _max_abs(fix(y)), 1.0 + _max_abs(y)

  y, res_h, scale = jax.vmap(polish)(lam_t, s["zlo"], s["zhi"], s["found"])
  limit = (1e3 * eps * scale if tol is None
           else jnp.broadcast_to(jnp.asarray(tol, dtype), scale.shape))
  polished = jnp.isfinite(res_h) & (res_h <= limit)
  status = jnp.where(
      ~s["found"], jnp.where(s["failed"], QRE_STEP_FAILED, QRE_MAX_STEPS),
      jnp.where(~polished, QRE_NOT_CONVERGED,
                jnp.where(s["folds_at"] > 0, QRE_TURNING_POINT, QRE_CONVERGED)))
  status = status.astype(jnp.int32)

  tau_flat = jnp.reshape(tau, (-1,))

  def measures(y_k, tau_k):
    logp = layout.normalize(y_k)
    payoffs = game.payoffs(logp)
    resid = _gaps.fixed_point_residual_from_payoffs(logp, payoffs, tau_k)
    gap = jnp.max(game.qre_gap_per_agent(logp, tau_k, payoffs))
    return logp, resid, gap

  logp, resid, gap = jax.vmap(measures)(y, tau_flat)
  shape = tau.shape
  logp = tuple(jnp.reshape(lp, shape + lp.shape[1:]) for lp in logp)
  reshape = lambda x: jnp.reshape(x, shape)
  return QREResult(
      logp=logp, tau=tau, residual=reshape(resid), qre_gap=reshape(gap),
      status=reshape(status), converged=reshape(status <= QRE_TURNING_POINT),
      num_turning_points=reshape(s["folds_at"]),
      num_steps=jnp.broadcast_to(s["steps"], shape))
