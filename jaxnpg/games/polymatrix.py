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
from jaxnpg.core import stacking as _stacking
from jaxnpg.core import protocol as _protocol
from jaxnpg.games.dense import NormalFormGame
from jaxnpg.core.validation import is_concrete, real_finite_array

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


def _check_edges(edges, num_agents: int | None) -> tuple[np.ndarray, int]:
  """Validate a directed edge list; return it as an ``(E, 2)`` int array and ``n``."""
  if not is_concrete(edges):
    raise ValueError(
        "`edges` must be concrete (a list or NumPy array), not a traced value: the "
        "graph is static.")
  arr = np.asarray(edges)
  if arr.size == 0:
    arr = arr.reshape(0, 2)
  if arr.ndim != 2 or arr.shape[1] != 2:
    raise ValueError(
        f"`edges` must have shape (E, 2) (directed pairs (i, j)), got shape "
        f"{arr.shape}.")
  if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
    arr = arr.astype(np.int64)
  if arr.dtype.kind not in "iu":
    raise ValueError(f"`edges` must hold integer agent indices, got dtype "
                     f"{arr.dtype}.")
  arr = arr.astype(np.int64)
  if np.any(arr < 0):
    bad = arr[np.any(arr < 0, axis=1)][0]
    raise ValueError(f"`edges` names a negative agent index: edge {tuple(bad)}.")
  loops = arr[:, 0] == arr[:, 1]
  if np.any(loops):
    k = int(np.argmax(loops))
    raise ValueError(
        f"Self-loops are not allowed: edge {k} is ({arr[k, 0]}, {arr[k, 1]}).")
  if num_agents is None:
    if arr.shape[0] == 0:
      raise ValueError("With no edges, pass `num_agents=`.")
    n = int(arr.max()) + 1
  else:
    if isinstance(num_agents, bool) or int(num_agents) != num_agents or (
        num_agents < 1):
      raise ValueError(f"`num_agents` must be an integer >= 1, got {num_agents!r}.")
    n = int(num_agents)
    if arr.shape[0] and arr.max() >= n:
      k = int(np.argmax(np.any(arr >= n, axis=1)))
      raise ValueError(
          f"Edge {k} = ({arr[k, 0]}, {arr[k, 1]}) names an unknown agent: there are "
          f"{n} agents (indices 0..{n - 1}).")
  return arr, n


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
    arr, n = _check_edges(edges, num_agents)
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
    lo, hi = self.agent_reward_bounds()
    return float(jnp.min(lo)), float(jnp.max(hi))

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


# --- graphs --------------------------------------------------------------------

GRAPHS = ("ring", "complete", "random-regular")


def ring_graph(num_agents: int) -> np.ndarray:
  """Undirected edges ``{i, i+1 mod n}`` of a ring, shape ``(n, 2)`` (``n >= 3``).

  Two agents form a single edge, one agent none.
  """
  n = _check_count(num_agents, "num_agents")
  if n == 1:
    return np.zeros((0, 2), np.int64)
  if n == 2:
    return np.array([[0, 1]], np.int64)
  i = np.arange(n)
  return np.stack([i, (i + 1) % n], axis=1)


def complete_graph(num_agents: int) -> np.ndarray:
  """Every pair ``i < j`` once, shape ``(n (n - 1) / 2, 2)``."""
  n = _check_count(num_agents, "num_agents")
  i, j = np.triu_indices(n, k=1)
  return np.stack([i, j], axis=1).astype(np.int64)


def random_regular_graph(num_agents: int, degree: int, seed: int = 0) -> np.ndarray:
  """A uniformly random simple ``degree``-regular graph on ``n`` agents (seeded).

  Pairs the ``n * degree`` half-edges at random, avoiding self-loops and repeated
  edges, and restarts when stuck (the Steger–Wormald procedure).

  Args:
    num_agents: ``n >= 1``.
    degree: ``0 <= degree < n`` with ``n * degree`` even.
    seed: NumPy seed (the graph is static: a batch of games shares it).

  Returns:
    ``(n * degree / 2, 2)`` int array of undirected edges ``i < j``.
  """
  n = _check_count(num_agents, "num_agents")
  d = _check_count(degree, "degree", allow_zero=True)
  if d >= n or (n * d) % 2:
    raise ValueError(
        f"A {d}-regular graph on {n} agents needs degree < n and n * degree even, "
        f"got n={n}, degree={d}.")
  rng = np.random.default_rng(seed)
  for _ in range(1000):
    edges = _try_regular(rng, n, d)
    if edges is not None:
      return edges
  raise RuntimeError(f"Could not draw a {d}-regular graph on {n} agents.")


def _try_regular(rng, n, d):
  stubs = list(np.repeat(np.arange(n), d))
  edges = set()
  while stubs:
    order = rng.permutation(len(stubs))
    stubs = [stubs[k] for k in order]
    left = []
    for k in range(0, len(stubs) - 1, 2):
      u, v = sorted((int(stubs[k]), int(stubs[k + 1])))
      if u != v and (u, v) not in edges:
        edges.add((u, v))
      else:
        left += [u, v]
    if len(left) == len(stubs):
      # No progress this round: stuck unless some suitable pair remains.
      if not any(u != v and (min(u, v), max(u, v)) not in edges
                 for a, u in enumerate(left) for v in left[a + 1:]):
        return None
    stubs = left
  return np.array(sorted(edges), np.int64).reshape(-1, 2)


def _check_count(value, name, *, allow_zero=False):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(f"`{name}` must be an integer, got {value!r}.")
  if value < (0 if allow_zero else 1):
    raise ValueError(f"`{name}` must be >= {0 if allow_zero else 1}, got {value}.")
  return int(value)


def graph_edges(graph, num_agents: int | None = None, *, degree: int = 3,
                seed: int = 0) -> np.ndarray:
  """Undirected edges of a named graph or a user edge list, validated.

  Args:
    graph: ``"ring"``, ``"complete"``, ``"random-regular"`` (degree ``degree``;
      ``"random-regular:D"`` sets the degree in the name), a string edge list like
      ``"0-1,1-2,2-0"``, or an ``(E, 2)`` array-like of agent pairs.
    num_agents: ``n``; needed for named graphs, checked against edge lists
      (default for edge lists: largest index plus 1).
    degree: degree of ``"random-regular"``.
    seed: seed of ``"random-regular"``.

  Returns:
    ``(E, 2)`` int array of undirected edges, each pair once.

  Raises:
    ValueError: unknown name, negative or unknown agent, self-loop, or an edge
      listed twice (in either direction).

  Example:
    >>> import jaxnpg
    >>> jaxnpg.graph_edges("ring", 4).tolist()
    [[0, 1], [1, 2], [2, 3], [3, 0]]
  """
  if isinstance(graph, str):
    name = graph.strip().lower()
    if name in ("ring", "complete") or name.startswith("random-regular"):
      if num_agents is None:
        raise ValueError(f"The graph {graph!r} needs `num_agents`.")
      if name == "ring":
        return ring_graph(num_agents)
      if name == "complete":
        return complete_graph(num_agents)
      parts = name.split(":")
      if len(parts) > 2 or parts[0] != "random-regular":
        raise ValueError(
            f"Write a random regular graph as 'random-regular' or "
            f"'random-regular:DEGREE', got {graph!r}.")
      if len(parts) == 2:
        try:
          degree = int(parts[1])
        except ValueError:
          raise ValueError(f"Bad degree in {graph!r}.") from None
      return random_regular_graph(num_agents, degree, seed)
    if "-" not in name:
      raise ValueError(
          f"Unknown graph {graph!r}: use one of {list(GRAPHS)} or an edge list "
          "like '0-1,1-2'.")
    try:
      graph = [tuple(int(x) for x in pair.split("-"))
               for pair in name.split(",") if pair.strip()]
    except ValueError:
      raise ValueError(
          f"Could not read the edge list {graph!r}; write it as '0-1,1-2,2-0'."
      ) from None
    if any(len(p) != 2 for p in graph):
      raise ValueError(f"Each edge in {graph!r} must be 'i-j'.")
  arr, n = _check_edges(graph, num_agents)
  seen = {}
  for k, (i, j) in enumerate(arr.tolist()):
    key = (min(i, j), max(i, j))
    if key in seen:
      raise ValueError(
          f"Edge {k} ({i}, {j}) repeats edge {seen[key]} "
          f"{tuple(arr[seen[key]].tolist())}: list each undirected edge once.")
    seen[key] = k
  return arr


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
    a = _check_count(num_actions, "num_actions")
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
