"""Markov (stochastic) games: exact policy evaluation, marginal Q-values, Markov gaps.

Conventions (docs/spec.md, "Markov games"):

* rewards ``r_i(s, a)`` stored as ``rewards[i, s, a_1, ..., a_n]``; transitions
  ``P(s' | s, a)`` as ``transitions[s, a_1, ..., a_n, s']``; discount ``gamma`` in
  ``[0, 1)``; initial distribution ``rho`` (default uniform).
* Policies are tuples of ``(S, A_i)`` log-probability arrays, ``logp[i][s, a_i]``.
* Two QRE conventions, fixed per game (``convention=``), because they define the
  objective:

  - ``"soft"`` (default; the RL convention of entropy-regularized NPG): agent ``i``'s
    value carries its own entropy bonus,
    ``V_i(s) = E[sum_t gamma^t (r_i(s_t, a_t) - tau log pi_i(a_{i,t} | s_t))]``;
  - ``"logit"`` (the stationary logit QRE of McKelvey-Palfrey, as sgamesolver
    computes it): ``V`` and ``Q`` carry no entropy term.

  In both, ``Q_i(s, a) = r_i(s, a) + gamma sum_s' P(s'|s, a) V_i(s')`` and
  ``Qbar_i(s, a_i) = E_{a_-i ~ pi_-i(.|s)} Q_i(s, a_i, a_-i)``.
* Exact evaluation solves ``(I - gamma P_pi) V_i = r_i^pi + tau H_i^pi`` (the
  entropy term only in the soft convention) for all agents at once.
* The NPG update (``jaxnpg.npg_step``, ``run``, ``solve``) is
  ``log pi_i'(.|s) = (1 - eta_bar tau) log pi_i(.|s) + eta_bar Qbar_i(s, .) - lse``
  with ``eta_bar = eta / (1 - gamma)`` (``MarkovGame.step_scale``). Its fixed point
  is the QRE at ``tau``, ``pi_i(.|s) ∝ exp(Qbar_i(s, .) / tau)``. The paper's literal
  display (``Abar`` scaled by ``eta/(1-gamma)`` against ``(1 - eta tau)``) has the
  fixed point ``softmax(Qbar / ((1-gamma) tau))``, a colder QRE; we use the form
  above (docs/spec.md). The step-size condition becomes ``0 < eta_bar tau <= 1``, i.e.
  ``eta <= (1 - gamma) / tau`` (not checked, as for static games);
  ``eta_bar tau = 0.25`` (the Fig. 2c rule) converges on the paper's sizes for
  ``tau >= 0.1``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core import gaps as _gaps
from jaxnpg.core import protocol as _protocol
from jaxnpg.core.validation import is_concrete, real_finite_array, simplex_atol
from jaxnpg.games.dense import NormalFormGame, infer_layout
from jaxnpg.games.markov_eval import (
  induced_mdps,
  joint_values,
  policy_iteration,
  value_gap,
)
from jaxnpg.games.markov_last import (
  BEST_RESPONSE_MAX_ITERS,
  BEST_RESPONSE_TOL_EPS,
  DISCOUNT_MARGIN_EPS,
  MarkovBatchLast,
  fits_batch_last,
)

CONVENTIONS = ("soft", "logit")

# BEST_RESPONSE_MAX_ITERS: most policy-iteration steps a best response takes.
# On random games of the paper's sizes and smaller (gamma up to 0.99, tau from 0
# to 10, random starts) it stopped on tolerance after at most 4.
# BEST_RESPONSE_TOL_EPS: policy iteration stops when the Bellman residual is at
# most this many machine epsilons times the value scale
# ``(max|r| + tau log A) / (1 - gamma)``. (Both live in markov_last, which the
# batch-last path shares.)



# ----------------------------------------------------------------------------
# Layout and validation (concrete inputs only, before tracing).


def _layout(r_shape, t_shape, num_agents):
  """``(batch_shape, n, S, num_actions)`` from the two shapes, or ``ValueError``."""
  batch, n, (num_states,), actions = infer_layout(r_shape, num_agents, ("S",))
  if num_states < 1 or any(a < 1 for a in actions):
    raise ValueError(
        f"Need at least one state and one action per agent, got {num_states} "
        f"states and action sizes {actions} (rewards shape {r_shape}).")
  want = batch + (num_states,) + actions + (num_states,)
  if tuple(t_shape) != want:
    raise ValueError(
        f"`transitions` has shape {tuple(t_shape)}, expected (S, A_1, ..., A_n, S) "
        f"= {want} to match `rewards` of shape {r_shape}.")
  return batch, n, num_states, actions


def _check_simplex(arr, name, tol, what, dtype):
  """Nonnegative, finite, last axis sums to 1 within ``tol`` (named in messages)."""
  if arr.dtype.kind not in "biuf":
    raise ValueError(f"`{name}` must be real numbers, got dtype {arr.dtype}.")
  if not np.all(np.isfinite(arr)):
    bad = np.argwhere(~np.isfinite(arr))[0]
    raise ValueError(
        f"`{name}` must be finite; found {arr[tuple(bad)]} at index "
        f"{tuple(int(b) for b in bad)}.")
  if np.any(arr < 0):
    bad = np.argwhere(arr < 0)[0]
    raise ValueError(
        f"`{name}` must be nonnegative probabilities; found {arr[tuple(bad)]} at "
        f"index {tuple(int(b) for b in bad)}.")
  err = np.abs(arr.astype(np.float64).sum(axis=-1) - 1.0)
  if np.any(err > tol):
    bad = np.unravel_index(int(np.argmax(err)), err.shape)
    raise ValueError(
        f"`{name}` must sum to 1 over {what}: at index "
        f"{tuple(int(b) for b in bad)} the sum is off by {float(err[bad]):.3g}, "
        f"more than the tolerance {tol:g} allowed in {np.dtype(dtype).name}.")


# DISCOUNT_MARGIN_EPS (from markov_last): smallest 1 - gamma a dtype resolves,
# in units of its eps: values scale like 1 / (1 - gamma), so below this the
# exact evaluation loses every digit of the gaps (float32 at gamma = 0.999999
# gives gaps of 1e5 on [0, 1] rewards).


def _check_discount(discount, dtype=None):
  arr = np.asarray(discount)
  if arr.dtype.kind not in "biuf":
    raise ValueError(f"`discount` must be a real number, got dtype {arr.dtype}.")
  if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr >= 1):
    raise ValueError(
        f"`discount` (gamma) must be in [0, 1), got {arr if arr.ndim else float(arr)}.")
  if dtype is not None:
    least = DISCOUNT_MARGIN_EPS * float(jnp.finfo(dtype).eps)
    if np.any(1 - arr < least):
      worst = float(np.max(arr))
      raise ValueError(
          f"`discount` {worst} leaves 1 - gamma = {1 - worst:.3g}, which "
          f"{jnp.dtype(dtype).name} cannot resolve (values scale like 1/(1 - gamma); "
          f"it needs 1 - gamma >= {least:.3g}): use float64 "
          "(jax.config.update('jax_enable_x64', True)) or a smaller discount.")


# ----------------------------------------------------------------------------
# The game.


@jax.tree_util.register_pytree_node_class
class MarkovGame(_protocol.Game):
  """An ``n``-agent Markov game with exact (linear-solve) policy evaluation.

  Attributes:
    rewards: ``(*batch, n, S, A_1, ..., A_n)``; ``rewards[i, s, a]`` is agent
      ``i``'s reward at state ``s`` and joint action ``a``.
    transitions: ``(*batch, S, A_1, ..., A_n, S)``; ``transitions[s, a, s']`` is
      ``P(s' | s, a)``.
    discount: ``(*batch,)`` discount ``gamma`` in ``[0, 1)``.
    initial: ``(*batch, S)`` initial distribution ``rho`` (the gaps are measured
      at ``rho``).
    convention: ``"soft"`` or ``"logit"`` (static; see the module docstring).
    num_agents, num_states, num_actions: sizes (static).

  Policies are tuples of ``(S, A_i)`` log-probability arrays. ``payoffs(logp,
  tau)`` gives the marginal Q-values ``Qbar_i(s, .)`` of the game's convention after
  exact evaluation; ``step_scale = 1 / (1 - gamma)`` so that ``npg_step``, ``run``
  and ``solve`` take the update of docs/spec.md with ``eta_bar = eta / (1 - gamma)``.

  Gaps (``jaxnpg.qre_gap``, ``ne_gap``, the ``run``/``solve`` records):

  * ``soft``: the Markov QRE-gap ``max_i [V_i(br_i, pi_-i)(rho) - V_i(pi)(rho)]``
    with ``br_i`` agent ``i``'s soft-optimal policy in the MDP that ``pi_-i``
    induces (found by soft policy iteration, see :meth:`best_response`).
  * ``logit``: the logit convention is not the optimum of any regularized
    objective, so it has no value gap. ``qre_gap`` returns the **KL residual**
    ``tau * max_s KL(pi_i(.|s) || softmax(Qbar_i(s, .) / tau))`` (per agent; the
    same number as ``jaxnpg.kl_residual``), which vanishes exactly at the logit
    QRE. It is returned rather than raising so that ``run``, ``solve`` and
    ``sweep``, written once for every game, work for logit games too; the
    attribute ``qre_gap_label`` (``"KL residual"``) names it for plots and tables.
  * NE-gap (both conventions): the same value gap with ``tau = 0`` and ordinary
    optimality (values without entropy).

  With one state and ``discount = 0`` every result equals the static game's.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_markov_game(jax.random.key(0), 5, (5, 5, 5), 0.9)
    >>> game.num_agents, game.num_states, game.num_actions, game.policy_shapes[0]
    (3, 5, (5, 5, 5), (5, 5))
    >>> logp = jaxnpg.npg_step(game, jaxnpg.uniform_policy(game), 0.5, 0.05)
    >>> logp[0].shape
    (5, 5)
  """

  is_static = False
  has_reward_range = True

  def __init__(self, rewards, transitions, discount, initial=None,
               convention: str = "soft", *, num_agents: int | None = None):
    """Validate and wrap a Markov game.

    Args:
      rewards: ``(n, S, A_1, ..., A_n)`` (or with leading batch axes together with
        ``num_agents=n``); any finite reals.
      transitions: ``(S, A_1, ..., A_n, S)``, nonnegative, each ``[s, a, :]``
        summing to 1 within ``simplex_atol`` of the dtype (1e-4 in float32,
        1e-8 in float64).
      discount: ``gamma`` in ``[0, 1)`` (scalar, or one per batched game).
      initial: ``(S,)`` initial distribution on the simplex (default uniform).
      convention: ``"soft"`` (default) or ``"logit"``.
      num_agents: number of agents; needed only for batched arrays.

    Raises:
      ValueError: shapes disagree, a value is not finite, transitions or the
        initial distribution are off the simplex, ``discount`` outside ``[0, 1)``,
        or an unknown ``convention``.
    """
    if convention not in CONVENTIONS:
      raise ValueError(
          f"`convention` must be one of {CONVENTIONS}, got {convention!r}.")
    r_shape = tuple(np.shape(rewards))
    t_shape = tuple(np.shape(transitions))
    batch, n, num_states, actions = _layout(r_shape, t_shape, num_agents)
    rewards = real_finite_array(rewards, "rewards")
    dtype = rewards.dtype
    tol = simplex_atol(dtype)
    if is_concrete(transitions):
      _check_simplex(np.asarray(transitions), "transitions", tol,
                     "the next state (last axis)", dtype)
    if is_concrete(discount):
      _check_discount(discount, dtype)
      d_shape = np.shape(discount)
      if d_shape not in ((), batch):
        raise ValueError(
            f"`discount` must be a scalar or have the batch shape {batch}, got "
            f"shape {d_shape}.")
    if initial is None:
      initial = jnp.full(batch + (num_states,), 1.0 / num_states, dtype)
    else:
      i_shape = tuple(np.shape(initial))
      if i_shape not in ((num_states,), batch + (num_states,)):
        raise ValueError(
            f"`initial` must have shape ({num_states},) (one probability per "
            f"state), got {i_shape}.")
      if is_concrete(initial):
        _check_simplex(np.asarray(initial), "initial", tol, "the states", dtype)
    self.rewards = rewards
    self.transitions = jnp.asarray(transitions).astype(dtype)
    self.discount = jnp.broadcast_to(jnp.asarray(discount).astype(dtype), batch)
    self.initial = jnp.broadcast_to(jnp.asarray(initial).astype(dtype),
                                    batch + (num_states,))
    self.convention = convention
    self.num_agents = n
    self.num_states = num_states
    self.num_actions = actions
    self._batch_shape = batch

  # Pytree protocol: arrays are leaves; agents and convention are static. No
  # validation on unflatten (leaves may be tracers or placeholders).
  def tree_flatten(self):
    return ((self.rewards, self.transitions, self.discount, self.initial),
            (self.num_agents, self.convention))

  @classmethod
  def tree_unflatten(cls, aux, leaves):
    obj = object.__new__(cls)
    obj.rewards, obj.transitions, obj.discount, obj.initial = leaves
    obj.num_agents, obj.convention = aux
    n = obj.num_agents
    shape = tuple(getattr(obj.rewards, "shape", ()))
    if len(shape) >= n + 2:
      obj.num_actions = shape[len(shape) - n:]
      obj.num_states = shape[len(shape) - n - 1]
      obj._batch_shape = shape[:len(shape) - n - 2]
    else:
      obj.num_actions, obj.num_states, obj._batch_shape = (), 0, ()
    return obj

  def __repr__(self):
    batch = f", batch_shape={self.batch_shape}" if self.batch_shape else ""
    return (f"MarkovGame(num_agents={self.num_agents}, num_states="
            f"{self.num_states}, num_actions={self.num_actions}, "
            f"convention={self.convention!r}{batch}, dtype={self.dtype})")

  @property
  def policy_shapes(self):
    return tuple((self.num_states, a) for a in self.num_actions)

  @property
  def batch_shape(self):
    return self._batch_shape

  @property
  def dtype(self):
    return self.rewards.dtype

  @property
  def step_scale(self):
    """``1 / (1 - gamma)``: the update uses ``eta_bar = eta / (1 - gamma)``."""
    return 1.0 / (1.0 - self.discount)

  @property
  def qre_gap_label(self) -> str:  # type: ignore[override]  # per game
    """What ``qre_gap`` reports for this game: the Markov QRE-gap or the KL residual."""
    return ("Markov QRE-gap (soft)" if self.convention == "soft"
            else "KL residual (logit)")

  @property
  def payoffs_depend_on_tau(self) -> bool:  # type: ignore[override]  # per game
    """``soft``: its Q-values carry each agent's entropy bonus, ``tau`` times."""
    return self.convention == "soft"

  def reward_range(self):
    arr = np.asarray(self.rewards)
    return float(arr.min()), float(arr.max())

  def valid(self):
    """Finite rewards, stochastic nonnegative transitions and start, and a
    discount in ``[0, 1)`` the dtype resolves (traced; a bool scalar)."""
    tol = simplex_atol(self.dtype)
    least = DISCOUNT_MARGIN_EPS * float(jnp.finfo(self.dtype).eps)

    def stochastic(p):
      return (jnp.all(jnp.isfinite(p)) & jnp.all(p >= 0)
              & jnp.all(jnp.abs(jnp.sum(p, axis=-1) - 1) <= tol))
    return (jnp.all(jnp.isfinite(self.rewards)) & stochastic(self.transitions)
            & stochastic(self.initial) & (self.discount >= 0)
            & (1 - self.discount >= least))

  def reward_bounds(self):
    axes = tuple(range(len(self.batch_shape), self.rewards.ndim))
    return jnp.min(self.rewards, axis=axes), jnp.max(self.rewards, axis=axes)

  def affine(self, scale, shift):
    expand = (...,) + (None,) * (self.rewards.ndim - len(self.batch_shape))
    rewards = (jnp.asarray(scale)[expand] * self.rewards
               + jnp.asarray(shift)[expand]).astype(self.dtype)
    leaves, aux = self.tree_flatten()
    return MarkovGame.tree_unflatten(aux, (rewards,) + tuple(leaves[1:]))

  def astype(self, dtype):
    """The game in ``dtype``, with transitions and start renormalized to sum to 1."""
    game = super().astype(dtype)
    game.transitions = game.transitions / jnp.sum(game.transitions, axis=-1,
                                                  keepdims=True)
    game.initial = game.initial / jnp.sum(game.initial, axis=-1, keepdims=True)
    return game

  batch_last_form: bool = True   # its payoffs are the exact evaluation's (Game)

  def loop_form(self):
    """The batch-last form (:class:`jaxnpg.games.markov_last.MarkovBatchLast`)
    when the game is small (``S <= 16`` and ``n * prod(A) <= 4096``), else the
    game itself (batched by plain vmap)."""
    if self.batch_last_form and fits_batch_last(self.num_states,
                                                self.num_actions):
      return MarkovBatchLast(self.rewards, self.transitions, self.discount,
                             self.initial, self.num_agents, self.convention)
    return self

  # --- evaluation -----------------------------------------------------------

  def evaluate(self, logp, tau):
    """Exact values and marginal Q-values of every agent under ``exp(logp)``.

    Args:
      logp: tuple of ``(S, A_i)`` log-policies (one game).
      tau: entropy weight ``>= 0`` (ignored by the ``logit`` convention).

    Returns:
      ``(values, qbar)``: ``values.shape == (n, S)``, ``V_i(s)`` of the game's
      convention; ``qbar[i].shape == (S, A_i)``, ``Qbar_i(s, a_i)``.
    """
    return _evaluate(self, *self._cast(logp, tau))

  def _cast(self, logp, tau):
    return (tuple(jnp.asarray(lp, self.dtype) for lp in logp),
            jnp.asarray(tau, self.dtype))

  def payoffs(self, logp, tau=0.0):
    """Marginal Q-values ``Qbar_i(s, .)`` of the game's convention, ``(S, A_i)`` each.

    ``soft``: soft Q-values at entropy weight ``tau`` (pass the ``tau`` you work
    at; the default 0 is the unregularized Q-values); ``logit``: ``tau`` is unused.
    """
    return self.evaluate(logp, tau)[1]

  def values(self, logp, tau):
    """``V_i(s)`` of the game's convention, shape ``(n, S)``."""
    return self.evaluate(logp, tau)[0]

  # --- best responses and gaps ---------------------------------------------

  def best_response(self, logp, tau, *,
                    max_iters: int = BEST_RESPONSE_MAX_ITERS,
                    return_residual: bool = False):
    """Each agent's (soft-)optimal policy in the MDP that the others induce.

    Soft policy iteration in agent ``i``'s induced MDP (rewards
    ``E_{a_-i} r_i(s, a_i, a_-i)``, transitions ``E_{a_-i} P(. | s, a_i, a_-i)``)
    with entropy weight ``tau`` (``tau = 0``: ordinary policy iteration, ties
    split evenly), started from ``pi_i``: evaluate exactly, improve to
    ``softmax(Q / tau)``, repeat. It stops once the Bellman residual
    ``r = max_{i,s} (T V - V)(s)`` of the policy just evaluated is at most
    ``16 eps (max|r_i| + tau log A) / (1 - gamma)`` (rounding level; ``eps`` of
    the game's dtype) or after ``max_iters`` steps, and returns one further
    improvement, so ``V* - V^br <= r / (1 - gamma)``. Policy iteration is
    Newton's method on the Bellman equation: it converged within 4 steps on
    every random game we tried. This is the soft objective's best response for
    either convention.

    Args:
      logp: tuple of ``(S, A_i)`` log-policies (one game).
      tau: entropy weight ``>= 0``.
      max_iters: most policy-iteration steps (static, ``>= 1``).
      return_residual: also return ``r``.

    Returns:
      Tuple of ``(S, A_i)`` log-policies (and ``r`` if ``return_residual``).
    """
    if int(max_iters) < 1:
      raise ValueError(f"`max_iters` must be >= 1, got {max_iters}.")
    br, resid = _best_response(self, *self._cast(logp, tau),
                               max_iters=int(max_iters))
    return (br, resid) if return_residual else br

  def qre_gap_per_agent(self, logp, tau, payoffs=None):
    """Per-agent gap, shape ``(n,)``: Markov QRE-gap (soft) or KL residual (logit).

    ``soft``: ``V_i(br_i, pi_-i)(rho) - V_i(pi)(rho)`` with the soft best
    response, computed as ``rho^T (I - gamma P_br)^{-1} g`` where
    ``g(s) = tau KL(pi_i(s) || pi_i^*(s)) - tau KL(br_i(s) || pi_i^*(s))`` and
    ``pi_i^* = softmax(Qbar_i / tau)`` (the soft performance-difference lemma),
    so a gap near zero is not lost to cancellation. ``logit``: the KL residual
    ``tau * max_s KL(pi_i(.|s) || softmax(Qbar_i(s, .) / tau))`` (see the class
    docstring). ``payoffs`` (the convention's ``Qbar``) is used only by ``logit``.
    """
    logp, tau = self._cast(logp, tau)
    if self.convention == "logit":
      if payoffs is None:
        payoffs = self.payoffs(logp, tau)
      return jnp.stack([jnp.max(_gaps.kl_to_soft_best_response(lp, q, tau))
                        for lp, q in zip(logp, payoffs)])
    return _value_gaps(self, logp, tau)

  def ne_gap_per_agent(self, logp, payoffs=None):
    """Per-agent Markov NE-gap ``V_i(br_i, pi_-i)(rho) - V_i(pi)(rho)``, ``(n,)``.

    Values without entropy (both conventions), ``br_i`` an optimal policy in the
    induced MDP (policy iteration). ``payoffs`` is ignored (it may hold soft
    Q-values at some ``tau``).
    """
    del payoffs
    return _value_gaps(self, *self._cast(logp, 0.0))


# ----------------------------------------------------------------------------
# Jitted per-game computations (compiled once per shape when called eagerly,
# inlined under an outer jit/vmap).


def _induced(game, logp):
  return induced_mdps(game.rewards, game.transitions,
                      tuple(jnp.exp(lp) for lp in logp))


@jax.jit
def _evaluate(game, logp, tau):
  return joint_values(game.rewards, game.transitions, game.discount, logp,
                      tau if game.convention == "soft" else None)


def _br_tol(game, tau):
  """Policy iteration's stopping tolerance on the Bellman residual (rounding level)."""
  eps = jnp.finfo(game.dtype).eps
  width = jnp.log(jnp.asarray(max(game.num_actions), game.dtype))
  scale = (jnp.max(jnp.abs(game.rewards)) + tau * width) / (1 - game.discount)
  return BEST_RESPONSE_TOL_EPS * eps * scale


@functools.partial(jax.jit, static_argnames=("max_iters",))
def _best_response(game, logp, tau, *, max_iters):
  rbar, pbar = _induced(game, logp)
  br, _, resid = policy_iteration(rbar, pbar, game.discount, logp, tau,
                                  _br_tol(game, tau), max_iters)
  return br, resid


@jax.jit
def _value_gaps(game, logp, tau):
  rbar, pbar = _induced(game, logp)
  br, q_pi, _ = policy_iteration(rbar, pbar, game.discount, logp, tau,
                                 _br_tol(game, tau), BEST_RESPONSE_MAX_ITERS)
  return value_gap(pbar, game.discount, game.initial, logp, q_pi, br, tau)


# ----------------------------------------------------------------------------
# Constructors.


def random_markov_game(key, num_states: int, num_actions: Sequence[int],
                       discount, *, convention: str = "soft",
                       dtype=None) -> MarkovGame:
  """A random Markov game (the paper's Fig. 2c setting).

  Rewards i.i.d. uniform on ``[0, 1)`` per agent, state and joint action; each
  ``P(. | s, a)`` uniform on the simplex (Dirichlet(1, ..., 1)); uniform initial
  distribution. A pure function of ``key`` (vmap over keys for a batch).

  Args:
    key: a ``jax.random`` key.
    num_states: ``S >= 1`` (the paper: 5).
    num_actions: ``(A_1, ..., A_n)`` (the paper: ``(5, 5, 5)``).
    discount: ``gamma`` in ``[0, 1)`` (the paper does not state it; its figure
      here uses 0.9).
    convention: ``"soft"`` (default) or ``"logit"``.
    dtype: floating dtype (default: JAX's default float).

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_markov_game(jax.random.key(0), 5, (5, 5, 5), 0.9)
    >>> game.rewards.shape, game.transitions.shape
    ((3, 5, 5, 5, 5), (5, 5, 5, 5, 5))
  """
  actions = tuple(num_actions)
  if not actions or any(int(a) != a or a < 1 for a in actions):
    raise ValueError(
        f"`num_actions` must be a non-empty sequence of integers >= 1, got "
        f"{num_actions!r}.")
  if isinstance(num_states, bool) or int(num_states) != num_states or num_states < 1:
    raise ValueError(f"`num_states` must be an integer >= 1, got {num_states!r}.")
  num_states = int(num_states)
  actions = tuple(int(a) for a in actions)
  dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
  r_shape = (len(actions), num_states) + actions
  t_shape = (num_states,) + actions + (num_states,)
  size_r = int(np.prod(r_shape))
  # One uniform draw for both (one random-bits kernel to compile).
  u = jax.random.uniform(key, (size_r + int(np.prod(t_shape)),), dtype=dtype)
  rewards = u[:size_r].reshape(r_shape)
  # Normalized i.i.d. exponentials (-log(1 - u) > 0) are Dirichlet(1, ..., 1).
  e = -jnp.log1p(-u[size_r:]).reshape(t_shape)
  transitions = e / jnp.sum(e, axis=-1, keepdims=True)
  return MarkovGame(rewards, transitions, discount, convention=convention)


def markov_game_from_stage_games(stage_games, transitions, discount, initial=None,
                                 convention: str = "soft") -> MarkovGame:
  """A Markov game from one normal-form stage game per state plus transitions.

  Args:
    stage_games: sequence of ``S`` stage games, each a ``NormalFormGame`` or a
      reward array ``(n, A_1, ..., A_n)``; all with the same sizes.
    transitions: ``(S, A_1, ..., A_n, S)``.
    discount, initial, convention: as in :class:`MarkovGame`.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> pennies = jnp.array([[[1., 0.], [0., 1.]], [[0., 1.], [1., 0.]]])
    >>> stay = jnp.ones((2, 2, 2, 2)) / 2  # from either state, go anywhere
    >>> game = jaxnpg.markov_game_from_stage_games([pennies, 1 - pennies], stay,
    ...                                            0.5)
    >>> game.num_states, game.num_actions
    (2, (2, 2))
  """
  stages = list(stage_games)
  if not stages:
    raise ValueError("`stage_games` must hold at least one stage game.")
  arrays: list = []
  for s, g in enumerate(stages):
    if isinstance(g, NormalFormGame):
      if g.batch_shape:
        raise ValueError(f"Stage game {s} is a batch; pass one game per state.")
      g = g.rewards
    if np.shape(g) != np.shape(arrays[0] if arrays else g):
      raise ValueError(
          f"Stage game {s} has reward shape {np.shape(g)}, but stage game 0 has "
          f"{np.shape(arrays[0])}; every state needs the same agents and actions.")
    arrays.append(g)
  rewards = jnp.stack([jnp.asarray(r) for r in arrays], axis=1)
  return MarkovGame(rewards, transitions, discount, initial, convention)
