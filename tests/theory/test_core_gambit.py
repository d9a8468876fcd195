"""Peer check: jaxnpg's QRE against Gambit's logit QRE.

Gambit traces the principal branch of logit equilibria from lambda = 0
(``pygambit.qre.logit_solve_lambda``; jaxnpg's tau is 1 / lambda). Its answers for a
few fixed games are stored with their provenance in ``tests/data/gambit_qre.json``
(written by ``tests/data/make_gambit_fixtures.py``), so the comparison runs on every
machine, with or without pygambit. Where pygambit is installed, the live tests
recompute Gambit's answers, check that they still match the stored ones, and compare
jaxnpg with them directly.

For random (3, 4, 5) games at tau in [0.1, 1] the QRE on Gambit's branch is unique
and NPG from the uniform policy converges to it, so NPG's limit must agree too.
"""

import datetime
import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference
from conftest import TESTS

DATA = TESTS / "data"
FIXTURES = DATA / "gambit_qre.json"


def _load():
  with open(FIXTURES) as f:
    data = json.load(f)
  cases = {}
  for name, c in data["cases"].items():
    cases[name] = {
        "rewards": np.asarray(c["rewards"], dtype=np.float64),
        "lam": np.asarray(c["lam"], dtype=np.float64),
        "lam_requested": np.asarray(c["lam_requested"], dtype=np.float64),
        "probs": [np.asarray(p, dtype=np.float64) for p in c["probs"]],
    }
  return data["provenance"], cases


PROVENANCE, CASES = _load()


def _generator():
  spec = importlib.util.spec_from_file_location(
      "make_gambit_fixtures", DATA / "make_gambit_fixtures.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


# Every dense (3, 4, 5) check runs at the shapes of test_qre.py's batch (10 games x 6
# lambdas), padded, so that the whole suite compiles jaxnpg.qre for it once.
PAD_GAMES, PAD_LAMS = 10, 6


def _ring():
  """The ring case as jaxnpg's native PolymatrixGame (float64)."""
  return jaxnpg.network_zero_sum_game(jax.random.key(3), "ring", (3,) * 4)


def _qre_probs(name, lam):
  """jaxnpg.qre on case ``name``'s games at ``tau = 1 / lam`` (G, L):
  ``(converged (G, L), probs [i] (G, L, A_i))``."""
  rewards = CASES[name]["rewards"]
  g, l = lam.shape
  with jax.enable_x64(True):
    if name == "ring_4x3":
      out = jaxnpg.qre(_ring(), jnp.asarray(1.0 / lam[0]))
      out = jax.tree.map(lambda x: x[None], out)
    else:
      assert g <= PAD_GAMES and l <= PAD_LAMS, (g, l)
      rows = np.r_[np.arange(g), np.zeros(PAD_GAMES - g, int)]
      cols = np.r_[np.arange(l), np.full(PAD_LAMS - l, l - 1)]
      games = jaxnpg.NormalFormGame(jnp.asarray(rewards[rows]),
                                    num_agents=rewards.shape[1])
      out = jax.vmap(jaxnpg.qre)(games, jnp.asarray(1.0 / lam[rows][:, cols]))
      out = jax.tree.map(lambda x: x[:g, :l], out)
    return (np.asarray(out.converged),
            [np.exp(np.asarray(lp, dtype=np.float64)) for lp in out.logp])


def test_fixtures_carry_their_provenance():
  for key in ("generator", "date", "pygambit", "solver"):
    assert PROVENANCE[key], key
  assert PROVENANCE["generator"] == _generator().COMMAND
  datetime.datetime.fromisoformat(PROVENANCE["date"])
  for name, c in CASES.items():
    g, n = c["rewards"].shape[:2]
    assert c["rewards"].shape[2:] == tuple(p.shape[-1] for p in c["probs"]), name
    assert c["lam"].shape == (g, len(c["lam_requested"])), name
    assert len(c["probs"]) == n
    # Gambit stopped within ~1e-8 of every lambda asked for (no off-branch jumps).
    np.testing.assert_allclose(c["lam"], np.broadcast_to(c["lam_requested"],
                                                         c["lam"].shape), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_stored_gambit_profiles_are_qres(name):
  """By the plain NumPy reference's definition (explicit loops, float64)."""
  c = CASES[name]
  for b, rewards in enumerate(c["rewards"]):
    for k, lam in enumerate(c["lam"][b]):
      probs = [p[b, k] for p in c["probs"]]
      assert reference.fixed_point_residual(rewards, probs, 1.0 / lam) < 1e-11


@pytest.mark.parametrize("name", sorted(CASES))
def test_qre_matches_stored_gambit(name):
  c = CASES[name]
  converged, probs = _qre_probs(name, c["lam"])
  assert converged.all()
  for ours, theirs in zip(probs, c["probs"]):
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


@pytest.mark.parametrize("game_index", [0, 1, 2])
def test_npg_converges_to_stored_gambit_qre(game_index, x64):
  c = CASES["random_345_npg"]
  game = jaxnpg.NormalFormGame(jnp.asarray(c["rewards"][game_index]))
  for k, lam in enumerate(c["lam"][game_index]):
    tau = 1.0 / float(lam)          # Gambit's lambda, ~1e-8 off the one asked for
    want = [p[game_index, k] for p in c["probs"]]
    # paper_eta converges too, but needs ~15 000 steps at tau = 0.1; this step
    # (eta * tau <= 1/4) needs at most ~1 200.
    eta = 0.5 / (tau + 1.0)
    sol = jaxnpg.solve(game, tau, eta, tol=1e-12, max_iters=3000)
    assert bool(sol.converged), (tau, int(sol.num_iters), float(sol.measure))
    assert float(sol.qre_gap) < 1e-14
    got = [np.exp(np.asarray(lp)) for lp in sol.logp]
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=0, atol=1e-9, err_msg=f"tau={tau}")


# --- live: pygambit installed ---------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_gambit_today_gives_the_stored_answers_and_jaxnpg_agrees(name):
  gbt = pytest.importorskip("pygambit")
  gen = _generator()
  c = CASES[name]
  lam, probs = gen.compute_case(gbt, c["rewards"], c["lam_requested"].tolist())
  # The fixture is what the generator computes with this pygambit (up to where
  # Gambit's tracer stops, ~1e-8 off each lambda).
  np.testing.assert_allclose(lam, c["lam"], rtol=1e-7)
  for today, stored in zip(probs, c["probs"]):
    np.testing.assert_allclose(today, stored, rtol=0, atol=1e-6)
  # jaxnpg at the lambdas Gambit reached today.
  converged, ours = _qre_probs(name, lam)
  assert converged.all()
  for o, t in zip(ours, probs):
    np.testing.assert_allclose(o, t, rtol=0, atol=1e-8)


def test_fixture_rewards_are_the_generators_games():
  """The stored games are the ones the generator describes (so regenerating
  changes Gambit's answers only), and the ring is jaxnpg's native game."""
  for name, (_, rewards, lams) in _generator().case_specs().items():
    np.testing.assert_array_equal(CASES[name]["rewards"], rewards)
    np.testing.assert_array_equal(CASES[name]["lam_requested"], lams)
  with jax.enable_x64(True):
    np.testing.assert_array_equal(_ring().to_dense().rewards,
                                  CASES["ring_4x3"]["rewards"][0])
