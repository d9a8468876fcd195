"""``jaxnpg sweep`` and ``jaxnpg plot``: a tiny sweep, its PNGs, resume, and the
one-line errors for bad arguments."""

import json

import jax
import matplotlib.image
import numpy as np
import pytest

import jaxnpg
from jaxnpg import cli
from jaxnpg.cli import sweep as sweep_command

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["sweep", "--actions", "2,2", "--games", "4", "--taus", "0.05,0.5,5",
        "--etas", "paper:0.5,1", "--iters", "60", "--trajectory", "6",
        "--chunk-games", "2", "--quiet"]


@pytest.fixture(autouse=True)
def restore_x64():
  """The CLI sets jax_enable_x64 from --dtype; put it back afterwards."""
  before = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", before)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
  out = tmp_path_factory.mktemp("cli") / "sweep"
  before = jax.config.jax_enable_x64
  try:
    assert cli.main(TINY + ["--out", str(out)]) == 0
  finally:
    jax.config.update("jax_enable_x64", before)
  return out


def test_sweep_writes_a_resumable_folder(swept, capsys):
  manifest = json.loads((swept / "manifest.json").read_text())
  assert manifest["params"]["eta_rule"] == "paper"
  assert manifest["params"]["etas"] == [0.5, 1.0]
  assert len(manifest["chunks"]) == 2
  res = jaxnpg.load_sweep(swept)
  assert res.shape == (4, 3, 2) and res.qre_gap_trajectory.shape[-1] == 6
  # The same command again verifies and skips both chunks.
  assert cli.main(TINY + ["--out", str(swept)]) == 0
  err = capsys.readouterr().err
  assert "2 already done and verified" in err


def test_plot_writes_the_phase_diagrams(swept, tmp_path, capsys):
  out = tmp_path / "png"
  assert cli.main(["plot", str(swept), "--out", str(out)]) == 0
  names = {"converged_fraction", "converged_heatmap", "linear_rate", "ne_gap",
           "qre_trajectories"}
  assert {p.stem for p in out.glob("*.png")} == names
  for name in names:
    data = (out / f"{name}.png").read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    img = matplotlib.image.imread(out / f"{name}.png")
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert np.std(img[..., :3]) > 0.05          # something is drawn
  assert "wrote" in capsys.readouterr().out


def test_plot_default_folder_and_no_trajectories(tmp_path, capsys):
  out = tmp_path / "s"
  argv = TINY + ["--out", str(out)]
  argv[argv.index("--trajectory") + 1] = "0"
  assert cli.main(argv) == 0
  assert cli.main(["plot", str(out)]) == 0
  pngs = {p.stem for p in (out / "plots").glob("*.png")}
  assert "qre_trajectories" not in pngs and "linear_rate" in pngs
  assert "no trajectory plot" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--taus", ","], "Invalid value for '--taus': the list is empty"),
    (["--taus=-1,0.5"], "--taus must be >= 0"),
    (["--etas", "0,0.1"], "--etas (the step sizes) must be > 0"),
    (["--etas=-0.1"], "--etas (the step sizes) must be > 0"),
    (["--etas", "paper:-1"], "--etas multipliers must be > 0"),
    (["--etas", "quick"], "Invalid value for '--etas'"),
    (["--family", "nope"], "Unknown game family 'nope'"),
    (["--games", "0"], "--games must be >= 1"),
    (["--memory-budget", "lots"], "Invalid value for '--memory-budget'"),
])
def test_bad_arguments_give_one_line(tmp_path, capsys, extra, message):
  code = cli.main(TINY + extra + ["--out", str(tmp_path / "x")])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2
  assert err[-1].startswith("jaxnpg sweep: error:") and message in err[-1]
  assert not any("Traceback" in line for line in err)


def test_folder_with_a_different_sweep_is_refused(swept, capsys):
  argv = TINY + ["--out", str(swept)]
  argv[argv.index("--iters") + 1] = "80"
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert "holds a different sweep" in err and "num_iters" in err


def test_plot_errors(tmp_path, swept, capsys):
  """The library's messages (load_sweep), and the CLI's for --eta-index (the
  plots would index from the end)."""
  assert cli.main(["plot", str(tmp_path / "missing")]) == 2
  assert "holds no sweep (no such folder)" in capsys.readouterr().err
  (tmp_path / "empty").mkdir()
  assert cli.main(["plot", str(tmp_path / "empty")]) == 2
  assert "holds no sweep" in capsys.readouterr().err
  for index in ("2", "-1"):
    assert cli.main(["plot", str(swept), "--eta-index", index, "--out",
                     str(tmp_path / "png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"jaxnpg plot: error: --eta-index must be in [0, 2), got "
                   f"{index}."]
  assert cli.main(["plot", str(swept), "--taus", "nan"]) == 2
  assert "jaxnpg plot: error: --taus must be finite" in capsys.readouterr().err


def test_sweep_builds_the_config_python_users_build(swept):
  """The CLI's options become the same jaxnpg.SweepConfig (the stored sweep's
  config equals one built in Python from the same values)."""
  expected = jaxnpg.SweepConfig(
      family="random", num_actions=(2, 2), num_games=4, taus=[0.05, 0.5, 5],
      etas="paper", eta_multipliers=[0.5, 1], num_iters=60, trajectory_points=6,
      dtype="float64")
  assert jaxnpg.load_sweep(swept).config == expected


def test_atlas_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch):
  """Ctrl-C in an atlas: exit 130, what is saved, and the command to resume."""
  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(sweep_command, "atlas", interrupted)
  argv = ["sweep", "--family", "covariant", "--actions", "2,2", "--correlation",
          "-0.5:0.5:2", "--games", "2", "--taus", "1", "--iters", "10",
          "--quiet", "--out", str(tmp_path / "atlas")]
  assert cli.main(argv) == 130
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1] == (f"jaxnpg sweep: interrupted; no chunk is saved in "
                     f"{tmp_path / 'atlas'} yet. Resume with: jaxnpg "
                     + " ".join(argv))


@pytest.mark.parametrize("atlas", [True, False], ids=["atlas", "figures"])
def test_reproduce_interrupt_says_what_is_kept_and_how_to_resume(
    tmp_path, capsys, monkeypatch, atlas):
  """Ctrl-C in `jaxnpg reproduce` (the atlas or the figures): exit 130, the
  chunks kept so far, and the command to resume; with --pictures-only, that
  nothing is kept."""
  from jaxnpg.cli import reproduce as reproduce_command

  def interrupted(*args, **kwargs):
    raise KeyboardInterrupt

  monkeypatch.setattr(reproduce_command,
                      "reproduce_atlas" if atlas else "reproduce", interrupted)
  out = tmp_path / "paper"
  argv = ["reproduce", "--quick", "--quiet", "--out", str(out)]
  argv += ["--atlas"] if atlas else ["--figure", "1"]
  assert cli.main(argv) == 130
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1] == (f"jaxnpg reproduce: interrupted; no chunk is saved in "
                     f"{out} yet. Resume with: jaxnpg " + " ".join(argv))
  assert cli.main(argv + ["--pictures-only"]) == 130
  assert "keeps no sweep" in capsys.readouterr().err
