"""The direct QRE solver (``jaxnpg.qre``): Gambit agreement, exactness, batching, errors.

Every test runs in float64 (module-wide x64) except the float32 one, and compares with
independent references: pygambit's logit tracer, the plain NumPy reference of
``reference.py`` (explicit loops), and exact identities.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gambit_compat
import jaxnpg
import reference as ref
from jaxnpg.theory import logit as _qre

LAMS = (1.0, 5.0, 10.0, 20.0, 35.0, 50.0)


# float64 unless the test's name says float32 (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("x64_unless_float32")


def _probs(logp, index):
  return [np.exp(np.asarray(lp[index], dtype=np.float64)) for lp in logp]


def _gambit_lambda(pygambit, rewards, lams):
  """Gambit's principal-branch points: (lams reached, per-agent probs (L, A_i))."""
  g = gambit_compat.strategic_game(pygambit, *rewards)
  return gambit_compat.logit_lambda(pygambit, g, lams)


def _solve_batch(rewards, taus):
  """jaxnpg.qre on a batch of dense games, one tau vector per game (vmap)."""
  n = rewards.shape[1]
  games = jaxnpg.NormalFormGame(jnp.asarray(rewards), num_agents=n)
  return jax.vmap(jaxnpg.qre)(games, jnp.asarray(taus))


@pytest.fixture(scope="module")
def batch():
  """Ten random (3, 4, 5) games, four of whose branches fold before lambda = 50, and
  jaxnpg.qre at Gambit's reached lambdas (the requested ones without pygambit)."""
  rng = np.random.default_rng(18)
  rewards = rng.uniform(size=(10, 3, 3, 4, 5))
  try:
    import pygambit
  except ImportError:
    pygambit = None
  if pygambit is None:
    lams, probs = np.tile(LAMS, (10, 1)), None
  else:
    lams, probs = zip(*[_gambit_lambda(pygambit, r, LAMS) for r in rewards])
    lams = np.stack(lams)
  with jax.enable_x64(True):
    out = _solve_batch(rewards, 1.0 / lams)
  return rewards, lams, probs, out


def test_matches_gambit_on_random_three_agent_games(batch):
  pytest.importorskip("pygambit")
  rewards, lams, probs, out = batch
  assert np.all(np.abs(lams - np.array(LAMS)) < 1e-6)
  assert bool(jnp.all(out.converged))
  for i in range(3):
    ours = np.exp(np.asarray(out.logp[i]))
    theirs = np.stack([p[i] for p in probs])
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8)


def test_turning_points_agree_with_gambits_branch(batch):
  """Where our branch folds before lambda = 50, Gambit's trace folds too (several
  QREs exist there, and NPG can land off the branch); the answers above agree."""
  pygambit = pytest.importorskip("pygambit")
  rewards, _, _, out = batch
  folds = np.asarray(out.num_turning_points)[:, -1] > 0
  assert folds.sum() >= 2
  status = np.asarray(out.status)
  tp = np.asarray(out.num_turning_points)
  np.testing.assert_array_equal(status, np.where(tp > 0, _qre.QRE_TURNING_POINT,
                                                 _qre.QRE_CONVERGED))
  assert np.all(np.diff(tp, axis=1) >= 0)          # folds only accumulate
  for b in range(len(rewards)):
    g = gambit_compat.strategic_game(pygambit, *rewards[b])
    lam = gambit_compat.logit_branch_lambdas(pygambit, g, maxregret=1e-4)
    upto = lam[: np.argmax(lam >= 50.0) + 1]
    assert bool(np.any(np.diff(upto) < 0)) == folds[b], b


def test_output_is_an_exact_qre_by_the_numpy_reference(batch):
  rewards, lams, _, out = batch
  for b in range(0, 10, 3):
    for k in (0, 3, 5):
      tau = 1.0 / lams[b, k]
      probs = _probs(tuple(lp[b] for lp in out.logp), k)
      assert ref.fixed_point_residual(rewards[b], probs, tau) < 1e-11
      assert ref.qre_gap(rewards[b], probs, tau) < 1e-14
  assert float(jnp.max(out.residual)) < 1e-11
  assert float(jnp.max(out.qre_gap)) < 1e-15


def test_vmap_equals_loop_and_tau_order_does_not_matter(batch):
  rewards, lams, _, out = batch
  for b in (0, 4):
    game = jaxnpg.NormalFormGame(jnp.asarray(rewards[b]))
    single = jaxnpg.qre(game, jnp.asarray(1.0 / lams[b, 5:1:-1]))   # 4 of 6
    for i in range(3):
      np.testing.assert_allclose(np.asarray(out.logp[i][b, 2:]),
                                 np.asarray(single.logp[i])[::-1], atol=1e-12)
    np.testing.assert_array_equal(np.asarray(out.status[b, 2:]),
                                  np.asarray(single.status)[::-1])


def test_matching_pennies_stays_uniform_and_dominance_is_exact():
  # Matching pennies: the unique QRE is uniform at every lambda.
  mp = np.array([[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]])
  # Agent 0's action 0 pays 1 more than action 1 whatever the others do, and agent 1
  # is indifferent: the QRE is p0 = softmax((1, 0) / tau), p1 uniform.
  dom = np.zeros((2, 2, 2))
  dom[0, 0] = 1.0
  taus = jnp.array([1.0, 0.2, 0.05])
  for rewards, expect in (
      (mp, lambda t: [np.full(2, 0.5), np.full(2, 0.5)]),
      (dom, lambda t: [np.exp([1 / t, 0]) / np.exp([1 / t, 0]).sum(),
                       np.full(2, 0.5)])):
    out = jaxnpg.qre(jaxnpg.NormalFormGame(jnp.asarray(rewards)), taus)
    assert bool(jnp.all(out.status == _qre.QRE_CONVERGED))
    for k, t in enumerate(np.asarray(taus)):
      for got, want in zip(_probs(out.logp, k), expect(t)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_vmap_equals_loop_and_tau_order_does_not_matter():
  rng = np.random.default_rng(2)
  rewards = rng.uniform(size=(3, 3, 3, 4, 5))
  taus = np.array([0.5, 0.05, 0.2])
  batched = _solve_batch(rewards, np.tile(taus, (3, 1)))
  for b in range(3):
    game = jaxnpg.NormalFormGame(jnp.asarray(rewards[b]))
    single = jaxnpg.qre(game, jnp.asarray(taus[::-1].copy()))
    for i in range(3):
      np.testing.assert_allclose(np.asarray(batched.logp[i][b]),
                                 np.asarray(single.logp[i])[::-1], atol=1e-12)
    np.testing.assert_array_equal(np.asarray(batched.status[b]),
                                  np.asarray(single.status)[::-1])


def test_polymatrix_game_through_the_protocol_matches_gambit():
  """A native PolymatrixGame (rewards in [-2, 2], not [0, 1]) against Gambit's
  answer for the same game as a dense tensor."""
  pygambit = pytest.importorskip("pygambit")
  game = jaxnpg.network_zero_sum_game(jax.random.key(3), "ring", (3,) * 4)
  rewards = np.asarray(game.to_dense().rewards, dtype=np.float64)
  lams, probs = _gambit_lambda(pygambit, rewards, [2.0, 10.0])
  out = jaxnpg.qre(game, jnp.asarray(1.0 / lams))
  assert bool(jnp.all(out.converged))
  for i in range(4):
    np.testing.assert_allclose(np.exp(np.asarray(out.logp[i])), probs[i], atol=1e-8)
  assert ref.fixed_point_residual(rewards, _probs(out.logp, 1), 1 / lams[1]) < 1e-11


def test_float32_keeps_dtype_and_converges_float32():
  game = jaxnpg.random_game(jax.random.key(0), (3, 4, 5))
  out = jaxnpg.qre(game, jnp.array([1.0, 0.1]))     # the doctest's shapes
  assert out.logp[0].dtype == jnp.float32 and out.residual.dtype == jnp.float32
  assert bool(jnp.all(out.converged))
  assert bool(jnp.all(out.residual < 1e-4))


def test_running_out_of_steps_is_reported_not_raised():
  rng = np.random.default_rng(4)
  game = jaxnpg.NormalFormGame(jnp.asarray(rng.uniform(size=(2, 2, 2))))
  taus = jnp.array([10.0, 1.0, 0.01])                # matching pennies' shapes
  out = jaxnpg.qre(game, taus, max_steps=2)
  assert out.status.tolist()[2] == jaxnpg.QREStatus.MAX_STEPS
  assert not bool(out.converged[2])
  assert bool(jnp.all(jaxnpg.qre(game, taus).converged))


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), float("inf"), [0.5, 0.0]])
def test_bad_tau_raises(tau):
  game = jaxnpg.random_game(jax.random.key(0), (2, 2))
  with pytest.raises(ValueError, match="tau > 0"):
    jaxnpg.qre(game, tau)


def test_bad_arguments_raise():
  game = jaxnpg.random_game(jax.random.key(0), (2, 2))
  games = jax.vmap(lambda k: jaxnpg.random_game(k, (2, 2)))(
      jax.random.split(jax.random.key(0), 2))
  with pytest.raises(ValueError, match="one game"):
    jaxnpg.qre(games, 0.5)
  with pytest.raises(ValueError, match="max_steps"):
    jaxnpg.qre(game, 0.5, max_steps=0)
  with pytest.raises(ValueError, match="first_step"):
    jaxnpg.qre(game, 0.5, first_step=5.0, max_step=1.0)
  with pytest.raises(ValueError, match="tol"):
    jaxnpg.qre(game, 0.5, tol=0.0)
  soft = jaxnpg.random_markov_game(jax.random.key(1), 2, (2, 2), 0.9)
  with pytest.raises(ValueError, match="do not depend on tau"):
    jaxnpg.qre(soft, 0.5)


@pytest.mark.slow
def test_matches_gambit_on_many_games_slow():
  """200 games x 6 lambdas. Gambit's default steps (first_step=0.03,
  max_accel=1.1) now and then stop its corrector near a residual of 1e-7, or step
  over the top of a fold that barely exceeds lambda and return a later crossing
  (seed 10: game 32 at lambda 20, game 108 at lambda 10, whose branch peaks at
  lambda ~ 10.015 before folding back). Those games are re-solved by Gambit with
  small steps (first_step=0.003, max_accel=1), which then agrees with us."""
  pygambit = pytest.importorskip("pygambit")
  rng = np.random.default_rng(10)
  rewards = rng.uniform(size=(200, 3, 3, 4, 5))
  lams, probs = zip(*[_gambit_lambda(pygambit, r, LAMS) for r in rewards])
  out = _solve_batch(rewards, 1.0 / np.stack(lams))
  assert bool(jnp.all(out.converged))
  diff = np.max(np.stack([
      np.max(np.abs(np.exp(np.asarray(out.logp[i]))
                    - np.stack([p[i] for p in probs])), axis=-1)
      for i in range(3)]), axis=0)                              # (200, 6)
  redo = np.argwhere(diff > 1e-8)
  assert len(redo) <= 4, redo
  for b, k in redo:
    g = gambit_compat.strategic_game(pygambit, *rewards[b])
    lam_fine, fine = gambit_compat.logit_lambda(pygambit, g, [LAMS[k]],
                                                first_step=0.003, max_accel=1.0)
    fine = [f[0] for f in fine]
    again = jaxnpg.qre(jaxnpg.NormalFormGame(jnp.asarray(rewards[b])),
                       jnp.full((4,), 1.0 / float(lam_fine[0])))
    for i in range(3):
      np.testing.assert_allclose(np.exp(np.asarray(again.logp[i][0])), fine[i],
                                 atol=1e-8)


def test_qre_batch_equals_vmap(batch):
  """The batched driver (rounds, finished games dropped) gives vmap(qre)'s answers,
  statuses and event counts, with small rounds and batches forcing compaction."""
  rewards, lams, _, out = batch
  games = jaxnpg.NormalFormGame(jnp.asarray(rewards), num_agents=3)
  got = jaxnpg.qre_batch(games, jnp.asarray(1.0 / lams), round_steps=3,
                         min_batch=2, max_batch=4)
  for a, b in zip(got.logp, out.logp):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-12)
  for field in ("status", "num_turning_points", "num_bifurcations", "num_steps"):
    np.testing.assert_array_equal(np.asarray(getattr(got, field)),
                                  np.asarray(getattr(out, field)))
  with pytest.raises(ValueError, match="1-D batch"):
    jaxnpg.qre_batch(jaxnpg.NormalFormGame(jnp.asarray(rewards[0])), 0.5)


def test_status_enum_replaces_the_codes():
  assert [s.name for s in jaxnpg.QREStatus] == [
      "CONVERGED", "TURNING_POINT", "BIFURCATION", "MAX_STEPS", "STEP_FAILED",
      "NOT_CONVERGED", "INVALID_INPUT"]
  assert _qre.QRE_MAX_STEPS == jaxnpg.QREStatus.MAX_STEPS
  assert all(s.description for s in jaxnpg.QREStatus)
  assert [s.converged for s in jaxnpg.QREStatus] == [True] * 3 + [False] * 4
