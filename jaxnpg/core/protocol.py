"""The one protocol every game type implements.

A game knows its agents' *marginal payoffs* under a joint policy at an entropy
weight: ``rbar_i`` for a static game (``tau`` unused), ``Qbar_i(s, .)`` after exact
evaluation for a Markov game. Everything else (the NPG step, soft best responses,
gaps, ``run``, ``solve``, ``sweep``) is written once on top of
:meth:`Game.payoffs` and :attr:`Game.step_scale`, so a new game type touches one
module.

Optional abilities (sampling rewards, a dense form, a reward range) and facts
about the game type (static or not, payoffs that depend on ``tau``, what its
QRE-gap measures) are *declared* as class attributes of :class:`Game`, with safe
defaults that a type having the ability overrides; callers read the declaration
and never probe for a method.

Game types are JAX pytrees whose array fields are leaves and whose sizes are static
auxiliary data, so a batch of games (leading axes on every leaf) can be passed
through ``jax.vmap``.
"""

from __future__ import annotations

import abc
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from jaxnpg.core import gaps as _gaps
from jaxnpg.core import tolerance as _tolerance


@runtime_checkable
class LoopForm(Protocol):
  """What the one NPG loop (:func:`jaxnpg.loop.iterate.iterate`) needs of a game.

  A game is its own loop form (one game, action axis last, batched by plain
  ``vmap``); a game type with a faster layout returns another object with these
  members from :meth:`Game.loop_form` (``NormalFormGame``: the dense game with
  the action axes first and any batch axes LAST, ``batch_last = True``, so
  ``jax.vmap(jaxnpg.run)`` runs a batch as one batch-last loop).

  Attributes:
    dtype: the floating dtype of the computation.
    batch_shape: batch axes of the form's arrays (trailing when
      ``batch_last``, leading otherwise; ``()`` for one game).
    policy_shapes: each agent's log-policy shape for one game.
    step_scale: the factor on ``eta`` (:func:`jaxnpg.core.step.scaled_eta`).
    action_axis: the action axis of the form's policies and payoffs (``-1``, or
      ``0`` for a batch-last form).
    batch_last: leaves may carry trailing batch axes (see
      :mod:`jaxnpg.loop.batch_last`).
    cell_weight: how many cells of a small dense game one cell of this form
      counts as when the batch-last loop cuts a batch into blocks and parts
      (1 for dense games; more for a Markov game, whose cell holds a
      transition tensor).
  """
  dtype: Any
  batch_shape: tuple[int, ...]
  policy_shapes: tuple[tuple[int, ...], ...]
  step_scale: Any
  action_axis: int
  batch_last: bool
  cell_weight: int

  def loop_ready(self) -> LoopForm:
    """The form with values the loop computes once, before its first step."""

  def loop_payoffs(self, logp, probs, tau):
    """The marginal payoffs, given also the probabilities ``exp(logp)``."""

  def loop_gaps(self, logp, probs, payoffs, tau):
    """``(QRE-gap, NE-gap)`` of every agent from known payoffs, ``(n, *batch)``."""

  def loop_payoff_size(self, payoffs):
    """Every agent's ``Q_i = max |payoff_i|`` (finite entries), ``(n, *batch)``:
    the scale of its tolerance."""

  def loop_valid(self):
    """Whether the form's arrays make a valid game, ``batch``-shaped bool.

    The in-graph counterpart of the eager checks a game's constructor makes
    (a traced game is never checked); computed once per run.
    """


class Game(abc.ABC):
  """Base class of all game types.

  Subclasses provide ``num_agents``, ``num_actions``, ``policy_shapes``,
  ``batch_shape``, ``dtype`` and :meth:`payoffs`. Static games inherit the gap
  definitions of eq. (4); Markov games override them.

  Optional abilities and facts about the type are the class attributes below,
  read by callers instead of probing; a subclass overrides them, with a property
  where the answer depends on the instance.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (2, 3))
    >>> isinstance(game, jaxnpg.Game), game.policy_shapes, game.step_scale
    (True, ((2,), (3,)), 1.0)
    >>> [r.shape for r in game.payoffs(jaxnpg.uniform_policy(game))]
    [(2,), (3,)]
    >>> game.is_static, game.has_dense_form, game.payoffs_depend_on_tau
    (True, True, False)
  """

  num_agents: int
  num_actions: tuple[int, ...]

  is_static: bool = True
  """A one-shot game: policies ``(A_i,)``, gaps of eq. (4)."""
  can_sample: bool = False
  """:meth:`rewards_at` gives the rewards of sampled joint actions."""
  has_dense_form: bool = False
  """:meth:`to_dense` gives the same game as a dense ``NormalFormGame``."""
  has_reward_range: bool = False
  """:meth:`reward_range` answers (for concrete games), and so do
  :meth:`reward_bounds` and :meth:`affine` (traceable)."""
  payoffs_depend_on_tau: bool = False
  """:meth:`payoffs` depends on ``tau`` (else ``tau`` is unused)."""
  qre_gap_label: str = "QRE-gap"
  """What ``jaxnpg.qre_gap`` measures for this game (plot and table labels)."""
  batch_last_form: bool = False
  """:meth:`loop_form` may be a batch-last form, which computes the class's own
  payoffs. A subclass that redefines :meth:`payoffs` without declaring this gets
  False (set when the class is made), so its payoffs are never bypassed."""

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)
    if "payoffs" in vars(cls) and "batch_last_form" not in vars(cls):
      cls.batch_last_form = False

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
  def payoffs(self, logp, tau=0.0):
    """Marginal payoffs of every agent under the joint policy ``exp(logp)``.

    What the NPG step and the gaps use at entropy weight ``tau``. Static games
    ignore ``tau``; a Markov game of the ``soft`` convention does not (its soft
    Q-values carry each agent's entropy bonus, see ``payoffs_depend_on_tau``), so
    generic code always passes the ``tau`` it works at.

    Args:
      logp: tuple of per-agent log-probabilities, ``logp[i].shape ==
        policy_shapes[i]`` (one game, no batch axes).
      tau: entropy weight, scalar ``>= 0``.

    Returns:
      Tuple with ``payoffs[i].shape == policy_shapes[i]``.
    """

  # The loop's view of a game: `run`, `solve` and `sweep` iterate a game's
  # *loop form* (the LoopForm protocol above); a game is its own.

  action_axis = -1    # the action axis of the form's policies and payoffs
  batch_last = False  # True: leaves may carry trailing batch axes (see _solve)
  cell_weight = 1     # dense cells one cell counts as (batch-last blocks)

  def loop_form(self) -> LoopForm:
    """The form of this (one) game that the NPG loop iterates (here: itself)."""
    return self  # type: ignore[return-value]  # a Game has LoopForm's members

  def loop_ready(self):
    """The form as the loop iterates it: values computed once before the loop.

    Called by the loop on its (possibly batched) inputs before the first step;
    whatever it computes enters the compiled loop as an input, opaque to the
    compiler (e.g. the dense form's runtime one). Here: itself.
    """
    return self

  def loop_payoffs(self, logp, probs, tau):
    """:meth:`payoffs`, given also the probabilities ``exp(logp)``."""
    del probs
    return self.payoffs(logp, tau)

  def loop_gaps(self, logp, probs, payoffs, tau):
    """``(QRE-gap, NE-gap)`` of every agent from known payoffs: ``(n,)`` each."""
    del probs
    return (self.qre_gap_per_agent(logp, tau, payoffs),
            self.ne_gap_per_agent(logp, payoffs))

  def loop_payoff_size(self, payoffs):
    """Every agent's ``Q_i = max |payoff_i|`` (finite entries): ``(n,)``."""
    return _tolerance.payoff_sizes(payoffs)

  def loop_valid(self):
    """:meth:`valid` (the game is its own loop form)."""
    return self.valid()

  def valid(self):
    """Whether this game's arrays make a valid game (traced; a bool scalar).

    What the constructor checks eagerly, checked in the compiled program for a
    game built from traced arrays: here, finite floating arrays. Game types with
    more invariants (stochastic transitions, a discount in ``[0, 1)``) add them.
    """
    leaves = [x for x in jax.tree_util.tree_leaves(self)
              if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))

  def astype(self, dtype) -> Game:
    """The same game with its floating arrays cast to ``dtype`` (a pytree map).

    Used to draw a family's games once (in float32) and run them in any dtype, so
    float32 and float64 sweeps see the same games. Game types whose invariants
    need more than a cast (stochastic rows, ...) override it.
    """
    dtype = jnp.dtype(dtype)
    return jax.tree_util.tree_map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating)
        else x, self)

  # Optional abilities: each answers where its declaration above is true.
  def reward_range(self) -> tuple[float, float]:
    """``(min, max)`` over all agents' rewards (``has_reward_range``; concrete)."""
    raise TypeError(f"{type(self).__name__} does not report its reward range "
                    "(has_reward_range is False).")

  def reward_bounds(self):
    """``(min, max)`` of all agents' rewards per game, each ``batch_shape``.

    Traceable (``has_reward_range``); the exact range of the rewards.
    """
    raise TypeError(f"{type(self).__name__} does not report its reward range "
                    "(has_reward_range is False).")

  def affine(self, scale, shift) -> Game:
    """The same game with every reward ``r`` replaced by ``scale * r + shift``.

    ``scale`` and ``shift`` are scalars or ``batch_shape`` arrays (one map per
    game; ``has_reward_range``). NPG steps and QREs are those of the original
    game at ``tau / scale`` and ``eta * scale``.
    """
    raise TypeError(f"{type(self).__name__} cannot map its rewards "
                    "(has_reward_range is False).")

  def rewards_at(self, actions):
    """Every agent's reward at sampled joint actions, ``(n, M)`` (``can_sample``).

    Args:
      actions: tuple of ``n`` integer arrays of equal shape ``(M,)`` (one game).
    """
    raise TypeError(f"{type(self).__name__} cannot give the rewards of sampled "
                    "actions (can_sample is False).")

  def to_dense(self):
    """The same game as a dense ``NormalFormGame`` (``has_dense_form``)."""
    raise TypeError(f"{type(self).__name__} has no dense normal form "
                    "(has_dense_form is False).")

  # Gap definitions: static games (eq. 4). Markov games override these.
  def qre_gap_per_agent(self, logp, tau, payoffs=None):
    """Per-agent QRE-gap, shape ``(n,)``; ``payoffs`` may be passed if known."""
    if payoffs is None:
      payoffs = self.payoffs(logp, tau)
    return _gaps.static_qre_gap_per_agent(logp, payoffs, tau)

  def ne_gap_per_agent(self, logp, payoffs=None):
    """Per-agent NE-gap, shape ``(n,)``; ``payoffs`` may be passed if known."""
    if payoffs is None:
      payoffs = self.payoffs(logp)
    return _gaps.static_ne_gap_per_agent(logp, payoffs)
