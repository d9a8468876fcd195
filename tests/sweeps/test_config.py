"""``jaxnpg.SweepConfig``: one frozen, checked definition of a sweep (issue 17).

A config checks every value when it is made (a ``ConfigError`` naming the field),
``sweep(config)`` equals ``sweep(**fields)``, the stored manifest holds its
parameters and gives it back (``load_sweep(path).config == config``), and edits
of a stored manifest's parameters are refused (issue 24).
"""

import dataclasses
import json

import jax
import numpy as np
import pytest

import jaxnpg
from jaxnpg.sweeps.config import ConfigError

FIELDS = dict(num_actions=(2, 2), num_games=4, taus=[0.1, 1.0],
              etas=[0.05, 0.2], num_iters=40, record_every=4,
              trajectory_points=3)


def _same(a, b):
  assert a.shape == b.shape
  for name in a.cell_fields:
    np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_sweep_of_a_config_equals_sweep_of_its_fields(tmp_path):
  config = jaxnpg.SweepConfig(**FIELDS)
  direct = jaxnpg.sweep(**FIELDS)
  _same(jaxnpg.sweep(config), direct)
  _same(jaxnpg.sweep("random", **{k: v for k, v in FIELDS.items()}), direct)
  stored = jaxnpg.sweep(config, out=tmp_path / "s", quiet=True)
  loaded = jaxnpg.load_sweep(tmp_path / "s")
  assert loaded.config == config and stored.config == config
  manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
  assert manifest["params"] == config.to_params()


def test_config_is_frozen_normalized_and_hashable():
  config = jaxnpg.SweepConfig(taus=np.array([0.5, 1]), num_actions=[3, 3])
  assert config.taus == (0.5, 1.0) and config.num_actions == (3, 3)
  assert config.family == "random" and config.num_games == 64
  assert config.record_every == 5 and config.algorithm == jaxnpg.NPG()
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.num_iters = 5
  assert hash(config) == hash(jaxnpg.SweepConfig(taus=[0.5, 1.0],
                                                 num_actions=(3, 3)))
  assert config.replace(num_games=8).num_games == 8
  assert config.replace(num_games=8) != config


@pytest.mark.parametrize("field,value,match", [
    ("taus", [], "taus"), ("taus", [-1.0], "taus"), ("taus", [np.nan], "taus"),
    ("etas", [0.0], "etas"), ("etas", "fast", "etas"),
    ("eta_multipliers", [-1.0], "eta_multipliers"),
    ("num_iters", 0, "num_iters"), ("num_iters", 2.5, "num_iters"),
    ("record_every", 99, "record_every"), ("tol", -1.0, "tol"),
    ("tol", float("inf"), "tol"), ("tail", 0.0, "tail"),
    ("method", "fast", "method"), ("seed", -1, "seed"),
    ("family", "nope", "family"), ("num_games", 0, "num_games"),
    ("num_actions", (0, 2), "num_actions"), ("algorithm", "sgd", "algorithm"),
    ("num_seeds", 3, "num_seeds"), ("num_inits", 2, "num_inits"),
    ("dtype", "float16", "dtype"), ("keep_logp", "yes", "keep_logp"),
    ("init", "zeros", "init"),
    ("family_options", {"color": 1}, "family_options"),
])
def test_a_bad_value_is_refused_at_construction_naming_it(field, value, match):
  kw = dict(FIELDS, num_iters=40, record_every=4)
  if field == "eta_multipliers":
    kw["etas"] = "paper"
  kw[field] = value
  with pytest.raises(ConfigError, match=match) as info:
    jaxnpg.SweepConfig(**kw)
  assert info.value.field == field and isinstance(info.value, ValueError)


def test_a_float64_config_needs_x64_only_to_run():
  config = jaxnpg.SweepConfig(dtype="float64", **FIELDS)   # fine to make
  with pytest.raises(ValueError, match="64-bit JAX"):
    jaxnpg.sweep(config)
  with jax.enable_x64(True):
    assert jaxnpg.sweep(config).qre_gap.dtype == np.float64


@pytest.mark.parametrize("field,value", [("taus", [0.1, 2.0]),
                                         ("etas", [0.05, 0.3]),
                                         ("num_iters", 41), ("seed", 3)])
def test_an_edited_parameter_is_refused_everywhere(tmp_path, field, value,
                                                   capsys):
  out = tmp_path / "s"
  jaxnpg.sweep(jaxnpg.SweepConfig(**FIELDS), out=out, quiet=True)
  path = out / "manifest.json"
  manifest = json.loads(path.read_text())
  manifest["params"][field] = value
  path.write_text(json.dumps(manifest))
  match = f"params.{field} does not match its checksum"
  with pytest.raises(ValueError, match=match):
    jaxnpg.load_sweep(out)
  with pytest.raises(ValueError, match=match):
    jaxnpg.sweep(jaxnpg.SweepConfig(**FIELDS), out=out, quiet=True)
  assert jaxnpg.cli.main(["plot", str(out), "--out", str(tmp_path / "p")]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and match in err


def test_an_old_sweep_is_loaded_but_not_resumed_under_new_verdicts(tmp_path):
  out = tmp_path / "old"
  jaxnpg.sweep(jaxnpg.SweepConfig(**FIELDS), out=out, quiet=True)
  path = out / "manifest.json"
  manifest = json.loads(path.read_text())
  for key in ("verdict_rules", "keep_logp", "policy_shapes"):
    del manifest["params"][key]
  del manifest["params_sha256"]          # written before the checksums
  path.write_text(json.dumps(manifest))
  with pytest.raises(ValueError, match="verdict_rules"):
    jaxnpg.sweep(jaxnpg.SweepConfig(**FIELDS), out=out, quiet=True)
