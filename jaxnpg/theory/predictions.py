"""Theory tools: Theorem 3.3, the exact local rate at a QRE, predicted boundaries.

Three questions about the NPG iteration of eq. (2), answered without running it:

* :func:`theorem_3_3`: do the paper's sufficient conditions hold, and what rate and
  bound do they give? (Stated for rewards in ``[0, 1]``; here for the game's real
  reward range.)
* :func:`local_rate`: the spectral radius ``rho(J)`` of the Jacobian of the NPG map
  at a QRE, the exact asymptotic rate near it (SPEC, "Local rate"): ``rho(J) < 1``
  means the QRE attracts the iteration at that rate, ``rho(J) > 1`` that it repels.
* :func:`predicted_rates` / :func:`predicted_boundary`: the same for a batch of games
  over grids of ``tau`` and ``eta``, at the QRE on Gambit's principal branch
  (:func:`jaxnpg.qre`): arrays the sweep plots draw beside the observed rates.

Coordinates (SPEC): the NPG map ``F`` acts on centred log-policies (each agent's
mean subtracted), a space of dimension ``d = sum_i (A_i - 1)`` for a static game.
Jacobians here are ``d x d`` matrices in the orthonormal basis ``Q`` of that space
(:func:`centred_basis`), computed with ``jax.jacfwd``; there
``J = (1 - eta s tau) I + eta s M`` with ``M`` the derivative of the centred
payoffs and ``s = game.step_scale``. ``M`` does not depend on ``eta``, so one
eigen-decomposition per ``(game, tau)`` gives the rate for every step size:
``rho(J) = max_k |1 - eta s (tau - mu_k)|`` over the eigenvalues ``mu_k`` of ``M``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import gaps as _gaps
from jaxnpg.core.coords import Layout
from jaxnpg.core.step import npg_update
from jaxnpg.core.policy import uniform_policy
from jaxnpg.theory.logit import QREResult, check_qre_tau, qre
from jaxnpg.sweeps.seeding import family_game
from jaxnpg.core.validation import (check_eta, check_policy, check_positive_int,
                                check_tau)

__all__ = [
    "Boundary",
    "LocalRate",
    "PredictedRates",
    "Theorem33",
    "centred_basis",
    "eigvals",
    "local_rate",
    "npg_jacobian",
    "payoff_jacobian",
    "predicted_boundary",
    "predicted_rates",
    "rates_from_eigenvalues",
    "theorem_3_3",
]


# --------------------------------------------------------------------------
# Theorem 3.3
# --------------------------------------------------------------------------

class Theorem33(NamedTuple):
  """What Theorem 3.3 says for one game, ``tau`` and ``eta`` (arrays broadcast).

  Attributes:
    holds: bool, all conditions hold: ``tau > tau_min``, ``eta < eta_max`` and
      ``eta * tau <= 1`` (the paper's standing assumption, which its proof uses).
    rho: ``1 - eta tau + 2 eta W S``, the theorem's contraction factor (``< 1``
      exactly when ``tau > tau_min``).
    tau_min: ``2 W S``; the theorem needs ``tau`` above it.
    eta_max: ``1 / (tau - 2 W S)`` (``inf`` where ``tau <= tau_min``).
    d0: ``max_i ||log pi_i^0 - log pi_i^{0*}||_inf`` at the start.
    bound: ``2 tau rho^k d0`` for ``k = 0 .. num_iters``, shape
      ``broadcast(tau, eta).shape + (num_iters + 1,)``: the theorem's bound on
      ``QRE-gap^k`` (meaningful only where ``holds``).
    width: ``W``, the reward range width the theorem was applied with.
    sum_actions: ``S = sum_i A_i``.
  """
  holds: Any
  rho: Any
  tau_min: float
  eta_max: Any
  d0: Any
  bound: Any
  width: float
  sum_actions: int


def theorem_3_3(game, tau, eta, *, init=None, num_iters: int = 0,
                reward_range=None) -> Theorem33:
  """Theorem 3.3 of the paper, for the game's real reward range.

  The paper assumes rewards in ``[0, 1]``: with ``S = sum_i A_i``, ``tau > 2S`` and
  ``eta < 1/(tau - 2S)`` give ``QRE-gap^k <= 2 tau rho^k d0`` with
  ``rho = 1 - eta tau + 2 eta S``. Adding a constant to an agent's rewards changes
  nothing, and rewards in ``[lo, hi]`` with width ``W = hi - lo`` are rewards in
  ``[0, 1]`` at ``(tau / W, eta W)``, so the theorem holds with ``S`` replaced by
  ``W S``: ``tau > 2 W S``, ``eta < 1/(tau - 2 W S)``,
  ``rho = 1 - eta tau + 2 eta W S``, and the same bound. ``W = 1`` is the paper's
  statement literally (pass ``reward_range=(0, 1)``). Its proof also uses
  ``eta tau <= 1`` (the paper's standing assumption), which ``holds`` includes.

  For the paper's random (3, 4, 5) game this asks for ``tau > 24`` while NPG
  converges already near ``tau = 0.1``: see :func:`local_rate` for the exact rate.

  Args:
    game: one static game with concrete rewards (``game.reward_range()``).
    tau: entropy weight(s), ``>= 0``.
    eta: step size(s), ``> 0``; broadcast against ``tau``.
    init: the start ``pi^0`` (default uniform), for ``d0`` and the bound curve.
    num_iters: length of the bound curve (``bound`` has ``num_iters + 1`` points).
    reward_range: ``(lo, hi)`` to use instead of the game's own range.

  Returns:
    A :class:`Theorem33` (arrays shaped like ``broadcast(tau, eta)``).

  Raises:
    ValueError: ``tau < 0``, ``eta <= 0``, a batched or Markov game, a bad range.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> th = jaxnpg.theory.theorem_3_3(game, 0.1, 0.02, reward_range=(0, 1))
    >>> bool(th.holds), th.tau_min
    (False, 24.0)
    >>> th = jaxnpg.theory.theorem_3_3(game, 30.0, 0.03, num_iters=100)
    >>> bool(th.holds), th.bound.shape
    (True, (101,))
  """
  check_tau(tau)
  check_eta(eta)
  num_iters = check_positive_int(num_iters, "num_iters", allow_zero=True)
  if game.batch_shape:
    raise ValueError(
        f"`theorem_3_3` takes one game, got a batch of shape {game.batch_shape}.")
  if not game.is_static:
    raise ValueError(
        "Theorem 3.3 is stated for static games; this game has state-dependent "
        f"policies of shapes {game.policy_shapes}.")
  if reward_range is None and not game.has_reward_range:
    raise ValueError(
        f"{type(game).__name__} does not report its reward range; pass "
        "`reward_range=(lo, hi)`.")
  lo, hi = game.reward_range() if reward_range is None else reward_range
  lo, hi = float(lo), float(hi)
  if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
    raise ValueError(f"`reward_range` must be finite (lo, hi) with lo <= hi, got "
                     f"{(lo, hi)}.")
  width = hi - lo
  s = sum(int(a) for a in game.num_actions)
  tau_min = 2.0 * width * s
  dtype = game.dtype
  tau_a = jnp.asarray(tau, dtype)
  eta_a = jnp.asarray(eta, dtype)
  tau_b, eta_b = jnp.broadcast_arrays(tau_a, eta_a)
  excess = tau_b - tau_min
  eta_max = jnp.where(excess > 0, 1.0 / jnp.where(excess > 0, excess, 1.0),
                      jnp.inf)
  holds = (excess > 0) & (eta_b < eta_max) & (eta_b * tau_b <= 1.0)
  rho = 1.0 - eta_b * excess

  logp0 = uniform_policy(game) if init is None else init
  check_policy(game, logp0, batched=False)
  logp0 = tuple(jnp.asarray(lp, dtype) for lp in logp0)
  d0, bound = _theorem_curves(game, logp0, tau_b, rho, num_iters=num_iters)
  return Theorem33(holds=holds, rho=rho, tau_min=tau_min, eta_max=eta_max, d0=d0,
                   bound=bound, width=width, sum_actions=s)


@functools.partial(jax.jit, static_argnames=("num_iters",))
def _theorem_curves(game, logp0, tau, rho, *, num_iters):
  """``d0`` per ``tau`` and the bound ``2 tau rho^k d0``, ``k = 0..num_iters``."""
  payoffs = game.payoffs(logp0)
  d0 = jax.vmap(lambda t: _gaps.fixed_point_residual_from_payoffs(
      logp0, payoffs, t))(jnp.reshape(tau, (-1,))).reshape(tau.shape)
  k = jnp.arange(num_iters + 1, dtype=tau.dtype)
  bound = (2.0 * tau[..., None] * d0[..., None]
           * jnp.power(jnp.maximum(rho, 0.0)[..., None], k))
  return d0, bound


# --------------------------------------------------------------------------
# Jacobians on centred log-policies
# --------------------------------------------------------------------------

def centred_basis(game) -> jax.Array:
  """Orthonormal basis ``Q`` of the centred log-policies, shape ``(N, d)``.

  ``N`` is the number of policy entries (agents' flattened log-policies,
  concatenated), ``d = N - (number of simplices)``. Jacobians in this module are
  ``Q^T (dF) Q``.
  """
  return Layout(game.policy_shapes).basis(game.dtype)


def _flat_point(game, logp):
  layout = Layout(game.policy_shapes)
  y0 = layout.flatten(tuple(jnp.asarray(lp, game.dtype) for lp in logp))
  return layout, y0, layout.basis(game.dtype)


@jax.jit
def npg_jacobian(game, logp, tau, eta) -> jax.Array:
  """Jacobian of one NPG step (eq. 2) on centred log-policies, ``(d, d)``.

  Differentiates ``jaxnpg``'s own update (``jax.jacfwd``), in the orthonormal basis
  of :func:`centred_basis`, at the log-policy ``logp`` (any point, not only a QRE).

  Args:
    game: one game.
    logp: tuple of log-policies (finite entries).
    tau: entropy weight, scalar.
    eta: step size, scalar.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> jaxnpg.theory.npg_jacobian(game, jaxnpg.uniform_policy(game), 0.5, 0.1).shape
    (9, 9)
  """
  layout, y0, q = _flat_point(game, logp)
  dtype = game.dtype
  tau = jnp.asarray(tau, dtype)
  eta_eff = jnp.asarray(eta, dtype) * game.step_scale

  def f(u):
    lp = layout.normalize(y0 + q @ u)
    new = npg_update(lp, game.payoffs(lp, tau), tau, eta_eff)
    return q.T @ layout.flatten(new)

  return jax.jacfwd(f)(jnp.zeros((q.shape[1],), dtype))


@jax.jit
def payoff_jacobian(game, logp, tau=0.0) -> jax.Array:
  """``M``: derivative of the centred payoffs w.r.t. centred log-policies, ``(d, d)``.

  The NPG Jacobian is ``(1 - eta s tau) I + eta s M`` (``s = game.step_scale``).
  ``tau`` matters only for games whose payoffs depend on it (soft Markov games).
  """
  layout, y0, q = _flat_point(game, logp)
  tau = jnp.asarray(tau, game.dtype)

  def f(u):
    lp = layout.normalize(y0 + q @ u)
    return q.T @ layout.flatten(game.payoffs(lp, tau))

  return jax.jacfwd(f)(jnp.zeros((q.shape[1],), game.dtype))


def _host_eigvals(m):
  m = np.asarray(m)
  return np.linalg.eigvals(m).astype(np.result_type(m.dtype, np.complex64))


def eigvals(m, *, on_host: bool | None = None) -> jax.Array:
  """Eigenvalues of (a batch of) square matrices, ``(..., d, d) -> (..., d)``.

  JAX computes non-symmetric eigenvalues on CPU only; elsewhere (``on_host=None``
  and a non-CPU default backend, or ``on_host=True``) they are computed by NumPy on
  the host through ``jax.pure_callback``, which works under ``jit`` and ``vmap``.
  """
  if on_host is None:
    on_host = jax.default_backend() != "cpu"
  if not on_host:
    return jnp.linalg.eigvals(m)
  ctype = jnp.result_type(m.dtype, jnp.complex64)
  out = jax.ShapeDtypeStruct(m.shape[:-1], ctype)
  return jax.pure_callback(_host_eigvals, out, m, vmap_method="expand_dims")


def rates_from_eigenvalues(mu, tau, eta, step_scale=1.0):
  """``rho(J) = max_k |1 - eta s (tau - mu_k)|`` from the eigenvalues of ``M``.

  Args:
    mu: ``(..., d)`` eigenvalues of :func:`payoff_jacobian` at a QRE.
    tau: broadcastable to ``mu.shape[:-1]``.
    eta: broadcastable to ``mu.shape[:-1]`` (add trailing axes to ``mu[..., None, :]``
      for several step sizes per point).
    step_scale: ``game.step_scale``.

  Returns:
    ``rho`` with the broadcast shape (``1`` where ``d = 0``: no directions).
  """
  mu = jnp.asarray(mu)
  a = 1.0 - jnp.asarray(eta)[..., None] * step_scale * (
      jnp.asarray(tau)[..., None] - mu)
  return jnp.max(jnp.abs(a), axis=-1, initial=0.0)


def _stability(mu, tau, step_scale):
  """``(max Re mu, eta_max)``: the largest converging step size, 0 if none."""
  re = jnp.real(mu)
  gap = jnp.asarray(tau)[..., None] - mu
  gap_re = jnp.real(gap)
  per_mode = 2.0 * gap_re / jnp.maximum(jnp.abs(gap) ** 2,
                                        jnp.finfo(re.dtype).tiny)
  eta_max = jnp.min(per_mode, axis=-1, initial=jnp.inf) / step_scale
  max_re = jnp.max(re, axis=-1, initial=-jnp.inf)
  return max_re, jnp.where(max_re < tau, eta_max, 0.0)


class LocalRate(NamedTuple):
  """The NPG iteration linearised at an equilibrium (see :func:`local_rate`).

  Attributes:
    rho: spectral radius of the NPG Jacobian, the asymptotic rate of the distance
      to the QRE (the QRE-gap falls like ``rho**2``).
    attracting: ``rho < 1``.
    eigenvalues: ``(..., d)`` complex eigenvalues ``mu_k`` of ``M``.
    max_real: ``max_k Re mu_k``; ``>= tau`` means no step size converges.
    eta_max: the largest step size at which the equilibrium attracts,
      ``min_k 2 (tau - Re mu_k) / |tau - mu_k|^2 / s`` (0 when none does).
  """
  rho: Any
  attracting: Any
  eigenvalues: Any
  max_real: Any
  eta_max: Any


def local_rate(game, tau, eta, qre, *, eig_on_host: bool | None = None
               ) -> LocalRate:
  """Exact local rate of NPG at a QRE: the spectral radius of the NPG Jacobian.

  At a fixed point ``x*`` of the NPG map, ``rho(J)`` with ``J = dF/dx(x*)`` is the
  asymptotic linear rate of ``||x^k - x*||`` for starts close enough to ``x*``;
  ``rho(J) > 1`` means the QRE repels the iteration (SPEC, "Local rate"). It is
  local: the run may still go to another QRE or cycle.

  Args:
    game: one game.
    tau: entropy weight(s), shape ``P`` (scalar or any shape).
    eta: step size(s): broadcastable to ``P``, or with extra trailing axes for
      several step sizes per ``tau`` (``eta[None, :]`` for a grid of ``E`` step
      sizes at every ``tau`` of a 1-D ``P``); ``rho`` takes ``eta``'s shape then.
    qre: the equilibrium: a :class:`jaxnpg.QREResult` of the same ``tau`` or a
      log-policy tuple with ``logp[i].shape == P + (A_i,)``.
    eig_on_host: where to compute eigenvalues (see :func:`eigvals`).

  Returns:
    A :class:`LocalRate`; ``rho`` and ``attracting`` have shape
    ``broadcast(P, eta.shape)`` (leading), the rest shape ``P`` (``+ (d,)``).

  Raises:
    ValueError: ``eta <= 0``, ``tau < 0``, shapes that disagree.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
    >>> eq = jaxnpg.qre(game, jnp.array([1.0, 0.1]))
    >>> lr = jaxnpg.local_rate(game, eq.tau, jnp.array([[0.05, 20.0]]), eq)
    >>> lr.rho.shape, lr.attracting.tolist()
    ((2, 2), [[True, False], [True, False]])
    >>> bool(lr.eta_max[1] > 1.0)   # at tau = 0.1 steps up to eta_max converge
    True
  """
  check_tau(tau)
  check_eta(eta)
  logp = qre.logp if isinstance(qre, QREResult) else tuple(qre)
  dtype = game.dtype
  tau = jnp.asarray(tau, dtype)
  eta = jnp.asarray(eta, dtype)
  p = tau.shape
  for i, (lp, shape) in enumerate(zip(logp, game.policy_shapes)):
    if tuple(jnp.shape(lp)) != p + tuple(shape):
      raise ValueError(
          f"Agent {i}'s equilibrium has shape {tuple(jnp.shape(lp))}, expected "
          f"tau's shape {p} + {tuple(shape)}.")
  if len(logp) != game.num_agents:
    raise ValueError(
        f"The equilibrium has {len(logp)} agents but the game has "
        f"{game.num_agents}.")
  if eta.ndim < len(p):
    eta_b = jnp.broadcast_to(eta, p)
    extra = ()
  else:
    lead = eta.shape[:len(p)]
    try:
      np.broadcast_shapes(lead, p)
    except ValueError:
      raise ValueError(
          f"`eta` of shape {eta.shape} does not broadcast against tau's shape "
          f"{p} (extra trailing axes are per-tau step-size grids).") from None
    extra = eta.shape[len(p):]
    eta_b = jnp.broadcast_to(eta, p + extra)
  mu = _eigs_at(game, tau, tuple(jnp.asarray(lp, dtype) for lp in logp),
                eig_on_host=eig_on_host)
  max_re, eta_max = _stability(mu, tau, game.step_scale)
  mu_e = jnp.reshape(mu, p + (1,) * len(extra) + mu.shape[-1:])
  tau_e = jnp.reshape(tau, p + (1,) * len(extra))
  rho = rates_from_eigenvalues(mu_e, tau_e, eta_b, game.step_scale)
  return LocalRate(rho=rho, attracting=rho < 1, eigenvalues=mu, max_real=max_re,
                   eta_max=eta_max)


@functools.partial(jax.jit, static_argnames=("eig_on_host",))
def _eigs_at(game, tau, logp, eig_on_host):
  """Eigenvalues of ``M`` at every point, ``P + (d,)``."""
  p = tau.shape
  flat_lp = tuple(jnp.reshape(lp, (-1,) + lp.shape[len(p):]) for lp in logp)
  m = jax.vmap(lambda lp, t: payoff_jacobian(game, lp, t))(
      flat_lp, jnp.reshape(tau, (-1,)))
  mu = eigvals(m, on_host=eig_on_host)
  return jnp.reshape(mu, p + mu.shape[-1:])


# --------------------------------------------------------------------------
# Batched predictions for sweeps and plots
# --------------------------------------------------------------------------

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
    mu = _eigs_at(g, taus, eq.logp, eig_on_host=eig_on_host)
    scale = g.step_scale
    rho = rates_from_eigenvalues(mu[..., None, :], taus[:, None], etas, scale)
    rho = jnp.where(eq.converged[..., None], rho, jnp.nan)
    max_re, eta_max = _stability(mu, taus, scale)
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
    mu = _eigs_at(g, t, eq.logp, eig_on_host=eig_on_host)
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
    ValueError: the sweep was not made from a family, or a ``tau <= 0``.
  """
  attrs = result.attrs
  if attrs.get("source", "family") != "family" or not attrs.get("family"):
    raise ValueError("Predictions need a family sweep (games rebuilt from a seed).")
  count = min(int(result.shape[0]), int(max_games))
  games, _ = jax.vmap(lambda i: family_game(
      attrs["family"], int(attrs["seed"]), i, tuple(attrs["num_actions"]),
      attrs.get("family_options") or None))(jnp.arange(count))
  return predicted_rates(games, np.asarray(result.tau),
                         np.asarray(result.step_size), **qre_options)
