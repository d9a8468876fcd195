"""jax.vmap(jaxnpg.run) takes the loop's batch-last rule and equals a loop of runs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
from jaxnpg.loop import batch_last as _batch_last
from jaxnpg.loop import run as _solve

SIZES = (2, 3, 4)
ITERS, EVERY = 30, 7


def _problems(n=4):
  games, inits = jax.vmap(lambda i: jaxnpg.family_game("random", 3, i, SIZES))(
      jnp.arange(n))
  taus = jnp.array([0.3, 1.0, 0.0, 0.05])[:n]
  etas = jnp.array([0.2, 0.5, 0.1, 0.3])[:n]
  return games, inits, taus, etas


def _one(g, t, e, lp):
  return jaxnpg.run(g, t, e, ITERS, init=lp, record_every=EVERY)


def _game(games, b):
  return jaxnpg.NormalFormGame(games.rewards[b])


def _check_equal(got, want):
  if hasattr(got, "linear_rate"):
    # A least-squares slope of log-gaps magnifies the last bits of gaps near
    # the floor (the batched loop may sum in another order): the rate and the
    # iterations extrapolated from it get their own tolerance.
    for name in ("linear_rate", "iterations_needed"):
      np.testing.assert_allclose(getattr(got, name), getattr(want, name),
                                 rtol=1e-9)
    got, want = (r._replace(linear_rate=0.0, iterations_needed=0.0)
                 for r in (got, want))
  for x, y in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-13,
                               atol=1e-15)


@pytest.mark.parametrize("axes", [
    pytest.param("all", marks=pytest.mark.slow), "games", "taus", "etas",
    "inits"])
def test_vmap_run_equals_loop_of_runs(axes, x64):
  """Slow for all axes at once (15 s): each axis alone stays in the default
  suite."""
  games, inits, taus, etas = _problems()
  in_axes = {"all": (0, 0, 0, 0), "games": (0, None, None, None),
             "taus": (None, 0, None, None), "etas": (None, None, 0, None),
             "inits": (None, None, None, 0)}[axes]
  args = (games, taus, etas, inits)
  args = tuple(a if ax == 0 else jax.tree_util.tree_map(lambda x: x[0], a)
               for a, ax in zip(args, in_axes))
  got = jax.jit(jax.vmap(_one, in_axes))(*args)
  pick = lambda a, ax, b: a if ax is None else jax.tree_util.tree_map(
      lambda x: x[b], a)
  for b in range(4):
    g, t, e, lp = (pick(a, ax, b) for a, ax in zip(args, in_axes))
    want = _one(jaxnpg.NormalFormGame(g.rewards), float(t), float(e), tuple(lp))
    _check_equal(jax.tree_util.tree_map(lambda x: x[b], got), want)


def test_nested_vmap_over_games_and_taus(x64):
  games, inits, taus, _ = _problems()
  cells = jax.vmap(lambda g, t, lp: _one(g, t, 0.1, lp), (None, 0, None))
  got = jax.jit(jax.vmap(cells, (0, None, 0)))(games, taus, inits)
  assert got.qre_gap.shape == (4, 4, ITERS // EVERY + 2)
  for b in range(4):
    for t in range(4):
      want = _one(_game(games, b), float(taus[t]), 0.1,
                  tuple(x[b] for x in inits))
      _check_equal(jax.tree_util.tree_map(lambda x: x[b, t], got), want)


def _transposes(fn, *args):
  jaxpr = jax.make_jaxpr(fn)(*args)
  return str(jaxpr).count("transpose[")


def test_batch_last_rule_is_taken(x64):
  """NPG on dense games: the batch axis moves last (a transpose of the inputs and
  one scan over the whole batch); a Markov game or pg falls back to vmap."""
  games, inits, taus, etas = _problems()
  jaxpr = str(jax.make_jaxpr(jax.vmap(_one))(games, taus, etas, inits))
  # rewards (4, n, A...) -> (n, A..., 4): the batch axis last.
  assert "transpose[permutation=(1, 2, 3, 4, 0)]" in jaxpr
  pg = lambda g, t, e, lp: jaxnpg.run(g, t, e, ITERS, init=lp, algorithm="pg")
  assert "transpose[permutation=(1, 2, 3, 4, 0)]" not in str(
      jax.make_jaxpr(jax.vmap(pg))(games, taus, etas, inits))


def test_rule_counts_its_calls(x64, monkeypatch):
  """The loop body is traced once per batch-last level: for one vmap, the base
  trace plus one with a trailing batch axis of the vmapped size."""
  seen = []
  body = _batch_last.iterate

  def spy(form, tau, eta, logp, *a, **kw):
    seen.append((type(form).__name__, tuple(logp[0].shape)))
    return body(form, tau, eta, logp, *a, **kw)

  monkeypatch.setattr(_batch_last, "iterate", spy)
  _batch_last.loop_fn.cache_clear()
  games, inits, taus, etas = _problems()
  try:
    jax.make_jaxpr(jax.vmap(lambda g, t, e, lp: _solve.run_loop(
        g, t, e, lp, num_iters=5, record_every=1)))(games, taus, etas, inits)
  finally:
    _batch_last.loop_fn.cache_clear()
  assert ("DenseBatchLast", (SIZES[0], 4)) in seen
  assert all(name == "DenseBatchLast" for name, _ in seen)


@pytest.mark.parametrize("dtype", [
    "float32", pytest.param("float64", marks=pytest.mark.slow)])
def test_threads_blocks_and_one_loop_agree_bit_for_bit(dtype, monkeypatch):
  """On CPU a large batch runs in parts on host threads, each in blocks; a
  smaller one in blocks; all give the one loop's results bit for bit, also
  when the batch is no multiple of the parts or blocks (padding). Slow in
  float64 (22 s, three compiles of the loop; the threads' float64 setting is
  also checked by test_threaded_float64_under_enable_x64_context)."""
  if jax.default_backend() != "cpu":
    pytest.skip("the CPU paths")
  G, T = 701, 12
  with jax.enable_x64(dtype == "float64"):
    games, inits = jax.vmap(lambda i: jaxnpg.family_game(
        "random", 5, i, SIZES))(jnp.arange(G))
    taus = jnp.linspace(0.0, 2.0, G)

    def batch(threads):
      return jax.jit(jax.vmap(lambda g, t, lp: _solve.run_loop(
          g, t, 0.3, lp, num_iters=T, record_every=1, threads=threads)))(
              games, taus, inits)

    monkeypatch.setattr(_batch_last, "cores", lambda: 3)
    threaded = batch(True)
    blocked = batch(False)
    monkeypatch.setattr(_batch_last, "BLOCK_CELLS", 10 ** 9)
    _batch_last.loop_fn.cache_clear()
    try:
      one_loop = batch(False)
    finally:
      _batch_last.loop_fn.cache_clear()
    assert str(threaded.qre_gap.dtype) == dtype
    assert threaded.qre_gap.shape == (G, T + 1)
    for got in (threaded, blocked):
      for x, y in zip(jax.tree_util.tree_leaves(got),
                      jax.tree_util.tree_leaves(one_loop)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_threaded_path_is_taken(x64, monkeypatch):
  """A batch of at least MIN_THREADED_CELLS cells on a multi-core CPU goes
  through the host-thread program (a pure_callback); a small one does not."""
  if jax.default_backend() != "cpu":
    pytest.skip("the CPU paths")
  monkeypatch.setattr(_batch_last, "cores", lambda: 2)
  # Only the traced program is inspected: skip compiling the parts' program.
  monkeypatch.setattr(_batch_last, "_part_program", lambda *a: None)
  _batch_last.loop_fn.cache_clear()
  big = _batch_last.MIN_THREADED_CELLS
  try:
    for n, want in ((big, True), (big - 1, False)):
      games, inits = jax.vmap(lambda i: jaxnpg.family_game(
          "random", 0, i, SIZES))(jnp.arange(n))
      jaxpr = str(jax.make_jaxpr(jax.vmap(
          lambda g, lp: jaxnpg.run(g, 0.1, 0.2, 3, init=lp)))(games, inits))
      assert ("pure_callback" in jaxpr) == want
  finally:
    _batch_last.loop_fn.cache_clear()


def test_threaded_float64_under_enable_x64_context(monkeypatch):
  """Under `with jax.enable_x64(True)` (a per-thread setting) the threaded path
  still computes in float64: the data crosses the callback as uint32 words, not
  as float64 arrays that a callback thread without x64 would cut to float32."""
  if jax.default_backend() != "cpu":
    pytest.skip("the CPU paths")
  monkeypatch.setattr(_batch_last, "cores", lambda: 2)
  _batch_last.loop_fn.cache_clear()
  G, T = 600, 20
  try:
    with jax.enable_x64(True):
      # (3, 4, 5) games: XLA:CPU then runs the program on a worker thread,
      # whose x64 setting is off.
      games, inits = jax.vmap(lambda i: jaxnpg.family_game(
          "random", 2, i, (3, 4, 5)))(jnp.arange(G))

      def batch(threads):
        return jax.jit(jax.vmap(lambda g, lp: _solve.run_loop(
            g, 0.1, 0.5, lp, num_iters=T, record_every=1,
            threads=threads)))(games, inits)

      threaded, blocked = batch(True), batch(False)
    assert threaded.qre_gap.dtype == jnp.float64
    # float64 throughout: a cut to float32 would differ by ~1e-8. (Blocks of
    # other widths may round a vectorized exp/log in the last bit, as in the
    # linear rate's fit, so this is an ulp-level check rather than bitwise.)
    for x, y in zip(jax.tree_util.tree_leaves(threaded),
                    jax.tree_util.tree_leaves(blocked)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-14,
                                 atol=1e-300)
  finally:
    _batch_last.loop_fn.cache_clear()


@pytest.mark.parametrize("kind", ["markov", "pg"])
def test_plain_vmap_batches_stay_in_the_program(kind, x64, monkeypatch):
  """Game types and algorithms without a batch-last form are batched by plain
  vmap inside the caller's program: never cut into parts (XLA:CPU rounds that
  layout's short reductions by batch size, so parts would change last bits)."""
  monkeypatch.setattr(_batch_last, "cores", lambda: 4)
  keys = jax.random.split(jax.random.key(3), 64)
  if kind == "markov":   # more states than the batch-last form takes
    games = jax.vmap(lambda k: jaxnpg.random_markov_game(
        k, num_states=17, num_actions=(2,), discount=0.8))(keys)
    algorithm = "npg"
  else:
    games = jax.vmap(lambda k: jaxnpg.random_game(k, SIZES))(keys)
    algorithm = "pg"
  _batch_last.loop_fn.cache_clear()
  try:
    jaxpr = str(jax.make_jaxpr(jax.vmap(lambda g: jaxnpg.run(
        g, 0.2, 0.3, 4, algorithm=algorithm)))(games))
  finally:
    _batch_last.loop_fn.cache_clear()
  assert "pure_callback" not in jaxpr


@pytest.mark.parametrize("method", [
    "dense", pytest.param("generic", marks=pytest.mark.slow)])
def test_sweep_parts_on_threads_bit_for_bit(method, monkeypatch):
  """A sweep of the batch-last loop cuts each chunk into parts of whole blocks,
  one per core: the blocks do not depend on the core count, so 1 and 3 cores
  give the same results bit for bit. The generic path stays in one part (in
  parts, Markov games in float32 changed in the last bits). Slow for the
  generic path (10 s; it takes no threads)."""
  from jaxnpg.sweeps import layout as _sweep_layout
  kw = dict(num_actions=SIZES, num_games=300,
            taus=[0.05, 0.5, 5.0], num_iters=12, record_every=3, seed=4,
            method=method, trajectory_points=5)
  results = []
  for cores in (1, 3):
    monkeypatch.setattr(_sweep_layout, "cores", lambda c=cores: c)
    results.append(jaxnpg.sweep("random", **kw))
  assert results[0].attrs["threads"] == 1
  assert (results[1].attrs["threads"] > 1) == (method == "dense")
  assert results[0].attrs["block_games"] == results[1].attrs["block_games"]
  for name in results[0].cell_fields:
    np.testing.assert_array_equal(getattr(results[0], name),
                                  getattr(results[1], name), err_msg=name)
