"""Game families: their defining identities, seeds, validation, rescaling, CLI."""

import itertools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnpg
from jaxnpg import cli

FAMILY_CASES = {
    "random": ((2, 3, 2), {}),
    "cooperative": ((2, 3, 2), {}),
    "potential": ((2, 3, 2), {}),
    "zero_sum": ((3, 4), {}),
    "bimatrix": ((3, 4), {}),
    "network_zero_sum": ((3,) * 5, {"graph": "ring"}),
}


def unilateral_deviations(sizes):
  """Every ``(i, a, b)``: joint action ``a`` and ``b`` differing in agent i only."""
  for a in itertools.product(*[range(s) for s in sizes]):
    for i, size in enumerate(sizes):
      for alt in range(size):
        if alt != a[i]:
          yield i, a, a[:i] + (alt,) + a[i + 1:]


def candidate_potential(rewards):
  """Monderer–Shapley: sum the reward changes along a path from action 0.

  If the game is an exact potential game, this is a potential (up to a constant);
  if it is not, the check in :func:`max_potential_violation` fails.
  """
  n, sizes = rewards.shape[0], rewards.shape[1:]
  phi = np.zeros(sizes)
  for a in itertools.product(*[range(s) for s in sizes]):
    total = 0.0
    for i in range(n):
      before = a[:i] + (0,) * (n - i)
      after = a[:i + 1] + (0,) * (n - i - 1)
      total += rewards[(i,) + after] - rewards[(i,) + before]
    phi[a] = total
  return phi


def max_potential_violation(rewards):
  rewards = np.asarray(rewards, dtype=np.float64)
  phi = candidate_potential(rewards)
  return max(abs((rewards[(i,) + b] - rewards[(i,) + a]) - (phi[b] - phi[a]))
             for i, a, b in unilateral_deviations(rewards.shape[1:]))


def test_potential_games_satisfy_the_potential_property(x64):
  for seed, sizes in [(0, (2, 3, 2)), (2, (2, 2, 2, 2))]:
    game = jax.jit(jaxnpg.potential_game, static_argnums=1)(
        jax.random.key(seed), sizes)
    assert max_potential_violation(game.rewards) < 1e-12
    r = np.asarray(game.rewards)
    assert r.min() >= 0 and r.max() < 1
  # The check has teeth: a random game is not a potential game.
  random = jaxnpg.random_game(jax.random.key(0), (2, 3, 2))
  assert max_potential_violation(random.rewards) > 1e-2


def test_cooperative_games_share_one_reward(x64):
  game = jaxnpg.cooperative_game(jax.random.key(4), (2, 3, 4))
  r = np.asarray(game.rewards)
  for i in range(1, 3):
    np.testing.assert_array_equal(r[i], r[0])
  assert max_potential_violation(r) < 1e-12   # identical interest is potential
  assert len(np.unique(r[0])) == r[0].size


def test_zero_sum_games_sum_to_zero_on_every_joint_action(x64):
  for seed in range(3):
    game = jaxnpg.zero_sum_game(jax.random.key(seed), (3, 5), low=-2.0, high=3.0)
    r = np.asarray(game.rewards)
    for a in itertools.product(range(3), range(5)):
      assert r[(0,) + a] + r[(1,) + a] == 0.0
    assert -2.0 <= r[0].min() and r[0].max() < 3.0


def test_bimatrix_games_are_general_two_player():
  game = jaxnpg.bimatrix_game(jax.random.key(0), (3, 4), low=1.0, high=2.0)
  r = np.asarray(game.rewards)
  assert r.shape == (2, 3, 4) and 1.0 <= r.min() and r.max() < 2.0
  assert not np.allclose(r[0], r[1]) and not np.allclose(r[0] + r[1], r[0, 0, 0]
                                                         + r[1, 0, 0])


@pytest.mark.parametrize("name", sorted(FAMILY_CASES))
def test_each_family_is_seeded_and_vmappable(name):
  sizes, options = FAMILY_CASES[name]
  make = jax.jit(jax.vmap(lambda k: jaxnpg.make_game(name, k, sizes, **options)))
  keys = jnp.stack([jax.random.key(3), jax.random.key(3), jax.random.key(4)])
  batch = make(keys)
  assert batch.batch_shape == (3,) and len(batch.num_actions) == len(sizes)
  for leaf in jax.tree_util.tree_leaves(batch):
    leaf = np.asarray(leaf)
    np.testing.assert_array_equal(leaf[0], leaf[1])     # same seed, same game
    assert not np.array_equal(leaf[0], leaf[2])         # another seed, another
  if name == "network_zero_sum":                        # batch == one at a time
    one = jaxnpg.make_game(name, jax.random.key(4), sizes, **options)
    np.testing.assert_array_equal(batch.matrices[2], one.matrices)


# Every dense family gives a NormalFormGame, so run/solve/sweep on one of them
# covers the rest; the default run checks a dense and the network family, the
# slow run checks all.
def _run_solve_sweep(name, sweep=True):
  sizes, options = FAMILY_CASES[name]
  game = jaxnpg.make_game(name, jax.random.key(3), sizes, **options)
  res = jaxnpg.run(game, 1.0, 0.05, 30, record_every=10)
  assert np.all(np.isfinite(res.qre_gap)) and res.qre_gap[-1] < res.qre_gap[0]
  sol = jaxnpg.solve(game, 1.0, 0.05, tol=1e-3, max_iters=3000)
  assert bool(sol.converged)
  if not sweep:
    return
  swept = jaxnpg.sweep(name, num_actions=sizes, num_games=2, taus=[1.0],
                       etas=[0.05], num_iters=40, family_options=options,
                       quiet=True)
  assert swept.shape == (2, 1, 1) and np.all(np.isfinite(swept.qre_gap))


def test_dense_family_runs_and_solves():
  _run_solve_sweep("potential", sweep=False)


def test_network_family_runs_solves_and_sweeps():
  _run_solve_sweep("network_zero_sum")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILY_CASES))
def test_every_family_runs_solves_and_sweeps(name):
  _run_solve_sweep(name)


@pytest.mark.parametrize("maker, sizes, match", [
    (jaxnpg.cooperative_game, (2, -1), "integers >= 1"),
    (jaxnpg.potential_game, (), "integers >= 1"),
    (jaxnpg.potential_game, (2, 0), "integers >= 1"),
    (jaxnpg.potential_game, 3, "integers >= 1"),
    (jaxnpg.zero_sum_game, (2, 2, 2), "2-player"),
    (jaxnpg.bimatrix_game, (2,), "2-player"),
    (jaxnpg.bimatrix_game, (2, 2.5), "integers >= 1"),
])
def test_generators_validate_sizes(maker, sizes, match):
  with pytest.raises(ValueError, match=match):
    maker(jax.random.key(0), sizes)


def test_generators_validate_range():
  with pytest.raises(ValueError, match="low < high"):
    jaxnpg.cooperative_game(jax.random.key(0), (2, 2), low=1.0, high=1.0)
  with pytest.raises(ValueError, match="Unknown game family"):
    jaxnpg.make_game("nope", jax.random.key(0), (2, 2))
  with pytest.raises(ValueError, match="takes the options"):
    jaxnpg.make_game("potential", jax.random.key(0), (2, 2), graph="ring")


def test_rescale_rewards_maps_onto_unit_interval(rng, x64):
  rewards = rng.uniform(-3, 5, size=(3, 2, 3, 2))
  game = jaxnpg.NormalFormGame(jnp.asarray(rewards))
  scaled, amap = jaxnpg.rescale_rewards(game)
  width = rewards.max() - rewards.min()
  assert float(amap.scale) == pytest.approx(1 / width, rel=1e-14)
  np.testing.assert_allclose(scaled.rewards,
                             (rewards - rewards.min()) / width, atol=1e-14)
  np.testing.assert_allclose(amap.apply(rewards), scaled.rewards, atol=1e-14)
  # tau and eta translate exactly: the same iterates, gaps scaled by `scale`.
  tau, eta = 0.4, 0.05
  init = jaxnpg.random_policy(jax.random.key(0), game)
  orig = jaxnpg.run(game, tau, eta, 50, init=init, record_every=10)
  new = jaxnpg.run(scaled, amap.tau_to_rescaled(tau), amap.eta_to_rescaled(eta),
                   50, init=init, record_every=10)
  for a, b in zip(orig.logp, new.logp):
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
  np.testing.assert_allclose(new.qre_gap, amap.scale * orig.qre_gap, rtol=1e-9)
  np.testing.assert_allclose(new.ne_gap, amap.scale * orig.ne_gap, rtol=1e-9)
  assert float(amap.tau_to_original(amap.tau_to_rescaled(tau))) == pytest.approx(
      tau)
  assert float(amap.eta_to_original(amap.eta_to_rescaled(eta))) == pytest.approx(
      eta)


def test_rescale_rewards_batched_and_constant():
  keys = jax.random.split(jax.random.key(0), 3)
  batch = jax.vmap(lambda k: jaxnpg.zero_sum_game(k, (2, 3)))(keys)
  scaled, amap = jaxnpg.rescale_rewards(batch)
  assert amap.scale.shape == (3,)
  r = np.asarray(scaled.rewards).reshape(3, -1)
  np.testing.assert_allclose(r.min(axis=1), 0, atol=1e-6)
  np.testing.assert_allclose(r.max(axis=1), 1, atol=1e-6)
  via_vmap = jax.vmap(jaxnpg.rescale_rewards)(batch)[0]
  np.testing.assert_allclose(via_vmap.rewards, scaled.rewards, atol=1e-7)
  const, cmap = jaxnpg.rescale_rewards(jaxnpg.NormalFormGame(jnp.full((2, 2, 2),
                                                                      3.0)))
  assert float(cmap.scale) == 1.0 and np.all(np.asarray(const.rewards) == 0)
  with pytest.raises(TypeError, match="supports"):
    jaxnpg.rescale_rewards("not a game")


@pytest.fixture
def restore_x64():
  """The CLI sets jax_enable_x64 from --dtype; put it back afterwards."""
  before = jax.config.jax_enable_x64
  yield
  jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("args", [
    pytest.param(["--family", "potential", "--actions", "2,3"],
                 marks=pytest.mark.slow),
    ["--family", "network_zero_sum", "--actions", "3,3,3,3", "--graph", "ring"],
])
def test_cli_runs_a_family(args, tmp_path, restore_x64):
  out = tmp_path / "run"
  assert cli.main(["run", *args, "--iters", "40", "--taus", "0.5,1",
                   "--dtype", "float32", "--out", str(out), "--quiet"]) == 0
  summary = json.loads((out / "summary.json").read_text())
  assert len(summary["results"]) == 2


def test_cli_rejects_bad_network_arguments(tmp_path, restore_x64, capsys):
  base = ["run", "--family", "network_zero_sum", "--iters", "5", "--out",
          str(tmp_path), "--quiet"]
  assert cli.main(base + ["--actions", "3,4,3", "--graph", "ring"]) == 2
  assert "same number of actions" in capsys.readouterr().err
  assert cli.main(base + ["--actions", "3,3,3", "--graph", "0-1,1-7"]) == 2
  assert "unknown agent" in capsys.readouterr().err
