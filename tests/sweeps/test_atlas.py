"""The learning-dynamics atlas: attractor fields in sweeps, structure sweeps
(jaxnpg.atlas), their store, CLI, plots and `jaxnpg reproduce --atlas`."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
from jaxnpg.sweeps import atlas as _atlas
from jaxnpg.paper import reproduce as _reproduce
from jaxnpg.sweeps import store as _store
from jaxnpg.cli import main, parse_linear

SMALL = dict(num_actions=(4, 4), num_games=4, taus=[0.03, 0.3], etas=[1.0],
             num_iters=150, quiet=True)


@pytest.fixture(scope="module")
def cov_sweep():
  return jaxnpg.sweep("covariant", family_options={"correlation": 0.5},
                      lyapunov=True, num_inits=3, burn_in=100, **SMALL)


def test_atlas_fields_shapes_and_absent_when_not_asked(cov_sweep):
  res = cov_sweep
  assert res.exponent.shape == res.status.shape == (4, 2, 1)
  assert res.attractor.dtype == np.int8 and res.exponent.dtype == res.qre_gap.dtype
  assert res.num_fixed_points.min() >= 0 and res.num_fixed_points.max() <= 3
  assert "num_fixed_points" in res.dims and "exponent" in res.to_dataframe()
  plain = jaxnpg.sweep("covariant", family_options={"correlation": 0.5}, **SMALL)
  assert plain.exponent is None and plain.num_fixed_points is None
  # The plain fields do not change when the atlas fields are asked for.
  for f in ("qre_gap", "ne_gap", "iterations_to_tol", "linear_rate", "status"):
    np.testing.assert_array_equal(getattr(plain, f), getattr(res, f))


def test_cells_are_attractor_runs_from_init_key(cov_sweep):
  g, t = 2, 0
  game, logp = jaxnpg.family_game("covariant", 0, g, (4, 4),
                                  {"correlation": 0.5})
  tau = float(cov_sweep.tau[t])
  starts = [logp] + [jaxnpg.random_policy(jaxnpg.init_key(0, g, k), game,
                                          draw_dtype=jnp.float32)
                     for k in (1, 2)]
  runs = [jaxnpg.attractor(game, tau, 1.0, 150, init=s, burn_in=100)
          for s in starts]
  np.testing.assert_allclose(cov_sweep.exponent[g, t, 0], runs[0].exponent,
                             rtol=1e-4, atol=1e-6)
  assert cov_sweep.attractor[g, t, 0] == runs[0].attractor
  assert cov_sweep.period[g, t, 0] == runs[0].period
  limits = tuple(jnp.stack([r.logp[i] for r in runs]) for i in range(2))
  ok = jnp.asarray([bool(r.converged) for r in runs])
  assert cov_sweep.num_fixed_points[g, t, 0] == int(
      jaxnpg.count_distinct(limits, valid=ok))


def test_bad_atlas_arguments():
  with pytest.raises(ValueError, match="lyapunov=True"):
    jaxnpg.sweep("covariant", num_inits=2, **SMALL)
  # Any deterministic algorithm has a map to linearize; sampling has none.
  with pytest.raises(ValueError, match="deterministic"):
    jaxnpg.sweep("covariant", lyapunov=True, algorithm="sampled_npg", **SMALL)
  with pytest.raises(ValueError, match="num_inits"):
    jaxnpg.sweep("covariant", lyapunov=True, num_inits=0, **SMALL)


def test_store_resumes_and_refuses_other_atlas_params(tmp_path, cov_sweep):
  out = tmp_path / "s"
  kw = dict(family_options={"correlation": 0.5}, lyapunov=True, num_inits=3,
            burn_in=100, **SMALL)
  first = jaxnpg.sweep("covariant", out=out, chunk_games=2, **kw)
  os.remove(out / "chunks" / "chunk-00001.npz")
  again = jaxnpg.sweep("covariant", out=out, **kw)
  loaded = jaxnpg.load_sweep(out)
  for f in cov_sweep.cell_fields:
    np.testing.assert_array_equal(getattr(first, f), getattr(cov_sweep, f))
    np.testing.assert_array_equal(getattr(again, f), getattr(loaded, f))
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["params"]["num_inits"] == 3 and manifest["params"]["lyapunov"]
  for change in ({"num_inits": 2}, {"burn_in": 50}, {"max_period": 8}):
    with pytest.raises(ValueError, match="different sweep"):
      jaxnpg.sweep("covariant", out=out, **{**kw, **change})
  with pytest.raises(ValueError, match="different sweep"):
    jaxnpg.sweep("covariant", out=out, family_options={"correlation": 0.5},
                 **SMALL)


def test_store_accepts_atlas_arrays_only_when_recorded(tmp_path):
  out = tmp_path / "p"
  res = jaxnpg.sweep("covariant", out=out, **SMALL)
  store = _store.SweepStore(out, json.loads((out / "manifest.json").read_text()))
  arrays = dict(store.read_chunk(0))
  store._check_arrays(0, arrays)
  with pytest.raises(ValueError, match="holds arrays"):
    store._check_arrays(0, {**arrays, "exponent": res.qre_gap})
  # Old manifests (without the new parameters) read as plain sweeps.
  manifest = json.loads((out / "manifest.json").read_text())
  # (Old manifests predate the per-parameter checksums too.)
  for key in ("lyapunov", "num_inits", "burn_in", "max_period"):
    manifest["params"].pop(key)
  manifest.pop("params_sha256")
  (out / "manifest.json").write_text(json.dumps(manifest))
  assert jaxnpg.load_sweep(out).exponent is None


def test_atlas_equals_sweeps_and_resumes(tmp_path, capsys):
  kw = dict(num_actions=(3, 3), values=[-1.0, 0.0, 1.0], taus=[0.05, 1.0],
            num_games=4, num_inits=2, num_iters=150, quiet=True)
  res = jaxnpg.atlas(out=tmp_path / "a", **kw)
  assert res.regime_fractions().shape == (3, 2, 1, 5)
  np.testing.assert_allclose(res.regime_fractions().sum(-1), 1.0)
  # Identical interest at large tau: every game has one stable fixed point.
  assert res.regime_fractions()[2, 1, 0, jaxnpg.Regime.UNIQUE_FIXED_POINT] == 1
  one = jaxnpg.sweep("covariant", num_actions=(3, 3), num_games=4,
                     family_options={"correlation": 0.0}, taus=[0.05, 1.0],
                     etas=[1.0], num_iters=150, lyapunov=True, num_inits=2,
                     quiet=True)
  for f in one.cell_fields:
    np.testing.assert_array_equal(getattr(one, f), getattr(res.sweeps[1], f))
  loaded = jaxnpg.load_atlas(tmp_path / "a")
  np.testing.assert_array_equal(loaded.regimes(), res.regimes())
  assert _atlas.is_atlas(tmp_path / "a")
  again = jaxnpg.atlas(out=tmp_path / "a", **{**kw, "quiet": False})  # resumes
  assert all(s.attrs["chunks_computed"] == 0 for s in again.sweeps)
  # Overall progress, one line per value, with the time left after the first.
  err = capsys.readouterr().err
  assert "value 1 of 3" in err and "resume" in err
  assert "value 3 of 3; 2 done in" in err and "left" in err
  with pytest.raises(ValueError, match="different atlas"):
    jaxnpg.atlas(out=tmp_path / "a", **{**kw, "values": [0.0, 1.0]})
  # An unfinished atlas: the last value not started, the middle one started
  # with no chunk yet. Refused whole; read partially, the first value only.
  import shutil
  shutil.rmtree(tmp_path / "a" / _atlas._folder("correlation", 2))
  for chunk in (tmp_path / "a" / _atlas._folder("correlation", 1)).glob(
      "chunks/*"):
    chunk.unlink()
  with pytest.raises(ValueError):
    jaxnpg.load_atlas(tmp_path / "a")
  part = jaxnpg.load_atlas(tmp_path / "a", allow_partial=True)
  assert part.values.tolist() == [-1.0] and part.attrs["partial"]
  np.testing.assert_array_equal(part.regimes(), res.regimes()[:1])
  assert main(["plot", str(tmp_path / "a"), "--partial"]) == 0
  assert (tmp_path / "a" / "plots" / "regimes.png").stat().st_size > 10_000
  with pytest.raises(ValueError):
    jaxnpg.atlas(**{**kw, "values": [-2.0]})           # below -1/(n-1)


def test_regimes_rule():
  res = jaxnpg.SweepResult(
      game=np.arange(1), tau=np.ones(5), eta=np.ones(1), eta_rule="constant",
      step_size=np.ones((5, 1)), iteration=np.zeros(0),
      qre_gap=np.zeros((1, 5, 1)), ne_gap=np.zeros((1, 5, 1)),
      iterations_to_tol=np.zeros((1, 5, 1), int), linear_rate=np.zeros((1, 5, 1)),
      monotone=np.ones((1, 5, 1), bool), status=np.zeros((1, 5, 1), np.int8),
      attractor=np.array([0, 0, 1, 2, 3], np.int8).reshape(1, 5, 1),
      num_fixed_points=np.array([1, 2, 0, 2, 0]).reshape(1, 5, 1))
  assert jaxnpg.regimes(res).ravel().tolist() == [0, 1, 2, 1, 4]


def test_parse_linear():
  assert parse_linear("-0.9:1:9", "--correlation") == pytest.approx(
      np.linspace(-0.9, 1, 9))
  assert parse_linear("0.5", "--correlation") == [0.5]
  assert parse_linear("-0.5,0", "--correlation") == [-0.5, 0.0]


def test_cli_atlas_sweep_and_plot(tmp_path, capsys):
  out = str(tmp_path / "atlas")
  argv = ["sweep", "--family", "covariant", "--actions", "3,3", "--correlation",
          "-0.9:1:3", "--taus", "1e-2:1:3", "--lyapunov", "--inits", "2",
          "--games", "3", "--iters", "100", "--out", out, "--quiet"]
  assert main(argv) == 0
  text = capsys.readouterr().out
  assert "dominant regime" in text and "plot it with" in text
  res = jaxnpg.load_atlas(out)
  assert res.values.tolist() == pytest.approx([-0.9, 0.05, 1.0])
  assert res.sweeps[0].attrs["num_inits"] == 2
  assert main(["plot", out, "--theory", "--theory-games", "2"]) == 0
  for name in ("regimes", "exponent"):
    assert os.path.getsize(os.path.join(out, "plots", f"{name}.png")) > 10_000
  assert main(["run", "--family", "covariant", "--correlation", "0:1:3",
               "--out", str(tmp_path / "r")]) == 2


@pytest.mark.slow   # ~40 s; notebooks/atlas.ipynb runs the atlas small in CI
def test_reproduce_atlas_quick(tmp_path):
  out = _reproduce.reproduce_atlas(str(tmp_path), quick=True, quiet=True,
                                   store=False, log=lambda s: None)
  folder = tmp_path / "atlas"
  doc = json.loads((folder / "atlas.json").read_text())
  assert doc == json.loads(json.dumps(out["json"]))
  for n in (2, 3, 4):
    entry = doc["atlases"][str(n)]
    res = out["atlases"][n]
    frac = np.asarray(entry["regime_fractions"])           # (R, T, E, 5)
    np.testing.assert_allclose(frac.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(frac, res.regime_fractions(), atol=1e-6)
    assert entry["values"][0] == pytest.approx(-1 / (n - 1))
    assert entry["gamma"] == pytest.approx((n - 1) * np.asarray(entry["values"]))
    med = np.asarray(entry["median_exponent"], dtype=float)
    np.testing.assert_allclose(med, res.median_exponent(), atol=1e-5)
    assert len(entry["predicted_boundary_tau"]) == len(entry["values"])
    for name in ("regimes", "exponent"):
      assert os.path.getsize(folder / f"atlas_{n}_agents_{name}.png") > 10_000
  assert os.path.getsize(folder / "atlas_regimes.png") > 10_000
