"""jaxnpg.sweep: cells equal independent runs, batch-last loop = generic path,
sharded = unsharded, chunked = unchunked, status codes, conversions, bad arguments.

Compilation dominates the cost of these tests, so the sweeps are tiny and shared
(module-scoped fixtures); float64 throughout.
"""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference
from jaxnpg.games.dense import dense_marginals, dense_marginals_last
from conftest import scaled

SIZES = (2, 3)
TAUS = [0.0, 0.3, 2.0]
ETAS = [0.05, 0.3]
ITERS = 120
EVERY = 4
FIELDS = ("qre_gap", "ne_gap", "iterations_to_tol", "linear_rate", "monotone",
          "status", "qre_gap_trajectory", "ne_gap_trajectory")


def _sweep(**kw):
  args = dict(num_actions=SIZES, num_games=5, taus=TAUS, etas=ETAS,
              num_iters=ITERS, record_every=EVERY, trajectory_points=1000,
              tol=1e-9, quiet=True)
  args.update(kw)
  return jaxnpg.sweep("random", **args)


@pytest.fixture(scope="module")
def sweeps():
  """The same family sweep through the generic and the dense path (float64)."""
  with jax.enable_x64(True):
    yield {m: _sweep(method=m) for m in ("generic", "dense")}


def _no_progress(y, ks, tail, progress=0.01):
  """STALLED's rule, plainly: the tail's second half is not 1% below its first
  (both its smallest and its largest finite value)."""
  start = ks[-1] - tail * (ks[-1] - ks[0])
  mid = 0.5 * (start + ks[-1])
  ok = np.isfinite(y)
  first = y[ok & (ks >= start) & (ks < mid)]
  second = y[ok & (ks >= mid)]
  if first.size == 0 or second.size == 0:
    return False
  return not (second.min() < (1 - progress) * first.min()
              and second.max() < (1 - progress) * first.max())


def _recurs(y, tail, rtol=1e-3, most=64):
  """STALLED's second condition, plainly: the tail (records before the last,
  every stride-th so that at most `most` are read) has a lag L >= 1 at which
  each record of its second half is within rtol of the tail's largest value
  of the record L before it."""
  n = int(round(tail * (len(y) - 1)))
  stride = max(1, -(-n // most))
  n //= stride
  if n < 4:
    return False
  z = np.array([y[len(y) - 2 - stride * (n - 1 - j)] for j in range(n)])
  half = n // 2
  scale = np.max(np.abs(z[np.isfinite(z)]), initial=0.0)
  for lag in range(1, n - half + 1):
    ok = True
    for t in range(n - half, n):
      d = abs(z[t] - z[t - lag])
      if not d <= rtol * scale:     # NaN never repeats
        ok = False
        break
    if ok:
      return True
  return False


def _record_from_run(res, tol, num_iters, tail=0.5):
  """The per-cell record of a RunResult, computed here with NumPy."""
  qre = np.asarray(res.qre_gap)
  ne = np.asarray(res.ne_gap)
  ks = np.asarray(res.iterations)
  hit = np.nonzero(qre <= tol)[0]
  rate = float(jaxnpg.linear_rate(res.qre_gap, res.iterations, tail=tail))
  floor = 100 * np.finfo(qre.dtype).eps * max(np.max(np.abs(qre)), 1.0)
  monotone = bool(np.all((qre[1:] <= qre[:-1]) | (qre[1:] <= floor)))
  if not (np.all(np.isfinite(qre)) and np.all(np.isfinite(ne))):
    status = 2
  elif qre[-1] <= tol:
    status = 0
  elif _no_progress(qre, ks, tail) and _recurs(qre, tail):
    status = 3
  else:
    status = 1
  return {"qre_gap": qre[-1], "ne_gap": ne[-1],
          "iterations_to_tol": int(ks[hit[0]]) if hit.size else -1,
          "linear_rate": rate, "monotone": monotone, "status": status,
          "qre_gap_trajectory": qre, "ne_gap_trajectory": ne}


def test_cells_equal_independent_runs(sweeps):
  # The default path (one batch-last loop) against runs of the same loop.
  res = sweeps["dense"]
  assert res.shape == (5, 3, 2)
  assert res.dims["qre_gap_trajectory"] == ("game", "tau", "eta", "iteration")
  np.testing.assert_array_equal(res.iteration, np.arange(0, ITERS + 1, EVERY))
  with jax.enable_x64(True):
    for g in range(5):
      game, init = jaxnpg.family_game("random", 0, g, SIZES)
      for t, tau in enumerate(TAUS):
        for e, eta in enumerate(ETAS):
          run = jaxnpg.run(game, tau, eta, ITERS, init=init, record_every=EVERY)
          want = _record_from_run(run, 1e-9, ITERS)
          for name, value in want.items():
            got = getattr(res, name)[g, t, e]
            if name in ("iterations_to_tol", "monotone", "status"):
              assert got == value, (name, g, tau, eta)
            else:
              np.testing.assert_allclose(got, value, rtol=1e-9, atol=1e-14,
                                         err_msg=f"{name} {g} {tau} {eta}")


def test_statuses_cover_the_phase_diagram(sweeps):
  res = sweeps["generic"]
  # tau = 2 converges in every game; tau = 0 (multiplicative weights) does not.
  assert np.all(res.status[:, 2, :] == jaxnpg.Status.CONVERGED)
  assert np.all(res.status[:, 0, :] != jaxnpg.Status.CONVERGED)
  assert np.all(res.iterations_to_tol[:, 2, :] > 0)
  assert np.all(res.iterations_to_tol[:, 0, :] == -1)
  assert res.converged_fraction().shape == (3, 2)
  np.testing.assert_allclose(res.step_size, [ETAS] * 3)


def test_dense_kernel_equals_generic_path(sweeps):
  dense, generic = sweeps["dense"], sweeps["generic"]
  assert dense.attrs["method"] == "dense" and generic.attrs["method"] == "generic"
  # Contracting cells agree to rounding; at tau = 0 the iteration does not
  # contract, so only the first records are compared there.
  for name in ("qre_gap", "ne_gap", "qre_gap_trajectory", "ne_gap_trajectory"):
    np.testing.assert_allclose(getattr(dense, name)[:, 1:],
                               getattr(generic, name)[:, 1:],
                               rtol=1e-7, atol=1e-13, err_msg=name)
  # The stored rate's fit reaches down to gaps near the floating-point floor,
  # where the two paths' rounding differs in the leading digits of tiny gaps; fit
  # both trajectories above 1e-10, where they agree to rounding.
  fit = jax.vmap(lambda g: jaxnpg.linear_rate(g, dense.iteration, floor=1e-10))
  rates = [np.asarray(fit(jnp.asarray(r.qre_gap_trajectory[:, 1:].reshape(
      -1, dense.iteration.size)))) for r in (dense, generic)]
  np.testing.assert_allclose(rates[0], rates[1], rtol=1e-7)
  np.testing.assert_allclose(dense.qre_gap_trajectory[:, 0, :, :10],
                             generic.qre_gap_trajectory[:, 0, :, :10],
                             rtol=1e-9)
  for name in ("iterations_to_tol", "status"):
    np.testing.assert_array_equal(getattr(dense, name)[:, 1:],
                                  getattr(generic, name)[:, 1:])


def test_dense_marginals_batch_last(rng, x64):
  sizes = (2, 3, 4)
  R = rng.uniform(-1, 1, size=(6, 3) + sizes)
  probs = [rng.dirichlet(np.ones(a), size=6) for a in sizes]
  got = dense_marginals_last(
      jnp.asarray(np.moveaxis(R, 0, -1)),
      tuple(jnp.asarray(p.T) for p in probs))
  for g in range(6):
    want = reference.marginal_rewards(R[g], [p[g] for p in probs])
    also = dense_marginals(jnp.asarray(R[g]), tuple(jnp.asarray(p[g])
                                                    for p in probs))
    for i in range(3):
      np.testing.assert_allclose(got[i][:, g], want[i], rtol=1e-13)
      np.testing.assert_allclose(also[i], want[i], rtol=1e-13)


def test_dense_kernel_against_numpy_reference(sweeps):
  """A cell of the dense path against the plain NumPy NPG of tests/reference.py."""
  res = sweeps["dense"]
  with jax.enable_x64(True):
    game, init = jaxnpg.family_game("random", 0, 3, SIZES)
  R = np.asarray(game.rewards)
  for t, tau in ((1, 0.3), (2, 2.0)):
    probs = [np.exp(np.asarray(lp)) for lp in init]
    for k in range(ITERS + 1):
      if k % 40 == 0:
        np.testing.assert_allclose(
            res.qre_gap_trajectory[3, t, 1, k // EVERY],
            reference.qre_gap(R, probs, tau), rtol=1e-8, atol=1e-15)
      probs = reference.npg_step(R, probs, tau, ETAS[1])


def test_dense_equals_generic_at_the_edges(x64):
  """Zero probabilities, eta*tau > 1, tau = 0 and a user batch of games."""
  rng = np.random.default_rng(5)
  R = rng.uniform(size=(4, 2, 3, 2))
  game = jaxnpg.NormalFormGame(R, num_agents=2)
  p0 = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5],
                 [0.0, 0.0, 1.0]])
  p1 = np.array([[0.5, 0.5], [1.0, 0.0], [0.3, 0.7], [0.9, 0.1]])
  with np.errstate(divide="ignore"):
    init = (jnp.asarray(np.log(p0)), jnp.asarray(np.log(p1)))
  kw = dict(game=game, init=init, taus=[0.0, 0.5, 3.0], etas=[0.2, 0.5],
            num_iters=30, record_every=3, trajectory_points=100, quiet=True)
  dense = jaxnpg.sweep(method="dense", **kw)
  generic = jaxnpg.sweep(method="generic", **kw)
  assert (dense.step_size * dense.tau[:, None] > 1).any()   # eta*tau = 1.5
  for name in ("qre_gap_trajectory", "ne_gap_trajectory"):
    np.testing.assert_allclose(getattr(dense, name), getattr(generic, name),
                               rtol=1e-9, atol=1e-14, err_msg=name)
  np.testing.assert_array_equal(dense.status, generic.status)


def test_one_bad_cell_never_aborts_the_batch(x64):
  """Huge rewards overflow the gap at small tau: that cell blows up, alone."""
  rng = np.random.default_rng(2)
  R = rng.uniform(size=(2, 2, 2, 2))
  R[1] *= 1e306
  game = jaxnpg.NormalFormGame(R, num_agents=2)
  res = jaxnpg.sweep(game=game, init="uniform", taus=[1e-3, 1.0], etas=[0.1],
                     num_iters=40, record_every=2, quiet=True)
  assert res.status[1, 0, 0] == jaxnpg.Status.BLEW_UP
  alone = jaxnpg.sweep(game=jaxnpg.NormalFormGame(R[:1], num_agents=2),
                       init="uniform", taus=[1e-3, 1.0], etas=[0.1],
                       num_iters=40, record_every=2, quiet=True)
  for name in ("qre_gap", "ne_gap", "status", "linear_rate"):
    np.testing.assert_array_equal(getattr(res, name)[:1], getattr(alone, name))


def test_stalled_and_converged_on_matching_pennies(x64):
  pennies = np.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
  game = jaxnpg.NormalFormGame(pennies[None], num_agents=2)
  init = (jnp.log(jnp.array([[0.8, 0.2]])), jnp.log(jnp.array([[0.3, 0.7]])))
  res = jaxnpg.sweep(game=game, init=init, taus=[0.0, 1.0], etas=[0.1],
                     num_iters=400, quiet=True)
  # MWU (tau = 0) spirals out: the gaps oscillate without repeating, which is
  # no evidence either way.
  assert res.status[0, 0, 0] == jaxnpg.Status.NOT_CONVERGED
  assert np.isnan(res.iterations_needed[0, 0, 0])
  assert res.status[0, 1, 0] == jaxnpg.Status.CONVERGED
  assert res.monotone[0, 1, 0] and not res.monotone[0, 0, 0]
  # eta * tau = 1 at small tau: the soft best response runs round a 4-cycle.
  cycle = jaxnpg.sweep(game=game, init=init, taus=[0.05], etas=[20.0],
                       num_iters=400, quiet=True)
  assert cycle.status[0, 0, 0] == jaxnpg.Status.STALLED


def test_paper_rule_eta_axis_holds_multipliers(x64):
  res = _sweep(num_games=2, etas="paper", eta_multipliers=[0.5, 2.0],
               trajectory_points=0)
  assert res.eta_rule == "paper"
  np.testing.assert_allclose(res.eta, [0.5, 2.0])
  base = np.asarray(jaxnpg.paper_eta(np.asarray(TAUS), SIZES))
  np.testing.assert_allclose(res.step_size, base[:, None] * [0.5, 2.0])
  assert res.qre_gap_trajectory is None and "qre_gap_trajectory" not in res.dims


def test_chunked_equals_unchunked_and_budget_sets_chunks(sweeps, x64):
  one = sweeps["dense"]
  small = _sweep(method="dense", chunk_games=2)
  assert small.attrs["num_chunks"] == 3 and one.attrs["num_chunks"] == 1
  tight = _sweep(method="dense", memory_budget=30_000)
  assert tight.attrs["chunk_games"] < one.attrs["chunk_games"]
  for other in (small, tight):
    for name in FIELDS:
      np.testing.assert_array_equal(getattr(one, name), getattr(other, name),
                                    err_msg=name)


def test_sharded_equals_unsharded_on_four_devices(tmp_path):
  script = textwrap.dedent(f"""
      import os
      os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
      import jax, numpy as np
      jax.config.update("jax_enable_x64", True)
      import jaxnpg
      assert jax.device_count() == 4
      kw = dict(num_actions={SIZES}, num_games=12, taus={TAUS}, etas={ETAS},
                num_iters={ITERS}, record_every={EVERY}, trajectory_points=8,
                quiet=True)
      for method in ("dense", "generic"):
        one = jaxnpg.sweep("random", devices=jax.devices()[:1], method=method,
                           **kw)
        four = jaxnpg.sweep("random", method=method, chunk_games=8, **kw)
        assert four.attrs["num_devices"] == 4 and one.attrs["num_devices"] == 1
        # The sharded result says how it compares with one device.
        said = four.attrs["reproducibility"]
        assert ("bit for bit equal" in said) == (method == "dense"), said
        assert "reproducibility" not in one.attrs
        for f in {FIELDS}:
          a, b = getattr(one, f), getattr(four, f)
          if method == "dense":
            assert np.array_equal(a, b, equal_nan=True), (method, f)
          else:  # XLA compiles the reductions of a 4-device program differently
            tol = 1e-3 if f == "linear_rate" else 1e-12   # fits reach the floor
            np.testing.assert_allclose(a, b, rtol=tol, atol=1e-15, err_msg=f)
        np.testing.assert_array_equal(one.status, four.status)
      print("SHARDED-OK")
  """)
  path = tmp_path / "sharded.py"
  path.write_text(script)
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env.pop("XLA_FLAGS", None)
  out = subprocess.run([sys.executable, str(path)], capture_output=True,
                       text=True, env=env, timeout=scaled(600))
  assert "SHARDED-OK" in out.stdout, out.stderr[-3000:]


def test_to_dataframe_and_missing_xarray(sweeps, monkeypatch):
  pd = pytest.importorskip("pandas")
  res = sweeps["generic"]
  df = res.to_dataframe()
  assert isinstance(df, pd.DataFrame) and len(df) == 5 * 3 * 2
  row = df[(df.game == 3) & (df.tau == 0.3) & (df.eta == 0.3)].iloc[0]
  assert row.qre_gap == res.qre_gap[3, 1, 1]
  assert row.status_name == jaxnpg.STATUS_NAMES[res.status[3, 1, 1]]
  monkeypatch.setitem(sys.modules, "xarray", None)
  with pytest.raises(ImportError, match=r"jaxnpg\[xarray\]"):
    res.to_xarray()


def test_to_xarray(sweeps):
  pytest.importorskip("xarray")
  ds = sweeps["generic"].to_xarray()
  assert ds.qre_gap.dims == ("game", "tau", "eta")
  assert ds.qre_gap_trajectory.dims == ("game", "tau", "eta", "iteration")
  np.testing.assert_array_equal(ds.tau.values, TAUS)


@pytest.mark.parametrize("kwargs, message", [
    (dict(taus=[]), "`taus` is empty"),
    (dict(taus=[0.1, -1.0]), "`taus` must be >= 0"),
    (dict(taus=[0.1, float("nan")]), "must be finite"),
    (dict(etas=[0.1, 0.0]), "`etas` .* must be > 0"),
    (dict(etas=[-0.5]), "`etas` .* must be > 0"),
    (dict(etas="fast"), "rule 'paper'"),
    (dict(etas="paper", eta_multipliers=[0.0]), "`eta_multipliers` must be > 0"),
    (dict(etas=[0.1], eta_multipliers=[1.0]), "pass etas='paper'"),
    (dict(family="nope"), "Unknown game family 'nope'"),
    (dict(num_games=0), "`num_games` must be >= 1"),
    (dict(num_iters=0), "`num_iters` must be >= 1"),
    (dict(seed=-1), "`seed` must be an integer"),
    (dict(init="zeros"), "`init` must be one of"),
    (dict(method="fast"), "`method` must be one of"),
    (dict(tol=0.0), "`tol` must be a finite number > 0"),
    (dict(trajectory_points=-1), "`trajectory_points` must be >= 0"),
    # algorithms (tests/sweeps/test_sweep_algorithms.py runs them)
    (dict(algorithm="npg", num_seeds=2), "deterministic algorithm .'npg'."),
    (dict(algorithm="sampled_npg", num_seeds=0), "`num_seeds` must be >= 1"),
    (dict(algorithm="adam"), "Unknown algorithm 'adam'"),
    (dict(algorithm="pg", method="dense"), "work batch-last"),
    (dict(family="markov", algorithm="sampled_npg"), "needs a static game"),
])
def test_bad_arguments_give_one_clear_error(kwargs, message):
  args = dict(family="random", num_actions=(2, 2), num_games=2, taus=[0.1],
              etas=[0.1], num_iters=10, quiet=True)
  args.update(kwargs)
  family = args.pop("family")
  with pytest.raises(ValueError, match=message):
    jaxnpg.sweep(family, **args)


def test_game_argument_errors():
  game = jaxnpg.random_game(jax.random.key(0), (2, 2))
  with pytest.raises(ValueError, match="one batch axis"):
    jaxnpg.sweep(game=game, taus=[0.1])
  batch = jaxnpg.NormalFormGame(np.zeros((2, 2, 2, 2)), num_agents=2)
  with pytest.raises(ValueError, match="either a `family` name or a batched"):
    jaxnpg.sweep("random", game=batch, taus=[0.1])
  big = jaxnpg.NormalFormGame(np.zeros((1, 2) + (70, 70)), num_agents=2)
  with pytest.raises(ValueError, match="method='generic'"):
    jaxnpg.sweep(game=big, taus=[0.1], method="dense")
