"""Games from Gambit (pygambit) and OpenSpiel (pyspiel), checked against the tools.

Payoffs are compared with what the tools themselves report (Gambit's per-profile
payoffs through ``gambit_compat``, which speaks pygambit 16 and 17;
``state.returns()`` after ``apply_actions`` in OpenSpiel), never with numbers copied
from jaxnpg. Where a tool is not installed its tests are skipped, and the stand-in
tests check the error that names the extra to install (the test extra installs both).
"""

import itertools
import pathlib
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gambit_compat
import jaxnpg
from jaxnpg import cli
from conftest import TESTS

DATA = TESTS / "data"


def gambit_payoffs(g):
  """``(n, A_1, ..., A_n)`` from Gambit's own per-profile payoff lookup."""
  return gambit_compat.payoff_tables(g)


# --- Gambit ------------------------------------------------------------------


def test_shipped_nfg_files_load_with_gambits_payoffs(x64):
  gbt = pytest.importorskip("pygambit")
  for name in ("three_player.nfg", "prisoners_dilemma.nfg"):
    path = DATA / name
    game = jaxnpg.from_gambit(path)
    want = gambit_payoffs(gbt.read_nfg(str(path)))
    assert game.rewards.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(game.rewards), want)
  # Player and strategy order, by hand: Alice plays 2, Bob "left" (1), Carol 1.
  three = jaxnpg.from_gambit(str(DATA / "three_player.nfg"))
  assert three.num_actions == (2, 3, 2)
  np.testing.assert_array_equal(three.rewards[:, 1, 0, 0], [2.86, 0.94, -1.78])
  pd = jaxnpg.from_gambit(DATA / "prisoners_dilemma.nfg")
  np.testing.assert_array_equal(pd.rewards[:, 1, 0], [5.0, 0.0])


def test_round_trip_through_gambit_and_nfg(tmp_path, rng, x64):
  gbt = pytest.importorskip("pygambit")
  rewards = rng.normal(size=(3, 2, 4, 3))
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  g = jaxnpg.to_gambit(game, title="round trip")
  assert isinstance(g, gbt.Game) and g.title == "round trip"
  np.testing.assert_array_equal(gambit_payoffs(g), rewards)
  np.testing.assert_array_equal(jaxnpg.from_gambit(g).rewards, rewards)
  path = tmp_path / "game.nfg"
  g.to_nfg(str(path))
  np.testing.assert_array_equal(jaxnpg.from_gambit(path).rewards, rewards)
  # float32 games go out as float64 and come back in the requested dtype.
  back = jaxnpg.from_gambit(path, dtype=jnp.float32)
  assert back.rewards.dtype == jnp.float32


def test_polymatrix_to_gambit_goes_through_dense(x64):
  pytest.importorskip("pygambit")
  poly = jaxnpg.network_zero_sum_game(jax.random.key(0), "ring", (2,) * 3)
  g = jaxnpg.to_gambit(poly)
  np.testing.assert_allclose(gambit_payoffs(g), poly.to_dense().rewards,
                             atol=1e-15)


TREE_EFG = """EFG 2 R "a moves, b replies at each node" { "a" "b" }
""

p "" 1 1 "" { "L" "R" } 0
p "" 2 1 "" { "l" "r" } 0
t "" 1 "o0" { 0, 0 }
t "" 2 "o1" { 1, -1 }
p "" 2 2 "" { "l" "r" } 0
t "" 3 "o2" { 2, -2 }
t "" 4 "o3" { 3, -3 }
"""


def test_extensive_form_uses_its_strategic_form(tmp_path):
  gbt = pytest.importorskip("pygambit")
  src = tmp_path / "tree.efg"
  src.write_text(TREE_EFG)
  g = gbt.read_efg(str(src))
  game = jaxnpg.from_gambit(g)
  assert game.num_actions == (2, 4)   # b's strategies: a reply at each node
  np.testing.assert_allclose(game.rewards, gambit_payoffs(g))
  np.testing.assert_allclose(jaxnpg.from_gambit(src).rewards, game.rewards)
  path = tmp_path / "again.efg"
  g.to_efg(str(path))
  np.testing.assert_allclose(jaxnpg.from_gambit(path).rewards, game.rewards)


def test_gambit_errors(tmp_path):
  pytest.importorskip("pygambit")
  bad = tmp_path / "bad.nfg"
  bad.write_text("this is not a game\n")
  with pytest.raises(ValueError, match="pygambit could not read"):
    jaxnpg.from_gambit(bad)
  with pytest.raises(FileNotFoundError):
    jaxnpg.from_gambit(tmp_path / "missing.nfg")
  with pytest.raises(TypeError, match="pygambit.Game or a path"):
    jaxnpg.from_gambit(3)
  batch = jax.vmap(lambda k: jaxnpg.random_game(k, (2, 2)))(
      jax.random.split(jax.random.key(0), 2))
  with pytest.raises(ValueError, match="one game"):
    jaxnpg.to_gambit(batch)
  markov = jaxnpg.random_markov_game(jax.random.key(0), 2, (2, 2), 0.5)
  with pytest.raises(TypeError, match="dense form.*MarkovGame"):
    jaxnpg.to_gambit(markov)        # declares has_dense_form = False
  with pytest.raises(TypeError, match="dense form.*ndarray"):
    jaxnpg.to_gambit(np.zeros((2, 2, 2)))


def test_missing_pygambit_names_the_extra(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, "pygambit", None)   # import raises
  with pytest.raises(ImportError, match=r"jaxnpg\[gambit\]"):
    jaxnpg.from_gambit(DATA / "three_player.nfg")
  with pytest.raises(ImportError, match=r"jaxnpg\[gambit\]"):
    jaxnpg.to_gambit(jaxnpg.NormalFormGame(jnp.zeros((1, 2))))


def test_cli_runs_a_gambit_file(tmp_path):
  pytest.importorskip("pygambit")
  before = jax.config.jax_enable_x64
  try:
    out = tmp_path / "run"
    assert cli.main(["run", "--game-file", str(DATA / "three_player.nfg"),
                     "--iters", "30", "--taus", "1", "--dtype", "float32",
                     "--out", str(out), "--quiet"]) == 0
    assert (out / "summary.json").exists()
  finally:
    jax.config.update("jax_enable_x64", before)


# --- OpenSpiel -----------------------------------------------------------------


def openspiel_payoffs(game, sizes):
  """``(n, A_1, ..., A_n)`` by playing every joint action in an OpenSpiel state."""
  out = np.zeros((len(sizes),) + tuple(sizes))
  for joint in itertools.product(*[range(s) for s in sizes]):
    state = game.new_initial_state()
    state.apply_actions(list(joint))
    out[(slice(None),) + joint] = state.returns()
  return out


def test_openspiel_games_match_their_returns(rng, x64):
  pyspiel = pytest.importorskip("pyspiel")
  rps = jaxnpg.from_openspiel(pyspiel.load_game("matrix_rps"))
  np.testing.assert_array_equal(rps.rewards, openspiel_payoffs(
      pyspiel.load_game("matrix_rps"), (3, 3)))
  np.testing.assert_array_equal(rps.rewards.sum(axis=0), 0)
  by_name = jaxnpg.from_openspiel("matrix_rps")
  np.testing.assert_array_equal(by_name.rewards, rps.rewards)

  tables = [np.round(rng.uniform(-3, 3, size=(2, 3, 2)), 3) for _ in range(3)]
  tensor = pyspiel.create_tensor_game(tables)
  game = jaxnpg.from_openspiel(tensor)
  np.testing.assert_array_equal(game.rewards, openspiel_payoffs(tensor, (2, 3, 2)))
  np.testing.assert_array_equal(game.rewards, np.stack(tables))

  matrix = pyspiel.create_matrix_game(tables[0][:, :, 0], tables[1][:, :, 0])
  np.testing.assert_array_equal(jaxnpg.from_openspiel(matrix).rewards,
                                openspiel_payoffs(matrix, (2, 3)))

  # A simultaneous-move game that is not a table (converted by pyspiel).
  goof = pyspiel.load_game("goofspiel(num_cards=2)")
  g = jaxnpg.from_openspiel(goof)
  assert g.num_agents == 2 and g.rewards.shape[0] == 2


def test_openspiel_and_gambit_agree_on_a_file(tmp_path, rng, x64):
  pyspiel = pytest.importorskip("pyspiel")
  pytest.importorskip("pygambit")
  path = DATA / "prisoners_dilemma.nfg"
  via_spiel = jaxnpg.from_openspiel(pyspiel.load_nfg_game(path.read_text()))
  np.testing.assert_array_equal(via_spiel.rewards, jaxnpg.from_gambit(path).rewards)
  tables = [np.round(rng.uniform(-3, 3, size=(2, 2, 3)), 2) for _ in range(3)]
  tensor = pyspiel.create_tensor_game(tables)
  out = tmp_path / "spiel.nfg"
  out.write_text(pyspiel.game_to_nfg_string(tensor))
  np.testing.assert_allclose(jaxnpg.from_gambit(out).rewards,
                             jaxnpg.from_openspiel(tensor).rewards, atol=1e-12)


def fake_pyspiel():
  """A stand-in module with pyspiel's normal-form API (for machines without it)."""
  mod = types.ModuleType("pyspiel")

  class MatrixGame:
    def __init__(self, row, col):
      self._row, self._col = np.asarray(row), np.asarray(col)

    def row_utilities(self):
      return self._row

    def col_utilities(self):
      return self._col

  class TensorGame:
    def __init__(self, tables):
      self._tables = [np.asarray(t) for t in tables]

    def num_players(self):
      return len(self._tables)

    def player_utilities(self, p):
      return self._tables[p]

  class SimultaneousGame:
    """Converts to a TensorGame through extensive_to_tensor_game."""

  class TurnBasedGame:
    """Cannot be written as a table."""

  def extensive_to_tensor_game(game):
    if isinstance(game, SimultaneousGame):
      return TensorGame([np.eye(2), -np.eye(2)])
    raise RuntimeError("game is not normal-form")

  def load_game(name):
    if name == "rps":
      return MatrixGame([[0, -1], [1, 0]], [[0, 1], [-1, 0]])
    raise RuntimeError(f"Unknown game '{name}'")

  mod.MatrixGame, mod.TensorGame = MatrixGame, TensorGame
  mod.SimultaneousGame, mod.TurnBasedGame = SimultaneousGame, TurnBasedGame
  mod.extensive_to_tensor_game, mod.load_game = extensive_to_tensor_game, load_game
  return mod


def test_from_openspiel_with_a_stand_in(monkeypatch, x64):
  spiel = fake_pyspiel()
  monkeypatch.setitem(sys.modules, "pyspiel", spiel)
  row = np.arange(6.0).reshape(2, 3)
  g = jaxnpg.from_openspiel(spiel.MatrixGame(row, -2 * row))
  np.testing.assert_array_equal(g.rewards, np.stack([row, -2 * row]))
  tables = [np.arange(8.0).reshape(2, 2, 2) * (p + 1) for p in range(3)]
  g = jaxnpg.from_openspiel(spiel.TensorGame(tables))
  np.testing.assert_array_equal(g.rewards, np.stack(tables))
  g = jaxnpg.from_openspiel(spiel.SimultaneousGame())
  np.testing.assert_array_equal(g.rewards, np.stack([np.eye(2), -np.eye(2)]))
  assert jaxnpg.from_openspiel("rps").num_actions == (2, 2)
  with pytest.raises(ValueError, match="cannot write the game"):
    jaxnpg.from_openspiel(spiel.TurnBasedGame())
  with pytest.raises(ValueError, match="could not load"):
    jaxnpg.from_openspiel("nope")


def test_missing_pyspiel_names_the_package(monkeypatch):
  monkeypatch.setitem(sys.modules, "pyspiel", None)
  with pytest.raises(ImportError, match="pip install open_spiel"):
    jaxnpg.from_openspiel("matrix_rps")
