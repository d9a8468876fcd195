"""The NPG iteration for a batch of small dense games, with the batch axes last.

``jaxnpg.sweep`` runs thousands of (game, tau, eta) cells of one small dense game
family. Vmapping the one-game step puts the batch first and the tiny action axes
last, so XLA vectorizes over 3 to 5 actions and spends its time on index
arithmetic. Here every array keeps the action axes first and the batch axes last,
``(A_i, P, G)`` for policies (``P`` pairs of ``(tau, eta)``, ``G`` games) and
``(n, A_1, ..., A_n, 1, G)`` for rewards (shared by all pairs of a game), and every
contraction over a small action axis is written out as a sum of slices. All
arithmetic is then elementwise over the batch and vectorizes across games.

Three choices matter for speed (measured on a 2-core AMD EPYC, see
``benchmarks/RESULTS.md``):

* exponentials are computed once per step: the probabilities are carried with the
  log-probabilities (``p' = e / sum e`` from the same ``e`` as ``log p'``);
* the marginals and the update's logits are divided by a runtime ``one``. XLA:CPU
  fuses cheap producers into every consumer, so without this the whole marginal
  contraction would be recomputed for each action of the update and for the max of
  the log-sum-exp (four times slower). A division is "expensive" to XLA, so the
  marginals are computed once; ``x / 1`` is exact, so results do not change;
* the gaps are computed only at the recorded iterations.

The functions mirror :func:`jaxnpg._solve._run` (same recorded iterations, same
gap definitions, same handling of zero probabilities) and agree with it to
rounding; ``tests/test_sweep.py`` checks that.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax

from jaxnpg import _tolerance
from jaxnpg._games import NormalFormGame
from jaxnpg._npg import carry_coefficient

# Largest ``n * prod(A_i)`` the kernel is generated for: the marginals are written
# out term by term, so the program grows with the tensor. Larger games take the
# generic path (vmap of the one-game solver), which contracts with dot products.
MAX_TERMS = 4096


def supports(game) -> bool:
  """True when ``game`` is a dense game small enough for this kernel."""
  if type(game) is not NormalFormGame:  # subclasses may override payoffs
    return False
  return game.num_agents * math.prod(game.num_actions) <= MAX_TERMS


def _sum(terms):
  out = terms[0]
  for t in terms[1:]:
    out = out + t
  return out


def _max(terms):
  out = terms[0]
  for t in terms[1:]:
    out = jnp.maximum(out, t)
  return out


def marginals(rewards, probs):
  """Marginal rewards of every agent, batch axes last.

  Args:
    rewards: ``(n, A_1, ..., A_n, *batch_r)``, ``batch_r`` broadcastable
      against ``batch``.
    probs: tuple of ``n`` arrays, ``probs[i].shape == (A_i, *batch)``.

  Returns:
    Tuple of ``n`` arrays, ``rbar[i].shape == (A_i, *batch)``, equal to
    :func:`jaxnpg._games.dense_marginals` applied to each batch element.
  """
  n = len(probs)
  out = []
  for i in range(n):
    t = rewards[i]                       # (A_1, ..., A_n, *batch_r)
    # Sum out the agents j != i from the last inwards: agents 0..j are still
    # present, so agent j's action axis is axis j.
    for j in range(n - 1, -1, -1):
      if j == i:
        continue
      lead = (slice(None),) * j
      t = _sum([t[lead + (a,)] * probs[j][a] for a in range(probs[j].shape[0])])
    out.append(t)
  return tuple(out)


def _update(logp, probs, payoffs, coef, eta, one):
  """One NPG update from known payoffs: returns ``(logp', probs')``."""
  new_logp, new_probs = [], []
  for lp, q in zip(logp, payoffs):
    zero = jnp.isneginf(lp)
    carried = jnp.where(zero, jnp.where(coef > 0, -jnp.inf, 0.0),
                        coef * jnp.where(zero, 0.0, lp))
    logits = (carried + eta * q) / one
    m = _max([logits[a] for a in range(logits.shape[0])])
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    e = jnp.exp(logits - m)
    s = _sum([e[a] for a in range(e.shape[0])])
    new_logp.append(logits - (jnp.log(s) + m))
    new_probs.append(e * (1.0 / s))
  return tuple(new_logp), tuple(new_probs)


def _gaps(logp, probs, payoffs, tau):
  """``(QRE-gap, NE-gap)`` of the batch, each shaped like the batch."""
  safe = jnp.where(tau > 0, tau, 1.0)
  qre, ne = [], []
  for lp, p, q in zip(logp, probs, payoffs):
    A = q.shape[0]
    live = ~jnp.isneginf(lp)   # NaN policies keep their terms: NaN, never 0
    mean_q = _sum([jnp.where(live[a], p[a] * q[a], 0.0) for a in range(A)])
    ne_i = jnp.maximum(_max([q[a] for a in range(A)]) - mean_q, 0.0)
    x = q / safe
    mx = _max([x[a] for a in range(A)])
    lse = mx + jnp.log(_sum([jnp.exp(x[a] - mx) for a in range(A)]))
    kl = _sum([jnp.where(live[a], p[a] * (lp[a] - (x[a] - lse)), 0.0)
               for a in range(A)])
    qre.append(jnp.where(tau > 0, jnp.maximum(tau * kl, 0.0), ne_i))
    ne.append(ne_i)
  return _max(qre), _max(ne)


def run(rewards, logp, tau, eta, one, *, num_iters: int, record_every: int):
  """``num_iters`` NPG steps of a batch, recording the gaps like ``jaxnpg.run``.

  Args:
    rewards: ``(n, A_1, ..., A_n, 1, G)`` rewards, games last.
    logp: tuple of ``(A_i, P, G)`` initial log-policies.
    tau, eta: ``(P, 1)`` entropy weights and (scaled) step sizes.
    one: a runtime scalar ``1`` of the rewards' dtype (see the module docstring).
    num_iters, record_every: as in :func:`jaxnpg.run` (static).

  Returns:
    ``(qre, ne, q_size)``: the gaps, each ``(T, P, G)``, of the iterates
    ``0, r, 2r, ..., num_iters`` (``T = num_iters // r + 1`` plus one when ``r``
    does not divide ``num_iters``, exactly the records of ``jaxnpg.run``), and the
    final iterate's ``max |rbar|`` (``(P, G)``), from which the tolerance and
    rounding floor follow (:mod:`jaxnpg._tolerance`).
  """
  coef = carry_coefficient(eta, tau)
  probs = tuple(jnp.exp(lp) for lp in logp)

  def plain(state, _):
    lp, p = state
    q = tuple(x / one for x in marginals(rewards, p))
    return _update(lp, p, q, coef, eta, one), None

  def block(length):
    def body(state, _):
      lp, p = state
      q = tuple(x / one for x in marginals(rewards, p))
      record = _gaps(lp, p, q, tau)
      state = _update(lp, p, q, coef, eta, one)
      if length > 1:
        state, _ = lax.scan(plain, state, None, length=length - 1)
      return state, record
    return body

  state = (tuple(logp), probs)
  num_blocks = num_iters // record_every
  state, (qre, ne) = lax.scan(block(record_every), state, None,
                              length=num_blocks)
  remainder = num_iters - num_blocks * record_every
  if remainder:  # a shorter last block, recorded at its start (as jaxnpg.run)
    state, (q, e) = block(remainder)(state, None)
    qre = jnp.concatenate([qre, q[None]])
    ne = jnp.concatenate([ne, e[None]])
  lp, p = state
  q = tuple(x / one for x in marginals(rewards, p))
  qre_last, ne_last = _gaps(lp, p, q, tau)
  return (jnp.concatenate([qre, qre_last[None]]),
          jnp.concatenate([ne, ne_last[None]]), _max_abs(q))


def _max_abs(arrays):
  """``max |x|`` over the finite entries of every agent's array, batch kept."""
  return _max([jnp.where(jnp.isfinite(x[a]), jnp.abs(x[a]), 0.0)
               for x in arrays for a in range(x.shape[0])])


def to_batch_last(game: NormalFormGame, logp):
  """A batch of games ``(G, n, A...)`` and policies ``(G, P, A_i)``, batch last.

  Returns:
    ``(rewards, logp)`` shaped ``(n, A..., 1, G)`` and ``(A_i, P, G)``.
  """
  r = game.rewards
  rewards = jnp.moveaxis(r, 0, -1)[..., None, :]
  return rewards, tuple(jnp.moveaxis(lp, (0, 1), (-1, -2)) for lp in logp)


def run_cells(game, logp, tau, eta, tol=None, *, num_iters: int,
              record_every: int):
  """Records of every (game, pair) cell, in the layout of the generic path.

  Args:
    game: a ``NormalFormGame`` with batch shape ``(G,)``.
    logp: tuple of ``(G, A_i)`` initial policies (one per game, shared by pairs).
    tau, eta: ``(P,)`` arrays (``eta`` unscaled; dense games have scale 1).
    tol: the QRE-gap tolerance, or None for the default rule.

  Returns:
    ``(qre, ne, tol, floor)``: gaps ``(G, P, T)``, and each cell's tolerance and
    rounding floor ``(G, P)``, as :func:`jaxnpg.run` computes them.
  """
  dtype = game.dtype
  P = tau.shape[0]
  logp = tuple(jnp.broadcast_to(lp[:, None, :], (lp.shape[0], P, lp.shape[1]))
               for lp in logp)
  rewards, logp = to_batch_last(game, logp)
  # The runtime one: computed from an input so XLA cannot fold it away.
  one = jnp.where(jnp.isnan(tau[0]), 0.0, 1.0).astype(dtype)
  tau_b, eta_b = tau.astype(dtype)[:, None], eta.astype(dtype)[:, None]
  qre, ne, q_size = run(rewards, tuple(lp.astype(dtype) for lp in logp),
                                tau_b, eta_b, one, num_iters=num_iters,
                                record_every=record_every)
  tol, floor = _tolerance.gap_tol_and_floor(
      q_size, tau_b, eta_b, _tolerance.log_max_actions(game.policy_shapes), dtype,
      tol)
  return (jnp.transpose(qre, (2, 1, 0)), jnp.transpose(ne, (2, 1, 0)), tol.T,
          floor.T)
