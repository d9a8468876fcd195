"""``jaxnpg run``: family defaults (the paper's Fig. 2 games), Markov options, the
dtype-aware default tolerance, the legend, and the tqdm progress bar."""

import json

import jax
import pytest

from jaxnpg.sweeps import progress as _progress
from jaxnpg import cli


@pytest.fixture(autouse=True)
def restore_x64():
  """The CLI sets jax_enable_x64 from --dtype; put it back afterwards."""
  before = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", before)


def run_ok(capsys, argv):
  assert cli.main(argv) == 0
  captured = capsys.readouterr()
  assert "Traceback" not in captured.err
  return captured


def spec(*argv):
  """``(family, num_actions, options, description)`` of ``jaxnpg run ARGV``."""
  args = cli.build_parser().parse_args(["run", *argv])
  return cli._family_spec(args)


@pytest.mark.parametrize("argv, sizes, options", [
    (["--family", "network_zero_sum"], (10,) * 5, {"graph": "ring"}),
    (["--family", "network_zero_sum", "--agents", "3"], (10,) * 3,
     {"graph": "ring"}),
    (["--family", "network_zero_sum", "--actions", "4"], (4,) * 5,
     {"graph": "ring"}),
    (["--family", "network_zero_sum", "--actions", "3", "--agents", "4"],
     (3,) * 4, {"graph": "ring"}),
    (["--family", "network_zero_sum", "--actions", "2,2", "--graph", "complete"],
     (2, 2), {"graph": "complete"}),
    (["--family", "markov"], (5, 5, 5), {"num_states": 5, "discount": 0.9}),
    (["--family", "markov", "--agents", "2", "--states", "3"], (5, 5),
     {"num_states": 3, "discount": 0.9}),
    (["--family", "markov", "--actions", "2", "--discount", "0"], (2, 2, 2),
     {"num_states": 5, "discount": 0.0}),
    ([], (3, 4, 5), {}),
    (["--actions", "4"], (4,), {}),
    (["--actions", "2", "--agents", "3"], (2, 2, 2), {}),
])
def test_family_defaults(argv, sizes, options):
  _, actions, opts, _ = spec(*argv)
  assert actions == sizes and opts == options


def test_network_run_and_header(tmp_path, capsys):
  out = tmp_path / "net"
  captured = run_ok(capsys, ["run", "--family", "network_zero_sum", "--actions",
                             "2", "--agents", "3", "--iters", "20", "--taus",
                             "1", "--quiet", "--out", str(out)])
  assert "network_zero_sum game, ring graph of 3 agents, actions (2, 2, 2)" in \
      captured.err
  summary = json.loads((out / "summary.json").read_text())
  assert summary["settings"]["num_actions"] == [2, 2, 2]
  assert "network_zero_sum game, ring graph of 5 agents, actions (10, 10, 10, " \
         "10, 10)" in spec("--family", "network_zero_sum")[3]


def test_markov_states_and_discount_in_the_header(tmp_path, capsys):
  out = tmp_path / "mk"
  captured = run_ok(capsys, ["run", "--family", "markov", "--actions", "2,2",
                             "--states", "2", "--discount", "0.5", "--iters",
                             "6", "--taus", "1", "--quiet", "--out", str(out)])
  assert "markov game, actions (2, 2), 2 states, discount 0.5" in captured.err
  assert "markov game, actions (5, 5, 5), 5 states, discount 0.9" in \
      spec("--family", "markov")[3]


def test_markov_options_in_a_sweep(tmp_path, capsys):
  out = tmp_path / "sw"
  captured = run_ok(capsys, ["sweep", "--family", "markov", "--actions", "2,2",
                             "--states", "2", "--discount", "0.5", "--games", "2",
                             "--taus", "1", "--iters", "6", "--trajectory", "0",
                             "--quiet", "--out", str(out)])
  assert "markov games, actions (2, 2), 2 states, discount 0.5" in captured.err
  manifest = json.loads((out / "manifest.json").read_text())
  assert manifest["params"]["family_options"] == {"num_states": 2,
                                                  "discount": 0.5}
  assert "legend: conv@m" in captured.out and "tol:" in captured.out
  assert "chunks: 1 chunk of up to 2 games" in captured.err


def test_default_tol_follows_the_dtype(tmp_path, capsys):
  """float32 at tau = 5 reaches the library's default tolerance (not 1e-10)."""
  out = tmp_path / "f32"
  captured = run_ok(capsys, ["run", "--actions", "2,2", "--taus", "0,5",
                             "--iters", "400", "--dtype", "float32", "--quiet",
                             "--out", str(out)])
  row = json.loads((out / "summary.json").read_text())["results"][1]
  assert row["tol"] > 1e-8 and row["status"] == "converged"
  assert row["iterations_to_tol"] is not None
  assert "legend:" in captured.out and "converged: final QRE-gap <= tol" in \
      captured.out


def test_explicit_tol_and_statuses_explained(tmp_path, capsys):
  out = tmp_path / "tol"
  captured = run_ok(capsys, ["run", "--actions", "2,2", "--taus", "0,5",
                             "--iters", "400", "--dtype", "float32", "--tol",
                             "1e-30", "--quiet", "--out", str(out)])
  rows = json.loads((out / "summary.json").read_text())["results"]
  assert [r["tol"] for r in rows] == pytest.approx([1e-30, 1e-30], rel=1e-6)
  for r in rows:
    assert f"  {r['status']}:" in captured.out        # each status explained


def test_run_refuses_a_sweep_folder_and_keeps_it(tmp_path, capsys):
  sweep = tmp_path / "sweep"
  run_ok(capsys, ["sweep", "--actions", "2,2", "--games", "2", "--taus", "0.5",
                  "--iters", "4", "--trajectory", "0", "--dtype", "float32",
                  "--quiet", "--out", str(sweep)])
  before = sorted(p.name for p in sweep.iterdir())
  assert cli.main(["run", "--actions", "2,2", "--iters", "4", "--quiet",
                   "--out", str(sweep)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "holds a sweep (manifest.json)" in err[0]
  assert sorted(p.name for p in sweep.iterdir()) == before


def test_progress_is_tqdm_and_quiet_is_silent(capsys):
  p = _progress.Progress(4, "chunks", delay=0)
  for k in range(1, 5):
    p.update(k, "game-iterations/s", 1234.5)
  err = capsys.readouterr().err
  assert "4/4" in err and "1.23e+03 game-iterations/s" in err and "chunks" in err
  assert p._bar is None                       # closed at the total
  q = _progress.Progress(3, "chunks", quiet=True, delay=0)
  q.update(1, "x", 1.0)
  q.update(3)
  q.close()
  assert capsys.readouterr().err == ""


def test_progress_closes_on_exit_and_close_all(capsys):
  with _progress.Progress(10, "iterations", delay=0) as p:
    p.update(3)
  assert p._bar is None
  q = _progress.Progress(10, "chunks", delay=0)
  q.update(2)
  _progress.close_all()
  assert q._bar is None
  assert "2/10" in capsys.readouterr().err
