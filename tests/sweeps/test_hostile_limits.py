"""The hostile round's remaining faults (issue 24), each a case that used to
crash, hang or run for minutes:

* typed PRNG keys crossing the host-thread split at 511, 512 and 4096 cells
  (the split starts at 512), for every stochastic algorithm, through ``run``
  and the CLI;
* named pipes where the store expects its manifest or a chunk (a reader must not
  block on them);
* work that cannot fit refused in one line before any compile: many agents, a
  tau grid of 10^8 values.
"""

import os
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
from jaxnpg import cli
from jaxnpg.loop import batch_last
from conftest import scaled


@pytest.fixture(autouse=True)
def restore_x64():
  """The CLI sets jax_enable_x64 from --dtype; put it back afterwards."""
  before = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", before)


def _one_line(capsys, argv, command):
  code = cli.main(argv)
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and len(err) == 1, err
  assert err[0].startswith(f"jaxnpg {command}: error:"), err
  return err[0]


# --- typed keys across the host-thread split -------------------------------

@pytest.mark.parametrize("cells", [511, 512, 4096])
def test_keyed_runs_under_vmap_at_the_split_sizes(cells, monkeypatch):
  """``vmap(run)`` with a typed key over ``cells`` taus: below, at and well
  above the size where a batch is cut into parts for host threads. Each cell
  equals its own run (so the keys crossed the split intact)."""
  monkeypatch.setattr(batch_last, "cores", lambda: 2)
  batch_last.loop_fn.cache_clear()
  game = jaxnpg.random_game(jax.random.key(0), (2, 2))
  taus = jnp.linspace(0.05, 2.0, cells)
  key = jax.random.key(1)
  try:
    res = jax.jit(jax.vmap(lambda t: jaxnpg.run(
        game, t, 0.05, 6, key=key, algorithm="sampled_npg")))(taus)
  finally:
    batch_last.loop_fn.cache_clear()
  assert res.qre_gap.shape == (cells, 7)
  assert np.all(np.isfinite(np.asarray(res.qre_gap)))
  for i in (0, cells // 2, cells - 1):
    one = jaxnpg.run(game, float(taus[i]), 0.05, 6, key=key,
                     algorithm="sampled_npg")
    np.testing.assert_allclose(np.asarray(res.qre_gap[i]),
                               np.asarray(one.qre_gap), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cells", [512])
def test_keyed_cli_run_at_the_split_sizes(cells, tmp_path, capsys):
  out = tmp_path / "r"
  code = cli.main(["run", "--actions", "2,2", "--iters", "4",
                   "--taus", f"1e-3:1e2:{cells}", "--algorithm", "sampled_npg",
                   "--quiet", "--out", str(out)])
  assert code == 0, capsys.readouterr().err


# --- named pipes in the store ------------------------------------------------

def _returns_within(fn, seconds):
  """``fn()``'s exception (or None), failing if it does not return in time."""
  box = {}

  def call():
    try:
      fn()
      box["error"] = None
    except BaseException as e:   # noqa: BLE001 - handed back to the test
      box["error"] = e
  t = threading.Thread(target=call, daemon=True)
  t.start()
  t.join(seconds)
  assert not t.is_alive(), "the reader blocked on a named pipe"
  return box["error"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  out = tmp_path_factory.mktemp("fifo") / "s"
  jaxnpg.sweep("random", num_actions=(2, 2), num_games=4, taus=[0.5],
               etas=[0.1], num_iters=8, chunk_games=2, quiet=True, out=out)
  return out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
@pytest.mark.parametrize("target", ["manifest.json", "chunks/chunk-00001.npz"])
def test_a_named_pipe_in_the_store_is_refused_not_waited_on(
    finished, tmp_path, target, capsys):
  import shutil
  folder = tmp_path / "s"
  shutil.copytree(finished, folder)
  path = folder / target
  path.unlink()
  os.mkfifo(path)
  # The manifest is named as not a regular file; a chunk that is not one
  # counts as not finished (and is recomputed on resume).
  says = ("regular file" if target == "manifest.json"
          else "1 of 2 chunks missing or corrupt (first: 1)")
  err = _returns_within(lambda: jaxnpg.load_sweep(folder), scaled(10))
  assert isinstance(err, ValueError), err
  assert says in str(err), err
  code = []
  err = _returns_within(lambda: code.append(cli.main(["plot", str(folder)])),
                        scaled(10))
  assert err is None and code == [2]
  line = capsys.readouterr().err.strip().splitlines()
  assert len(line) == 1 and says in line[0], line


# --- work that cannot fit, refused before any compile ---------------------

def test_forty_agents_are_refused_in_one_line(tmp_path, capsys):
  line = _one_line(capsys, ["run", "--actions", ",".join(["2"] * 40),
                            "--iters", "2", "--taus", "0.5", "--quiet",
                            "--out", str(tmp_path / "r")], "run")
  assert "40 agents" in line or "2^40" in line or "memory" in line, line


def test_thirty_agent_sweep_is_refused_in_one_line(tmp_path, capsys):
  line = _one_line(capsys, ["sweep", "--agents", "30", "--actions", "2",
                            "--games", "2", "--taus", "0.5", "--iters", "2",
                            "--quiet", "--out", str(tmp_path / "s")], "sweep")
  assert "memory" in line or "fewer agents" in line, line


def test_a_grid_of_a_hundred_million_taus_is_refused_in_one_line(tmp_path,
                                                                  capsys):
  line = _one_line(capsys, ["run", "--actions", "2,2", "--iters", "2",
                            "--taus", "1e-3:1e2:100000000", "--quiet",
                            "--out", str(tmp_path / "r")], "run")
  assert "100000000 values" in line and "2**20" in line, line
  with pytest.raises(ValueError, match="taus"):
    jaxnpg.SweepConfig(family="random", num_actions=(2, 2), num_games=1,
                       taus=np.linspace(0.1, 1, 2 ** 21), etas=[0.1],
                       num_iters=2)
