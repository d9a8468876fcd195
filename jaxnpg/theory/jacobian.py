"""The NPG map linearised: Jacobians on centred log-policies and the exact local rate.

Coordinates (docs/spec.md): the NPG map ``F`` acts on centred log-policies (each agent's
mean subtracted), a space of dimension ``d = sum_i (A_i - 1)`` for a static game.
Jacobians here are ``d x d`` matrices in the orthonormal basis ``Q`` of that space
(:func:`centred_basis`), computed with ``jax.jacfwd``; there
``J = (1 - eta s tau) I + eta s M`` with ``M`` the derivative of the centred
payoffs and ``s = game.step_scale``. ``M`` does not depend on ``eta``, so one
eigen-decomposition per ``(game, tau)`` gives the rate for every step size:
``rho(J) = max_k |1 - eta s (tau - mu_k)|`` over the eigenvalues ``mu_k`` of ``M``.
:func:`local_rate` reads ``rho(J)`` at a QRE: the exact asymptotic rate near it
(docs/spec.md, "Local rate"); ``rho(J) < 1`` means the QRE attracts the iteration at that
rate, ``rho(J) > 1`` that it repels.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.coords import Layout
from jaxnpg.core.step import npg_update, scaled_eta
from jaxnpg.core.validation import check_eta, check_tau
from jaxnpg.theory.logit import QREResult


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
  eta_eff = scaled_eta(game, eta)

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


def stability(mu, tau, step_scale):
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
  ``rho(J) > 1`` means the QRE repels the iteration (docs/spec.md, "Local rate"). It is
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
  mu = eigs_at(game, tau, tuple(jnp.asarray(lp, dtype) for lp in logp),
                eig_on_host=eig_on_host)
  max_re, eta_max = stability(mu, tau, game.step_scale)
  mu_e = jnp.reshape(mu, p + (1,) * len(extra) + mu.shape[-1:])
  tau_e = jnp.reshape(tau, p + (1,) * len(extra))
  rho = rates_from_eigenvalues(mu_e, tau_e, eta_b, game.step_scale)
  return LocalRate(rho=rho, attracting=rho < 1, eigenvalues=mu, max_real=max_re,
                   eta_max=eta_max)


@functools.partial(jax.jit, static_argnames=("eig_on_host",))
def eigs_at(game, tau, logp, eig_on_host):
  """Eigenvalues of ``M`` at every point, ``P + (d,)``."""
  p = tau.shape
  flat_lp = tuple(jnp.reshape(lp, (-1,) + lp.shape[len(p):]) for lp in logp)
  m = jax.vmap(lambda lp, t: payoff_jacobian(game, lp, t))(
      flat_lp, jnp.reshape(tau, (-1,)))
  mu = eigvals(m, on_host=eig_on_host)
  return jnp.reshape(mu, p + mu.shape[-1:])

