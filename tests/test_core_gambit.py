"""Peer check: jaxnpg's QRE against Gambit's logit QRE (pygambit.qre).

Gambit traces the principal branch of logit equilibria from lambda = 0; for random
(3, 4, 5) games at tau in [0.1, 1] (lambda in [1, 10]) the QRE is unique there and
NPG from the uniform policy converges to it, so the two must agree.
"""

import jax
import numpy as np
import pytest

import jaxnpg
import reference
from conftest import random_game_and_policy

pygambit = pytest.importorskip("pygambit")

SIZES = (3, 4, 5)


def _gambit_qre(rewards, tau):
  """Gambit's logit QRE at lambda ~ 1/tau: ``(tau_gambit, probs)``."""
  game = pygambit.Game.from_arrays(*[np.asarray(rewards[i], dtype=np.float64)
                                     for i in range(rewards.shape[0])])
  result = pygambit.qre.logit_solve_lambda(game, [1.0 / tau])
  q = result[0]
  # Gambit stops slightly off the lambda asked for (~1e-8): use its lambda.
  tau_gambit = 1.0 / float(q.lam)
  assert abs(tau_gambit - tau) < 1e-6 * tau
  probs = [np.array([float(q.profile[s]) for s in player.strategies])
           for player in game.players]
  return tau_gambit, probs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qre_matches_gambit(seed, x64):
  game, _ = random_game_and_policy(jax.random.key(seed), SIZES)
  game = jaxnpg.NormalFormGame(game.rewards)   # validated
  rewards = np.asarray(game.rewards)
  for tau in [0.1, 0.2, 0.5, 1.0]:
    tau_g, want = _gambit_qre(rewards, tau)
    assert [p.shape for p in want] == [(a,) for a in SIZES]
    # Gambit's profile really is a QRE by the NumPy reference's definition.
    assert reference.fixed_point_residual(rewards, want, tau_g) < 1e-12
    # paper_eta converges too, but needs ~15 000 steps at tau = 0.1; this step
    # (eta * tau <= 1/4) needs at most ~1 200.
    eta = 0.5 / (tau_g + 1.0)
    sol = jaxnpg.solve(game, tau_g, eta, tol=1e-12, max_iters=3000)
    assert bool(sol.converged), (tau, int(sol.num_iters), float(sol.measure))
    assert float(sol.qre_gap) < 1e-14
    got = [np.exp(np.asarray(lp)) for lp in sol.logp]
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=0, atol=1e-9, err_msg=f"tau={tau}")
