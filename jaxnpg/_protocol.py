"""The one protocol every game type implements.

A game knows its agents' *marginal payoffs* under a joint policy: ``rbar_i`` for a
static game, ``Qbar_i(s, .)`` after exact evaluation for a Markov game. Everything
else (the NPG step, soft best responses, gaps, ``run``, ``solve``, ``sweep``) is
written once on top of :meth:`Game.payoffs` and :attr:`Game.step_scale`, so a new
game type touches one module.

Game types are JAX pytrees whose array fields are leaves and whose sizes are static
auxiliary data, so a batch of games (leading axes on every leaf) can be passed
through ``jax.vmap``.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from jaxnpg import _gaps


class Game(abc.ABC):
  """Base class of all game types.

  Subclasses provide ``num_agents``, ``num_actions``, ``policy_shapes``,
  ``batch_shape``, ``dtype`` and :meth:`payoffs`. Static games inherit the gap
  definitions of eq. (4); Markov games override them.
  """

  num_agents: int
  num_actions: tuple[int, ...]

  @property
  @abc.abstractmethod
  def policy_shapes(self) -> tuple[tuple[int, ...], ...]:
    """Shape of each agent's log-policy for one game: ``(A_i,)`` or ``(S, A_i)``."""

  @property
  @abc.abstractmethod
  def batch_shape(self) -> tuple[int, ...]:
    """Leading batch axes of the game's arrays (``()`` for a single game)."""

  @property
  @abc.abstractmethod
  def dtype(self):
    """Floating dtype of the game's rewards; policies and outputs follow it."""

  @property
  def step_scale(self) -> float:
    """Factor on ``eta`` in the NPG update (1 for static games)."""
    return 1.0

  @abc.abstractmethod
  def payoffs(self, logp):
    """Marginal payoffs of every agent under the joint policy ``exp(logp)``.

    Args:
      logp: tuple of per-agent log-probabilities, ``logp[i].shape ==
        policy_shapes[i]`` (one game, no batch axes).

    Returns:
      Tuple with ``payoffs[i].shape == policy_shapes[i]``.
    """

  def payoffs_at(self, logp, tau):
    """The marginal payoffs that the NPG step and the gaps use at entropy weight ``tau``.

    Static games ignore ``tau`` and return :meth:`payoffs`. A Markov game of the
    ``soft`` convention overrides this: its soft Q-values carry each agent's entropy
    bonus, which scales with ``tau``. Generic code (``npg_step``, ``run``,
    ``solve``, the residuals) calls this, never :meth:`payoffs` directly.
    """
    del tau
    return self.payoffs(logp)

  def astype(self, dtype) -> "Game":
    """The same game with its floating arrays cast to ``dtype`` (a pytree map).

    Used to draw a family's games once (in float32) and run them in any dtype, so
    float32 and float64 sweeps see the same games. Game types whose invariants
    need more than a cast (stochastic rows, ...) override it.
    """
    dtype = jnp.dtype(dtype)
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
        else x, self)

  def reward_range(self) -> tuple[float, float]:
    """``(min, max)`` over all agents' rewards (concrete games only)."""
    raise NotImplementedError(
        f"{type(self).__name__} does not report its reward range.")

  # Gap definitions: static games (eq. 4). Markov games override these.
  def qre_gap_per_agent(self, logp, tau, payoffs=None):
    """Per-agent QRE-gap, shape ``(n,)``; ``payoffs`` may be passed if known."""
    if payoffs is None:
      payoffs = self.payoffs(logp)
    return _gaps.static_qre_gap_per_agent(logp, payoffs, tau)

  def ne_gap_per_agent(self, logp, payoffs=None):
    """Per-agent NE-gap, shape ``(n,)``; ``payoffs`` may be passed if known."""
    if payoffs is None:
      payoffs = self.payoffs(logp)
    return _gaps.static_ne_gap_per_agent(logp, payoffs)
