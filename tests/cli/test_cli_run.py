"""``jaxnpg run``: family defaults (the paper's Fig. 2 games), Markov options, the
library's default tolerance, the legend, the help texts, and the tqdm progress
bar ("compiling..." first, no ETA until measured)."""

import json
import re
import shlex
import types

import jax
import pytest

from jaxnpg import cli
from jaxnpg.cli import games
from jaxnpg.cli import run as run_command
from jaxnpg.cli.base import CliError
from jaxnpg.sweeps import progress as _progress


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
  command, params = cli.parse(["run", *argv])
  assert command == "run"
  return games.family_spec(types.SimpleNamespace(**params), "run")


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
    (["--actions", "4,4"], (4, 4), {}),
    (["--actions", "2", "--agents", "3"], (2, 2, 2), {}),
    (["--family", "covariant", "--actions", "3,3", "--correlation", "-0.5"],
     (3, 3), {"correlation": -0.5}),
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


@pytest.mark.slow   # a Markov run through the CLI: ~20 s (`pytest -m slow`)
def test_markov_states_and_discount_in_the_header(tmp_path, capsys):
  out = tmp_path / "mk"
  captured = run_ok(capsys, ["run", "--family", "markov", "--actions", "2,2",
                             "--states", "2", "--discount", "0.5", "--iters",
                             "6", "--taus", "1", "--quiet", "--out", str(out)])
  assert "markov game, actions (2, 2), 2 states, discount 0.5" in captured.err
  assert "markov game, actions (5, 5, 5), 5 states, discount 0.9" in \
      spec("--family", "markov")[3]


@pytest.mark.slow   # a Markov sweep through the CLI: ~20 s (`pytest -m slow`)
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


@pytest.mark.parametrize("argv, each", [
    (["--actions", "4"], 4), (["--actions", "4", "--agents", "1"], 4),
    (["--family", "covariant", "--actions", "50"], 50)])
def test_a_one_agent_game_is_refused_naming_agents(argv, each):
  """'--actions 3' meant 3 actions each, but gave a 1-agent game: refused, and the
  message says how to get agents (--agents N, or one count per agent)."""
  with pytest.raises(CliError, match=r"at least 2 agents, got 1") as e:
    spec(*argv)
  assert "--agents N" in str(e.value)
  assert f"--actions {each},{each}" in str(e.value)


def test_default_tol_is_the_library_rule(tmp_path, capsys):
  """float32 at tau = 5 reaches the library's default tolerance (not 1e-10): the
  relative rule 1e-6 x (max|rbar| + tau log A), the same in every dtype."""
  out = tmp_path / "f32"
  captured = run_ok(capsys, ["run", "--actions", "2,2", "--taus", "0,5",
                             "--iters", "400", "--dtype", "float32", "--quiet",
                             "--out", str(out)])
  row = json.loads((out / "summary.json").read_text())["results"][1]
  assert len(row["tol"]) == 2                           # one per agent
  assert min(row["tol"]) > 1e-8 and row["status"] == "converged"
  assert row["iterations_to_tol"] is not None
  assert "legend:" in captured.out and "converged: final QRE-gap <= tol" in \
      captured.out


def test_explicit_tol_and_statuses_explained(tmp_path, capsys):
  out = tmp_path / "tol"
  captured = run_ok(capsys, ["run", "--actions", "2,2", "--taus", "0,5",
                             "--iters", "400", "--dtype", "float32", "--tol",
                             "1e-30", "--quiet", "--out", str(out)])
  rows = json.loads((out / "summary.json").read_text())["results"]
  assert [r["tol"] for r in rows] == [pytest.approx([1e-30, 1e-30], rel=1e-6)] * 2
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


# --- help texts ---------------------------------------------------------------


def help_text(capsys, *command):
  assert cli.main([*command, "--help"]) == 0
  return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_tol_help_says_the_rule(capsys, command):
  """The default tolerance is one rule in every dtype; the help says which."""
  text = help_text(capsys, command)
  assert "follows the dtype" not in text
  assert ("(default: each agent's own, the library's rule 1e-06 x (max|rbar_i| "
          "+ tau log A_i) at the final iterate, the same in every dtype)") in text


@pytest.mark.parametrize("command", [[], ["run"], ["sweep"], ["plot"],
                                     ["reproduce"]])
def test_help_cites_no_file_that_does_not_ship(capsys, command):
  text = help_text(capsys, *command)
  assert "SPEC" not in text
  if command == ["run"]:
    assert "help(jaxnpg.paper_eta)" in text     # where the rule is written


def test_group_help_mentions_shell_completion(capsys):
  assert '_JAXNPG_COMPLETE=bash_source jaxnpg' in help_text(capsys)


def test_epilog_examples_parse_and_write_distinct_folders(capsys):
  """Every example of `jaxnpg run --help` parses, and no two write one folder."""
  text = cli.main(["run", "--help"]) == 0 and capsys.readouterr().out
  examples = re.findall(r"^\s+(jaxnpg run\b.*?)(?:\s+#.*)?$",
                        text.replace("\\\n", " "), flags=re.M)
  assert len(examples) >= 6, examples
  outs = []
  for line in examples:
    command, params = cli.parse(shlex.split(line)[1:])
    assert command == "run"
    outs.append(params["out"])
  assert len(set(outs)) == len(outs), outs


# --- the progress bar -----------------------------------------------------------


class Clock:
  """A fake ``time.perf_counter`` for the bar."""

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_progress_says_compiling_and_waits_for_a_measured_eta(monkeypatch):
  """The first chunk compiles, and run_pairs' second compiles again: neither
  gives an ETA; the rate and ETA come from the chunks after them."""
  clock = Clock()
  monkeypatch.setattr(_progress.time, "perf_counter", clock)
  p = _progress.Progress(10_000, "iterations", waiting="compiling...")
  bar = p._bar
  assert "compiling..." in str(bar) and "ETA" not in str(bar)
  clock.now = 12.0
  p.update(1000, "game-iterations/s", per_unit=7)      # compiled `first`
  assert "compiling" not in str(bar) and "ETA" not in str(bar)
  clock.now = 23.0
  p.update(2000, "game-iterations/s", per_unit=7)      # compiled `more`
  assert "ETA" not in str(bar)
  clock.now = 23.1
  p.update(3000, "game-iterations/s", per_unit=7)      # 0.1 s per chunk
  text = str(bar)
  assert "ETA 00:01" in text and "7e+04 game-iterations/s" in text, text
  p.close()


def test_progress_eta_for_steady_work(monkeypatch):
  """No compilation worth the name: the ETA comes once two chunks have run
  after the first, at their speed."""
  clock = Clock()
  monkeypatch.setattr(_progress.time, "perf_counter", clock)
  p = _progress.Progress(10, "chunks", waiting="compiling...")
  for k in range(1, 4):
    clock.now = 10.0 * k
    p.update(k)
  assert "ETA 01:10" in str(p._bar), str(p._bar)
  p.close()


def test_run_shows_compiling_before_the_first_chunk(tmp_path, capsys):
  out = tmp_path / "bar"
  captured = run_ok(capsys, ["run", "--actions", "2,2", "--iters", "40",
                             "--taus", "1", "--out", str(out)])
  err = captured.err
  assert "compiling..." in err
  assert err.index("jaxnpg run: random game") < err.index("compiling...")
  assert "40/40" in err


def test_run_refuses_before_the_computation(tmp_path, capsys, monkeypatch):
  """--record-every beyond --iters is refused as sweep refuses it, before any
  work (run_pairs is never called)."""
  def no_computation(*a, **k):
    raise AssertionError("computed")

  monkeypatch.setattr(run_command, "run_pairs", no_computation)
  for command in ("run", "sweep"):
    argv = [command, "--actions", "2,2", "--iters", "5", "--record-every", "10",
            "--quiet", "--out", str(tmp_path / command)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"jaxnpg {command}: error: --record-every=10 exceeds "
                   "--iters=5."]
