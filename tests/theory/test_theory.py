"""Theory tools: Jacobians, local rates, predicted boundaries, Theorem 3.3.

References are independent of jaxnpg: finite differences of the NumPy reference
NPG step (``reference.py``, explicit loops), NumPy eigenvalues, NPG runs measured
against the predicted rate, and the theorem's formulas written out here.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxnpg
import reference as ref
from jaxnpg import theory
from jaxnpg.theory import predictions


@pytest.fixture(autouse=True)
def _x64():
  with jax.enable_x64(True):
    yield


def _orthonormal_centred_basis(sizes):
  """An orthonormal basis of the centred logits, built differently from jaxnpg's
  (QR of the centring projector's columns), shape (N, N - n)."""
  blocks = []
  for a in sizes:
    p = np.eye(a) - np.full((a, a), 1.0 / a)
    q, _ = np.linalg.qr(p[:, : a - 1])
    blocks.append(q)
  n_rows = sum(sizes)
  out = np.zeros((n_rows, n_rows - len(sizes)))
  r = c = 0
  for b in blocks:
    out[r:r + b.shape[0], c:c + b.shape[1]] = b
    r += b.shape[0]
    c += b.shape[1]
  return out


def _reference_centred_map(rewards, tau, eta, sizes):
  """y (concatenated logits) -> centred log-policy after one NumPy reference step."""
  def f(y):
    probs, start = [], 0
    for a in sizes:
      z = y[start:start + a]
      z = np.exp(z - z.max())
      probs.append(z / z.sum())
      start += a
    new = ref.npg_step(rewards, probs, tau, eta)
    return np.concatenate([np.log(p) - np.log(p).mean() for p in new])
  return f


def _fd_jacobian(f, y0, basis, h=1e-6):
  """Central differences of ``u -> B^T f(y0 + B u)`` at ``u = 0``."""
  cols = []
  for k in range(basis.shape[1]):
    d = h * basis[:, k]
    cols.append(basis.T @ (f(y0 + d) - f(y0 - d)) / (2 * h))
  return np.stack(cols, axis=1)


def _flat(logp):
  return np.concatenate([np.asarray(lp, dtype=np.float64) for lp in logp])


@pytest.fixture(scope="module")
def game_and_qre():
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    rewards = rng.uniform(size=(3, 3, 4, 5))
    game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
    taus = jnp.array([0.05, 0.1, 0.2, 0.5])
    eq = jaxnpg.qre(game, taus)
  return rewards, game, taus, eq


def test_centred_basis_is_orthonormal_and_centred():
  game = jaxnpg.NormalFormGame(jnp.zeros((3, 3, 4, 5)))
  q = np.asarray(theory.centred_basis(game))
  assert q.shape == (12, 9)
  np.testing.assert_allclose(q.T @ q, np.eye(9), atol=1e-14)
  for start, a in ((0, 3), (3, 4), (7, 5)):
    np.testing.assert_allclose(q[start:start + a].sum(axis=0), 0.0, atol=1e-14)


def test_npg_jacobian_equals_finite_differences_of_the_reference_step():
  rng = np.random.default_rng(1)
  sizes = (3, 4, 5)
  rewards = rng.uniform(-1.0, 2.0, size=(3,) + sizes)
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  probs = ref.random_probs(rng, sizes, min_prob=0.02)      # any point, not a QRE
  logp = tuple(jnp.asarray(np.log(p)) for p in probs)
  tau, eta = 0.3, 0.7
  ours = np.asarray(theory.npg_jacobian(game, logp, tau, eta))
  basis = _orthonormal_centred_basis(sizes)
  fd = _fd_jacobian(_reference_centred_map(rewards, tau, eta, sizes),
                    _flat(logp), basis)
  # Change of orthonormal basis: ours lives in jaxnpg's Helmert basis.
  q = np.asarray(theory.centred_basis(game))
  t = q.T @ basis
  np.testing.assert_allclose(ours, t @ fd @ t.T, atol=1e-8)
  # J = (1 - eta tau) I + eta M.
  m = np.asarray(theory.payoff_jacobian(game, logp))
  np.testing.assert_allclose(ours, (1 - eta * tau) * np.eye(9) + eta * m,
                             atol=1e-13)


def test_local_rate_is_the_spectral_radius_at_the_qre(game_and_qre):
  rewards, game, taus, eq = game_and_qre
  sizes = (3, 4, 5)
  basis = _orthonormal_centred_basis(sizes)
  etas = jnp.array([[0.1, 1.0, 4.0, 12.0]])
  lr = jaxnpg.local_rate(game, taus, etas, eq)
  assert lr.rho.shape == (4, 4) and lr.eigenvalues.shape == (4, 9)
  for t, tau in enumerate(np.asarray(taus)):
    star = tuple(lp[t] for lp in eq.logp)
    for e, eta in enumerate(np.asarray(etas[0])):
      fd = _fd_jacobian(_reference_centred_map(rewards, tau, eta, sizes),
                        _flat(star), basis)
      want = np.max(np.abs(np.linalg.eigvals(fd)))
      assert abs(float(lr.rho[t, e]) - want) < 1e-7, (tau, eta)
  # eta_max is where rho crosses 1 (eta paired with tau: shape (4,)).
  assert bool(jnp.all(lr.max_real < taus))
  below = jaxnpg.local_rate(game, taus, lr.eta_max * (1 - 1e-6), eq).rho
  above = jaxnpg.local_rate(game, taus, lr.eta_max * (1 + 1e-6), eq).rho
  assert bool(jnp.all(below < 1)) and bool(jnp.all(above > 1))
  host = jaxnpg.local_rate(game, taus, etas, eq, eig_on_host=True)
  np.testing.assert_allclose(np.asarray(host.rho), np.asarray(lr.rho), atol=1e-12)
  np.testing.assert_allclose(np.sort_complex(np.asarray(host.eigenvalues)),
                             np.sort_complex(np.asarray(lr.eigenvalues)),
                             atol=1e-12)


@jax.jit
def _distance_trajectory(game, tau, eta, star):
  """max_i ||centred(log pi^k - log pi*)||_inf along 1500 NPG steps from uniform."""
  def step(lp, _):
    lp = jaxnpg.npg_step(game, lp, tau, eta)
    d = jnp.max(jnp.stack([jnp.max(jnp.abs((a - a.mean()) - (b - b.mean())))
                           for a, b in zip(lp, star)]))
    return lp, d
  return lax.scan(step, jaxnpg.uniform_policy(game), None, length=1500)[1]


def test_measured_tail_rate_matches_local_rate():
  """Runs that converge decay at rho(J): the distance to the QRE is fitted where
  it lies between 1e-4 and 1e-11 (asymptotic, above round-off). The step sizes
  separate the dominant eigenvalue, so the tail is reached inside the window."""
  keys = jax.random.split(jax.random.key(3), 3)
  taus = jnp.array([0.1, 0.3, 0.2, 0.2])     # the last case twice: shape (4,)
  etas = jnp.array([2.0, 1.0, 1.5, 1.5])
  for key in keys:
    game = jaxnpg.random_game(key, (3, 4, 5))
    eq = jaxnpg.qre(game, taus)
    rhos = np.asarray(jaxnpg.local_rate(game, taus, etas, eq).rho)
    for c in range(3):
      rho = float(rhos[c])
      assert rho < 0.97
      star = tuple(lp[c] for lp in eq.logp)
      e = np.asarray(_distance_trajectory(game, taus[c], etas[c], star))
      window = np.flatnonzero((e < 1e-4) & (e > 1e-11))
      k = np.arange(window[0], window[-1] + 1)
      measured = math.exp(np.polyfit(k, np.log(e[k]), 1)[0])
      assert abs(math.log(measured) / math.log(rho) - 1) < 0.03, (c, rho,
                                                                   measured)


def _theorem_reference(rewards, tau, eta, logp0):
  """Theorem 3.3 written out for rewards of width W (shift and scale invariance)."""
  w = float(rewards.max() - rewards.min())
  s = sum(rewards.shape[1:])
  probs = [np.exp(np.asarray(lp, dtype=np.float64)) for lp in logp0]
  d0 = ref.fixed_point_residual(rewards, probs, tau)
  holds = tau > 2 * w * s and eta < 1 / (tau - 2 * w * s) and eta * tau <= 1
  rho = 1 - eta * tau + 2 * eta * w * s
  return holds, rho, d0, 2 * w * s


@pytest.mark.parametrize("low,high,tau,eta", [
    (0.0, 1.0, 30.0, 0.03),       # the paper's [0, 1] rewards
    (-2.0, 3.0, 130.0, 0.007),    # width 5: the conditions scale with it
])
def test_theorem_3_3_bound_holds_along_runs(low, high, tau, eta):
  rng = np.random.default_rng(5)
  rewards = rng.uniform(low, high, size=(3, 3, 4, 5))
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  logp0 = tuple(jnp.asarray(np.log(p)) for p in ref.random_probs(rng, (3, 4, 5)))
  num_iters = 400
  th = theory.theorem_3_3(game, tau, eta, init=logp0, num_iters=num_iters)
  holds, rho, d0, tau_min = _theorem_reference(rewards, tau, eta, logp0)
  assert bool(th.holds) and holds
  assert abs(float(th.rho) - rho) < 1e-12 and abs(th.tau_min - tau_min) < 1e-12
  assert abs(float(th.d0) - d0) < 1e-12
  k = np.arange(num_iters + 1)
  np.testing.assert_allclose(np.asarray(th.bound), 2 * tau * rho ** k * d0,
                             rtol=1e-10)
  gaps = np.asarray(jaxnpg.run(game, tau, eta, num_iters, init=logp0).qre_gap)
  assert np.all(gaps <= np.asarray(th.bound) * (1 + 1e-9))
  assert gaps[-1] < gaps[0]


def test_theorem_3_3_conditions_fail_where_the_paper_says():
  rng = np.random.default_rng(6)
  game = jaxnpg.NormalFormGame(jnp.asarray(rng.uniform(size=(3, 3, 4, 5))))
  th = theory.theorem_3_3(game, jnp.array([0.1, 24.5, 30.0, 30.0]),
                          jnp.array([0.02, 0.02, 0.2, 0.04]), reward_range=(0, 1))
  assert th.tau_min == 24.0 and th.sum_actions == 12 and th.width == 1.0
  # tau too small; eta above 1 / (tau - 24) = 2; eta < 1/6 but eta*tau = 6 > 1; ok.
  assert th.holds.tolist() == [False, True, False, False]
  np.testing.assert_allclose(np.asarray(th.rho),
                             1 - np.array([0.02, 0.02, 0.2, 0.04])
                             * (np.array([0.1, 24.5, 30.0, 30.0]) - 24), rtol=1e-12)
  th4 = theory.theorem_3_3(game, 30.0, 0.03, reward_range=(0, 1))
  assert bool(th4.holds)


@pytest.fixture(scope="module")
def batch_prediction():
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.key(7), 3)
    games = jax.vmap(lambda k: jaxnpg.random_game(k, (3, 4, 5)))(keys)
    taus = np.array([0.02, 0.05, 0.2, 1.0])
    etas = np.array([0.05, 3.0])
    pr = theory.predicted_rates(games, taus, etas)
  return games, taus, etas, pr


def test_predicted_rates_equal_local_rate_game_by_game(batch_prediction):
  games, taus, etas, pr = batch_prediction
  assert pr.rho.shape == (3, 4, 2) and pr.max_real.shape == (3, 4)
  assert pr.etas.shape == (4, 2)
  for b in range(3):
    game = jax.tree_util.tree_map(lambda x: x[b], games)
    eq = jaxnpg.qre(game, jnp.asarray(taus))
    lr = jaxnpg.local_rate(game, jnp.asarray(taus), jnp.asarray(etas)[None], eq)
    np.testing.assert_allclose(np.asarray(pr.rho[b]), np.asarray(lr.rho),
                               atol=1e-12)
    np.testing.assert_array_equal(np.asarray(pr.attracting[b]),
                                  np.asarray(lr.rho) < 1)


def test_predicted_boundary_reads_the_grid_and_refines(batch_prediction):
  games, taus, etas, pr = batch_prediction
  b = theory.predicted_boundary(games, taus, etas)
  att = np.asarray(pr.attracting)
  for g in range(3):
    for e in range(2):
      col = att[g, :, e]
      expect = np.nan
      for k in range(len(taus) - 1, -1, -1):   # walk down while it attracts
        if not col[k]:
          break
        expect = taus[k]
      first = taus[np.argmax(col)] if col.any() else np.nan
      np.testing.assert_equal(float(b.tau[g, e]), expect)
      np.testing.assert_equal(float(b.first_tau[g, e]), first)
      assert bool(b.below_grid[g, e]) == (expect == taus[0])
  steps = 3
  r = theory.predicted_boundary(games, taus, etas, refine=steps)
  for g in range(3):
    game = jax.tree_util.tree_map(lambda x: x[g], games)
    for e in range(2):
      grid, fine = float(b.tau[g, e]), float(r.tau[g, e])
      if np.isnan(grid) or grid == taus[0]:
        np.testing.assert_equal(fine, grid)
        continue
      lo = taus[np.flatnonzero(taus == grid)[0] - 1]
      width = (grid - lo) / 2 ** steps
      assert lo < fine <= grid
      pts = jnp.array([fine - width, fine, grid, grid])      # shape (4,)
      lr = jaxnpg.local_rate(game, pts, etas[e], jaxnpg.qre(game, pts))
      assert lr.attracting.tolist() == [False, True, True, True]


def test_step_size_rules_and_per_tau_etas(batch_prediction):
  games, taus, etas, pr = batch_prediction
  rule = lambda t: jaxnpg.paper_eta(t, (3, 4, 5))
  _, one_column = predictions._check_grid(taus, rule)
  np.testing.assert_allclose(one_column[:, 0], 1 / (2 * (taus + 24)), rtol=1e-12)
  assert one_column.shape == (4, 1)
  two = lambda t: jnp.stack([rule(t), 40 * rule(t)], axis=-1)
  a = theory.predicted_rates(games, taus, two)
  per_tau = np.asarray(two(jnp.asarray(taus)))
  assert a.etas.shape == (4, 2)
  np.testing.assert_allclose(np.asarray(a.etas), per_tau, rtol=1e-15)
  # rho from the same eigenvalues, each column's own step size per tau.
  mu = np.asarray(jaxnpg.local_rate(
      jax.tree_util.tree_map(lambda x: x[0], games), jnp.asarray(taus), 0.1,
      tuple(lp[0] for lp in pr.qre_logp)).eigenvalues)
  want = np.max(np.abs(1 - per_tau[..., None] * (taus[:, None, None]
                                                 - mu[:, None, :])), axis=-1)
  np.testing.assert_allclose(np.asarray(a.rho[0]), want, atol=1e-12)


def test_bad_arguments_raise(game_and_qre):
  _, game, taus, eq = game_and_qre
  with pytest.raises(ValueError, match="step size"):
    jaxnpg.local_rate(game, taus, 0.0, eq)
  with pytest.raises(ValueError, match=">= 0"):
    jaxnpg.local_rate(game, -taus, 0.1, eq)
  with pytest.raises(ValueError, match="expected tau's shape"):
    jaxnpg.local_rate(game, taus[:2], 0.1, eq)
  with pytest.raises(ValueError, match="step size"):
    theory.theorem_3_3(game, 1.0, -0.1)
  with pytest.raises(ValueError, match=">= 0"):
    theory.theorem_3_3(game, -1.0, 0.1)
  with pytest.raises(ValueError, match="tau > 0"):
    theory.predicted_rates(game, [0.0, 1.0], [0.1])
  with pytest.raises(ValueError, match="strictly increasing"):
    theory.predicted_rates(game, [1.0, 0.5], [0.1])
  with pytest.raises(ValueError, match="step size"):
    theory.predicted_rates(game, [0.5, 1.0], [0.1, -1.0])
  with pytest.raises(ValueError, match="etas"):
    theory.predicted_rates(game, [0.5, 1.0], np.ones((3, 2)))
  with pytest.raises(ValueError, match="refine"):
    theory.predicted_boundary(game, [0.5, 1.0], [0.1], refine=-1)
