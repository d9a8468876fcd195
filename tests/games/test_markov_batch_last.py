"""Markov games on the batch-last path (jaxnpg.games.markov_last).

``jax.vmap(jaxnpg.run)`` of a small Markov game runs its batch-last loop form
(``MarkovBatchLast``). It must give the plain path's results (the one-game loop
under plain ``vmap``, ``batch_last=False``) up to the rounding of a different
summation order, the NumPy reference's payoffs, steps and gaps, and the same
results bit for bit however the batch is cut into blocks and threads.
"""

import jax
import jax.numpy as jnp
import markov_reference as ref
import numpy as np
import pytest

import jaxnpg
from jaxnpg.games import markov_last
from jaxnpg.loop import batch_last as _batch_last
from jaxnpg.loop import run as _run

ITERS, EVERY = 30, 7


def _batch(convention, G=6, num_states=2, sizes=(2, 3), gamma=0.8, seed=0):
  keys = jax.random.split(jax.random.key(seed), G)
  games = jax.vmap(lambda k: jaxnpg.random_markov_game(
      k, num_states, sizes, gamma, convention=convention))(keys)
  logp = jax.vmap(jaxnpg.random_policy)(
      jax.random.split(jax.random.key(seed + 1), G), games)
  return games, logp


def _runs(games, taus, etas, logp, batch_last, iters=ITERS, every=EVERY):
  return jax.jit(jax.vmap(lambda g, t, e, lp: _run.run_loop(
      g, t, e, lp, num_iters=iters, record_every=every,
      batch_last=batch_last)))(games, taus, etas, logp)


@pytest.mark.parametrize("convention", [
    "soft", pytest.param("logit", marks=pytest.mark.slow)])
def test_batch_last_equals_the_plain_path(convention, x64):
  """Every field of the run, float64, tau = 0, eta * tau = 1 and large tau
  included; the two paths sum the joint-action contractions in another order
  (measured: 3e-14 in log-policies and gaps after 40 steps). The logit case is
  slow (two more compiles of the whole loop, about 30 s); the reference test
  below covers its formulas in the default suite."""
  games, logp = _batch(convention)
  taus = jnp.array([0.0, 0.05, 0.3, 1.0, 2.0, 1e6])
  etas = jnp.array([0.05, 0.1, 0.05, 0.2, 0.1, 1e-7])
  etas = etas.at[4].set((1 - 0.8) / 2.0)            # eta_bar * tau = 1
  assert type(jax.tree_util.tree_map(lambda x: x[0], games).loop_form()) is (
      markov_last.MarkovBatchLast)
  fast = _runs(games, taus, etas, logp, True)
  plain = _runs(games, taus, etas, logp, False)
  assert fast.qre_gap.dtype == jnp.float64
  np.testing.assert_array_equal(fast.status, plain.status)
  np.testing.assert_array_equal(fast.iterations_to_tol, plain.iterations_to_tol)
  # Values scale like (1 + tau log A) / (1 - gamma): rounding, relative to it.
  scale = (1 + np.asarray(taus) * np.log(3)) / (1 - 0.8)
  for name in ("qre_gap", "ne_gap", "qre_gap_relative", "agent_qre_gap", "tol",
               "floor"):
    x, y = np.asarray(getattr(fast, name)), np.asarray(getattr(plain, name))
    assert np.all(np.isfinite(x)), name
    atol = 1e-14 * scale.reshape((-1,) + (1,) * (x.ndim - 1))
    bad = np.abs(x - y) > atol + 1e-11 * np.abs(y)
    assert not np.any(bad), (name, x[bad], y[bad])
  for x, y in zip(fast.logp, plain.logp):
    assert np.all(np.isfinite(np.asarray(x)))
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("convention", ["soft", "logit"])
@pytest.mark.parametrize("tau", [0.0, 0.4])
def test_batch_last_form_against_the_numpy_reference(convention, tau, x64):
  """Payoffs, step and both gaps of the form on a batch of two games with the
  batch axis last, against tests/markov_reference.py (Bellman iteration, value
  iteration, explicit loops)."""
  rng = np.random.default_rng(3)
  S, sizes, gamma = 3, (2, 3), 0.7
  cases = [ref.random_markov(rng, S, sizes) for _ in range(2)]
  probs = [ref.random_markov_probs(rng, S, sizes) for _ in range(2)]
  rho = np.full(S, 1 / S)
  last = lambda xs: jnp.asarray(np.stack(xs, axis=-1))
  form = markov_last.MarkovBatchLast(
      last([c[0] for c in cases]), last([c[1] for c in cases]),
      jnp.full((2,), gamma), last([rho, rho]), len(sizes), convention)
  logp = tuple(last([np.log(p[i]) for p in probs]) for i in range(len(sizes)))
  eta = 0.05
  payoffs = form.loop_payoffs(logp, None, tau)
  qre, ne = form.loop_gaps(logp, None, payoffs, tau)
  step = jaxnpg.loop.algorithms.NPG().step(
      form, (logp, None), payoffs, jnp.asarray(tau),
      jnp.asarray(eta) * form.step_scale)[0]
  for b, ((R, P), pr) in enumerate(zip(cases, probs)):
    v = ref.values(R, P, gamma, pr, tau, convention)
    q = ref.q_values(R, P, gamma, pr, v)
    new = ref.npg_step(R, P, gamma, pr, tau, eta, convention)
    for i in range(len(sizes)):
      np.testing.assert_allclose(payoffs[i][..., b], q[i], rtol=1e-10,
                                 atol=1e-11)
      np.testing.assert_allclose(np.exp(step[i][..., b]), new[i], rtol=1e-10,
                                 atol=1e-11)
    np.testing.assert_allclose(ne[:, b], ref.gaps_per_agent(
        R, P, gamma, rho, pr, 0.0), rtol=1e-10, atol=1e-10)
    if convention == "soft":
      want = ref.gaps_per_agent(R, P, gamma, rho, pr, tau)
      np.testing.assert_allclose(qre[:, b], want, rtol=1e-10, atol=1e-10)
    elif tau > 0:
      np.testing.assert_allclose(np.max(qre[:, b]), ref.kl_residual(
          R, P, gamma, pr, tau, convention), rtol=1e-10, atol=1e-11)


@pytest.mark.slow
def test_markov_threads_blocks_and_one_loop_agree_bit_for_bit(monkeypatch):
  """A Markov batch cut into parts on host threads, or into blocks, gives the
  one loop's results bit for bit (float32; 37 games, no multiple of either).
  A traced game off the simplex and a NaN policy are INVALID_INPUT with NaN
  gaps, and spoil no other game of the batch. Slow (32 s, three compiles of
  the Markov loop): the default suite checks the same cutting on dense games
  (tests/loop/test_one_loop.py) and a traced bad Markov lane among good ones
  (tests/loop/test_verdicts_traced.py)."""
  if jax.default_backend() != "cpu":
    pytest.skip("the CPU paths")
  games, logp = _batch("soft", G=37, num_states=2, sizes=(2, 2))
  games.transitions = games.transitions.at[1].multiply(2.0)
  logp = (logp[0].at[2, 0, 0].set(jnp.nan),) + tuple(logp[1:])
  taus = jnp.linspace(0.0, 1.0, 37)

  def batch(threads):
    return jax.jit(jax.vmap(lambda g, t, lp: _run.run_loop(
        g, t, 0.05, lp, num_iters=6, record_every=2, threads=threads)))(
            games, taus, logp)

  monkeypatch.setattr(_batch_last, "cores", lambda: 3)
  monkeypatch.setattr(_batch_last, "BLOCK_CELLS", 8)
  monkeypatch.setattr(_batch_last, "MIN_THREADED_CELLS", 16)
  _batch_last.loop_fn.cache_clear()
  _batch_last._part_program.cache_clear()
  try:
    threaded, blocked = batch(True), batch(False)
    monkeypatch.setattr(_batch_last, "BLOCK_CELLS", 10 ** 9)
    _batch_last.loop_fn.cache_clear()
    one_loop = batch(False)
  finally:
    _batch_last.loop_fn.cache_clear()
    _batch_last._part_program.cache_clear()
  assert threaded.qre_gap.shape == (37, 4)
  status = [jaxnpg.Status(int(x)).name for x in one_loop.status]
  assert status[1] == status[2] == "INVALID_INPUT"
  assert "INVALID_INPUT" not in status[:1] + status[3:]
  assert np.all(np.isnan(one_loop.qre_gap[1:3]))
  assert np.all(np.isfinite(one_loop.qre_gap[3:]))
  for got in (threaded, blocked):
    for x, y in zip(jax.tree_util.tree_leaves(got),
                    jax.tree_util.tree_leaves(one_loop)):
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_large_or_custom_markov_games_keep_the_plain_form():
  """More than MAX_STATES states, or a subclass with its own payoffs, is its
  own loop form; a small game's form is batch-last, in the game's dtype."""
  big = jaxnpg.random_markov_game(jax.random.key(0), markov_last.MAX_STATES + 1,
                                  (2,), 0.5)
  assert big.loop_form() is big

  class Custom(jaxnpg.MarkovGame):
    def payoffs(self, logp, tau=0.0):
      return super().payoffs(logp, tau)

  small = jaxnpg.random_markov_game(jax.random.key(0), 2, (2, 2), 0.5)
  custom = Custom.tree_unflatten(*reversed(small.tree_flatten()))
  assert custom.loop_form() is custom
  form = small.loop_form()
  assert form.batch_last and form.action_axis == 1
  assert form.dtype == jnp.float32 and form.cell_weight == 1
