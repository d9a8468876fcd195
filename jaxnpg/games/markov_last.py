"""Markov games on the batch-last path: state and action axes first, batch last.

:class:`MarkovBatchLast` is the loop form (:class:`jaxnpg.core.protocol.LoopForm`)
of a small :class:`jaxnpg.MarkovGame` (:meth:`jaxnpg.MarkovGame.loop_form`), as
:class:`jaxnpg.games.dense.DenseBatchLast` is a small dense game's. Its arrays
carry the game's axes first and any batch axes LAST:

* rewards ``(n, S, A_1, ..., A_n, *batch)``, transitions
  ``(S, A_1, ..., A_n, S', *batch)``, discount ``(*batch)``, start ``(S, *batch)``;
* policies and payoffs ``(S, A_i, *batch)`` (``action_axis = 1``).

Every sum over an action is a sum of slices and every ``S x S`` solve an unrolled
Gauss-Jordan elimination whose rows are slices (the elimination of
:func:`jaxnpg.games.markov_eval.solve`, written for this layout: the same
divisions and multiply-subtracts in the same order), so all the arithmetic is
elementwise over the batch and vectorizes across it; ``jax.vmap(jaxnpg.run)``
then runs a batch of Markov games as one loop, cut into blocks and split over
the CPU cores like a dense batch (:mod:`jaxnpg.loop.batch_last`).

The formulas are those of :mod:`jaxnpg.games.markov_eval` (exact evaluation,
induced MDPs, soft policy iteration for the best responses, the gaps by the soft
performance-difference lemma), for both conventions. They differ from the
one-game path only in the order of summation of the contractions over joint
actions (slices here, matrix products there): in float64 the log-policies of
the two paths agree to about ``1e-14`` after hundreds of steps (tested).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from jaxnpg.core import gaps as _gaps
from jaxnpg.core.validation import simplex_atol

# The best-response rules of jaxnpg.games.markov (imported there from here, so
# that the two paths share them).
BEST_RESPONSE_MAX_ITERS = 50
BEST_RESPONSE_TOL_EPS = 16.0
DISCOUNT_MARGIN_EPS = 1024

#: Largest ``n * prod(A_i)`` written out term by term (the program grows with it).
MAX_TERMS = 4096
#: Most states of the batch-last form (its sums over next states are unrolled).
MAX_STATES = 16


def _ones(x, at, count):
  """``x`` with ``count`` size-1 axes inserted before axis ``at``."""
  shape = jnp.shape(x)
  return jnp.reshape(x, shape[:at] + (1,) * count + shape[at:])


def _sum(terms):
  out = terms[0]
  for t in terms[1:]:
    out = out + t
  return out


def marginals_last(tensor, probs, keep=None, extra=0):
  """Sum a joint-action tensor against every agent's policy but ``keep``'s.

  ``out[s, a_keep, *rest] = sum_{a_-keep} prod_{j != keep} probs[j][s, a_j]
  tensor[s, a, *rest]``, each sum over an action written as a sum of slices
  (agents from the last inwards), elementwise over the trailing axes.

  Args:
    tensor: ``(S, A_1, ..., A_n, *extra_axes, *batch)``.
    probs: ``n`` arrays ``(S, A_j, *batch)`` (broadcasting with the tensor's
      batch axes).
    keep: the agent whose action axis stays (``None``: all are summed out).
    extra: number of axes between the actions and the batch (``1`` for the
      next state of a transition tensor).

  Returns:
    ``(S, A_keep, *extra_axes, *batch)`` (without ``A_keep`` if ``keep`` is None).
  """
  t = tensor
  for j in range(len(probs) - 1, -1, -1):
    if j == keep:
      continue
    # Agents 0..j are present (and `keep` after them if keep > j).
    after = j + (1 if keep is not None and keep > j else 0) + extra
    lead = (slice(None),) * (1 + j)
    t = _sum([t[lead + (a,)] * _ones(probs[j][:, a], 1, after)
              for a in range(probs[j].shape[1])])
  return t


def shared_marginals_last(tensor, probs, extra=0):
  """Every agent's :func:`marginals_last` of one tensor, sharing partial sums.

  The suffix chain of :func:`jaxnpg.games.dense.dense_marginals` in the
  batch-last layout: the tensor is summed against the agents' policies from
  the last agent inwards once, and each agent finishes from the chain's link
  that still holds its axis, so all ``n`` marginals cost about two passes over
  the tensor instead of ``n``.

  Args:
    tensor, probs, extra: as in :func:`marginals_last`.

  Returns:
    Tuple of ``n`` arrays ``(S, A_i, *extra_axes, *batch)``.
  """
  n = len(probs)

  def sum_out(t, j, pos, after):   # agent j's axis is axis `pos` of t
    lead = (slice(None),) * pos
    return _sum([t[lead + (a,)] * _ones(probs[j][:, a], 1, after)
                 for a in range(probs[j].shape[1])])

  out = [None] * n
  suffix = tensor                  # agents 0..k-1 present
  for k in range(n, 0, -1):
    t = suffix                     # agent k-1 keeps its axis; sum out 0..k-2
    for j in range(k - 1):
      t = sum_out(t, j, 1, k - 1 - j + extra)
    out[k - 1] = t
    if k > 1:
      suffix = sum_out(suffix, k - 1, k, k - 1 + extra)
  return tuple(out)


def solve_last(p, rhs, discount, *, transpose=False):
  """``(I - gamma P)^{-1} rhs`` (or with the transpose), batch axes last.

  The unrolled Gauss-Jordan elimination of :func:`jaxnpg.games.markov_eval.solve`
  (no pivoting: ``I - gamma P`` is strictly diagonally dominant), with the
  matrix and right-hand sides in the batch-last layout.

  Args:
    p: ``(S, S, *batch)`` row-stochastic.
    rhs: ``(S, K, *batch)``.
    discount: ``gamma``, broadcasting with ``batch``.
    transpose: solve with ``(I - gamma P)^T``.

  Returns:
    ``(S, K, *batch)``.

  Example:
    >>> import jax.numpy as jnp
    >>> from jaxnpg.games.markov_last import solve_last
    >>> p = jnp.full((2, 2, 3), 0.5)                    # 3 games, 2 states
    >>> v = solve_last(p, jnp.ones((2, 1, 3)), 0.9)     # (1 - 0.9)^{-1}
    >>> [round(float(x), 3) for x in v[:, 0, 0]]
    [10.0, 10.0]
  """
  num_states = p.shape[0]
  eye = _ones(jnp.eye(num_states, dtype=p.dtype), 2, p.ndim - 2)
  a = eye - discount * p
  if transpose:
    a = jnp.swapaxes(a, 0, 1)
  b = rhs.astype(a.dtype)
  rows = jnp.arange(num_states)
  for k in range(num_states):
    row_a, row_b = a[k:k + 1], b[k:k + 1]
    pivot = row_a[:, k:k + 1]
    row_a, row_b = row_a / pivot, row_b / pivot
    col = a[:, k:k + 1]
    is_k = _ones(rows == k, 1, a.ndim - 1)
    a = jnp.where(is_k, row_a, a - col * row_a)
    is_k = _ones(rows == k, 1, b.ndim - 1)
    b = jnp.where(is_k, row_b, b - col * row_b)
  return b


def _expect(logp, values):
  """``<pi, values>`` over the action axis 1, with ``0 * (-inf) = 0``."""
  return jnp.sum(jnp.where(jnp.isneginf(logp), 0.0, jnp.exp(logp) * values),
                 axis=1)


def _poison(gap, logp, q):
  bad = (jnp.any(jnp.isnan(logp) | jnp.isposinf(logp), axis=1)
         | jnp.any(~jnp.isfinite(q), axis=1))
  return jnp.where(bad, jnp.nan, gap)


def _ne_gap(logp, q):
  gap = jnp.max(q, axis=1) - _expect(logp, q)
  return _poison(jnp.maximum(gap, 0.0), logp, q)


def _static_zero(tau) -> bool:
  """``tau`` is a Python 0 (the NE-gap's): the soft terms are left out."""
  return isinstance(tau, (int, float)) and tau == 0


def kl_last(logp, q, tau, log_star=None):
  """``tau KL(pi(.|s) || softmax(q(s, .) / tau))`` per state, ``(S, *batch)``.

  :func:`jaxnpg.core.gaps.kl_to_soft_best_response` over the action axis 1 of
  ``(S, A, *batch)`` arrays (at ``tau = 0`` the greedy gain). ``log_star``:
  ``log softmax(q / tau)`` if already known (where ``tau > 0``).
  """
  if _static_zero(tau):
    return _ne_gap(logp, q)
  if log_star is None:
    log_star = jax.nn.log_softmax(q / _gaps.safe_tau(tau), axis=1)
  kl = _expect(logp, logp - log_star)
  soft = _poison(jnp.maximum(tau * kl, 0.0), logp, q)
  return jnp.where(tau > 0, soft, _ne_gap(logp, q))


def _log_soft_best_response(q, tau):
  """:func:`jaxnpg.core.gaps.log_soft_best_response` over the action axis 1."""
  is_max = q >= jnp.max(q, axis=1, keepdims=True)
  hard = jnp.where(is_max, 0.0, -jnp.inf).astype(q.dtype)
  hard = hard - jnp.log(jnp.sum(is_max, axis=1, keepdims=True).astype(q.dtype))
  if _static_zero(tau):
    return hard
  soft = jax.nn.log_softmax(q / _gaps.safe_tau(tau), axis=1)
  return jnp.where(tau > 0, soft, hard)


def _entropy(logp):
  return -_expect(logp, logp)


def _next_sum(p, values, lead):
  """``sum_s' p[*lead_axes, s', *batch] values[s']``, unrolled over ``s'``.

  ``p``'s next-state axis is its axis ``lead``; ``values(s')`` gives the array
  multiplying slice ``s'`` (as the one-game path writes it: ``p * v`` summed
  with Python's ``sum``).
  """
  idx = (slice(None),) * lead
  return sum(p[idx + (t,)] * values(t) for t in range(p.shape[lead]))


def joint_values_last(rewards, transitions, discount, logp, tau):
  """Values and marginal Q-values of a joint policy, batch-last.

  :func:`jaxnpg.games.markov_eval.joint_values` for the layout of
  :class:`MarkovBatchLast`, through the induced MDPs (:func:`induced_last`,
  whose transitions come from one shared chain of partial sums): with
  ``rbar_i``, ``pbar_i`` agent ``i``'s expected rewards and transitions against
  the others, ``P_pi = sum_a pi_0 pbar_0``, ``r_pi_i = <pi_i, rbar_i>``, the values
  by :func:`solve_last` (all agents as right-hand sides), and
  ``Qbar_i = rbar_i + gamma pbar_i V_i``, which is the marginal of
  ``Q_i = r_i + gamma P V_i`` (the one-game path's order of operations; the two
  differ by rounding).

  Args:
    rewards: ``(n, S, A_1, ..., A_n, *batch)``.
    transitions: ``(S, A_1, ..., A_n, S', *batch)``.
    discount: ``(*batch)`` (or broadcasting).
    logp: ``n`` log-policies ``(S, A_i, *batch)``.
    tau: entropy weight (broadcasting with ``batch``), or ``None`` for values
      without entropy (the ``logit`` convention).

  Returns:
    ``(values, qbar)``: ``values`` ``(S, n, *batch)``, ``qbar[i]``
    ``(S, A_i, *batch)``.
  """
  rbar, pbar = induced_last(rewards, transitions,
                            tuple(jnp.exp(lp) for lp in logp))
  p_pi = _own_matrix(logp[0], pbar[0])                           # (S, S', *b)
  r_pi = [_expect(lp, r) for lp, r in zip(logp, rbar)]           # (S, *b)
  if tau is not None:
    r_pi = [r + tau * _entropy(lp) for r, lp in zip(r_pi, logp)]
  values = solve_last(p_pi, jnp.stack(jnp.broadcast_arrays(*r_pi), axis=1),
                      discount)                                  # (S, n, *b)
  return values, tuple(
      r + discount * _next_sum(pb, lambda t, i=i: values[t, i], 2)
      for i, (r, pb) in enumerate(zip(rbar, pbar)))


def induced_last(rewards, transitions, probs):
  """Each agent's induced MDP, batch-last: ``rbar[i] (S, A_i, *batch)`` and
  ``pbar[i] (S, A_i, S', *batch)`` (see :func:`jaxnpg.games.markov_eval.induced_mdps`)."""
  n = len(probs)
  rbar = tuple(marginals_last(rewards[i], probs, keep=i) for i in range(n))
  pbar = shared_marginals_last(transitions, probs, extra=1)
  # Divided by a runtime one, so that XLA computes them once instead of
  # re-fusing the chain into each consumer (payoffs 1.5-2.5x faster).
  one = _runtime_one(rewards)
  return tuple(x / one for x in rbar), tuple(x / one for x in pbar)




def _own_matrix(logp, pbar_i):
  """``sum_a pi(a|s) pbar_i(s, a, s')``: ``(S, S', *batch)``."""
  pi = jnp.exp(logp)
  return _sum([_ones(pi[:, a], 1, 1) * pbar_i[:, a]
               for a in range(logp.shape[1])])


def _own_q(rbar, pbar, logp, discount, tau):
  """Each agent's Q in its own induced MDP under ``logp[i]`` (``_own_q`` of
  :mod:`jaxnpg.games.markov_eval`), ``(S, A_i, *batch)`` each."""
  p_own = jnp.stack(jnp.broadcast_arrays(
      *[_own_matrix(lp, pb) for lp, pb in zip(logp, pbar)]), axis=2)
  rhs = [_expect(lp, r) for lp, r in zip(logp, rbar)]
  if not _static_zero(tau):
    rhs = [x + tau * _entropy(lp) for x, lp in zip(rhs, logp)]
  rhs = jnp.stack(jnp.broadcast_arrays(*rhs), axis=1)           # (S, n, *b)
  values = solve_last(p_own, rhs[:, None], discount)[:, 0]       # (S, n, *b)
  q = tuple(r + discount * _next_sum(pb, lambda t, i=i: values[t, i], 2)
            for i, (r, pb) in enumerate(zip(rbar, pbar)))
  one = _runtime_one(rbar[0])      # computed once, not in each consumer (-15%)
  return tuple(x / one for x in q)


def _runtime_one(x):
  """A runtime scalar 1 (0 if ``x``'s first entry is NaN), see ``DenseBatchLast.one``."""
  x0 = jnp.reshape(x, (-1,))[0]
  return jnp.where(jnp.isnan(x0), 0.0, 1.0).astype(x.dtype)


def _residual(logp, q, tau, stars):
  """``max_{i,s}`` of the Bellman residual ``tau KL(pi || softmax(Q / tau))``
  (``stars``: the improvements ``log softmax(Q / tau)`` of ``q``)."""
  return jnp.max(jnp.stack(jnp.broadcast_arrays(
      *[jnp.max(kl_last(lp, qi, tau, st), axis=0)
        for lp, qi, st in zip(logp, q, stars)])), axis=0)


def policy_iteration_last(rbar, pbar, discount, logp, tau, tol, max_iters):
  """Soft policy iteration in every agent's induced MDP, batch-last.

  :func:`jaxnpg.games.markov_eval.policy_iteration` on a batch: one loop runs
  while any game is still improving, and a game that has stopped (residual
  ``<= tol`` or ``max_iters`` steps) is held fixed, exactly as ``vmap`` of the
  one-game ``while_loop`` runs it. Each Q's improvement is computed once and
  serves both the residual and the next step (written out before the loop,
  the first steps measured 1.6x slower). ``tau`` a
  Python 0 (the NE-gap) leaves out every soft term.

  Returns:
    ``(br, q0, residual)`` as the one-game function, batch axes last.
  """
  def improve(q):
    return tuple(_log_soft_best_response(qi, tau) for qi in q)

  def active(k, resid):
    return (k < max_iters) & (resid > tol)

  def body(state):
    k, q, stars, resid = state
    go = active(k, resid)
    q_new = _own_q(rbar, pbar, stars, discount, tau)
    stars_new = improve(q_new)
    resid_new = _residual(stars, q_new, tau, stars_new)
    keep = lambda a, b: tuple(jnp.where(go, x, y) for x, y in zip(a, b))
    return (jnp.where(go, k + 1, k), keep(q_new, q), keep(stars_new, stars),
            jnp.where(go, resid_new, resid))

  q0 = _own_q(rbar, pbar, logp, discount, tau)
  stars = improve(q0)
  resid = _residual(logp, q0, tau, stars)
  # The counter is derived from the residual, so that it varies like it
  # under shard_map (jaxnpg.sweep).
  state = (jnp.zeros_like(resid, jnp.int32), q0, stars, resid)
  _, _, stars, resid = lax.while_loop(
      lambda s: jnp.any(active(s[0], s[3])), body, state)
  return stars, q0, resid


def value_gap_last(pbar, discount, initial, logp, q_pi, br, tau):
  """``V_i(br_i, pi_-i)(rho) - V_i(pi)(rho)`` per agent, ``(n, *batch)``
  (:func:`jaxnpg.games.markov_eval.value_gap`, batch-last)."""
  stars = [None if _static_zero(tau) else
           jax.nn.log_softmax(q / _gaps.safe_tau(tau), axis=1) for q in q_pi]
  g = jnp.stack(jnp.broadcast_arrays(
      *[kl_last(lp, q, tau, st) - kl_last(b, q, tau, st)
        for lp, q, b, st in zip(logp, q_pi, br, stars)]), axis=1)  # (S, n, *b)
  p_br = jnp.stack(jnp.broadcast_arrays(
      *[_own_matrix(b, pb) for b, pb in zip(br, pbar)]), axis=2)  # (S, S', n, *b)
  rho = jnp.broadcast_to(_ones(initial, 1, 1), g.shape)[:, None]
  occupancy = solve_last(p_br, rho, discount, transpose=True)[:, 0]
  return jnp.maximum(jnp.sum(occupancy * g, axis=0), 0.0)


@jax.tree_util.register_pytree_node_class
class MarkovBatchLast:
  """A small Markov game, or a batch of them with the batch axes LAST (loop form).

  The NPG loop's form of a :class:`jaxnpg.MarkovGame` (see
  :meth:`jaxnpg.MarkovGame.loop_form` and :mod:`jaxnpg.loop.batch_last`), for
  either convention. Arrays (any batch axes trailing and broadcasting, one game
  the empty batch):

  * ``rewards`` ``(n, S, A_1, ..., A_n, *batch)``;
  * ``transitions`` ``(S, A_1, ..., A_n, S', *batch)``;
  * ``discount`` ``(*batch)``; ``initial`` ``(S, *batch)``;
  * policies and payoffs ``(S, A_i, *batch)`` (``action_axis = 1``).

  ``loop_payoffs`` are the convention's marginal Q-values after exact
  evaluation (:func:`joint_values_last`); ``loop_gaps`` the Markov QRE-gap
  (``soft``) or KL residual (``logit``) and the Markov NE-gap, by soft policy
  iteration in the induced MDPs (:func:`policy_iteration_last`) and the soft
  performance-difference lemma (:func:`value_gap_last`), as
  :class:`jaxnpg.MarkovGame` defines them.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_markov_game(jax.random.key(0), 2, (2, 3), 0.9)
    >>> form = game.loop_form()
    >>> type(form).__name__, form.batch_shape, form.policy_shapes
    ('MarkovBatchLast', (), ((2, 2), (2, 3)))
    >>> logp = jaxnpg.uniform_policy(game)
    >>> q = form.payoffs(logp, 0.1)                       # (S, A_i) each
    >>> bool(jax.numpy.allclose(q[1], game.payoffs(logp, 0.1)[1], atol=1e-5))
    True
  """

  action_axis = 1
  batch_last = True

  @property
  def cell_weight(self) -> int:
    """Dense cells one game counts as in the loop's blocks: one per 1024
    entries of its rewards and transitions (4 on the paper's sizes: blocks of
    64 games, measured fastest; 256 ran 3x slower, out of cache)."""
    n, S = self.num_agents, self.num_states
    entries = (n + S) * S * math.prod(self.num_actions)
    return max(1, entries // 1024)

  def __init__(self, rewards, transitions, discount, initial, num_agents: int,
               convention: str = "soft"):
    self.rewards = rewards
    self.transitions = transitions
    self.discount = discount
    self.initial = initial
    self.num_agents = num_agents
    self.convention = convention

  def tree_flatten(self):
    return ((self.rewards, self.transitions, self.discount, self.initial),
            (self.num_agents, self.convention))

  @classmethod
  def tree_unflatten(cls, aux, leaves):
    return cls(*leaves, *aux)

  def loop_ready(self):
    """The form itself (nothing is computed before the loop)."""
    return self

  @property
  def num_states(self) -> int:
    return int(self.rewards.shape[1])

  @property
  def num_actions(self):
    return tuple(self.rewards.shape[2:2 + self.num_agents])

  @property
  def policy_shapes(self):
    return tuple((self.num_states, a) for a in self.num_actions)

  @property
  def batch_shape(self):
    n = self.num_agents
    return jnp.broadcast_shapes(
        tuple(self.rewards.shape[2 + n:]),
        tuple(self.transitions.shape[2 + n:]), tuple(jnp.shape(self.discount)),
        tuple(self.initial.shape[1:]))

  @property
  def dtype(self):
    return self.rewards.dtype

  @property
  def step_scale(self):
    """``1 / (1 - gamma)``, ``(*batch)``."""
    return 1.0 / (1.0 - self.discount)

  def payoffs(self, logp, tau=0.0):
    """Marginal Q-values of the convention, ``(S, A_i, *batch)`` each."""
    return self.loop_payoffs(logp, None, tau)

  def loop_payoffs(self, logp, probs, tau):
    """:meth:`payoffs` (the probabilities are recomputed from ``logp``)."""
    del probs
    tau = jnp.asarray(tau, self.dtype)
    return joint_values_last(self.rewards, self.transitions, self.discount,
                             tuple(logp),
                             tau if self.convention == "soft" else None)[1]

  def _br_tol(self, tau):
    """Policy iteration's tolerance (``_br_tol`` of :mod:`jaxnpg.games.markov`)."""
    eps = jnp.finfo(self.dtype).eps
    width = jnp.log(jnp.asarray(max(self.num_actions), self.dtype))
    size = jnp.max(jnp.abs(self.rewards),
                   axis=tuple(range(2 + self.num_agents)))
    return BEST_RESPONSE_TOL_EPS * eps * (size + tau * width) / (1 - self.discount)

  def _value_gaps(self, rbar, pbar, logp, tau):
    br, q_pi, _ = policy_iteration_last(rbar, pbar, self.discount, logp, tau,
                                        self._br_tol(tau),
                                        BEST_RESPONSE_MAX_ITERS)
    return value_gap_last(pbar, self.discount, self.initial, logp, q_pi, br,
                          tau)

  def loop_gaps(self, logp, probs, payoffs, tau):
    """``(QRE-gap or KL residual, NE-gap)`` of every agent, ``(n, *batch)``.

    ``payoffs`` (the convention's ``Qbar``) are used by ``logit``'s KL residual;
    the value gaps evaluate the policy again in the induced MDPs.
    """
    del probs
    logp = tuple(logp)
    tau = jnp.asarray(tau, self.dtype)
    rbar, pbar = induced_last(self.rewards, self.transitions,
                              tuple(jnp.exp(lp) for lp in logp))
    ne = self._value_gaps(rbar, pbar, logp, 0.0)
    if self.convention == "logit":
      qre = jnp.stack(jnp.broadcast_arrays(
          *[jnp.max(kl_last(lp, q, tau), axis=0)
            for lp, q in zip(logp, payoffs)]))
    else:
      qre = self._value_gaps(rbar, pbar, logp, tau)
    return jnp.broadcast_arrays(qre, ne)

  def loop_payoff_size(self, payoffs):
    """Every agent's ``Q_i = max |payoff_i|`` (finite entries), ``(n, *batch)``."""
    return jnp.stack(jnp.broadcast_arrays(*[
        jnp.max(jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0), axis=(0, 1))
        for x in payoffs]))

  def loop_valid(self):
    """:meth:`jaxnpg.MarkovGame.valid` per game, ``batch``-shaped."""
    n = self.num_agents
    tol = simplex_atol(self.dtype)
    least = DISCOUNT_MARGIN_EPS * float(jnp.finfo(self.dtype).eps)

    def stochastic(p, axis):     # axis: the distribution's; all before reduced
      lead = tuple(range(axis))
      return (jnp.all(jnp.isfinite(p) & (p >= 0), axis=lead + (axis,))
              & jnp.all(jnp.abs(jnp.sum(p, axis=axis) - 1) <= tol, axis=lead))
    ok = (jnp.all(jnp.isfinite(self.rewards), axis=tuple(range(2 + n)))
          & stochastic(self.transitions, 1 + n) & stochastic(self.initial, 0)
          & (self.discount >= 0) & (1 - self.discount >= least))
    return jnp.broadcast_to(ok, self.batch_shape)


def fits_batch_last(num_states: int, num_actions) -> bool:
  """Whether a Markov game of these sizes gets the batch-last loop form."""
  return (num_states <= MAX_STATES
          and len(num_actions) * math.prod(num_actions) <= MAX_TERMS)
