"""Polymatrix games on a graph, held natively as one matrix per directed edge.

A polymatrix game gives agent ``i`` the reward

    r_i(a) = sum_{e = (i, j)} B_e[a_i, a_j]

summed over the directed edges ``e`` that leave ``i``. A dense tensor for ``n`` agents
with ``A`` actions holds ``n * A**n`` numbers; the edge matrices hold ``E * A**2``, and
the marginals cost ``O(E * A**2)``:

    rbar_i(a_i) = sum_{e = (i, j)} sum_{a_j} B_e[a_i, a_j] pi_j(a_j),

one batched matrix-vector product per edge followed by a scatter-add onto the source
agents. Every agent has the same number of actions ``A`` (one shared action count is
enough for network games; use a :class:`~jaxnpg.NormalFormGame` for mixed sizes).

The network zero-sum game of the paper's Fig. 2 lists every undirected edge
``{i, j}`` as the two directed edges ``(i, j)`` and ``(j, i)`` with
``B_ji = -B_ij^T``, so the rewards of all agents sum to zero on every joint action.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import gaps as _gaps
from jaxnpg.core import protocol as _protocol
from jaxnpg.core import stacking as _stacking
from jaxnpg.core.validation import real_finite_array
from jaxnpg.games.dense import NormalFormGame
from jaxnpg.games.graphs import check_count, check_edges, graph_edges

# to_dense refuses to build tensors with more entries than this.
MAX_DENSE_ENTRIES = 50_000_000


class _Edges:
  """Directed edges as static, hashable pytree auxiliary data.

  Holds a read-only ``(E, 2)`` int array; the hash is computed once, and equality
  compares the arrays, so jit caches hit for games that share a graph without
  hashing thousands of tuples on every call.
  """

  __slots__ = ("array", "_hash")

  def __init__(self, array: np.ndarray):
    array = np.array(array, dtype=np.int64).reshape(-1, 2)
    array.flags.writeable = False
    self.array = array
    self._hash = hash((array.shape, array.tobytes()))

  def __hash__(self):
    return self._hash

  def __eq__(self, other):
    return (isinstance(other, _Edges) and self._hash == other._hash
            and np.array_equal(self.array, other.array))

  def __len__(self):
    return self.array.shape[0]


@jax.tree_util.register_pytree_node_class
class PolymatrixGame(_protocol.Game):
  """An ``n``-agent polymatrix game: one payoff matrix per directed edge.

  ``r_i(a) = sum over edges e = (i, j) of matrices[e][a_i, a_j]``. Every agent has
  the same number of actions ``A``. Duplicate edges add up; an agent with no
  outgoing edge has reward 0.

  The edge list is static (part of the pytree's structure) and the matrices are the
  leaf, so ``jax.vmap`` over a batch of games on the same graph works, and new
  matrices never recompile. Marginal payoffs cost ``O(E * A**2)``, so games with
  thousands of agents run where a dense tensor (``A**n`` entries) could not exist.

  Attributes:
    edges: ``(E, 2)`` int NumPy array of directed pairs ``(i, j)`` (read-only).
    matrices: ``(*batch, E, A, A)``; ``matrices[e] = B_ij`` for ``e = (i, j)``.
    num_agents: ``n`` (static).
    num_actions: ``(A,) * n`` (static).

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> B = jnp.array([[1., -1.], [-1., 1.]])          # matching pennies
    >>> game = jaxnpg.PolymatrixGame([[0, 1], [1, 0]], jnp.stack([B, -B.T]))
    >>> game.num_agents, game.num_actions
    (2, (2, 2))
    >>> game.to_dense().rewards[:, 0, 0].tolist()
    [1.0, -1.0]
  """

  can_sample = True
  has_dense_form = True
  has_reward_range = True

  def __init__(self, edges, matrices, *, num_agents: int | None = None):
    """Validate and wrap an edge list and its matrices.

    Args:
      edges: ``(E, 2)`` integer agent indices, directed pairs ``(i, j)``: the matrix
        of edge ``e`` pays agent ``edges[e, 0]``.
      matrices: ``(E, A, A)``, or ``(*batch, E, A, A)`` for a batch of games on the
        same graph; ``matrices[..., e, a_i, a_j]``. Any finite real values.
      num_agents: number of agents (default: largest index in ``edges`` plus 1).

    Raises:
      ValueError: a malformed edge list (wrong shape, negative or unknown agent,
        self-loop), a shape mismatch, fewer than one action, or non-finite values.
    """
    arr, n = check_edges(edges, num_agents)
    shape = tuple(np.shape(matrices))
    if len(shape) < 3 or shape[-1] != shape[-2]:
      raise ValueError(
          f"`matrices` must have shape (E, A, A) (or (*batch, E, A, A)), got "
          f"{shape}.")
    if shape[-3] != arr.shape[0]:
      raise ValueError(
          f"`matrices` holds {shape[-3]} matrices (shape {shape}) but `edges` lists "
          f"{arr.shape[0]} edges.")
    if shape[-1] < 1:
      raise ValueError(f"Every agent needs at least one action, got A = {shape[-1]}.")
    self.matrices = real_finite_array(matrices, "matrices")
    self._edges = _Edges(arr)
    self.num_agents = n
    self.num_actions = (shape[-1],) * n

  # Pytree protocol: the matrices are the leaf; edges and n are static. Unflattening
  # skips validation (leaves may be tracers or placeholders inside transformations).
  def tree_flatten(self):
    return (self.matrices,), (self._edges, self.num_agents)

  @classmethod
  def tree_unflatten(cls, aux, leaves):
    obj = object.__new__(cls)
    (obj.matrices,) = leaves
    obj._edges, obj.num_agents = aux
    shape = tuple(getattr(obj.matrices, "shape", ()))
    obj.num_actions = (shape[-1],) * obj.num_agents if shape else ()
    return obj

  def __repr__(self):
    batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
    a = self.num_actions[0] if self.num_actions else "?"
    return (f"PolymatrixGame(num_agents={self.num_agents}, num_edges="
            f"{self.num_edges}, num_actions={a} each{batch}, dtype={self.dtype})")

  @property
  def edges(self) -> np.ndarray:
    """``(E, 2)`` int array of directed edges ``(i, j)`` (read-only)."""
    return self._edges.array

  @property
  def num_edges(self) -> int:
    return len(self._edges)

  @property
  def policy_shapes(self):
    return tuple((a,) for a in self.num_actions)

  @property
  def batch_shape(self):
    return tuple(self.matrices.shape[:-3])

  @property
  def dtype(self):
    return self.matrices.dtype

  def payoffs(self, logp, tau=0.0):
    """Marginal rewards ``rbar_i``, shape ``(A,)`` each (one game), in O(E A^2).

    The per-agent policies are stacked once into an ``(n, A)`` array; each edge's
    matrix meets its target agent's policy (a gather and a batched matrix-vector
    product) and the results are scatter-added onto the source agents. ``tau``
    is unused.
    """
    del tau
    probs = jnp.exp(_stacking.stack(logp).astype(self.dtype))      # (n, A)
    return _stacking.AgentTuple(self._stacked_marginals(probs))

  def _stacked_marginals(self, probs):
    """``(n, A)`` marginals from ``(n, A)`` probabilities (one game)."""
    src, dst = self.edges[:, 0], self.edges[:, 1]
    per_edge = jnp.einsum("eab,eb->ea", self.matrices, probs[dst])  # (E, A)
    return jax.ops.segment_sum(per_edge, src, num_segments=self.num_agents)

  def rewards_at(self, actions):
    """Every agent's reward at sampled joint actions (one game), in O(E M).

    Args:
      actions: tuple of ``n`` integer arrays of equal shape ``(M,)``.

    Returns:
      ``(n, M)`` rewards ``r_i(a^m)``.
    """
    acts = _stacking.stack(actions)                                  # (n, M)
    src, dst = self.edges[:, 0], self.edges[:, 1]
    per_edge = self.matrices[np.arange(self.num_edges)[:, None], acts[src],
                             acts[dst]]                              # (E, M)
    return jax.ops.segment_sum(per_edge, src, num_segments=self.num_agents)

  # Stacked gap evaluation: the same formulas as the per-agent defaults, applied to
  # all agents at once (every agent has A actions), so thousands of agents compile
  # to a handful of ops instead of thousands.
  def qre_gap_per_agent(self, logp, tau, payoffs=None):
    """Per-agent QRE-gap, shape ``(n,)`` (eq. 4); stacked over agents."""
    if payoffs is None:
      payoffs = self.payoffs(logp, tau)
    return _gaps.kl_to_soft_best_response(
        _stacking.stack(logp).astype(self.dtype), _stacking.stack(payoffs), tau)

  def ne_gap_per_agent(self, logp, payoffs=None):
    """Per-agent NE-gap, shape ``(n,)``; stacked over agents."""
    if payoffs is None:
      payoffs = self.payoffs(logp)
    return _gaps.ne_gap_from_payoffs(_stacking.stack(logp).astype(self.dtype),
                                     _stacking.stack(payoffs))

  def agent_reward_bounds(self):
    """Exact ``(min_a r_i(a), max_a r_i(a))`` per agent, each ``(*batch, n)``.

    Matrices of repeated ``(i, j)`` pairs are summed first; then each agent's
    neighbours choose independently, so ``max_a r_i = max_{a_i} sum_j max_{a_j}
    M_ij[a_i, a_j]`` (and likewise the minimum). Agents without an outgoing edge
    have reward 0. Jittable; costs ``O(E * A**2)``.
    """
    pairs, inverse = np.unique(self.edges, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    m = jnp.moveaxis(self.matrices, -3, 0)                           # (E, *b, A, A)
    merged = jax.ops.segment_sum(m, inverse, num_segments=pairs.shape[0])
    src = pairs[:, 0]
    def bound(reduce):
      per_pair = reduce(merged, axis=-1)                             # (U, *b, A)
      per_agent = jax.ops.segment_sum(per_pair, src,
                                      num_segments=self.num_agents)  # (n, *b, A)
      return jnp.moveaxis(reduce(per_agent, axis=-1), 0, -1)         # (*b, n)
    return bound(jnp.min), bound(jnp.max)

  def reward_range(self):
    """``(min, max)`` over all agents' rewards and joint actions (exact)."""
    lo, hi = self.reward_bounds()
    return float(jnp.min(lo)), float(jnp.max(hi))

  def reward_bounds(self):
    lo, hi = self.agent_reward_bounds()
    return jnp.min(lo, axis=-1), jnp.max(hi, axis=-1)

  def affine(self, scale, shift):
    """Every reward ``r -> scale * r + shift``: the matrices are scaled, and the
    shift is added to each agent's first outgoing edge (an agent without one
    keeps its constant reward 0, which changes no step and no gap)."""
    expand = (...,) + (None,) * 3
    m = jnp.asarray(scale)[expand] * self.matrices
    edges = self.edges
    firsts = [int(np.argmax(edges[:, 0] == i)) for i in np.unique(edges[:, 0])]
    m = m.at[..., np.asarray(firsts, np.int64), :, :].add(
        jnp.asarray(shift)[expand])
    return PolymatrixGame(edges, m.astype(self.dtype), num_agents=self.num_agents)

  def to_dense(self):
    """The same game as a dense :class:`~jaxnpg.NormalFormGame` (small games only).

    Returns:
      A ``NormalFormGame`` with ``rewards.shape == (*batch, n, A, ..., A)``.

    Raises:
      ValueError: the dense tensor would hold more than 5e7 entries.
    """
    n, a = self.num_agents, self.num_actions[0]
    batch = self.batch_shape
    entries = math.prod(batch) * n * a ** n
    if entries > MAX_DENSE_ENTRIES:
      raise ValueError(
          f"The dense form of this game would hold {entries:.3g} numbers "
          f"({n} agents x {a}^{n} joint actions); to_dense() stops at "
          f"{MAX_DENSE_ENTRIES:.0e}. Use the PolymatrixGame directly.")
    rewards = _dense_rewards(self.matrices, self._edges, n)
    return NormalFormGame(rewards, num_agents=n) if batch else NormalFormGame(
        rewards)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _dense_rewards(matrices, edges: _Edges, n: int):
  """``(*batch, n, A, ..., A)`` rewards: each edge's matrix broadcast and summed."""
  batch, a = matrices.shape[:-3], matrices.shape[-1]
  per_agent = [jnp.zeros(batch + (a,) * n, matrices.dtype) for _ in range(n)]
  for e, (i, j) in enumerate(edges.array.tolist()):
    mat = matrices[..., e, :, :]
    if i > j:
      mat = jnp.swapaxes(mat, -1, -2)
    shape = [1] * n
    shape[min(i, j)] = shape[max(i, j)] = a
    per_agent[i] = per_agent[i] + mat.reshape(batch + tuple(shape))
  return jnp.stack(per_agent, axis=len(batch))


def network_zero_sum_game(key, graph, num_actions, *, num_agents: int | None = None,
                          low: float = -1.0, high: float = 1.0, degree: int = 3,
                          graph_seed: int = 0, dtype=None) -> PolymatrixGame:
  """A network zero-sum polymatrix game (the paper's Fig. 2 game on a ring).

  Each undirected edge ``{i, j}`` of ``graph`` gets a matrix ``B_ij`` with i.i.d.
  uniform entries on ``[low, high)``, and ``B_ji = -B_ij^T``, so
  ``r_i(a) = sum_{j in N(i)} B_ij[a_i, a_j]`` and the rewards of all agents sum to 0
  on every joint action. The first ``E`` directed edges are the undirected edges
  as given (``(i, j)``), the next ``E`` their reverses.

  Args:
    key: a ``jax.random`` key (the graph does not depend on it, so ``vmap`` over
      keys gives a batch of games on one graph).
    graph: ``"ring"``, ``"complete"``, ``"random-regular"`` / ``"random-regular:D"``,
      a string edge list ``"0-1,1-2"``, or an ``(E, 2)`` array of undirected edges.
    num_actions: ``A`` (an int), or one entry per agent ``(A, ..., A)`` (all equal),
      which also sets ``n``.
    num_agents: ``n`` when ``num_actions`` is an int (default for edge lists:
      largest index plus 1).
    low, high: range of the matrix entries.
    degree, graph_seed: degree and seed of ``"random-regular"``.
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A :class:`PolymatrixGame` with ``2 E`` directed edges.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.network_zero_sum_game(jax.random.key(0), "ring", (10,) * 5)
    >>> game.num_agents, game.num_edges, game.matrices.shape
    (5, 10, (10, 10, 10))
  """
  if isinstance(num_actions, (int, np.integer)) and not isinstance(num_actions, bool):
    a = check_count(num_actions, "num_actions")
  else:
    sizes = tuple(num_actions)
    if not sizes or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                        or s < 1 for s in sizes):
      raise ValueError(
          f"`num_actions` must be an integer >= 1 or a non-empty sequence of them, "
          f"got {num_actions!r}.")
    if len(set(sizes)) != 1:
      raise ValueError(
          f"A PolymatrixGame gives every agent the same number of actions, got "
          f"{sizes}.")
    if num_agents is not None and num_agents != len(sizes):
      raise ValueError(
          f"`num_actions` lists {len(sizes)} agents but `num_agents` is "
          f"{num_agents}.")
    a, num_agents = int(sizes[0]), len(sizes)
  if not (np.isfinite(low) and np.isfinite(high) and low < high):
    raise ValueError(f"Need finite `low < high`, got low={low}, high={high}.")
  undirected = graph_edges(graph, num_agents, degree=degree, seed=graph_seed)
  n = num_agents if num_agents is not None else int(undirected.max()) + 1
  dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
  b = jax.random.uniform(key, (undirected.shape[0], a, a), dtype=dtype,
                         minval=low, maxval=high)
  edges = np.concatenate([undirected, undirected[:, ::-1]], axis=0)
  matrices = jnp.concatenate([b, -jnp.swapaxes(b, -1, -2)], axis=0)
  return PolymatrixGame(edges, matrices, num_agents=n)


def _network_family(key, num_actions, *, graph="ring", degree: int = 3,
                    graph_seed: int = 0, low: float = -1.0, high: float = 1.0,
                    dtype=None):
  """Family maker: ``num_actions`` has one (equal) entry per agent."""
  return network_zero_sum_game(key, graph, tuple(num_actions), degree=degree,
                               graph_seed=graph_seed, low=low, high=high,
                               dtype=dtype)
