"""PolymatrixGame and network zero-sum games against plain NumPy references.

The references here are written from the definition ``r_i(a) = sum_{e=(i,j)}
B_e[a_i, a_j]`` with explicit loops over joint actions and edges; the gap and step
references come from ``tests/reference.py`` applied to that dense tensor. None of
them shares code with jaxnpg.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference
from jaxnpg.paper import figures as _paper
from jaxnpg.core import stacking as _stacking
from jaxnpg.core.step import npg_update


def dense_from_edges(edges, mats, n):
  """``(n, A, ..., A)`` rewards from directed edges, looping over joint actions."""
  mats = np.asarray(mats, dtype=np.float64)
  a = mats.shape[-1]
  rewards = np.zeros((n,) + (a,) * n)
  for joint in itertools.product(range(a), repeat=n):
    for e, (i, j) in enumerate(edges):
      rewards[(i,) + joint] += mats[e, joint[i], joint[j]]
  return rewards


def marginals_from_edges(edges, mats, probs, n):
  """``rbar_i(a_i) = sum_{e=(i,j)} sum_{a_j} B_e[a_i, a_j] p_j(a_j)``, by loops."""
  mats = np.asarray(mats, dtype=np.float64)
  a = mats.shape[-1]
  out = [np.zeros(a) for _ in range(n)]
  for e, (i, j) in enumerate(edges):
    for ai in range(a):
      for aj in range(a):
        out[i][ai] += mats[e, ai, aj] * probs[j][aj]
  return out


def undirected_to_zero_sum(rng, undirected, a):
  """Directed edges and matrices with ``B_ji = -B_ij^T`` (NumPy, float64)."""
  b = rng.uniform(-1, 1, size=(len(undirected), a, a))
  edges = [tuple(e) for e in undirected] + [(j, i) for i, j in undirected]
  return edges, np.concatenate([b, -np.swapaxes(b, 1, 2)])


# (edges, matrices-kind, n, A). General polymatrix cases include duplicate edges,
# one-directional edges, an isolated agent and non-zero-sum matrices; n = 9 uses
# the stacked code path (>= _stacking.MIN_AGENTS agents).
def _cases(rng):
  ring3 = undirected_to_zero_sum(rng, [(0, 1), (1, 2), (2, 0)], 3)
  complete4 = undirected_to_zero_sum(
      rng, [(i, j) for i in range(4) for j in range(i + 1, 4)], 2)
  general = ([(0, 1), (1, 0), (0, 2), (0, 2), (3, 1)],
             rng.uniform(-2, 3, size=(5, 3, 3)))             # agent 2: no edges
  ring9 = undirected_to_zero_sum(
      rng, [(i, (i + 1) % 9) for i in range(9)], 2)
  return [(ring3, 3), (complete4, 4), (general, 4), (ring9, 9)]


def test_marginals_steps_and_gaps_match_dense_reference(rng, x64, core_jit):
  for (edges, mats), n in _cases(rng):
    game = jaxnpg.PolymatrixGame(edges, jnp.asarray(mats), num_agents=n)
    a = mats.shape[-1]
    rewards = dense_from_edges(edges, mats, n)
    probs = reference.random_probs(rng, (a,) * n, min_prob=1e-3)
    logp = tuple(jnp.asarray(np.log(p)) for p in probs)
    np.testing.assert_allclose(game.to_dense().rewards, rewards, rtol=0,
                               atol=1e-13)
    ref_dense = reference.marginal_rewards(rewards, probs)
    ref_edges = marginals_from_edges(edges, mats, probs, n)
    for tau, eta in [(0.0, 0.3), (0.2, 0.5), (1.5, 0.1)]:
      out = core_jit(game, logp, tau, eta)       # every core function, jitted
      # Marginals, two independent routes.
      for got, r1, r2 in zip(out["marginal_rewards"], ref_dense, ref_edges):
        np.testing.assert_allclose(got, r1, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(got, r2, rtol=1e-12, atol=1e-13)
      want = reference.npg_step(rewards, probs, tau, eta)
      for got, w in zip(out["npg_step"], want):
        np.testing.assert_allclose(np.exp(got), w, rtol=1e-11, atol=1e-14)
      np.testing.assert_allclose(
          out["qre_gap_per_agent"],
          reference.qre_gap_per_agent(rewards, probs, tau), rtol=1e-9, atol=1e-12)
      np.testing.assert_allclose(
          out["fixed_point_residual"],
          reference.fixed_point_residual(rewards, probs, tau), rtol=1e-9,
          atol=1e-12)
      np.testing.assert_allclose(out["ne_gap_per_agent"],
                                 reference.ne_gap_per_agent(rewards, probs),
                                 rtol=1e-10, atol=1e-12)
    # The eager, validated entry points agree with the jitted ones.
    np.testing.assert_allclose(jaxnpg.qre_gap(game, logp, 1.5),
                               out["qre_gap"], rtol=1e-14)


def test_run_and_solve_match_dense_form(rng, x64):
  (edges, mats), n = _cases(rng)[2]
  game = jaxnpg.PolymatrixGame(edges, jnp.asarray(mats), num_agents=n)
  dense = game.to_dense()
  init = jaxnpg.random_policy(jax.random.key(3), game)
  r1 = jaxnpg.run(game, 0.3, 0.2, 60, init=init, record_every=7)
  r2 = jaxnpg.run(dense, 0.3, 0.2, 60, init=init, record_every=7)
  np.testing.assert_allclose(r1.qre_gap, r2.qre_gap, rtol=1e-10, atol=1e-13)
  np.testing.assert_allclose(r1.ne_gap, r2.ne_gap, rtol=1e-10, atol=1e-13)
  for a, b in zip(r1.logp, r2.logp):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
  s1 = jaxnpg.solve(game, 1.0, 0.2, init=init, max_iters=2000)
  s2 = jaxnpg.solve(dense, 1.0, 0.2, init=init, max_iters=2000)
  assert bool(s1.converged) and int(s1.num_iters) == int(s2.num_iters)
  np.testing.assert_allclose(s1.qre_gap, s2.qre_gap, atol=1e-14)


def test_stacked_and_per_agent_paths_agree(rng, x64, monkeypatch):
  """The stacked path for many agents gives the per-agent path's numbers."""
  (edges, mats), n = _cases(rng)[3]
  game = jaxnpg.PolymatrixGame(edges, jnp.asarray(mats), num_agents=n)
  init = jaxnpg.random_policy(jax.random.key(1), game)
  assert type(npg_update(init, init, 0.1, 0.1)) is _stacking.AgentTuple
  stacked = jaxnpg.run(game, 0.2, 0.3, 25, init=init, record_every=5)
  sol_stacked = jaxnpg.solve(game, 0.5, 0.3, init=init, max_iters=500)
  monkeypatch.setattr(_stacking, "MIN_AGENTS", 10 ** 6)
  assert type(npg_update(init, init, 0.1, 0.1)) is tuple
  # Other static arguments, so the jit caches do not hand back the stacked code.
  plain = jaxnpg.run(game, 0.2, 0.3, 25, init=init, record_every=25)
  sol_plain = jaxnpg.solve(game, 0.5, 0.3, init=init, max_iters=501)
  np.testing.assert_allclose(stacked.qre_gap[-1], plain.qre_gap[-1], rtol=1e-13)
  for a, b in zip(stacked.logp, plain.logp):
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
  assert int(sol_stacked.num_iters) == int(sol_plain.num_iters) < 500
  np.testing.assert_allclose(sol_stacked.measure, sol_plain.measure, rtol=1e-12)


def test_agent_tuple_is_a_plain_policy():
  x = jnp.arange(12.0).reshape(4, 3)
  t = _stacking.AgentTuple(x)
  assert len(t) == 4 and t.stacked is x
  np.testing.assert_array_equal(t[2], x[2])
  leaves, tree = jax.tree_util.tree_flatten(t)
  assert len(leaves) == 4
  assert type(jax.tree_util.tree_unflatten(tree, leaves)) is tuple
  packed = _stacking.unpack(_stacking.pack((t, 1.0)))
  np.testing.assert_array_equal(packed[0].stacked, x)


def test_zero_sum_on_every_joint_action(x64):
  for graph, n in [("ring", 5), ("complete", 4), ("random-regular:2", 6),
                   ("0-1,1-2,1-3", 4)]:
    game = jaxnpg.network_zero_sum_game(jax.random.key(7), graph, (3,) * n)
    rewards = dense_from_edges(game.edges, game.matrices, n)
    np.testing.assert_allclose(rewards.sum(axis=0), 0.0, atol=1e-14)
    # Every undirected edge appears as (i, j) and (j, i) with B_ji = -B_ij^T.
    e = len(game.edges) // 2
    np.testing.assert_array_equal(game.edges[e:], game.edges[:e, ::-1])
    np.testing.assert_array_equal(game.matrices[e:],
                                  -jnp.swapaxes(game.matrices[:e], 1, 2))


def test_fig2_game_shape_and_ring():
  game = jaxnpg.make_game("network_zero_sum", jax.random.key(0), (10,) * 5,
                          graph="ring")
  assert isinstance(game, jaxnpg.PolymatrixGame)
  assert game.num_agents == 5 and game.num_actions == (10,) * 5
  assert sorted(map(tuple, game.edges.tolist())) == sorted(
      [(i, (i + 1) % 5) for i in range(5)] + [((i + 1) % 5, i) for i in range(5)])
  lo, hi = np.asarray(game.matrices).min(), np.asarray(game.matrices).max()
  assert -1 <= lo < 0 < hi <= 1


def test_a_batch_of_games_on_one_graph():
  make = lambda k: jaxnpg.network_zero_sum_game(k, "ring", (4,) * 6)
  keys = jax.random.split(jax.random.key(5), 3)
  batch = jax.vmap(make)(keys)
  assert batch.batch_shape == (3,) and batch.num_agents == 6
  np.testing.assert_array_equal(batch.matrices[1], make(keys[1]).matrices)
  # A batch of games on one graph runs in one vmapped call; each row is its game.
  res = jax.vmap(lambda g: jaxnpg.run(g, 0.5, 0.05, 20, record_every=10))(batch)
  assert res.qre_gap.shape == (3, 3)
  assert len({float(g) for g in res.qre_gap[:, -1]}) == 3
  # Random regular graphs depend on graph_seed only, not on the key.
  g1 = jaxnpg.make_game("network_zero_sum", keys[0], (2,) * 8,
                        graph="random-regular", degree=3)
  g2 = jaxnpg.make_game("network_zero_sum", keys[1], (2,) * 8,
                        graph="random-regular", degree=3)
  np.testing.assert_array_equal(g1.edges, g2.edges)
  g3 = jaxnpg.make_game("network_zero_sum", keys[1], (2,) * 8,
                        graph="random-regular", degree=3, graph_seed=1)
  assert not np.array_equal(g1.edges, g3.edges)


def test_same_graph_does_not_recompile():
  traces = []

  @jax.jit
  def gaps(game, logp):
    traces.append(1)
    return jaxnpg.qre_gap(game, logp, 0.5)

  for seed in range(3):
    game = jaxnpg.network_zero_sum_game(jax.random.key(seed), "ring", (3,) * 4)
    gaps(game, jaxnpg.uniform_policy(game))
  assert len(traces) == 1
  other = jaxnpg.network_zero_sum_game(jax.random.key(0), "complete", (3,) * 4)
  gaps(other, jaxnpg.uniform_policy(other))
  assert len(traces) == 2


def test_random_regular_graph():
  for n, d in [(10, 3), (9, 4), (30, 5), (7, 0), (6, 5)]:
    edges = jaxnpg.graph_edges(f"random-regular:{d}", n, seed=4)
    assert edges.shape == (n * d // 2, 2)
    assert np.all(edges[:, 0] < edges[:, 1])
    assert len({tuple(e) for e in edges.tolist()}) == len(edges)
    np.testing.assert_array_equal(np.bincount(edges.ravel(), minlength=n),
                                  np.full(n, d))
    np.testing.assert_array_equal(
        edges, jaxnpg.graph_edges("random-regular", n, degree=d, seed=4))


def test_reward_range_is_exact(rng, x64):
  for (edges, mats), n in _cases(rng)[:3]:
    game = jaxnpg.PolymatrixGame(edges, jnp.asarray(mats), num_agents=n)
    rewards = dense_from_edges(edges, mats, n)
    lo, hi = game.reward_range()
    assert lo == pytest.approx(rewards.min(), abs=1e-12)
    assert hi == pytest.approx(rewards.max(), abs=1e-12)
    per_lo, per_hi = game.agent_reward_bounds()
    np.testing.assert_allclose(per_lo, rewards.reshape(n, -1).min(axis=1),
                               atol=1e-12)
    np.testing.assert_allclose(per_hi, rewards.reshape(n, -1).max(axis=1),
                               atol=1e-12)


def test_rescale_polymatrix(rng, x64):
  (edges, mats), n = _cases(rng)[1]
  game = jaxnpg.PolymatrixGame(edges, jnp.asarray(mats), num_agents=n)
  scaled, amap = jaxnpg.rescale_rewards(game)
  assert isinstance(scaled, jaxnpg.PolymatrixGame)
  rewards = dense_from_edges(edges, mats, n)
  new = dense_from_edges(scaled.edges, scaled.matrices, n)
  np.testing.assert_allclose(new, amap.scale * rewards + amap.shift, atol=1e-13)
  assert new.min() == pytest.approx(0.0, abs=1e-13)
  assert new.max() == pytest.approx(1.0, abs=1e-13)


def test_rewards_at_matches_dense(rng, x64):
  (edges, mats), n = _cases(rng)[2]
  game = jaxnpg.PolymatrixGame(edges, jnp.asarray(mats), num_agents=n)
  rewards = dense_from_edges(edges, mats, n)
  actions = tuple(jnp.asarray(rng.integers(0, 3, size=7)) for _ in range(n))
  want = np.stack([[rewards[(i,) + tuple(int(a[m]) for a in actions)]
                    for m in range(7)] for i in range(n)])
  np.testing.assert_allclose(game.rewards_at(actions), want, atol=1e-13)


def test_many_agents_run_batched_over_tau():
  """A 64-agent ring (a dense tensor would hold 64 * 3**64 numbers)."""
  game = jaxnpg.network_zero_sum_game(jax.random.key(0), "ring", (3,) * 64)
  taus = jnp.array([0.5, 1.0, 2.0])
  res = jax.jit(jax.vmap(lambda t: jaxnpg.run(game, t, 0.1, 200,
                                              record_every=50)))(taus)
  assert res.qre_gap.shape == (3, 5) and len(res.logp) == 64
  assert np.all(np.isfinite(res.qre_gap))
  assert np.all(res.qre_gap[:, -1] < 1e-3 * res.qre_gap[:, 0])
  with pytest.raises(ValueError, match="would hold"):
    game.to_dense()


@pytest.mark.parametrize("kwargs, match", [
    (dict(edges=[[0, 0]], matrices=np.zeros((1, 2, 2))), "Self-loops"),
    (dict(edges=[[0, 3]], matrices=np.zeros((1, 2, 2)), num_agents=3),
     "unknown agent"),
    (dict(edges=[[0, -1]], matrices=np.zeros((1, 2, 2))), "negative"),
    (dict(edges=[[0, 1, 2]], matrices=np.zeros((1, 2, 2))), r"\(E, 2\)"),
    (dict(edges=[[0, 1]], matrices=np.zeros((2, 2, 2))), "2 matrices"),
    (dict(edges=[[0, 1]], matrices=np.zeros((1, 2, 3))), r"\(E, A, A\)"),
    (dict(edges=[[0, 1]], matrices=np.full((1, 2, 2), np.nan)), "finite"),
    (dict(edges=[[0.5, 1]], matrices=np.zeros((1, 2, 2))), "integer"),
])
def test_polymatrix_validation(kwargs, match):
  with pytest.raises(ValueError, match=match):
    jaxnpg.PolymatrixGame(**kwargs)


@pytest.mark.parametrize("graph, actions, match", [
    ("ring", (3, 4, 3), "same number of actions"),
    ("ring", (3, -1, 3), "integer >= 1"),
    ("ring", (), "integer >= 1"),
    ("0-1,1-1", (2, 2), "Self-loops"),
    ("0-1,1-5", (2, 2, 2), "unknown agent"),
    ([[0, 1], [1, 0]], (2, 2), "repeats"),
    ("star", (2, 2), "Unknown graph"),
    ("random-regular:3", (2,) * 5, "n \\* degree even"),
])
def test_network_validation(graph, actions, match):
  with pytest.raises(ValueError, match=match):
    jaxnpg.network_zero_sum_game(jax.random.key(0), graph, actions)


def test_network_family_options_validated():
  with pytest.raises(ValueError, match="takes the options"):
    jaxnpg.make_game("network_zero_sum", jax.random.key(0), (2,) * 3, colour=1)
  with pytest.raises(ValueError, match="needs `num_agents`"):
    jaxnpg.network_zero_sum_game(jax.random.key(0), "ring", 3)
  game = jaxnpg.network_zero_sum_game(jax.random.key(0), "ring", 3, num_agents=4)
  assert game.num_actions == (3,) * 4


def test_figure_2ab_quick(tmp_path):
  """Fig. 2a/2b: large tau converges, and its NE-gap grows with tau (the paper)."""
  iterations, qre, ne = _paper.figure_2ab(str(tmp_path), quick=True)
  for name in ("figure_2a", "figure_2b"):
    assert (tmp_path / f"{name}.png").stat().st_size > 0
    assert (tmp_path / f"{name}.json").exists()
  assert iterations[-1] == 2000
  large = [t for t in sorted(qre) if t >= 0.5]
  for t in large:                      # converged: QRE-gap tiny vs its start
    assert qre[t][-1] < 1e-3 * qre[t][0]
  final_ne = [float(ne[t][-1]) for t in large]
  assert all(a < b for a, b in zip(final_ne, final_ne[1:])), final_ne
  assert qre[0.0][-1] > 0.1            # unregularized NPG does not converge
