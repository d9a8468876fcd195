"""jaxnpg.sweep with ``algorithm=`` and ``num_seeds=``: cells equal independent
``jaxnpg.run`` calls with the same key, the seed axis, resume refusals, the
summary over seeds, and ``jaxnpg sweep --algorithm ... --seeds ...``.

Compilation dominates the cost, so the sweeps are tiny and shared (module-scoped
fixtures); float64 throughout.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnpg
from jaxnpg import cli
from jaxnpg.loop.describe import describe_algorithm

SIZES = (2, 3)
TAUS = [0.5, 2.0]
ETAS = [0.2]
ITERS = 30
EVERY = 3
TOL = 1e-6
NUM_GAMES = 3
SEED = 7
PG_ADAM = jaxnpg.PolicyGradient(optax.adam(1.0))
SAMPLED = jaxnpg.SampledNPG(num_samples=8, explore=0.1)


def _sweep(**kw):
  args = dict(num_actions=SIZES, num_games=NUM_GAMES, seed=SEED, taus=TAUS,
              etas=ETAS, num_iters=ITERS, record_every=EVERY,
              trajectory_points=1000, tol=TOL, quiet=True)
  args.update(kw)
  return jaxnpg.sweep("random", **args)


@pytest.fixture(scope="module")
def swept():
  """One sweep per algorithm (sampled NPG with 3 seeds and without)."""
  with jax.enable_x64(True):
    return {
        "optimistic_npg": _sweep(algorithm="optimistic_npg"),
        "pg": _sweep(algorithm=PG_ADAM),
        "sampled_npg": _sweep(algorithm=SAMPLED, num_seeds=3),
        "sampled_npg_unseeded": _sweep(algorithm=SAMPLED),
    }


def _check_cell(res, index, run):
  """A sweep cell against a RunResult: trajectories, final gaps, tol hitting."""
  qre = np.asarray(run.qre_gap)
  ne = np.asarray(run.ne_gap)
  np.testing.assert_array_equal(res.iteration, np.asarray(run.iterations))
  np.testing.assert_allclose(res.qre_gap_trajectory[index], qre, rtol=1e-9,
                             atol=1e-14)
  np.testing.assert_allclose(res.ne_gap_trajectory[index], ne, rtol=1e-9,
                             atol=1e-14)
  np.testing.assert_allclose(res.qre_gap[index], qre[-1], rtol=1e-9, atol=1e-14)
  hit = np.nonzero(qre <= TOL)[0]
  want = int(np.asarray(run.iterations)[hit[0]]) if hit.size else -1
  assert res.iterations_to_tol[index] == want
  assert (res.status[index] == jaxnpg.Status.CONVERGED) == (qre[-1] <= TOL)


@pytest.mark.parametrize("name, algorithm", [("optimistic_npg", "optimistic_npg"),
                                             ("pg", PG_ADAM)])
def test_deterministic_cells_equal_independent_runs(swept, name, algorithm):
  res = swept[name]
  # Optimistic NPG works batch-last (one loop over the block); pg is vmapped.
  method = "dense" if name == "optimistic_npg" else "generic"
  assert res.attrs["algorithm"] == name and res.attrs["method"] == method
  assert res.seed is None and res.shape == (NUM_GAMES, 2, 1)
  with jax.enable_x64(True):
    for g in range(NUM_GAMES):
      game, init = jaxnpg.family_game("random", SEED, g, SIZES)
      for t, tau in enumerate(TAUS):
        run = jaxnpg.run(game, tau, ETAS[0], ITERS, init=init,
                         record_every=EVERY, algorithm=algorithm)
        _check_cell(res, (g, t, 0), run)


def test_pg_and_optimistic_differ_from_npg(swept):
  """The algorithm is really used: the trajectories differ from plain NPG's."""
  with jax.enable_x64(True):
    game, init = jaxnpg.family_game("random", SEED, 1, SIZES)
    npg = np.asarray(jaxnpg.run(game, TAUS[0], ETAS[0], ITERS, init=init,
                                record_every=EVERY).qre_gap)
  for name in ("optimistic_npg", "pg"):
    traj = swept[name].qre_gap_trajectory[1, 0, 0]
    assert np.max(np.abs(traj[1:] - npg[1:]) / npg[1:]) > 1e-3, name


def test_sampled_cells_equal_runs_with_the_sweep_key(swept):
  res = swept["sampled_npg"]
  assert res.shape == (NUM_GAMES, 2, 1, 3)
  assert res.dims["qre_gap"] == ("game", "tau", "eta", "seed")
  assert res.dims["qre_gap_trajectory"] == ("game", "tau", "eta", "seed",
                                            "iteration")
  np.testing.assert_array_equal(res.seed, [0, 1, 2])
  assert res.attrs["num_seeds"] == 3
  assert res.attrs["algorithm_options"]["num_samples"] == 8
  with jax.enable_x64(True):
    for g, t, s in ((0, 0, 0), (2, 1, 2), (1, 0, 1)):
      game, init = jaxnpg.family_game("random", SEED, g, SIZES)
      key = jaxnpg.sweep_key(SEED, g, s)
      run = jaxnpg.run(game, TAUS[t], ETAS[0], ITERS, init=init,
                       record_every=EVERY, algorithm=SAMPLED, key=key)
      _check_cell(res, (g, t, 0, s), run)
      # Another seed's key gives another trajectory.
      other = jaxnpg.run(game, TAUS[t], ETAS[0], ITERS, init=init,
                         record_every=EVERY, algorithm=SAMPLED,
                         key=jaxnpg.sweep_key(SEED, g, s + 1))
      assert not np.allclose(np.asarray(other.qre_gap)[1:],
                             res.qre_gap_trajectory[g, t, 0, s, 1:])


def test_seed_axis_draws_differ_and_seed_zero_is_the_unseeded_sweep(swept):
  res, plain = swept["sampled_npg"], swept["sampled_npg_unseeded"]
  traj = res.qre_gap_trajectory                       # (G, T, E, S, K)
  for s, r in ((0, 1), (0, 2), (1, 2)):
    assert not np.allclose(traj[..., s, 1:], traj[..., r, 1:])
  # The initial records (same game and policy) agree across seeds.
  np.testing.assert_array_equal(traj[..., 0, 0], traj[..., 1, 0])
  assert plain.seed is None and plain.shape == (NUM_GAMES, 2, 1)
  for name in ("qre_gap", "ne_gap", "status", "qre_gap_trajectory"):
    np.testing.assert_allclose(getattr(plain, name), getattr(res, name)[:, :, :, 0],
                               rtol=1e-12, atol=1e-15, err_msg=name)


def test_user_game_batch_uses_its_positions_for_keys(x64):
  games = [jaxnpg.random_game(jax.random.key(k), SIZES) for k in (3, 4)]
  batch = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *games)
  res = jaxnpg.sweep(game=batch, init="uniform", seed=SEED, taus=[1.0],
                     etas=[0.2], num_iters=ITERS, record_every=EVERY,
                     trajectory_points=100, algorithm=SAMPLED, quiet=True)
  for g, game in enumerate(games):
    run = jaxnpg.run(game, 1.0, 0.2, ITERS, record_every=EVERY,
                     algorithm=SAMPLED, key=jaxnpg.sweep_key(SEED, g))
    np.testing.assert_allclose(res.qre_gap_trajectory[g, 0, 0],
                               np.asarray(run.qre_gap), rtol=1e-9, atol=1e-14)


def test_summary_and_merge_seeds_against_numpy(swept):
  res = swept["sampled_npg"]
  summ = res.summary()
  conv = res.status == jaxnpg.Status.CONVERGED            # (G, T, E, S)
  rate = res.linear_rate.astype(float)
  for t in range(2):
    per_seed = [conv[:, t, 0, s].mean() for s in range(3)]
    assert summ["converged_fraction"][t, 0] == pytest.approx(np.mean(per_seed))
    assert summ["converged_fraction_std"][t, 0] == pytest.approx(
        np.std(per_seed, ddof=1))
    medians = [np.nanmedian(rate[:, t, 0, s]) for s in range(3)]
    assert summ["median_linear_rate"][t, 0] == pytest.approx(np.mean(medians))
    assert summ["median_linear_rate_std"][t, 0] == pytest.approx(
        np.std(medians, ddof=1))
  np.testing.assert_allclose(res.converged_fraction(), summ["converged_fraction"])
  assert res.converged_fraction(per_seed=True).shape == (2, 1, 3)
  merged = res.merge_seeds()
  assert merged.seed is None and merged.shape == (NUM_GAMES * 3, 2, 1)
  np.testing.assert_array_equal(merged.game, np.repeat(np.arange(NUM_GAMES), 3))
  for g in range(NUM_GAMES):
    for s in range(3):
      np.testing.assert_array_equal(merged.qre_gap_trajectory[g * 3 + s],
                                    res.qre_gap_trajectory[:, :, :, s][g])
  np.testing.assert_allclose(merged.converged_fraction(), res.converged_fraction())
  plain = swept["pg"]
  assert plain.merge_seeds() is plain
  assert np.all(plain.summary()["converged_fraction_std"] == 0)


def test_to_dataframe_has_a_seed_column(swept):
  pd = pytest.importorskip("pandas")
  res = swept["sampled_npg"]
  df = res.to_dataframe()
  assert isinstance(df, pd.DataFrame) and len(df) == NUM_GAMES * 2 * 1 * 3
  row = df[(df.game == 2) & (df.tau == 2.0) & (df.seed == 1)].iloc[0]
  assert row.qre_gap == res.qre_gap[2, 1, 0, 1]
  assert "seed" not in swept["pg"].to_dataframe().columns


def test_to_xarray_has_a_seed_axis(swept):
  pytest.importorskip("xarray")
  ds = swept["sampled_npg"].to_xarray()
  assert ds.qre_gap.dims == ("game", "tau", "eta", "seed")
  assert ds.qre_gap_trajectory.dims == ("game", "tau", "eta", "seed", "iteration")


# --------------------------------------------------------------------------------
# Resume and refusals.


def test_resume_with_another_algorithm_or_seeds_is_refused(tmp_path, swept, x64):
  out = tmp_path / "s"
  first = _sweep(algorithm=SAMPLED, num_seeds=3, out=out)
  for name in ("qre_gap", "linear_rate", "status", "qre_gap_trajectory"):
    # The same seed gives the same draws: equal to the fixture's sweep.
    np.testing.assert_array_equal(getattr(first, name),
                                  getattr(swept["sampled_npg"], name))
  events = []
  again = _sweep(algorithm=SAMPLED, num_seeds=3, out=out, on_chunk=events.append)
  assert events and all(e["skipped"] for e in events)
  np.testing.assert_array_equal(again.qre_gap_trajectory, first.qre_gap_trajectory)
  loaded = jaxnpg.load_sweep(out)
  assert loaded.dims["qre_gap"] == ("game", "tau", "eta", "seed")
  np.testing.assert_array_equal(loaded.status, first.status)
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["params"]["algorithm"] == "sampled_npg"
  assert manifest["params"]["num_seeds"] == 3
  with pytest.raises(ValueError, match=r"holds a different sweep: its algorithm "
                     r"is \"sampled_npg\", this sweep's is \"optimistic_npg\""):
    _sweep(algorithm="optimistic_npg", out=out)
  with pytest.raises(ValueError, match="its num_seeds is 3, this sweep's is 2"):
    _sweep(algorithm=SAMPLED, num_seeds=2, out=out)
  with pytest.raises(ValueError, match="algorithm_options"):
    _sweep(algorithm=jaxnpg.SampledNPG(num_samples=9, explore=0.1), num_seeds=3,
           out=out)


def test_manifest_without_algorithm_is_a_plain_npg_sweep(tmp_path, x64):
  """Folders written before ``algorithm=`` existed resume as NPG sweeps."""
  out = tmp_path / "old"
  kw = dict(num_games=2, trajectory_points=0, method="dense")
  _sweep(out=out, **kw)
  path = out / "manifest.json"
  manifest = json.loads(path.read_text())
  for key in ("algorithm", "algorithm_options", "num_seeds"):
    del manifest["params"][key]
  del manifest["params_sha256"]        # written before the params' checksums
  path.write_text(json.dumps(manifest))
  events = []
  _sweep(out=out, on_chunk=events.append, **kw)
  assert all(e["skipped"] for e in events)
  assert jaxnpg.load_sweep(out).attrs["algorithm"] == "npg"
  with pytest.raises(ValueError, match="its algorithm is \"npg\""):
    _sweep(out=out, algorithm="pg", **{**kw, "method": "generic"})


def test_optimizers_are_told_apart_in_the_manifest():
  a = describe_algorithm(jaxnpg.PolicyGradient(optax.adam(0.1)))
  assert a == describe_algorithm(jaxnpg.PolicyGradient(optax.adam(0.1)))
  assert a != describe_algorithm(jaxnpg.PolicyGradient(optax.adam(0.2)))
  assert a != describe_algorithm(jaxnpg.PolicyGradient(optax.sgd(0.1)))
  b = describe_algorithm(jaxnpg.SampledNPG(schedule=lambda k: 1 / (1 + k / 100)))
  c = describe_algorithm(jaxnpg.SampledNPG(schedule=lambda k: 1 / (1 + k / 50)))
  assert b != c
  json.dumps(a)   # plain JSON


def test_descriptions_are_stable_across_processes():
  code = ("import json, optax, jaxnpg; from jaxnpg.loop.describe import "
          "describe_algorithm as d; print(json.dumps([d(jaxnpg.PolicyGradient("
          "optax.adam(0.1))), d(jaxnpg.SampledNPG(schedule=optax."
          "exponential_decay(1.0, 10, 0.5)))]))")
  outs = []
  for hash_seed in ("1", "2"):
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, JAX_PLATFORMS="cpu")
    outs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                               capture_output=True, text=True).stdout)
  assert outs[0] == outs[1] and len(outs[0]) > 100


def test_unrecordable_algorithm_is_refused_only_with_out(tmp_path, x64):
  table = jnp.ones(1000)
  alg = jaxnpg.SampledNPG(num_samples=4, schedule=lambda k: table[k])
  with pytest.raises(ValueError, match="cannot be written to a sweep manifest"):
    _sweep(algorithm=alg, out=tmp_path / "x", num_games=1, taus=[1.0],
           trajectory_points=0)
  assert not (tmp_path / "x").exists()




def test_npg_with_one_seed_has_a_seed_axis_of_one(x64):
  one = _sweep(num_games=2, method="dense", num_seeds=1)
  assert one.shape == (2, 2, 1, 1) and one.attrs["method"] == "dense"
  game, init = jaxnpg.family_game("random", SEED, 1, SIZES)
  run = jaxnpg.run(game, TAUS[1], ETAS[0], ITERS, init=init, record_every=EVERY)
  np.testing.assert_allclose(one.qre_gap_trajectory[1, 1, 0, 0],
                             np.asarray(run.qre_gap), rtol=1e-9, atol=1e-14)


# --------------------------------------------------------------------------------
# The command line.


@pytest.fixture
def restore_x64():
  before = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", before)


@pytest.mark.slow   # ~25 s; seeds are covered in Python by the cells-equal-runs tests (`pytest -m slow`)
def test_cli_sweep_sampled_npg_with_seeds(tmp_path, capsys, restore_x64):
  out = tmp_path / "bandit"
  argv = ["sweep", "--actions", "2,2", "--games", "3", "--taus", "0.5,5",
          "--etas", "0.1", "--iters", "24", "--record-every", "3",
          "--trajectory", "4", "--algorithm", "sampled_npg", "--samples", "8",
          "--seeds", "3", "--quiet", "--out", str(out)]
  assert cli.main(argv) == 0
  captured = capsys.readouterr()
  assert "mean +- std over 3 seeds" in captured.out
  assert "sampled_npg on random games" in captured.err
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["params"]["algorithm"] == "sampled_npg"
  assert manifest["params"]["algorithm_options"]["num_samples"] == 8
  assert manifest["params"]["num_seeds"] == 3
  res = jaxnpg.load_sweep(out)
  assert res.shape == (3, 2, 1, 3) and res.qre_gap_trajectory.shape[-1] == 4
  with jax.enable_x64(True):
    game, init = jaxnpg.family_game("random", 0, 1, (2, 2))
    run = jaxnpg.run(game, 5.0, 0.1, 24, init=init, record_every=3,
                     algorithm=jaxnpg.SampledNPG(num_samples=8),
                     key=jaxnpg.sweep_key(0, 1, 2))
  np.testing.assert_allclose(res.qre_gap[1, 1, 0, 2], float(run.qre_gap[-1]),
                             rtol=1e-9)
  assert cli.main(["plot", str(out), "--out", str(tmp_path / "png")]) == 0
  assert (tmp_path / "png" / "converged_fraction.png").exists()
  assert (tmp_path / "png" / "qre_trajectories.png").exists()
  # Resuming the folder with another algorithm is refused in one line.
  argv[argv.index("sampled_npg")] = "optimistic_npg"
  del argv[argv.index("--seeds"):argv.index("--seeds") + 2]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("jaxnpg sweep: error:")
  assert "its algorithm is \"sampled_npg\"" in err[-1]


def test_cli_seeds_errors(tmp_path, capsys, restore_x64):
  base = ["sweep", "--actions", "2,2", "--games", "2", "--taus", "1", "--iters",
          "10", "--quiet", "--out", str(tmp_path / "x")]
  assert cli.main(base + ["--seeds", "0", "--algorithm", "sampled_npg"]) == 2
  assert "--seeds must be >= 1" in capsys.readouterr().err
  assert cli.main(base + ["--seeds", "2"]) == 2
  assert "deterministic algorithm" in capsys.readouterr().err


def test_inverse_cdf_sampler_frequencies(x64):
  """SampledNPG's draws: frequencies within 5 standard errors of the policy, and
  zero-probability actions never drawn."""
  from jaxnpg.loop.algorithms import sample_actions
  probs = np.array([0.2, 0.0, 0.45, 0.35, 0.0])
  with np.errstate(divide="ignore"):
    logp = jnp.asarray(np.log(probs))
  n = 100_000
  draws = np.asarray(sample_actions(jax.random.key(3), logp, n))
  freq = np.bincount(draws, minlength=5) / n
  se = np.sqrt(probs * (1 - probs) / n)
  assert np.all(np.abs(freq - probs) <= 5 * se + 1e-12), freq
  assert freq[1] == 0 and freq[4] == 0
