"""Dense normal-form games: the reward tensor, its validation, and its marginals."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import protocol as _protocol
from jaxnpg.core.validation import (
  check_fits,
  describe_actions,
  real_finite_array,
)


def dense_marginals(rewards, probs):
  """All agents' marginal rewards from a dense tensor, sharing partial contractions.

  ``rbar_i(a_i) = sum_{a_-i} prod_{j != i} probs[j][a_j] * rewards[i, a]``.

  The tensor is contracted from its last axis inwards once (the *suffix* chain
  ``S_k``, holding agents ``0..k-1`` with the actions of agents ``k..n-1`` summed
  out), and each agent finishes with the leading axes of its own slice. Every
  contraction is a matrix-vector product over a contiguous axis, and agent ``i``'s
  slice is dropped from the chain as soon as it is no longer needed, so the work is
  a constant number of passes over the tensor instead of ``n`` strided einsums.

  Args:
    rewards: ``(n, A_0, ..., A_{n-1})``.
    probs: tuple of ``n`` arrays, ``probs[i].shape == (A_i,)``.

  Returns:
    Tuple of ``n`` arrays, ``rbar[i].shape == (A_i,)``.
  """
  n = len(probs)
  out = [None] * n
  suffix = rewards                      # S_n: (n, A_0, ..., A_{n-1})
  for k in range(n, 0, -1):
    # suffix is S_k: (k, A_0, ..., A_{k-1}); agent k-1 finishes here.
    t = suffix[k - 1]
    for j in range(k - 1):              # sum out leading axes, contiguous
      t = jnp.tensordot(probs[j], t, axes=(0, 0))
    out[k - 1] = t
    if k > 1:                           # S_{k-1}: drop agent k-1, sum its axis out
      # Contract first, then slice: slicing first makes XLA copy the tensor.
      suffix = (suffix @ probs[k - 1])[: k - 1]
  return tuple(out)


def infer_layout(shape: tuple[int, ...], num_agents: int | None,
                 inner: tuple[str, ...] = ()):
  """Split a reward shape ``(*batch, n, *inner, A_1, ..., A_n)``.

  Args:
    shape: the rewards' shape.
    num_agents: ``n``, needed only when there are batch axes.
    inner: names of the axes between the agent axis and the actions (e.g.
      ``("S",)`` for a Markov game's states).

  Returns:
    ``(batch_shape, n, inner_sizes, num_actions)``.

  Raises:
    ValueError: the shape does not fit, naming the expected layout.
  """
  k = len(inner)
  form = ", ".join(("n",) + tuple(inner) + ("A_1", "...", "A_n"))
  if num_agents is None:
    if len(shape) < 2 + k:
      raise ValueError(
          f"`rewards` must have shape ({form}) with n >= 1, got {shape}.")
    n, b = shape[0], 0
    if len(shape) != n + 1 + k:
      raise ValueError(
          f"`rewards` has shape {shape}: its first axis says {n} agents, so it "
          f"needs rank {n + 1 + k} ({form}), but it has rank {len(shape)}. "
          "For a batch of games pass `num_agents=`.")
  else:
    n = int(num_agents)
    if n < 1:
      raise ValueError(f"`num_agents` must be >= 1, got {num_agents}.")
    b = len(shape) - n - 1 - k
    if b < 0 or shape[b] != n:
      raise ValueError(
          f"`rewards` has shape {shape}, which does not end in "
          f"({form.replace('n,', f'n={n},', 1)}).")
  return (tuple(shape[:b]), n, tuple(shape[b + 1:b + 1 + k]),
          tuple(shape[b + 1 + k:]))


@jax.tree_util.register_pytree_node_class
class NormalFormGame(_protocol.Game):
  """An ``n``-agent normal-form game stored as a dense reward tensor.

  Attributes:
    rewards: ``(*batch, n, A_1, ..., A_n)``; ``rewards[..., i, a_1, ..., a_n]`` is
      agent ``i``'s reward at the joint action ``a``. Any finite real values.
    num_agents: ``n`` (static).
    num_actions: ``(A_1, ..., A_n)`` (static).

  The game is a pytree, so a batch of games (leading axes on ``rewards``) maps
  through ``jax.vmap`` and everything in jaxnpg is written for one game.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame(jnp.zeros((2, 3, 4)))
    >>> game.num_agents, game.num_actions
    (2, (3, 4))
  """

  can_sample = True
  has_dense_form = True
  has_reward_range = True

  def __init__(self, rewards, *, num_agents: int | None = None):
    """Validate and wrap a reward tensor.

    Args:
      rewards: ``(n, A_1, ..., A_n)``, or ``(*batch, n, A_1, ..., A_n)`` together
        with ``num_agents=n``.
      num_agents: number of agents; needed only when ``rewards`` has batch axes.

    Raises:
      ValueError: rank and first axis disagree, an ``A_i < 1``, or the values are
        not finite real numbers.
    """
    shape = tuple(np.shape(rewards))
    batch, n, _, actions = infer_layout(shape, num_agents)
    if any(a < 1 for a in actions):
      raise ValueError(
          f"Every agent needs at least one action, got action sizes {actions} "
          f"(rewards shape {shape}).")
    self.rewards = real_finite_array(rewards, "rewards")
    self.num_agents = n
    self.num_actions = actions
    self._batch_shape = batch

  @classmethod
  def from_matrices(cls, *payoffs, dtype=None) -> NormalFormGame:
    """A game from each agent's payoff array: ``from_matrices(A, B)`` for a bimatrix.

    Agent ``i``'s array holds its payoff at every joint action,
    ``payoffs[i][a_1, ..., a_n]``; so for two players ``A[a_1, a_2]`` is the row
    player's payoff and ``B[a_1, a_2]`` the column player's (``B`` is *not*
    transposed: both are indexed row action first, as Gambit and most texts
    write a bimatrix game).

    Args:
      *payoffs: ``n >= 1`` arrays, each of shape ``(A_1, ..., A_n)``.
      dtype: floating dtype (default: JAX's default float).

    Raises:
      ValueError: arrays of different shapes, or a number of arrays other than
        their rank, or values that are not finite.

    Example:
      >>> import jaxnpg
      >>> bos = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
      ...                                           [[2, 0], [0, 3]])
      >>> bos.num_agents, bos.num_actions, bos.rewards[1].tolist()
      (2, (2, 2), [[2.0, 0.0], [0.0, 3.0]])
    """
    if not payoffs:
      raise ValueError("`from_matrices` needs one payoff array per agent.")
    arrays = [np.asarray(p) for p in payoffs]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
      if a.shape != shape:
        raise ValueError(f"Agent {i}'s payoffs have shape {a.shape}, agent 0's "
                         f"{shape}; every agent's array is indexed by the same "
                         "joint actions (A_1, ..., A_n).")
    if len(arrays) != len(shape):
      raise ValueError(f"Got {len(arrays)} payoff arrays of rank {len(shape)}: "
                       f"n agents need n arrays of shape (A_1, ..., A_n).")
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    return cls(real_finite_array(np.stack(arrays), "payoffs").astype(dtype))

  # Pytree protocol: rewards is the leaf, sizes are static. Unflattening skips
  # validation (leaves may be tracers or placeholders inside transformations).
  def tree_flatten(self):
    return (self.rewards,), self.num_agents

  @classmethod
  def tree_unflatten(cls, num_agents, leaves):
    obj = object.__new__(cls)
    (rewards,) = leaves
    obj.rewards = rewards
    obj.num_agents = num_agents
    shape = tuple(getattr(rewards, "shape", ()))
    obj.num_actions = shape[len(shape) - num_agents:] if shape else ()
    obj._batch_shape = shape[: len(shape) - num_agents - 1] if shape else ()
    return obj

  def __repr__(self):
    batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
    return (f"NormalFormGame(num_agents={self.num_agents}, "
            f"num_actions={self.num_actions}{batch}, dtype={self.dtype})")

  @property
  def policy_shapes(self):
    return tuple((a,) for a in self.num_actions)

  @property
  def batch_shape(self):
    return self._batch_shape

  @property
  def dtype(self):
    return self.rewards.dtype

  def reward_range(self):
    arr = np.asarray(self.rewards)
    return float(arr.min()), float(arr.max())

  def reward_bounds(self):
    axes = tuple(range(len(self.batch_shape), self.rewards.ndim))
    return jnp.min(self.rewards, axis=axes), jnp.max(self.rewards, axis=axes)

  def affine(self, scale, shift):
    expand = (...,) + (None,) * (self.rewards.ndim - len(self.batch_shape))
    rewards = (jnp.asarray(scale)[expand] * self.rewards
               + jnp.asarray(shift)[expand])
    return NormalFormGame(rewards.astype(self.dtype), num_agents=self.num_agents)

  def rewards_at(self, actions):
    """Every agent's reward at sampled joint actions (one game).

    Args:
      actions: tuple of ``n`` integer arrays of equal shape ``(M,)``.

    Returns:
      ``(n, M)`` rewards ``r_i(a^m)``.
    """
    return self.rewards[(slice(None),) + tuple(actions)]

  def payoffs(self, logp, tau=0.0):
    """Marginal rewards ``rbar_i``, ``(A_i,)`` each (one game; ``tau`` unused)."""
    del tau
    probs = tuple(jnp.exp(lp).astype(self.dtype) for lp in logp)
    return dense_marginals(self.rewards, probs)

  def to_dense(self):
    """The game itself (it is dense)."""
    return self

  batch_last_form: bool = True   # its payoffs are the dense marginals (Game)

  def loop_form(self):
    """The batch-last form (:class:`DenseBatchLast`) when the game is small.

    Games with more than ``DenseBatchLast.MAX_TERMS`` reward entries, and
    subclasses whose payoffs are not the dense marginals
    (``batch_last_form``), are their own loop form (contracted with dot
    products, batched by plain vmap).
    """
    small = self.num_agents * math.prod(self.num_actions) <= (
        DenseBatchLast.MAX_TERMS)
    if small and self.batch_last_form:
      return DenseBatchLast(self.rewards, self.num_agents)
    return self


def _sum(terms):
  out = terms[0]
  for t in terms[1:]:
    out = out + t
  return out


def _max(terms):
  out = terms[0]
  for t in terms[1:]:
    out = jnp.maximum(out, t)
  return out


def dense_marginals_last(rewards, probs):
  """All agents' marginal rewards with the action axes first, batch axes last.

  Every contraction over a small action axis is a sum of slices, so all the
  arithmetic is elementwise over the batch and vectorizes across it.

  Args:
    rewards: ``(n, A_1, ..., A_n, *batch_r)``.
    probs: tuple of ``n`` arrays ``(A_i, *batch)``; ``batch_r`` and ``batch``
      broadcast (trailing axes aligned).

  Returns:
    Tuple of ``n`` arrays ``(A_i, *broadcast batch)``; for empty batch shapes,
    :func:`dense_marginals` up to rounding.
  """
  n = len(probs)
  out = []
  for i in range(n):
    t = rewards[i]                       # (A_1, ..., A_n, *batch_r)
    # Sum out the agents j != i from the last inwards: agents 0..j are still
    # present, so agent j's action axis is axis j.
    for j in range(n - 1, -1, -1):
      if j == i:
        continue
      lead = (slice(None),) * j
      t = _sum([t[lead + (a,)] * probs[j][a] for a in range(probs[j].shape[0])])
    out.append(t)
  return tuple(out)


@jax.tree_util.register_pytree_node_class
class DenseBatchLast:
  """A small dense game, or a batch of them with the batch axes LAST (loop form).

  The NPG loop's form of a :class:`NormalFormGame` (see
  :meth:`NormalFormGame.loop_form` and :mod:`jaxnpg.loop.run`). Rewards are
  ``(n, A_1, ..., A_n, *batch)`` and policies ``(A_i, *batch)``: the action axes
  first, any batch axes trailing, so every reduction over an action axis is a
  sum of slices, elementwise over the batch. One game is the case of an empty
  batch shape. Batch axes broadcast (size 1 where an input is shared, e.g.
  ``(n, A..., 1, G)`` rewards against ``(A_i, P, G)`` policies of ``P`` step
  sizes).

  Two choices matter for speed on CPU (``benchmarks/paths.py``): the marginals
  are divided by a runtime one (:meth:`one`), so XLA computes them once per
  step instead of
  re-fusing the whole contraction into each of their consumers (the update's
  max, exponentials and sum, the gaps); and the loop carries the probabilities
  with the log-probabilities (one ``exp`` per action and step).
  """

  # Largest ``n * prod(A_i)`` written out term by term (the program grows with
  # the tensor); larger games are their own loop form.
  MAX_TERMS = 4096

  action_axis = 0
  batch_last = True
  step_scale = 1.0
  cell_weight = 1

  def __init__(self, rewards, num_agents: int, one=None):
    self.rewards = rewards
    self.num_agents = num_agents
    self._one = one

  def tree_flatten(self):
    return (self.rewards, self._one), self.num_agents

  @classmethod
  def tree_unflatten(cls, num_agents, leaves):
    return cls(leaves[0], num_agents, leaves[1])

  def loop_ready(self):
    """This form with its runtime one computed (once, before the loop)."""
    return DenseBatchLast(self.rewards, self.num_agents, self.one())

  @property
  def num_actions(self):
    return tuple(self.rewards.shape[1:1 + self.num_agents])

  @property
  def policy_shapes(self):
    return tuple((a,) for a in self.num_actions)

  @property
  def batch_shape(self):
    return tuple(self.rewards.shape[1 + self.num_agents:])

  @property
  def dtype(self):
    return self.rewards.dtype

  def payoffs(self, logp, tau=0.0):
    """Marginal rewards ``(A_i, *batch)`` each (``tau`` unused)."""
    return self.loop_payoffs(logp, tuple(jnp.exp(lp) for lp in logp), tau)

  def loop_payoffs(self, logp, probs, tau):
    """:meth:`payoffs`, given also the probabilities ``exp(logp)``."""
    del logp, tau
    q = dense_marginals_last(self.rewards, probs)
    return tuple(x / self.one() for x in q)

  def one(self):
    """A runtime scalar 1 (0 if the first reward is NaN; rewards are finite).

    XLA cannot fold ``x / one``, and a division is costly enough that XLA:CPU
    computes ``x`` once instead of re-fusing it into every consumer.
    """
    if self._one is not None:
      return self._one
    r0 = self.rewards.reshape(-1)[0]   # a scalar, shared by the batch
    return jnp.where(jnp.isnan(r0), 0.0, 1.0).astype(self.dtype)

  def loop_gaps(self, logp, probs, payoffs, tau):
    """``(QRE-gap, NE-gap)`` of every agent, ``(n, *batch)`` each.

    The definitions of :mod:`jaxnpg.core.gaps` (KL form, ``0 * (-inf) = 0``, NaN where
    a policy entry is NaN or ``+inf`` or a payoff is not finite), with the sums
    over actions written out. ``probs`` must be ``exp(logp)``: the NaN test
    reads it (``(pi + rbar) * 0`` is 0, or NaN exactly when a probability is NaN
    or ``inf`` or a payoff is not finite), one multiply-add per action.
    """
    inv = 1.0 / jnp.where(tau > 0, tau, 1.0)
    qre, ne = [], []
    for lp, p, q in zip(logp, probs, payoffs):
      A = q.shape[0]
      live = [~jnp.isneginf(lp[a]) for a in range(A)]
      poison = _sum([p[a] + q[a] for a in range(A)]) * 0.0
      mean_q = _sum([jnp.where(live[a], p[a] * q[a], 0.0) for a in range(A)])
      ne_i = jnp.maximum(_max([q[a] for a in range(A)]) - mean_q, 0.0) + poison
      x = q * inv
      mx = _max([x[a] for a in range(A)])
      log_s = jnp.log(_sum([jnp.exp(x[a] - mx) for a in range(A)]))
      # log pi* = (x - max) - log sum, rounded as jax.nn.log_softmax does
      kl = _sum([jnp.where(live[a], p[a] * (lp[a] - ((x[a] - mx) - log_s)),
                           0.0) for a in range(A)])
      qre.append(jnp.where(tau > 0, jnp.maximum(tau * kl, 0.0) + poison, ne_i))
      ne.append(ne_i)
    return jnp.stack(qre), jnp.stack(ne)

  def loop_payoff_size(self, payoffs):
    """Every agent's ``Q_i = max |payoff_i|`` (finite entries), ``(n, *batch)``."""
    return jnp.stack([_max([jnp.where(jnp.isfinite(x[a]), jnp.abs(x[a]), 0.0)
                            for a in range(x.shape[0])]) for x in payoffs])

  def loop_valid(self):
    """Finite rewards, per game: ``batch``-shaped (a traced game is unchecked)."""
    lead = tuple(range(1 + self.num_agents))
    return jnp.all(jnp.isfinite(self.rewards), axis=lead)


def random_game(key, num_actions: Sequence[int], *, low: float = 0.0,
                high: float = 1.0, dtype=None) -> NormalFormGame:
  """A game with i.i.d. uniform rewards on ``[low, high)`` (the paper's setting).

  The rewards are drawn in ``dtype``: the same key gives *different* games in
  float32 and float64 (this is ``jax.random.uniform``'s rule, and the paper's
  figures are drawn so). To compare dtypes on one game, draw once and cast
  (``game.astype(jnp.float64)``), or use :func:`jaxnpg.family_game`, whose
  families draw in float32 for every dtype.

  Args:
    key: a ``jax.random`` key.
    num_actions: ``(A_1, ..., A_n)``, each ``>= 1``.
    low, high: reward range, ``low < high``.
    dtype: floating dtype (default: JAX's default float, float64 under x64).

  Returns:
    A ``NormalFormGame`` with ``rewards.shape == (n, A_1, ..., A_n)``.

  Example:
    >>> import jax, jaxnpg
    >>> jaxnpg.random_game(jax.random.key(0), (3, 4, 5)).rewards.shape
    (3, 3, 4, 5)
  """
  actions = tuple(num_actions)
  if not actions or any(int(a) != a or a < 1 for a in actions):
    raise ValueError(
        f"`num_actions` must be a non-empty sequence of integers >= 1, got "
        f"{num_actions!r}.")
  if not (np.isfinite(low) and np.isfinite(high) and low < high):
    raise ValueError(f"Need finite `low < high`, got low={low}, high={high}.")
  dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
  shape = (len(actions),) + tuple(int(a) for a in actions)
  check_fits(math.prod(shape) * max(4, dtype.itemsize),
             f"The reward tensor of {describe_actions(actions)}",
             "use fewer agents or actions (a network game is a PolymatrixGame, "
             "whose size grows with its edges)")
  rewards = jax.random.uniform(key, shape, dtype=dtype, minval=low,
                               maxval=high)
  return NormalFormGame(rewards)
