"""Graphs of network games: rings, complete graphs, random regular graphs, edge lists.

:func:`graph_edges` turns a graph name or an edge list into the directed edges a
:class:`jaxnpg.PolymatrixGame` holds (each undirected edge as two directed ones).
"""

from __future__ import annotations

import numpy as np

from jaxnpg.core.validation import is_concrete


def check_edges(edges, num_agents: int | None) -> tuple[np.ndarray, int]:
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


GRAPHS = ("ring", "complete", "random-regular")


def ring_graph(num_agents: int) -> np.ndarray:
  """Undirected edges ``{i, i+1 mod n}`` of a ring, shape ``(n, 2)`` (``n >= 3``).

  Two agents form a single edge, one agent none.
  """
  n = check_count(num_agents, "num_agents")
  if n == 1:
    return np.zeros((0, 2), np.int64)
  if n == 2:
    return np.array([[0, 1]], np.int64)
  i = np.arange(n)
  return np.stack([i, (i + 1) % n], axis=1)


def complete_graph(num_agents: int) -> np.ndarray:
  """Every pair ``i < j`` once, shape ``(n (n - 1) / 2, 2)``."""
  n = check_count(num_agents, "num_agents")
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
  n = check_count(num_agents, "num_agents")
  d = check_count(degree, "degree", allow_zero=True)
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
    # No progress this round: stuck unless some suitable pair remains.
    if len(left) == len(stubs) and not any(
        u != v and (min(u, v), max(u, v)) not in edges
        for a, u in enumerate(left) for v in left[a + 1:]):
      return None
    stubs = left
  return np.array(sorted(edges), np.int64).reshape(-1, 2)


def check_count(value, name, *, allow_zero=False):
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
  arr, n = check_edges(graph, num_agents)
  seen: dict[tuple[int, int], int] = {}
  for k, (i, j) in enumerate(arr.tolist()):
    key = (min(i, j), max(i, j))
    if key in seen:
      raise ValueError(
          f"Edge {k} ({i}, {j}) repeats edge {seen[key]} "
          f"{tuple(arr[seen[key]].tolist())}: list each undirected edge once.")
    seen[key] = k
  return arr
