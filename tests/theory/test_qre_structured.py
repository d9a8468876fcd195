"""``jaxnpg.qre`` on structured games against Gambit 17: branch points and folds are
reported, and every answer equals Gambit's or its status says why it may not.

Gambit's answers come from pygambit where it is installed (and are checked against
the stored ones), else from ``tests/data/gambit_structured.json``
(``tests/data/make_structured_fixtures.py``).
"""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
import reference as ref
import structured_games
from conftest import TESTS

FIXTURE = TESTS / "data" / "gambit_structured.json"
STORED = json.loads(FIXTURE.read_text())["cases"]
NAMES = sorted(structured_games.games())
S = jaxnpg.QREStatus


# float64 unless the test's name says float32 (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("x64_unless_float32")


def _gambit(name):
  """Gambit's (lambdas reached, probs per player (L, A_i), bifurcation events)."""
  c = STORED[name]
  stored = (np.asarray(c["lam"]), [np.asarray(p) for p in c["probs"]],
            c["bifurcations"])
  try:
    import pygambit
  except ImportError:
    return stored
  import make_structured_fixtures as make
  live = make.solve(pygambit, structured_games.games()[name], structured_games.LAMS)
  np.testing.assert_allclose(live[0], stored[0], rtol=0, atol=1e-9)
  for a, b in zip(live[1], stored[1]):
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
  assert live[2] == stored[2]
  return live


def _diff(out, probs):
  """Per lambda, the largest probability difference to ``probs``."""
  return np.max([np.max(np.abs(np.exp(np.asarray(lp)) - p), axis=-1)
                 for lp, p in zip(out.logp, probs)], axis=0)


@pytest.fixture(scope="module", autouse=True)
def _fixture_generator_importable():
  import sys
  sys.path.insert(0, str(FIXTURE.parent))
  yield
  sys.path.remove(str(FIXTURE.parent))


@pytest.mark.parametrize("name", NAMES)
def test_structured_game_equals_gambit_or_says_why(name):
  rewards = structured_games.games()[name]
  lam, probs, gambit_bifs = _gambit(name)
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  outs = {rule: jaxnpg.qre(game, jnp.asarray(1.0 / lam), branch=rule)
          for rule in ("gambit", "continue")}
  for out in outs.values():
    assert bool(jnp.all(out.converged)), out.status
    for k, l in enumerate(lam):                  # verified QREs at each lambda
      p = [np.exp(np.asarray(lp[k], np.float64)) for lp in out.logp]
      assert ref.fixed_point_residual(rewards, p, 1.0 / l) < 1e-10
  out = outs["gambit"]
  status = np.asarray(out.status)
  diff = _diff(out, probs)
  # No silent difference: wherever we differ from Gambit, a branch point was passed.
  assert np.all((diff < 1e-8) | (status == S.BIFURCATION)), (diff, status)
  # Both tracers see a branch point on this game, or neither does.
  assert (int(out.num_bifurcations[-1]) > 0) == (gambit_bifs > 0)
  arm = structured_games.ARM.get(name, "gambit")
  after = status == S.BIFURCATION
  if arm is not None:   # 1e-7: on chicken Gambit's 1e-7 perturbation stays on
    np.testing.assert_array_less(_diff(outs[arm], probs)[after], 1e-7)
  else:
    assert np.max(diff[after]) > 0.1               # Gambit's own arm
  # The smooth continuation passes the same branch points at the same lambdas.
  np.testing.assert_array_equal(np.asarray(outs["continue"].num_bifurcations)
                                > 0, after)


def test_battle_of_the_sexes_branch_point_and_both_arms():
  """The docstring's example: Gambit 17's ((0.883, 0.117), (0.805, 0.195)) at
  lambda = 1 by default, the symmetric QRE with branch="continue"; the pitchfork
  lies inside the step over which Gambit reported its bifurcation event
  (lambda 0.7079 -> 0.8105), and on the symmetric curve det J_y changes sign there."""
  bos = jaxnpg.NormalFormGame(jnp.asarray(structured_games.games()[
      "battle of the sexes"]))
  out = jaxnpg.qre(bos, jnp.asarray([1.0, 1 / 0.75]))
  assert out.status.tolist() == [S.BIFURCATION, S.CONVERGED]
  assert out.num_bifurcations.tolist() == [1, 0]
  lam_b = float(out.bifurcation_lambdas[0])
  assert 0.7079 < lam_b < 0.8105
  assert bool(jnp.all(jnp.isnan(out.bifurcation_lambdas[1:])))
  np.testing.assert_allclose(np.exp(out.logp[0][0]), [0.8832804854590459,
                                                       0.1167195145409541], atol=1e-9)
  np.testing.assert_allclose(np.exp(out.logp[1][0]), [0.8047738109918032,
                                                       0.1952261890081968], atol=1e-9)
  sym = jaxnpg.qre(bos, jnp.asarray(1.0), branch="continue")
  p0, p1 = (np.exp(np.asarray(lp)) for lp in sym.logp)
  np.testing.assert_allclose(p0, p1[::-1], atol=1e-12)   # swap players and actions
  np.testing.assert_allclose(p0[0], 0.555, atol=1e-3)
  # Independent check of lam_b. In logit differences d1 = log(p/(1-p)) (player 1's
  # A), d2 (player 2's A): d1 = lam (5 q - 2), d2 = lam (5 p - 3), so
  # det J = 1 - 25 lam^2 v1 v2 with v = p (1 - p). On the symmetric curve
  # (q = 1 - p = 1 - x, log(x / (1 - x)) = lam (3 - 5 x)) it is 1 - (5 lam v)^2.
  def det_j(lam):
    lo, hi = 0.5, 0.6                      # the symmetric x, by bisection
    for _ in range(60):
      x = 0.5 * (lo + hi)
      lo, hi = (x, hi) if np.log(x / (1 - x)) < lam * (3 - 5 * x) else (lo, x)
    return 1 - (5 * lam * x * (1 - x)) ** 2
  lo, hi = 0.5, 1.0
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if det_j(mid) > 0 else (lo, mid)
  assert abs(lam_b - lo) < 5e-3, (lam_b, lo)   # linear in det over one step


@pytest.mark.parametrize("eps", [1e-3, -1e-3])
def test_large_steps_do_not_jump_to_the_nearby_curve(eps):
  """A Battle of the Sexes a little off symmetric (player 1's (A, A) payoff 3 + eps):
  the pitchfork splits into the principal branch, which turns onto one arm, and a
  separate curve (the other arm and the symmetric continuation) ~0.1 away. Steps of
  arclength 2 along the tangent overshoot onto that curve; the step control rejects
  them, so the answer equals a trace with steps of 0.01, and the two signs of eps
  end on opposite arms."""
  r = np.asarray(structured_games.games()["battle of the sexes"], float).copy()
  r[0, 0, 0] += eps
  game = jaxnpg.NormalFormGame(jnp.asarray(r))
  taus = jnp.asarray([1.0, 1 / 1.5, 0.2])
  fine = jaxnpg.qre(game, taus, first_step=0.01, max_step=0.01)
  big = jaxnpg.qre(game, taus, first_step=2.0, max_step=2.0)
  assert fine.status.tolist() == big.status.tolist() == [S.CONVERGED] * 3
  for a, b in zip(big.logp, fine.logp):
    np.testing.assert_allclose(np.exp(a), np.exp(b), atol=1e-10)
  p = float(jnp.exp(fine.logp[0][2, 0]))
  assert (p > 0.9) if eps > 0 else (p < 0.1)


def test_float32_battle_of_the_sexes_takes_gambits_arm():
  bos = jaxnpg.NormalFormGame(jnp.asarray(structured_games.games()[
      "battle of the sexes"], jnp.float32))
  out = jaxnpg.qre(bos, jnp.asarray([1.0, 0.5], jnp.float32))
  assert out.logp[0].dtype == jnp.float32
  assert out.status.tolist() == [S.BIFURCATION] * 2
  np.testing.assert_allclose(np.exp(out.logp[0][0]), [0.8833, 0.1167], atol=2e-4)
  np.testing.assert_allclose(np.exp(out.logp[1][0]), [0.8048, 0.1952], atol=2e-4)


def test_bad_branch_rule_raises():
  game = jaxnpg.random_game(jax.random.key(0), (2, 2))
  with pytest.raises(ValueError, match="branch"):
    jaxnpg.qre(game, 0.5, branch="symmetric")
  with pytest.raises(ValueError, match="max_events"):
    jaxnpg.qre(game, 0.5, max_events=0)
