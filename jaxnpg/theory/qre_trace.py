"""The tracer behind :func:`jaxnpg.qre`: pseudo-arclength continuation of
``H(y, lambda) = y - lambda * C(rbar(softmax(y))) = 0`` from ``(0, 0)``.

Written for one game; state in, state out (:class:`TraceState`), so a trace can be
cut into rounds of step attempts (:func:`advance`) and resumed, which the batched
driver (:mod:`jaxnpg.theory.qre_batch`) uses to drop finished games.

Per attempt: tangent predictor ``z + h t``; chord-Newton corrector on the
pseudo-arclength system ``[H; t.(w - z_p)]`` with the Jacobian of the last point;
then the tangent at the new point from ``[J(w); t^T] t' = e``, so the tangent keeps
its orientation along the curve. A step is **rejected** (and halved) when the
corrector does not contract (each Newton step at most half the previous one), when
the corrected point lies farther than ``_MAX_DIST * h`` from the predictor, or when
the tangent turns by more than ``acos(_COS_MIN)``: these bound the step by the
curvature and keep the corrector in the basin of the curve being followed, so the
trace does not jump to another solution curve.

Events along the curve, from quantities the step computes anyway:

* a **turning point** (fold) where ``dlambda/ds = t[-1]`` changes sign;
* a **branch point** where the sign of ``det [J; t^T]`` changes (a simple branch
  point: two curves cross; ``t`` is continuous along the curve, so this sign is
  constant on regular arcs). Its sign comes from the LU factors of the tangent
  system (``det [J; t'^T]`` and ``det [J; t^T]`` have the same sign).

At a branch point, ``branch="continue"`` follows the smooth curve through it (on a
symmetric game, the symmetric solution curve). ``branch="gambit"`` (the default)
rejects the step and retraces it with the bonus ``_BUMP`` added to the first
agent's first action's logit (``H - delta C(e_00)``), which turns the crossing into
two separate curves; the one through our side is followed for twice the step's
arclength, then the bonus is removed and the corrector lands on the arm that bonus
selects. This is Gambit 17's mechanism (it perturbs its first equation, the first
player's sum-to-one, by 1e-7 for twice the step) with a perturbation that selects
the same arm as Gambit on 2-player symmetric games (Battle of the Sexes,
coordination): the arm on which the first player's first strategy gains.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jax import lax

from jaxnpg.core.coords import Layout

# Step control (see the module docstring). The corrector stops at eps**0.45
# relative (9e-8 in float64) within _MAX_CHORD chord iterations; the step grows by
# _GROW after an easy step (<= _GROW_ITS iterations, turn below acos(_GROW_COS),
# corrector distance below _GROW_DIST * h).
_PATH_TOL_EXPONENT = 0.45
_MAX_CHORD = 6
_COS_MIN, _GROW, _GROW_ITS, _GROW_COS, _MIN_STEP = 0.95, 1.5, 4, 0.99, 1e-9
_MAX_DIST, _GROW_DIST = 0.3, 0.1
# Branch switching: the logit bonus (times the corrector's tolerance: 1.8e-7 in
# float64, about Gambit's 1e-7; 1.5e-3 in float32) and how long it stays on
# (times the length of the step that passed the branch point).
_BUMP, _BUMP_SPAN, _GIVE_UP = 2.0, 2.0, 1e-6

BRANCH_RULES = ("gambit", "continue")


class TraceState(NamedTuple):
  """State of one trace (``n`` logits, ``T`` requested lambdas, ``E`` events).

  Attributes:
    z: ``(n + 1,)`` the current point ``(y, lambda)`` on the curve.
    t: ``(n + 1,)`` unit tangent at ``z``, along the motion.
    jz: ``(n, n + 1)`` Jacobian of ``H`` at ``z``.
    sign: ``()`` sign of ``det [J(z); t^T]`` (float, +-1).
    logdet: ``()`` ``log |det [J(z); t^T]|``.
    h: ``()`` next arclength step.
    attempts, steps: ``()`` int32 step attempts and accepted steps.
    num_folds, num_bifs: ``()`` int32 turning points and branch points passed.
    fold_lam, bif_lam: ``(E,)`` their lambdas in order (NaN beyond the count).
    found: ``(T,)`` whether each requested lambda was crossed.
    zlo, zhi: ``(T, n + 1)`` the accepted step that crossed it.
    folds_at, bifs_at: ``(T,)`` int32 events passed before each crossing.
    failed: ``()`` the step size collapsed.
    pert: ``()`` the logit bonus now on (0 when off).
    pert_left: ``()`` arclength left with the bonus on.
    switching: ``()`` a branch switch is under way and not yet confirmed.
    slack: ``()`` extra corrector distance allowed on the next step (the
      curve moves when the bonus goes on or off).
    zb, tb, jb, sb, lb: ``z, t, jz, sign, logdet`` at the last point before the
      branch point being switched at (where a given-up switch restarts).
  """
  z: jax.Array
  t: jax.Array
  jz: jax.Array
  sign: jax.Array
  logdet: jax.Array
  h: jax.Array
  attempts: jax.Array
  steps: jax.Array
  num_folds: jax.Array
  num_bifs: jax.Array
  fold_lam: jax.Array
  bif_lam: jax.Array
  found: jax.Array
  zlo: jax.Array
  zhi: jax.Array
  folds_at: jax.Array
  bifs_at: jax.Array
  failed: jax.Array
  pert: jax.Array
  pert_left: jax.Array
  switching: jax.Array
  slack: jax.Array
  zb: jax.Array
  tb: jax.Array
  jb: jax.Array
  sb: jax.Array
  lb: jax.Array


def residual_map(game, layout: Layout):
  """``H(z) = y - lambda * C(rbar(softmax(y)))`` with ``z = (y, lambda)``."""
  n = layout.size

  def h(z):
    y, lam = z[:n], z[n]
    q = layout.flatten(game.payoffs(layout.normalize(y)))
    return y - lam * layout.centre(q.astype(y.dtype))
  return h


def _max_abs(x):
  return jnp.max(jnp.abs(x))


def _det_parts(lu, piv):
  """Sign and log|det| of a matrix from its LU factors."""
  d = jnp.diagonal(lu)
  swaps = jnp.sum(piv != jnp.arange(piv.shape[0], dtype=piv.dtype))
  sign = jnp.prod(jnp.sign(d)) * jnp.where(swaps % 2 == 1, -1.0, 1.0)
  return sign.astype(lu.dtype), jnp.sum(jnp.log(jnp.abs(d)))


class Tracer:
  """The step of the continuation for one game (built inside ``jit``)."""

  def __init__(self, game, lam_t, *, branch: str = "gambit", max_events: int = 16):
    self.dtype = game.dtype
    self.layout = Layout(game.policy_shapes)
    self.n = n = self.layout.size
    self.lam_t = lam_t
    self.gambit = branch == "gambit"
    self.max_events = max_events
    eps = float(np.finfo(self.dtype).eps)
    self.path_tol = eps ** _PATH_TOL_EXPONENT
    self.delta = _BUMP * self.path_tol
    self.h_fn = residual_map(game, self.layout)
    self.jac = jax.jacfwd(self.h_fn)
    self.e_last = jnp.zeros((n + 1,), self.dtype).at[n].set(1.0)
    first = jnp.zeros((n,), self.dtype).at[0].set(1.0)
    self.bump = -self.layout.centre(first)

  def tangent(self, jw, t_prev):
    """Unit tangent at a point with Jacobian ``jw``, oriented like ``t_prev``,
    and the sign and log|det| of ``[jw; t_prev^T]``."""
    lu, piv = jsl.lu_factor(jnp.concatenate([jw, t_prev[None]], axis=0))
    u = jsl.lu_solve((lu, piv), self.e_last)
    sign, logdet = _det_parts(lu, piv)
    return u / jnp.linalg.norm(u), sign, logdet

  def corrector(self, zp, t, jz, pert):
    """Chord Newton on ``[H + pert * bump; t.(w - zp)] = 0`` from ``zp``."""
    lu = jsl.lu_factor(jnp.concatenate([jz, t[None]], axis=0))
    path_tol, max_chord = self.path_tol, _MAX_CHORD

    def cond(c):
      it, _, _, flag = c
      return (flag == 0) & (it < max_chord)

    def body(c):
      it, w, dn_prev, _ = c
      r = jnp.concatenate([self.h_fn(w) + pert * self.bump, (t @ (w - zp))[None]])
      d = jsl.lu_solve(lu, r)
      w = w - d
      dn = _max_abs(d)
      conv = dn <= path_tol * (1.0 + _max_abs(w))
      bad = ~jnp.isfinite(dn) | ((it > 0) & (dn > 0.5 * dn_prev))
      flag = jnp.where(conv, 1, jnp.where(bad, 2, 0)).astype(jnp.int32)
      return it + 1, w, dn, flag

    init = (jnp.int32(0), zp, jnp.asarray(jnp.inf, self.dtype), jnp.int32(0))
    it, w, _, flag = lax.while_loop(cond, body, init)
    return w, flag == 1, it

  def init(self, first_step) -> TraceState:
    """The trace at ``lambda = 0`` (uniform play), heading to larger lambda."""
    n, e, dt = self.n, self.max_events, self.dtype
    num_t = self.lam_t.shape[0]
    z0 = jnp.zeros((n + 1,), dt)
    j0 = self.jac(z0)
    t0, sign0, logdet0 = self.tangent(j0, self.e_last)
    i0 = jnp.int32(0)
    return TraceState(
        z=z0, t=t0, jz=j0, sign=sign0, logdet=logdet0,
        h=jnp.asarray(first_step, dt), attempts=i0, steps=i0, num_folds=i0,
        num_bifs=i0, fold_lam=jnp.full((e,), jnp.nan, dt),
        bif_lam=jnp.full((e,), jnp.nan, dt), found=jnp.zeros((num_t,), bool),
        zlo=jnp.zeros((num_t, n + 1), dt), zhi=jnp.zeros((num_t, n + 1), dt),
        folds_at=jnp.zeros((num_t,), jnp.int32),
        bifs_at=jnp.zeros((num_t,), jnp.int32), failed=jnp.asarray(False),
        pert=jnp.zeros((), dt), pert_left=jnp.zeros((), dt),
        switching=jnp.asarray(False), slack=jnp.zeros((), dt),
        zb=z0, tb=t0, jb=j0, sb=sign0, lb=logdet0)

  def running(self, s: TraceState):
    """Whether the trace still has a requested lambda to reach."""
    return (~jnp.all(s.found)) & (~s.failed)

  def attempt(self, s: TraceState, max_step) -> TraceState:
    """One predictor-corrector attempt: accepted, or rejected with a smaller step."""
    zp = s.z + s.h * s.t
    w, ok, its = self.corrector(zp, s.t, s.jz, s.pert)
    dist = jnp.linalg.norm(w - zp)
    jw = self.jac(w)
    t_new, sign_w, logdet_w = self.tangent(jw, s.t)
    cos = s.t @ t_new
    good = (ok & ((cos >= _COS_MIN) | (s.slack > 0))
            & (dist <= _MAX_DIST * s.h + s.slack)
            & jnp.all(jnp.isfinite(t_new)) & jnp.all(jnp.isfinite(jw))
            & jnp.isfinite(logdet_w))
    flip = good & (sign_w != s.sign)
    perturbing = s.pert != 0
    if self.gambit:
      start = flip & ~perturbing & ~s.switching    # a new branch point: switch
      redo = flip & perturbing                     # the other curve: smaller step
      accept = good & ~start & ~redo
      new_bif = start
    else:
      start = jnp.asarray(False)
      accept, new_bif = good, flip
    easy = (its <= _GROW_ITS) & (cos > _GROW_COS) & (dist <= _GROW_DIST * s.h)
    h_next = jnp.where(accept, jnp.where(easy, jnp.minimum(s.h * _GROW, max_step),
                                         s.h), 0.5 * s.h)
    s = self._record(s, w, t_new, sign_w, logdet_w, accept, new_bif)
    pick = lambda new, old: jnp.where(accept, new, old)
    moved = s._replace(
        z=pick(w, s.z), t=pick(t_new, s.t), jz=pick(jw, s.jz),
        sign=pick(sign_w, s.sign), logdet=pick(logdet_w, s.logdet), h=h_next,
        attempts=s.attempts + 1, steps=s.steps + accept.astype(jnp.int32))
    if not self.gambit:
      return moved._replace(failed=h_next < _MIN_STEP)
    return self._switch(s, moved, accept, start, flip, perturbing)

  def _record(self, s: TraceState, w, t_new, sign_w, logdet_w, accept, new_bif):
    """Events of the step ``s.z -> w`` and crossings of the requested lambdas."""
    n, e = self.n, self.max_events
    # The branch point's lambda, where det [J; t^T] vanishes (linear in s).
    m = jnp.maximum(s.logdet, logdet_w)
    d0, d1 = s.sign * jnp.exp(s.logdet - m), sign_w * jnp.exp(logdet_w - m)
    frac = jnp.clip(d0 / jnp.where(d0 != d1, d0 - d1, 1.0), 0.0, 1.0)
    lam_b = s.z[n] + frac * (w[n] - s.z[n])
    # A turning point: dlambda/ds changes sign; its lambda from a parabola.
    a, b = s.t[n], t_new[n]
    fold = accept & (a * b < 0)
    lam_f = s.z[n] + 0.5 * a * (-a * s.h / jnp.where(b != a, b - a, 1.0))
    num_bifs = s.num_bifs + new_bif.astype(jnp.int32)
    lam_t = self.lam_t
    cross = accept & (s.z[n] < lam_t) & (w[n] >= lam_t) & ~s.found
    folds_at = s.num_folds + (fold & (b > 0)).astype(jnp.int32)
    # Branch points passed before each crossing: by their lambdas (a switch
    # retraces the step that found one, and can cross a lambda below it).
    bif_lam = s.bif_lam.at[jnp.where(new_bif, s.num_bifs, e)].set(lam_b, mode="drop")
    bifs_at = num_bifs - jnp.sum(bif_lam[None, :] >= lam_t[:, None], axis=1,
                                 dtype=jnp.int32)
    expand = cross[:, None]
    return s._replace(
        num_folds=s.num_folds + fold.astype(jnp.int32), num_bifs=num_bifs,
        fold_lam=s.fold_lam.at[jnp.where(fold, s.num_folds, e)].set(
            lam_f, mode="drop"),
        bif_lam=bif_lam,
        found=s.found | cross, zlo=jnp.where(expand, s.z, s.zlo),
        zhi=jnp.where(expand, w, s.zhi),
        folds_at=jnp.where(cross, folds_at, s.folds_at),
        bifs_at=jnp.where(cross, bifs_at, s.bifs_at))

  def _switch(self, s: TraceState, moved: TraceState, accept, start, flip,
              perturbing) -> TraceState:
    """The bonus of ``branch="gambit"``: on at a new branch point (the last point
    before it kept), off after ``_BUMP_SPAN`` times the detecting step; given up
    when the step collapses while it is on: then the trace goes back to the kept
    point and passes the branch point as ``branch="continue"`` does."""
    h_detect = s.pert_left / _BUMP_SPAN
    give_up = perturbing & ~accept & (moved.h < _GIVE_UP * h_detect)
    left = jnp.where(give_up, 0.0, s.pert_left - jnp.where(accept, s.h, 0.0))
    pert = jnp.where(start, self.delta, jnp.where(left <= 0, 0.0, s.pert))
    off = accept & perturbing & (pert == 0)
    keep = lambda new, old: jnp.where(start, new, old)
    back = lambda kept, cur: jnp.where(give_up, kept, cur)
    return moved._replace(
        z=back(s.zb, moved.z), t=back(s.tb, moved.t), jz=back(s.jb, moved.jz),
        sign=back(s.sb, moved.sign), logdet=back(s.lb, moved.logdet),
        h=jnp.where(give_up, h_detect, moved.h),
        failed=~give_up & (moved.h < _MIN_STEP), pert=pert,
        pert_left=jnp.where(start, _BUMP_SPAN * s.h, jnp.maximum(left, 0.0)),
        switching=start | (s.switching & ~(accept & ~perturbing & ~flip)),
        slack=jnp.where(start | off, _MAX_DIST * s.h,
                        jnp.where(accept | give_up, 0.0, s.slack)),
        zb=keep(s.z, s.zb), tb=keep(s.t, s.tb), jb=keep(s.jz, s.jb),
        sb=keep(s.sign, s.sb), lb=keep(s.logdet, s.lb))


def advance(tracer: Tracer, s: TraceState, max_step, limit) -> TraceState:
  """Step attempts until every requested lambda is crossed, the step collapses or
  ``s.attempts`` reaches ``limit``."""
  def cond(s):
    return tracer.running(s) & (s.attempts < limit)
  return lax.while_loop(cond, lambda s: tracer.attempt(s, max_step), s)
