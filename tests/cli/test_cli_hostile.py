"""Hostile input at the command line: every bad number, name, path or game file is
one line ``jaxnpg COMMAND: error: ...`` on stderr, exit status 2, no traceback, and
(where it can be known up front) nothing is computed or written first."""

import errno
import os
import subprocess
import sys

import jax
import pytest

from jaxnpg import cli
from jaxnpg.cli import run as run_command
from jaxnpg.cli import sweep as sweep_command
from conftest import scaled

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(autouse=True)
def restore_x64():
  """The CLI sets jax_enable_x64 from --dtype; put it back afterwards."""
  before = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", before)


def run_args(out, *extra):
  return ["run", "--actions", "2,2", "--iters", "4", "--taus", "0.5",
          "--dtype", "float32", "--quiet", "--out", str(out), *extra]


def sweep_args(out, *extra):
  return ["sweep", "--actions", "2,2", "--games", "2", "--taus", "0.5",
          "--iters", "4", "--trajectory", "0", "--dtype", "float32", "--quiet",
          "--out", str(out), *extra]


def one_line_error(capsys, argv, command="run"):
  """Run the CLI in-process; return its one error line (after checking it)."""
  code = cli.main(argv)
  captured = capsys.readouterr()
  lines = captured.err.strip().splitlines()
  assert code == 2, captured.err
  assert len(lines) == 1, captured.err          # no header, no usage block
  assert "Traceback" not in captured.err
  assert lines[0].startswith(f"jaxnpg {command}: error:"), lines[0]
  assert captured.out == ""
  return lines[0]


# --- bad numbers and names (click's parsing, the CLI's syntax, the library) -----

RUN_CASES = [
    # not a number at all (click, one line, no usage block)
    (["--iters", "many"], "Invalid value for '--iters': 'many' is not a valid integer"),
    (["--iters", "1.5"], "Invalid value for '--iters': '1.5' is not a valid integer"),
    (["--record-every", "x"], "Invalid value for '--record-every'"),
    (["--seed", "s"], "Invalid value for '--seed'"),
    (["--samples", "lots"], "Invalid value for '--samples'"),
    (["--tol", "small"], "Invalid value for '--tol': 'small' is not a valid float"),
    (["--agents", "two"], "Invalid value for '--agents'"),
    (["--states", "5.5"], "Invalid value for '--states'"),
    (["--discount", "high"], "Invalid value for '--discount'"),
    (["--algorithm", "adam"], "Invalid value for '--algorithm': 'adam' is not one of"),
    (["--dtype", "float16"], "Invalid value for '--dtype': 'float16' is not one of"),
    (["--no-such-option"], "No such option '--no-such-option'"),
    (["--iters"], "Option '--iters' requires an argument"),
    # tau: the syntax (the CLI), the values (the library)
    (["--taus", "nan"], "--taus must be finite, got [nan]"),
    (["--taus", "inf"], "--taus must be finite, got [inf]"),
    (["--taus", "0.5,-inf"], "--taus must be finite"),
    (["--taus=-1"], "--taus must be >= 0"),
    (["--taus", "1e39"], "--taus: 1e+39 is not finite in float32"),
    (["--taus", "a,b"], "Invalid value for '--taus': expected numbers"),
    (["--taus", ","], "Invalid value for '--taus': the list is empty"),
    (["--taus", "nan:1:3"], "Invalid value for '--taus': a range lo:hi:count needs"),
    (["--taus", "1:inf:3"], "Invalid value for '--taus': a range lo:hi:count needs"),
    (["--taus", "0:1:3"], "Invalid value for '--taus': a range lo:hi:count needs"),
    (["--taus", "1:2:0"], "Invalid value for '--taus': a range lo:hi:count needs"),
    (["--taus", "1:2"], "Invalid value for '--taus': expected a value, a list"),
    # iterations, records, seeds, samples, tolerance (the library's rules)
    (["--iters", "0"], "--iters must be >= 1, got 0"),
    (["--iters=-5"], "--iters must be >= 1, got -5"),
    (["--record-every=-1"], "--record-every must be >= 1, got -1"),
    (["--record-every", "10", "--iters", "5"],
     "--record-every=10 exceeds --iters=5"),
    (["--seed=-1"], "--seed must be an integer in [0, 2**32), got -1"),
    (["--seed", str(2 ** 32)], "--seed must be an integer in [0, 2**32)"),
    (["--algorithm", "sampled_npg", "--samples", "0"], "--samples must be >= 1, got 0"),
    (["--algorithm", "sampled_npg", "--samples=-3"], "--samples must be >= 1"),
    (["--tol", "0"], "--tol must be a finite number > 0"),
    (["--tol=-1e-6"], "--tol must be a finite number > 0"),
    (["--tol", "nan"], "--tol must be a finite number > 0"),
    (["--tol", "inf"], "--tol must be a finite number > 0"),
    # step size
    (["--eta", "0"], "--eta (the step size) must be > 0, got 0.0"),
    (["--eta=-0.1"], "--eta (the step size) must be > 0"),
    (["--eta", "nan"], "--eta must be finite, got nan"),
    (["--eta", "inf"], "--eta must be finite, got inf"),
    (["--eta", "1e39"], "--eta: 1e+39 is not finite in float32"),
    (["--eta", "fast"], "Invalid value for '--eta': expected 'paper' or a positive"),
    # games and families
    (["--family", "nope"], "Unknown game family 'nope'"),
    (["--actions", "0,2"], "--actions must be a non-empty sequence of integers >= 1"),
    (["--actions", "a,b"], "Invalid value for '--actions': expected integers"),
    (["--actions", "2,2", "--agents", "3"], "--agents 3 but --actions lists 2"),
    (["--actions", "2", "--agents", "0"],
     "Invalid value for '--agents': 0 is not in the range x>=1"),
    (["--actions", "3"], "a game needs at least 2 agents, got 1 (--actions 3)"),
    (["--actions", "3", "--agents", "1"], "a game needs at least 2 agents, got 1"),
    (["--graph", "ring"], "--graph does not apply to the 'random' family"),
    (["--states", "3"], "--states does not apply to the 'random' family"),
    (["--discount", "0.5"], "--discount does not apply to the 'random' family"),
    (["--correlation", "0.5"], "--correlation does not apply to the 'random'"),
]


@pytest.mark.parametrize("extra, message", RUN_CASES,
                         ids=[" ".join(c[0]) for c in RUN_CASES])
def test_run_bad_arguments(tmp_path, capsys, extra, message):
  out = tmp_path / "out"
  line = one_line_error(capsys, run_args(out, *extra))
  assert message in line
  assert not out.exists() or not any(out.iterdir())   # nothing written


def test_agents_without_actions_for_a_mixed_default(tmp_path, capsys):
  argv = ["run", "--agents", "4", "--iters", "3", "--out", str(tmp_path / "o")]
  assert "also give the actions per agent" in one_line_error(capsys, argv)


NETWORK_CASES = [
    (["--agents", "2"], "a ring needs at least 3 agents, got 2"),
    (["--agents", "1"], "a ring needs at least 3 agents, got 1"),
    (["--actions", "10,10"], "a ring needs at least 3 agents, got 2"),
    (["--actions", "4", "--agents", "2", "--graph", "ring"],
     "a ring needs at least 3 agents, got 2"),
    (["--agents", "0"], "Invalid value for '--agents': 0 is not in the range"),
    (["--states", "4"], "--states does not apply to the 'network_zero_sum'"),
]


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("extra, message", NETWORK_CASES,
                         ids=[" ".join(c[0]) for c in NETWORK_CASES])
def test_network_rings_need_three_agents(tmp_path, capsys, command, extra,
                                         message):
  argv = [command, "--family", "network_zero_sum", "--iters", "3", "--quiet",
          "--out", str(tmp_path / "o"), *extra]
  assert message in one_line_error(capsys, argv, command)


MARKOV_CASES = [
    (["--discount", "1"], "--discount (gamma) must be in [0, 1), got 1.0"),
    (["--discount", "1.5"], "--discount (gamma) must be in [0, 1), got 1.5"),
    (["--discount=-0.1"], "--discount (gamma) must be in [0, 1), got -0.1"),
    (["--discount", "nan"], "--discount (gamma) must be in [0, 1), got nan"),
    (["--states", "0"], "--states must be an integer >= 1, got 0"),
    (["--graph", "ring"], "--graph does not apply to the 'markov' family"),
]


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("extra, message", MARKOV_CASES,
                         ids=[" ".join(c[0]) for c in MARKOV_CASES])
def test_markov_options(tmp_path, capsys, command, extra, message):
  out = tmp_path / "o"
  argv = [command, "--family", "markov", "--actions", "2,2", "--iters", "3",
          "--quiet", "--out", str(out), *extra]
  assert message in one_line_error(capsys, argv, command)


SWEEP_CASES = [
    (["--family", "nope"], "--family: Unknown game family 'nope'"),
    (["--taus", "nan"], "--taus must be finite, got [nan]"),
    (["--taus", "inf"], "--taus must be finite, got [inf]"),
    (["--taus=-0.5"], "--taus must be >= 0"),
    (["--games", "0"], "--games must be >= 1, got 0"),
    (["--games=-4"], "--games must be >= 1, got -4"),
    (["--games", "many"], "Invalid value for '--games': 'many' is not a valid"),
    (["--iters", "0"], "--iters must be >= 1, got 0"),
    (["--record-every=-2"], "--record-every must be >= 1, got -2"),
    (["--record-every", "10", "--iters", "5"],
     "--record-every=10 exceeds --iters=5"),
    (["--trajectory=-1"], "--trajectory must be >= 0, got -1"),
    (["--chunk-games", "0"], "--chunk-games must be >= 1, got 0"),
    (["--chunk-games", "1000000000"], "chunk_games=1000000000 would pad"),
    (["--seeds", "0", "--algorithm", "sampled_npg"], "--seeds must be >= 1, got 0"),
    (["--seeds", "2"], "--seeds: num_seeds=2 repeats a deterministic algorithm"),
    (["--inits", "2"], "--inits sets the starts of the attractor runs"),
    (["--lyapunov", "--inits", "0"], "--inits must be >= 1, got 0"),
    (["--lyapunov", "--burn-in=-1"], "--burn-in must be >= 0, got -1"),
    (["--lyapunov", "--max-period", "0"], "--max-period must be >= 1, got 0"),
    (["--algorithm", "sampled_npg", "--samples", "0"], "--samples must be >= 1"),
    (["--memory-budget=-1G"], "Invalid value for '--memory-budget': expected a positive size"),
    (["--memory-budget", "inf"], "Invalid value for '--memory-budget'"),
    (["--memory-budget", "lots"], "Invalid value for '--memory-budget'"),
    (["--memory-budget", "1"], "more than the memory budget of 9.31e-10 GiB"),
    (["--etas", "nan"], "--etas must be finite, got [nan]"),
    (["--etas", "paper:inf"], "--etas multipliers must be finite, got [inf]"),
    (["--etas", "paper:-1"], "--etas multipliers must be > 0, got [-1.0]"),
    (["--etas", "0"], "--etas (the step sizes) must be > 0, got [0.0]"),
    (["--etas", "1e39"], "--etas: 1e+39 is not finite in float32"),
    (["--etas", "fast"], "Invalid value for '--etas': expected step sizes"),
    (["--tol", "inf"], "--tol must be a finite number > 0"),
    (["--method", "fast"], "Invalid value for '--method': 'fast' is not one of"),
    (["--dtype", "bfloat16"], "Invalid value for '--dtype': 'bfloat16' is not one of"),
    (["--init", "zeros"], "Invalid value for '--init': 'zeros' is not one of"),
    (["--actions", "3"], "a game needs at least 2 agents, got 1 (--actions 3)"),
    (["--coordinator", "host:1"], "multi-host needs all of --coordinator"),
]


@pytest.mark.parametrize("extra, message", SWEEP_CASES,
                         ids=[" ".join(c[0]) for c in SWEEP_CASES])
def test_sweep_bad_arguments_before_any_output(tmp_path, capsys, extra, message):
  out = tmp_path / "out"
  line = one_line_error(capsys, sweep_args(out, *extra), "sweep")  # no header
  assert message in line
  assert not out.exists()


def test_no_command_and_unknown_command(capsys):
  assert cli.main([]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == ["jaxnpg: error: Missing command. (see: jaxnpg --help)"]
  assert cli.main(["fly"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "No such command 'fly'" in err[0]
  assert cli.main(["run", "extra"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("jaxnpg run: error: Got unexpected")


# --- output folders -------------------------------------------------------------


def _out_fault(tmp_path, kind):
  """An --out path with the fault ``kind``, and the message expected."""
  if kind == "regular file":
    f = tmp_path / "file"
    f.write_text("x")
    return f, "exists and is not a folder"
  if kind == "under a file":
    f = tmp_path / "file"
    f.write_text("x")
    return f / "sub", "cannot create the folder"
  if kind == "/proc":
    return "/proc/x", "cannot create the folder"
  if kind == "sweep folder":
    d = tmp_path / "sweep"
    d.mkdir()
    (d / "manifest.json").write_text("{}")
    return d, "holds a sweep (manifest.json)"
  if kind == "output name is a folder":
    d = tmp_path / "run"
    (d / "summary.json").mkdir(parents=True)
    return d, "summary.json' is a folder"
  raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["regular file", "under a file", "/proc",
                                  "sweep folder", "output name is a folder"])
def test_run_out_faults_before_the_computation(tmp_path, capsys, monkeypatch,
                                               kind):
  out, message = _out_fault(tmp_path, kind)

  def no_computation(*a, **k):
    raise AssertionError("computed before checking --out")

  monkeypatch.setattr(run_command, "run_pairs", no_computation)
  assert message in one_line_error(capsys, run_args(out))


def test_run_out_unwritable_folder(tmp_path, capsys, monkeypatch):
  """A folder that cannot be written is refused up front. As root permission bits
  do not bind, so the probe's failure is simulated there."""
  out = tmp_path / "ro"
  out.mkdir()
  if os.geteuid() == 0:
    def refuse(*a, **k):
      raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(run_command.tempfile, "mkstemp", refuse)
  else:
    out.chmod(0o555)
  try:
    line = one_line_error(capsys, run_args(out))
  finally:
    out.chmod(0o755)
  assert "cannot write in the folder" in line and "Permission denied" in line


@pytest.mark.parametrize("kind", ["regular file", "under a file", "/proc"])
def test_sweep_out_faults(tmp_path, capsys, kind):
  """The checks live in jaxnpg.sweeps.store; the CLI makes each one line, exit 2."""
  out, _ = _out_fault(tmp_path, kind)
  code = cli.main(sweep_args(out))
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and "Traceback" not in "\n".join(err)
  assert err[-1].startswith("jaxnpg sweep: error:") and str(out) in err[-1]
  if kind != "/proc":          # known before the header
    assert len(err) == 1


def test_sweep_disk_full_midway_keeps_chunks_and_says_how_to_resume(
    tmp_path, capsys, monkeypatch):
  from jaxnpg.sweeps import store as _store
  out = tmp_path / "full"
  argv = sweep_args(out, "--chunk-games", "1")
  real = _store.atomic_write
  written = []

  def full_disk(path, write):
    if path.name.startswith("chunk-") and written:
      raise OSError(errno.ENOSPC, "No space left on device", str(path))
    real(path, write)
    if path.name.startswith("chunk-"):
      written.append(path)

  monkeypatch.setattr(_store, "atomic_write", full_disk)
  code = cli.main(argv)
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and "Traceback" not in "\n".join(err)
  assert err[-1].startswith("jaxnpg sweep: error:")
  assert "no space left on device" in err[-1].lower()
  assert "1 finished chunks (of 2)" in err[-1] or "1 of 2 chunks" in err[-1]
  assert f"Resume with: jaxnpg {' '.join(argv)}" in err[-1]
  monkeypatch.setattr(_store, "atomic_write", real)
  assert cli.main(argv) == 0                     # the same command resumes
  assert "1 already done and verified" in capsys.readouterr().err


def test_sweep_interrupt_says_what_is_saved(tmp_path, capsys, monkeypatch):
  out = tmp_path / "ctrl-c"
  real = sweep_command.sweep

  def interrupted(config, **kwargs):
    def on_chunk(info):
      kwargs_on_chunk(info)
      raise KeyboardInterrupt
    kwargs_on_chunk = kwargs.pop("on_chunk")
    return real(config, **kwargs, on_chunk=on_chunk)

  monkeypatch.setattr(sweep_command, "sweep", interrupted)
  argv = sweep_args(out, "--chunk-games", "1")
  assert cli.main(argv) == 130
  err = capsys.readouterr().err
  assert "interrupted; 1 of 2 chunks are saved in" in err
  assert f"Resume with: jaxnpg {' '.join(argv)}" in err
  assert "Traceback" not in err


def test_sweep_reports_damaged_chunks(tmp_path, capsys):
  out = tmp_path / "damaged"
  argv = sweep_args(out, "--chunk-games", "1")
  assert cli.main(argv) == 0
  capsys.readouterr()
  chunk = out / "chunks" / "chunk-00001.npz"
  chunk.write_bytes(chunk.read_bytes()[:-7] + b"garbage")
  assert cli.main(argv) == 0
  err = capsys.readouterr().err
  assert "2 chunks of up to 1 games" in err
  assert "1 computed (1 of them found damaged or incomplete on disk and " \
         "recomputed: chunk 1), 1 already done and verified" in err


# --- game files -----------------------------------------------------------------

NFG_HEADER = 'NFG 1 R "hostile" { "1" "2" } { 2 2 }\n'


def _game_file(tmp_path, kind):
  if kind == "missing":
    return tmp_path / "missing.nfg", "--game-file: No such Gambit file"
  if kind == "directory":
    d = tmp_path / "folder.nfg"
    d.mkdir()
    return d, "is not a Gambit file (it is a folder)"
  f = tmp_path / f"{kind}.nfg"
  if kind == "garbage":
    f.write_text("this is not a game\n")
    return f, "could not read"
  if kind == "empty":
    f.write_text("")
    return f, "could not read"
  if kind == "overflow":
    f.write_text(NFG_HEADER + "1e400 0 0 1 1 0 0 1\n")
    return f, "the payoff of player 1 at strategy profile (1,1) is ~1e400"
  if kind == "float32 overflow":
    f.write_text(NFG_HEADER + "1e300 0 0 1 1 0 0 1\n")
    return f, "beyond the range of float32"
  raise AssertionError(kind)


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("kind", ["missing", "directory", "garbage", "empty",
                                  "overflow", "float32 overflow"])
def test_game_file_faults(tmp_path, capsys, command, kind):
  pytest.importorskip("pygambit")
  path, message = _game_file(tmp_path, kind)
  make = run_args if command == "run" else sweep_args
  line = one_line_error(capsys, make(tmp_path / "out", "--game-file", str(path)),
                        command)
  assert message in line and str(path) in line


# --- end to end (a real process) ------------------------------------------------


def test_console_errors_end_to_end(tmp_path):
  """``python -m jaxnpg``: usage and library errors, exit 2, one line, no usage."""
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  f = tmp_path / "file"
  f.write_text("x")
  for argv, message in [
      (["run", "--taus", "nan", "--out", str(tmp_path / "o")],
       "jaxnpg run: error: --taus must be finite"),
      (["run", "--out", str(f / "sub"), "--iters", "3"],
       "cannot create the folder"),
      (["sweep", "--iters", "x"],
       "jaxnpg sweep: error: Invalid value for '--iters': 'x' is not a valid"),
  ]:
    proc = subprocess.run([sys.executable, "-m", "jaxnpg", *argv], env=env,
                          capture_output=True, text=True, timeout=scaled(120))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("platforms", ["cuda", "bogus"])
@pytest.mark.parametrize("command", ["run", "sweep"])
def test_backend_that_cannot_start_is_one_line(tmp_path, command, platforms):
  """JAX_PLATFORMS naming a platform the machine lacks: jax.devices() raises a
  bare AssertionError (cuda without a GPU) or a RuntimeError; one line naming
  JAX_PLATFORMS, exit 2, nothing written."""
  if platforms == "cuda" and any(d.platform == "gpu" for d in jax.devices()):
    pytest.skip("this machine has a GPU: JAX_PLATFORMS=cuda starts")
  out = tmp_path / "out"
  env = dict(os.environ, JAX_PLATFORMS=platforms)
  proc = subprocess.run([sys.executable, "-m", "jaxnpg", command, "--iters", "3",
                         "--quiet", "--out", str(out)], env=env,
                        capture_output=True, text=True, timeout=scaled(120))
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 2, proc.stderr
  assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
  assert lines[0].startswith(f"jaxnpg {command}: error: JAX could not start")
  assert f"JAX_PLATFORMS={platforms!r}" in lines[0]
  assert not out.exists()


def test_huge_step_size_in_float32_is_refused_without_a_warning(tmp_path, capsys):
  """1e39 is inf in float32: refused in one line; no NumPy RuntimeWarning (the
  suite turns warnings into errors, so a leaked one fails here)."""
  assert "is not finite in float32" in one_line_error(
      capsys, run_args(tmp_path / "o", "--eta", "1e39"))
  assert "is not finite in float32" in one_line_error(
      capsys, sweep_args(tmp_path / "s", "--etas", "1e39"), "sweep")
  # float64 holds it: the step size is accepted (the policy jumps to a best
  # response every step; four iterations are too few records to call it
  # stalled).
  code = cli.main(run_args(tmp_path / "o64", "--eta", "1e39", "--dtype",
                           "float64"))          # the last --dtype counts
  assert code == 0
  assert "not converged" in capsys.readouterr().out
