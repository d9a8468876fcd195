"""The algorithm's whole state is handed back and taken in again (issue 17).

``run(n1)`` then ``run(n2, init_state=first.state)`` must end exactly where
``run(n1 + n2)`` ends, for every algorithm (optimizer moments, optimistic memory,
the sampler's key stream and step counter included), one game and batched; and
the chunked trajectories behind ``jaxnpg run`` must not depend on the number of
chunks. Before ``RunResult.state`` existed, every chunk restarted the state.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnpg
from jaxnpg.loop.trajectories import run_pairs

ALGORITHMS = {
    "npg": "npg",
    "optimistic": "optimistic_npg",
    "pg-sgd": "pg",
    "pg-adam": jaxnpg.PolicyGradient(optimizer=optax.adam(0.5)),
    "sampled": jaxnpg.SampledNPG(num_samples=8),
    "sampled-schedule": jaxnpg.SampledNPG(num_samples=8,
                                          schedule=lambda k: 1 / (1 + k / 5)),
}


def _plain(x):
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    return np.asarray(jax.random.key_data(x))
  return np.asarray(x)


def _equal(a, b):
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(_plain(x), _plain(y))


# The state tests run every algorithm under `pytest -m slow`; the default suite
# keeps one of each kind of state (optax moments, the optimistic memory, the
# sampler's schedule counter), which are what a dropped state loses; NPG's state
# is its policy, and the plain sampler's and SGD's are covered by their kin.
# Each variant compiles several whole loops (6-15 s on 2 cores).
_SLOW_STATE = {"npg", "sampled", "pg-sgd"}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in _SLOW_STATE else n
    for n in sorted(ALGORITHMS)])
def test_two_runs_from_the_state_equal_one_run(name, x64):
  """Slow for npg, sampled and pg-sgd (see _SLOW_STATE)."""
  algorithm = ALGORITHMS[name]
  game = jaxnpg.random_game(jax.random.key(0), (2, 3, 4))
  init = jaxnpg.random_policy(jax.random.key(1), game)
  key = jax.random.key(2)
  whole = jaxnpg.run(game, 0.3, 0.05, 17, init=init, algorithm=algorithm,
                     key=key)
  first = jaxnpg.run(game, 0.3, 0.05, 9, init=init, algorithm=algorithm,
                     key=key)
  second = jaxnpg.run(game, 0.3, 0.05, 8, algorithm=algorithm,
                      init_state=first.state)
  _equal(second.state, whole.state)
  _equal(second.logp, whole.logp)
  np.testing.assert_array_equal(
      np.concatenate([first.qre_gap, second.qre_gap[1:]]), whole.qre_gap)


@pytest.mark.parametrize("name", [
    "npg", "optimistic", pytest.param("sampled", marks=pytest.mark.slow)])
def test_state_goes_through_vmap(name):
  """The batch-last path (npg, optimistic) and plain vmap (sampled) alike.
  Slow for sampled (11 s; plain vmap of a keyed state is also checked by
  test_chunked_trajectories_do_not_depend_on_the_chunk_count[sampled])."""
  algorithm = ALGORITHMS[name]
  game = jaxnpg.random_game(jax.random.key(3), (3, 3))
  taus = jnp.array([0.05, 0.5, 2.0])
  keys = jax.random.split(jax.random.key(4), 3)

  def run(n, tau, key=None, state=None):
    return jaxnpg.run(game, tau, 0.1, n, algorithm=algorithm, key=key,
                      init_state=state)

  whole = jax.vmap(lambda t, k: run(12, t, k))(taus, keys)
  first = jax.vmap(lambda t, k: run(5, t, k))(taus, keys)
  second = jax.vmap(lambda t, s: run(7, t, state=s))(taus, first.state)
  _equal(second.state, whole.state)


def test_solve_goes_on_from_a_run():
  game = jaxnpg.random_game(jax.random.key(5), (3, 4))
  first = jaxnpg.run(game, 1.0, 0.1, 40)
  sol = jaxnpg.solve(game, 1.0, 0.1, init_state=first.state, tol=1e-5)
  direct = jaxnpg.solve(game, 1.0, 0.1, tol=1e-5)
  assert bool(sol.converged) and int(sol.num_iters) + 40 >= int(direct.num_iters)
  _equal(jaxnpg.run(game, 1.0, 0.1, 10, init_state=sol.state).state[0],
         jaxnpg.run(game, 1.0, 0.1, 10, init=sol.logp).state[0])


@pytest.mark.parametrize("name", [
    pytest.param("pg-adam", marks=pytest.mark.slow), "sampled"])
def test_chunked_trajectories_do_not_depend_on_the_chunk_count(name, x64):
  """Slow for pg-adam (12 s; its state through runs is checked by
  test_two_runs_from_the_state_equal_one_run[pg-adam])."""
  algorithm = ALGORITHMS[name]
  game = jaxnpg.random_game(jax.random.key(6), (2, 3))
  init = jaxnpg.uniform_policy(game)
  kw = dict(init=init, algorithm=algorithm, key=jax.random.key(7))
  one = run_pairs(game, [0.1, 1.0], [0.05, 0.05], 24, chunks=1, **kw)
  many = run_pairs(game, [0.1, 1.0], [0.05, 0.05], 24, chunks=6, **kw)
  # Each chunk is its own compiled program (of its length), which XLA:CPU may
  # round differently in the last bit under vmap (2e-16 relative measured);
  # restarting the state each chunk, as before v0.2, changed the result in the
  # first digits.
  for a, b in zip(one.logp, many.logp):
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
  np.testing.assert_allclose(one.qre_gap, many.qre_gap, rtol=1e-12, atol=1e-15)


def test_a_foreign_state_is_refused_naming_it():
  game = jaxnpg.random_game(jax.random.key(8), (2, 3))
  adam = jaxnpg.run(game, 0.1, 0.1, 3, algorithm=ALGORITHMS["pg-adam"])
  with pytest.raises(ValueError, match="not a state of the npg algorithm"):
    jaxnpg.run(game, 0.1, 0.1, 3, init_state=adam.state)
  other = jaxnpg.run(jaxnpg.random_game(jax.random.key(9), (2, 4)), 0.1, 0.1, 3)
  with pytest.raises(ValueError, match="init_state"):
    jaxnpg.run(game, 0.1, 0.1, 3, init_state=other.state)
