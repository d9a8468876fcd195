"""Policies: tuples of per-agent log-probability arrays.

``logp[i]`` has shape ``(*batch, *game.policy_shapes[i])``: ``(A_i,)`` for a static
game, ``(S, A_i)`` for a Markov game, plus the game's batch axes when it is batched.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.validation import simplex_atol


def uniform_policy(game):
  """The uniform policy of every agent, in the game's dtype.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame(jnp.zeros((2, 2, 4)))
    >>> [lp.shape for lp in jaxnpg.uniform_policy(game)]
    [(2,), (4,)]
  """
  return tuple(
      jnp.full(game.batch_shape + shape, -np.log(shape[-1]), dtype=game.dtype)
      for shape in game.policy_shapes)


def random_policy(key, game, *, draw_dtype=None):
  """Independent policies drawn uniformly from each simplex (Dirichlet(1, ..., 1)).

  Args:
    key: a ``jax.random`` key.
    game: any game; batch axes of the game are honoured.
    draw_dtype: dtype the random exponentials are drawn in (default: the game's);
      the log and normalization are done in the game's dtype. ``jaxnpg.sweep``
      draws in float32 so that float32 and float64 sweeps start from the same
      policies.

  Returns:
    Tuple of log-probabilities, ``logp[i].shape == batch_shape + policy_shapes[i]``.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.random_game(jax.random.key(0), (2, 3))
    >>> logp = jaxnpg.random_policy(jax.random.key(1), game)
    >>> [lp.shape for lp in logp]
    [(2,), (3,)]
    >>> [round(float(p.sum()), 5) for p in jaxnpg.to_probs(logp)]
    [1.0, 1.0]
  """
  draw_dtype = game.dtype if draw_dtype is None else draw_dtype
  keys = jax.random.split(key, game.num_agents)
  out = []
  for k, shape in zip(keys, game.policy_shapes):
    # Uniform on the simplex = normalized i.i.d. exponentials; stay in log space.
    # The uniforms are exact in any dtype (random bits); the exponentials
    # -log1p(-u) are computed in the game's dtype (jax.random.exponential's
    # formula), so a float32 draw gives the same policy in float64, to float64
    # rounding, compiled or not.
    u = jax.random.uniform(k, game.batch_shape + shape, dtype=draw_dtype)
    logits = jnp.log(-jnp.log1p(-u.astype(game.dtype)))
    out.append(logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True))
  return tuple(out)


def policy_from_probs(probs, *, dtype=None):
  """Validate probability vectors and return them as a log-policy.

  Args:
    probs: sequence of per-agent probability arrays (last axis sums to 1).
    dtype: floating dtype of the result (default: each array's, or JAX's default
      float for integer input).

  Returns:
    Tuple of log-probability arrays (``-inf`` where a probability is 0).

  Raises:
    ValueError: a value is negative, non-finite, or a distribution does not sum
      to 1 within the dtype's tolerance.

  Example:
    >>> import jaxnpg
    >>> logp = jaxnpg.policy_from_probs([[0.5, 0.5], [1.0, 0.0, 0.0]])
    >>> [p.tolist() for p in jaxnpg.to_probs(logp)]
    [[0.5, 0.5], [1.0, 0.0, 0.0]]
  """
  if not isinstance(probs, (tuple, list)):
    raise ValueError(
        "`probs` must be a sequence with one probability array per agent.")
  out = []
  for i, p in enumerate(probs):
    arr = np.asarray(p)
    if arr.ndim == 0 or arr.dtype.kind not in "biuf":
      raise ValueError(
          f"Agent {i}'s probabilities must be a real array with an action axis, "
          f"got {arr!r}.")
    dt = jax.dtypes.canonicalize_dtype(
        dtype or (arr.dtype if arr.dtype.kind == "f" else jnp.result_type(float)))
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
      raise ValueError(
          f"Agent {i}'s probabilities must be finite and >= 0, got {arr}.")
    err = np.max(np.abs(arr.sum(axis=-1) - 1.0))
    if err > simplex_atol(dt):
      raise ValueError(
          f"Agent {i}'s probabilities are off the simplex: they sum to 1 within "
          f"{err:.3g}, more than the tolerance {simplex_atol(dt):g}.")
    with np.errstate(divide="ignore"):
      out.append(jnp.asarray(np.log(arr.astype(np.float64)), dtype=dt))
  return tuple(out)


def to_probs(logp):
  """Probabilities ``exp(logp[i])`` for every agent (a tuple).

  Example:
    >>> import jaxnpg
    >>> logp = jaxnpg.policy_from_probs([[0.25, 0.75], [1.0, 0.0]])
    >>> [p.tolist() for p in jaxnpg.to_probs(logp)]
    [[0.25, 0.75], [1.0, 0.0]]
  """
  return tuple(jnp.exp(lp) for lp in logp)
