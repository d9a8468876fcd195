"""Learning algorithms that ``run``, ``solve`` and ``sweep`` iterate.

An algorithm is any object with the members of the :class:`Algorithm` protocol
(the built-in ones are small frozen dataclasses). It must be hashable, since it is
a static argument of the compiled loop: equal settings never recompile.
:func:`get_algorithm` checks an object against the protocol;
:func:`jaxnpg.loop.describe.describe_algorithm` turns settings into JSON for
sweep manifests.

The solver loop (:mod:`jaxnpg.loop.iterate`, :mod:`jaxnpg.loop.run`) is written once on top
of this.

Example:
  >>> import jaxnpg
  >>> sorted(jaxnpg.ALGORITHMS)      # the names algorithm= accepts
  ['npg', 'optimistic_npg', 'pg', 'sampled_npg']
  >>> jaxnpg.ALGORITHMS["npg"] is jaxnpg.NPG
  True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import optax

from jaxnpg.core.step import npg_update


@runtime_checkable
class Algorithm(Protocol):
  """What ``run``, ``solve`` and ``sweep`` need of an algorithm (``algorithm=``).

  Any hashable object with these members works (a frozen dataclass of its
  settings is the natural form; ``describe_algorithm`` then writes its fields to
  sweep manifests). ``state`` is any pytree the algorithm chooses: the loop hands
  the whole of it back (``RunResult.state``) and takes it in again
  (``run(..., init_state=)``), as optax hands back ``opt_state``, so a run cut
  into pieces equals the run in one piece.

  Attributes:
    name: a short name (sweep manifests and plot titles).
    uses_payoffs: ``step`` takes the exact marginal payoffs at ``policy(state)``
      (the loop computes them once and also records the gaps from them); else
      it gets ``None``.
    uses_key: ``init`` needs a ``jax.random`` key (stochastic algorithms;
      ``jaxnpg.sweep`` then gives each cell its own key and can repeat cells over
      seeds).
    batch_last: ``step`` works on the loop's batch-last layout (the action axis
      first and batch axes trailing, ``game.action_axis == 0``, see
      :mod:`jaxnpg.loop.iterate`); then ``jax.vmap(jaxnpg.run)`` runs a batch as one
      batch-last loop, else as ``vmap`` of the one-game loop. Every leaf of
      the state of such an algorithm ends in the batch axes (the policy's
      trailing axes), as the built-in ones' do.

  Example:
    >>> import jaxnpg
    >>> isinstance(jaxnpg.NPG(), jaxnpg.Algorithm)
    True
  """
  name: str
  uses_payoffs: bool
  uses_key: bool
  batch_last: bool

  def init(self, game, logp, key):
    """The state at the log-policy ``logp``.

    Raises ``ValueError`` where ``game`` or ``key`` does not suit the algorithm
    (``run`` and ``sweep`` call it first to check).
    """

  def step(self, game, state, payoffs, tau, eta):
    """The next state.

    ``game`` is the form of the game the loop iterates (its action axis is
    ``game.action_axis``); ``eta`` already includes the game's ``step_scale``.
    """

  def policy(self, state):
    """The log-policy of ``state`` (a tuple, one array per agent)."""

  def probs(self, state):
    """The probabilities ``exp(policy(state))``.

    An algorithm may carry them in its state so that the loop never recomputes
    them.
    """


# The protocol's members, read from the class above.
_ALGORITHM_ATTRIBUTES = tuple(Algorithm.__annotations__)
_ALGORITHM_METHODS = tuple(k for k, v in vars(Algorithm).items()
                           if not k.startswith("_") and callable(v))


@dataclasses.dataclass(frozen=True)
class NPG:
  """Entropy-regularized independent NPG with exact marginals (eq. 2); the default.

  Its state is ``(logp, probs)``: the update's exponentials give the new
  probabilities too, so each step computes one ``exp`` per action.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> res = jaxnpg.run(game, 1.0, 0.2, 200, algorithm=jaxnpg.NPG())
    >>> jaxnpg.Status(int(res.status)).name
    'CONVERGED'
    >>> jaxnpg.NPG() == jaxnpg.NPG()     # hashable settings: no recompilation
    True
  """
  uses_payoffs = True
  uses_key = False
  batch_last = True
  name = "npg"

  def init(self, game, logp, key):
    del game, key
    return tuple(logp), tuple(jnp.exp(lp) for lp in logp)

  def step(self, game, state, payoffs, tau, eta):
    return npg_update(state[0], payoffs, tau, eta, axis=game.action_axis,
                      with_probs=True)

  def policy(self, state):
    return state[0]

  def probs(self, state):
    return state[1]


@dataclasses.dataclass(frozen=True)
class OptimisticNPG:
  """Entropy-regularized predictive (extragradient) NPG of Cen, Wei & Chi (2021).

  Each agent first takes a look-ahead step from the current payoffs, then the real
  step from the payoffs at the look-ahead point:

  .. math::
    \\bar\\pi_i \\propto (\\pi_i^k)^{1-\\eta\\tau} \\exp(\\eta\\,\\bar r_i(\\pi^k)),
    \\qquad
    \\pi_i^{k+1} \\propto (\\pi_i^k)^{1-\\eta\\tau} \\exp(\\eta\\,\\bar r_i(\\bar\\pi)).

  Its fixed point is the QRE. For two-player zero-sum matrix games with payoff matrix
  ``A`` Cen et al. prove linear convergence at rate ``1 - eta*tau`` (in KL to the
  QRE) when ``0 < eta <= 1 / (tau + 2 ||A||_inf)``, ``||A||_inf = max |A_ab|``
  (their Theorem 1, "PU" method); jaxnpg applies the same update to n-agent and
  network games, where no such guarantee is proven. Costs two marginal evaluations
  per iteration.

  Example:
    >>> import jax, jaxnpg
    >>> pennies = jaxnpg.NormalFormGame.from_matrices([[1, -1], [-1, 1]],
    ...                                               [[-1, 1], [1, -1]])
    >>> start = jaxnpg.policy_from_probs([[0.9, 0.1], [0.2, 0.8]])
    >>> res = jaxnpg.run(pennies, 0.5, 0.2, 300, init=start,
    ...                  algorithm=jaxnpg.OptimisticNPG())
    >>> [p.round(3).tolist() for p in jaxnpg.to_probs(res.logp)]  # the QRE
    [[0.5, 0.5], [0.5, 0.5]]
  """
  uses_payoffs = True
  uses_key = False
  batch_last = True
  name = "optimistic_npg"

  def init(self, game, logp, key):
    del game, key
    return logp

  def step(self, game, state, payoffs, tau, eta):
    axis = game.action_axis
    lookahead, probs = npg_update(state, payoffs, tau, eta, axis=axis,
                                  with_probs=True)
    return npg_update(state, game.loop_payoffs(lookahead, probs, tau), tau, eta,
                      axis=axis)

  def policy(self, state):
    return state

  def probs(self, state):
    return tuple(jnp.exp(lp) for lp in state)


@dataclasses.dataclass(frozen=True)
class PolicyGradient:
  """Independent softmax policy gradient (gradient play) on the regularized reward.

  Each agent ascends its own ``rhat_i(theta) = <pi_i, rbar_i> + tau H(pi_i)`` in its
  softmax logits ``theta_i`` (``pi_i = softmax(theta_i)``), gradients by
  ``jax.grad`` with the others held fixed. The gradient is the closed form of the
  paper's appendix A, ``pi_i(a) (rbar_i(a) - tau log pi_i(a) - rhat_i)``.
  ``optimizer`` is any optax transformation applied to the *loss* gradient
  ``-grad rhat``; its updates are multiplied by ``eta``. The default,
  ``optax.sgd(1.0)``, is plain gradient ascent with step ``eta``. For adaptive
  optimizers pass e.g. ``optax.adam(1.0)`` and set the learning rate with ``eta``.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> import optax
    >>> pg = jaxnpg.PolicyGradient(optax.adam(1.0))
    >>> res = jaxnpg.run(game, 1.0, 0.05, 300, algorithm=pg)
    >>> pg.name, res.qre_gap.shape, bool(res.qre_gap[-1] < res.qre_gap[0])
    ('pg', (301,), True)
  """
  optimizer: Any = None
  uses_payoffs = True
  uses_key = False
  batch_last = False
  name = "pg"

  def _opt(self):
    return optax.sgd(1.0) if self.optimizer is None else self.optimizer

  def init(self, game, logp, key):
    del game, key
    return logp, self._opt().init(logp)

  def step(self, game, state, payoffs, tau, eta):
    del game
    theta, opt_state = state
    grads = jax.grad(lambda th: -regularized_reward(th, payoffs, tau).sum())(theta)
    updates, opt_state = self._opt().update(grads, opt_state, theta)
    theta = tuple(th + eta * u for th, u in zip(theta, updates))
    theta = tuple(th - jax.nn.logsumexp(th, axis=-1, keepdims=True) for th in theta)
    return theta, opt_state

  def policy(self, state):
    return state[0]

  def probs(self, state):
    return tuple(jnp.exp(lp) for lp in state[0])


def regularized_reward(theta, payoffs, tau):
  """``rhat_i = <pi_i, rbar_i> + tau H(pi_i)`` per agent, ``pi_i = softmax(theta_i)``.

  ``payoffs`` are held fixed (each agent's gradient ignores its effect on others).
  Returns shape ``(n,)`` (summed over leading axes such as states).
  """
  out = []
  for th, q in zip(theta, payoffs):
    logp = jax.nn.log_softmax(th, axis=-1)
    p = jnp.exp(logp)
    terms = p * (jax.lax.stop_gradient(q) - tau * jnp.where(p > 0, logp, 0.0))
    out.append(jnp.sum(terms))
  return jnp.stack(out)


@dataclasses.dataclass(frozen=True)
class SampledNPG:
  """NPG with bandit feedback: marginals estimated from sampled joint actions.

  Each iteration every agent plays ``num_samples`` joint actions drawn from the
  exploration policies ``mu_j = (1 - explore) pi_j + explore / A_j``, observes its
  own reward of each, and estimates its marginal reward by importance weighting:

  .. math::
    \\hat r_i(a) = \\frac1M \\sum_m r_i(a^m) \\frac{1[a_i^m = a]}{\\mu_i(a)}
    \\prod_{j \\ne i} \\frac{\\pi_j(a_j^m)}{\\mu_j(a_j^m)},

  an unbiased estimate of ``rbar_i(a)`` under the true policies (with
  ``explore = 0`` the product is 1; actions are drawn by inverse CDF, one uniform
  per draw). Then it takes the NPG step with ``eta``
  multiplied by ``schedule(k)`` (default 1; e.g. ``lambda k: 1 / (1 + k / 100)``
  or any optax schedule). Static games only (``game.can_sample``: the game gives
  ``rewards_at``). Pass ``key`` to ``run``/``solve``; vmap over keys for seeds.

  Example:
    >>> import jax, jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame.from_matrices([[3, 0], [0, 2]],
    ...                                            [[2, 0], [0, 3]])
    >>> alg = jaxnpg.SampledNPG(num_samples=16)
    >>> res = jaxnpg.run(game, 1.0, 0.1, 50, algorithm=alg, key=jax.random.key(1))
    >>> alg.uses_key, bool(jnp.isfinite(res.qre_gap).all())
    (True, True)
  """
  num_samples: int = 64
  explore: float = 0.0
  schedule: Callable | None = None
  uses_payoffs = False
  uses_key = True
  batch_last = False
  name = "sampled_npg"

  def __post_init__(self):
    if int(self.num_samples) < 1:
      raise ValueError(f"`num_samples` must be >= 1, got {self.num_samples}.")
    if not 0.0 <= float(self.explore) <= 1.0:
      raise ValueError(f"`explore` must be in [0, 1], got {self.explore}.")

  def init(self, game, logp, key):
    if not game.can_sample:
      raise ValueError(
          f"sampled_npg needs a static game with `rewards_at` (can_sample); "
          f"{type(game).__name__} has none.")
    if key is None:
      raise ValueError("sampled_npg draws samples: pass `key=` (a jax.random key).")
    return logp, key, jnp.zeros((), jnp.int32)

  def estimate(self, game, logp, key):
    """One unbiased estimate of every agent's marginal reward (a tuple)."""
    mixes = []
    for lp in logp:
      a = lp.shape[-1]
      mixes.append(jnp.log((1 - self.explore) * jnp.exp(lp) + self.explore / a))
    keys = jax.random.split(key, len(logp))
    actions = tuple(sample_actions(k, lm, self.num_samples)
                    for k, lm in zip(keys, mixes))
    rewards = game.rewards_at(actions)                       # (n, M)
    log_ratio = jnp.stack([lp[a] - lm[a]
                           for lp, lm, a in zip(logp, mixes, actions)])  # (n, M)
    total = jnp.sum(log_ratio, axis=0)
    out = []
    for i, (lm, a) in enumerate(zip(mixes, actions)):
      weight = rewards[i] * jnp.exp(total - log_ratio[i] - lm[a])
      onehot = jax.nn.one_hot(a, lm.shape[-1], dtype=lm.dtype)
      out.append(weight @ onehot / self.num_samples)
    return tuple(out)

  def step(self, game, state, payoffs, tau, eta):
    del payoffs
    logp, key, k = state
    key, sub = jax.random.split(key)
    scale = 1.0 if self.schedule is None else self.schedule(k)
    estimate = self.estimate(game, logp, sub)
    return npg_update(logp, estimate, tau, eta * scale), key, k + 1

  def policy(self, state):
    return state[0]

  def probs(self, state):
    return tuple(jnp.exp(lp) for lp in state[0])


def sample_actions(key, logp, num):
  """``num`` draws from ``exp(logp)`` by inverse CDF (``(num,)`` int).

  One uniform per draw, where ``jax.random.categorical`` (Gumbel-max) takes one
  per draw and action: about 14x faster for (3, 4, 5) games on CPU. ``u`` stays
  strictly below the total, so zero-probability actions are never drawn.
  """
  cdf = jnp.cumsum(jnp.exp(logp))
  u = jax.random.uniform(key, (num,), dtype=cdf.dtype) * cdf[-1]
  u = jnp.minimum(u, jnp.nextafter(cdf[-1], jnp.zeros((), cdf.dtype)))
  return jnp.sum(u[:, None] >= cdf[None, :-1], axis=1)


ALGORITHMS: dict[str, Callable[[], Algorithm]] = {
    "npg": NPG, "optimistic_npg": OptimisticNPG, "pg": PolicyGradient,
              "sampled_npg": SampledNPG}
"""The built-in algorithms by the name ``algorithm=`` accepts (example: the module's)."""


def get_algorithm(algorithm) -> Algorithm:
  """Resolve a name in ``ALGORITHMS``, or check an :class:`Algorithm` object.

  A name (``npg``, ``sampled_npg``, ``pg``, ``optimistic_npg``) gives its
  algorithm with the default settings; an object is returned as it is.

  Raises:
    ValueError: an unknown name, an object that lacks members of the protocol
      (named in the message), or an unhashable object.
  """
  if isinstance(algorithm, str):
    if algorithm not in ALGORITHMS:
      raise ValueError(
          f"Unknown algorithm {algorithm!r}; choose one of {sorted(ALGORITHMS)} "
          "or pass an instance (e.g. jaxnpg.SampledNPG(num_samples=16)).")
    return ALGORITHMS[algorithm]()
  if isinstance(algorithm, type):
    raise ValueError(
        f"`algorithm` must be an instance, got the class {algorithm.__name__}; "
        f"pass {algorithm.__name__}().")
  # Validating the caller's object: name every member of the protocol it lacks.
  missing = [m for m in _ALGORITHM_ATTRIBUTES if not hasattr(algorithm, m)]
  missing += [m for m in _ALGORITHM_METHODS
              if not callable(getattr(algorithm, m, None))]
  if missing:
    raise ValueError(
        f"`algorithm` must be a name in {sorted(ALGORITHMS)} or an object with "
        f"the jaxnpg.Algorithm protocol; {algorithm!r} lacks "
        f"{', '.join(f'`{m}`' for m in missing)}.")
  try:
    hash(algorithm)
  except TypeError:
    raise ValueError(
        f"`algorithm` must be hashable (it is a static argument of the compiled "
        f"loop; e.g. a frozen dataclass), got an unhashable "
        f"{type(algorithm).__name__}.") from None
  return algorithm
