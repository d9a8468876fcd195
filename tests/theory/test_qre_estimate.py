"""``jaxnpg.logit_estimate`` against Gambit 17's ``pygambit.qre.logit_estimate``.

Gambit's answers are recomputed live where pygambit is installed and compared with
the stored ones below (written by the same calls), which the tests use otherwise.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg

AMP = np.array([[[9.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
R345 = np.random.default_rng(7).uniform(size=(3, 3, 4, 5))
# (rewards, counts, Gambit's lambda, Gambit's log-likelihood): McKelvey-Palfrey-style
# asymmetric matching pennies data, and draws of 200 plays per player from the QRE at
# lambda = 5 of a random (3, 4, 5) game (numpy default_rng(7)).
CASES = [
    (AMP, [[65, 35], [40, 60]], 0.17744609584013438, -133.5653711453896),
    (AMP, [[80, 20], [30, 70]], 0.6103088291, -114.18440148),
    (AMP, [[50, 50], [50, 50]], 0.0, -138.62943611),
    (R345, [[121, 21, 58], [66, 17, 43, 74], [13, 65, 51, 23, 48]],
     5.112138487564734, -737.4864551207603),
    (R345, [[111, 25, 64], [63, 18, 45, 74], [12, 71, 59, 20, 38]],
     4.997258643504207, -740.9588417060238),
]


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


def _gambit(rewards, counts, lam, log_like):
  try:
    import pygambit as gbt
  except ImportError:
    return lam, log_like
  g = gbt.StrategicGame.from_arrays(*rewards)
  fit = gbt.qre.logit_estimate(g.mixed_strategy_profile(data=counts))
  assert abs(fit.lam - lam) < 1e-8 and abs(fit.log_like - log_like) < 1e-6
  return fit.lam, fit.log_like


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.slow) if c == 3 else c
    for c in range(len(CASES))])
def test_agrees_with_gambit(case):
  """Slow for case 3 (13 s, the largest game); the others stay default."""
  rewards, counts, lam, log_like = CASES[case]
  lam, log_like = _gambit(rewards, counts, lam, log_like)
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  fit = jaxnpg.logit_estimate(game, [jnp.asarray(c, jnp.float64) for c in counts])
  assert bool(fit.converged)
  assert abs(float(fit.lam) - lam) < 1e-4 * max(1.0, lam)
  assert abs(float(fit.log_like) - log_like) < 1e-6
  # The returned profile is the QRE at the returned lambda, and L is its likelihood.
  if float(fit.lam) > 0:
    eq = jaxnpg.qre(game, 1.0 / fit.lam)
    for a, b in zip(fit.logp, eq.logp):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-9)
  ll = sum(float(jnp.sum(jnp.asarray(c) * lp)) for c, lp in zip(counts, fit.logp))
  assert abs(ll - float(fit.log_like)) < 1e-9


def test_vmapped_bootstrap_equals_a_loop():
  """Many data sets in one call (the trace runs once): equal to one at a time."""
  game = jaxnpg.NormalFormGame(jnp.asarray(R345))
  eq = jaxnpg.qre(game, 1 / 5.0)
  rng = np.random.default_rng(0)
  counts = [np.stack([rng.multinomial(200, np.exp(np.asarray(lp)))
                      for _ in range(16)]).astype(np.float64) for lp in eq.logp]
  fits = jax.jit(jax.vmap(lambda c: jaxnpg.logit_estimate(game, c)))(
      [jnp.asarray(c) for c in counts])
  assert fits.lam.shape == (16,) and fits.logp[2].shape == (16, 5)
  assert bool(jnp.all(fits.converged))
  for b in (0, 7):
    one = jaxnpg.logit_estimate(game, [jnp.asarray(c[b]) for c in counts])
    np.testing.assert_allclose(float(fits.lam[b]), float(one.lam), rtol=1e-9)
  lo, hi = np.quantile(np.asarray(fits.lam), [0.05, 0.95])
  assert lo < 5.0 < hi                          # the truth inside the 90% interval


def test_bad_counts_raise():
  game = jaxnpg.NormalFormGame(jnp.asarray(AMP))
  with pytest.raises(ValueError, match="one array per agent"):
    jaxnpg.logit_estimate(game, [jnp.ones(2)])
  with pytest.raises(ValueError, match=r"counts\[1\]. must have shape"):
    jaxnpg.logit_estimate(game, [jnp.ones(2), jnp.ones(3)])
  with pytest.raises(ValueError, match=">= 0"):
    jaxnpg.logit_estimate(game, [jnp.ones(2), -jnp.ones(2)])
  with pytest.raises(ValueError, match="lam_max"):
    jaxnpg.logit_estimate(game, [jnp.ones(2), jnp.ones(2)], lam_max=0.0)
