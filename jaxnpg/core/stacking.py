"""Treating many equally shaped agents as one array inside compiled loops.

Policies are tuples of per-agent arrays (the public contract). With thousands of
agents, a per-agent Python loop emits thousands of small XLA kernels, and the CPU
compiler spends milliseconds on each distinct one (before this module, a
1000-agent network game took minutes to compile). Three tools avoid that without
changing any value:

* :class:`AgentTuple` is a per-agent tuple that also keeps the ``(n, ...)`` array
  it was sliced from. Code that needs all agents at once (:func:`stack`) takes
  that array back instead of concatenating the slices, and slices nobody reads
  are dead code that XLA drops.
* :func:`stack_uniform` stacks a tuple whose arrays share shape and dtype (at least
  :data:`MIN_AGENTS` of them), so an elementwise or last-axis computation runs once
  on an ``(n, ...)`` array instead of ``n`` times.
* :func:`scan` and :func:`while_loop` wrap ``lax.scan`` / ``lax.while_loop`` and
  carry every such tuple in the loop state as one stacked array, handed to the body
  as an :class:`AgentTuple`. Packing is exact (stacking moves values, never changes
  them); tuples that do not qualify are carried as they are, so small games with
  mixed action counts compile exactly as before.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

# Tuples with fewer agents than this stay per-agent (nothing to gain).
MIN_AGENTS = 8


def _is_array(x) -> bool:
  if not (isinstance(x, jax.Array) or hasattr(x, "shape") and hasattr(x, "dtype")):
    return False
  return not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def is_uniform(arrays) -> bool:
  """True for a tuple of at least ``MIN_AGENTS`` arrays with one shape and dtype."""
  if type(arrays) is not tuple or len(arrays) < MIN_AGENTS:
    return False
  if not all(_is_array(a) for a in arrays):
    return False
  shape, dtype = jnp.shape(arrays[0]), jnp.result_type(arrays[0])
  return all(jnp.shape(a) == shape and jnp.result_type(a) == dtype
             for a in arrays[1:])


class AgentTuple(tuple):
  """A tuple of per-agent arrays that remembers the stacked array behind them.

  ``AgentTuple(x)`` holds ``x[0], ..., x[n-1]`` and ``x`` itself as ``.stacked``.
  It is a pytree like a plain tuple (it flattens to its elements and unflattens to
  a plain ``tuple``), so it can be returned and transformed anywhere a policy can.
  """

  def __new__(cls, stacked):
    if isinstance(stacked, jax.core.Tracer):
      parts = jnp.unstack(stacked)  # slices nobody reads are dropped by XLA
    else:
      parts = list(stacked)         # eager: JAX's chunked iteration, no per-row jit
    obj = super().__new__(cls, parts)
    obj.stacked = stacked
    return obj


def _unflatten_agents(_, xs):
  # A transformed AgentTuple comes back as a plain tuple (its stacked array
  # would be stale).
  return tuple(xs)


jax.tree_util.register_pytree_node(
    AgentTuple, lambda t: (tuple(t), None), _unflatten_agents)


def stack(arrays):
  """``jnp.stack(arrays)``, or the array an :class:`AgentTuple` came from."""
  return arrays.stacked if isinstance(arrays, AgentTuple) else jnp.stack(arrays)


def stack_uniform(arrays):
  """:func:`stack` if ``arrays`` is an :class:`AgentTuple` or uniform, else ``None``."""
  if isinstance(arrays, AgentTuple):
    return arrays.stacked
  return jnp.stack(arrays) if is_uniform(tuple(arrays)) else None


def agent_groups(arrays):
  """``[stacked]`` for a uniform tuple, else the arrays one by one.

  For reductions that do not care how agents are grouped (a max over all agents).
  """
  stacked = stack_uniform(arrays)
  return list(arrays) if stacked is None else [stacked]


def paired_groups(xs, ys):
  """``[(stack(xs), stack(ys))]`` when both are uniform, else ``zip(xs, ys)``.

  For per-agent computations on pairs (log-policy, payoff) that reduce over the
  last axis or over all agents, so grouping the agents does not change the result.
  """
  sx, sy = stack_uniform(xs), stack_uniform(ys)
  if sx is not None and sy is not None:
    return [(sx, sy)]
  return list(zip(xs, ys))


@jax.tree_util.register_pytree_node_class
class _Stacked:
  """A uniform tuple carried as one ``(n, ...)`` array."""

  def __init__(self, array):
    self.array = array

  def tree_flatten(self):
    return (self.array,), None

  @classmethod
  def tree_unflatten(cls, aux, leaves):
    del aux
    return cls(leaves[0])


def _packable(x) -> bool:
  return isinstance(x, AgentTuple) or is_uniform(x)


def pack(tree):
  """Replace every uniform tuple in ``tree`` by a stacked array (exact)."""
  return jax.tree_util.tree_map(
      lambda x: _Stacked(stack(x)) if _packable(x) else x, tree,
      is_leaf=_packable)


def unpack(tree):
  """Inverse of :func:`pack`; the tuples come back as :class:`AgentTuple`."""
  return jax.tree_util.tree_map(
      lambda x: AgentTuple(x.array) if isinstance(x, _Stacked) else x,
      tree, is_leaf=lambda x: isinstance(x, _Stacked))


def scan(f, init, xs=None, length=None):
  """``lax.scan`` carrying uniform per-agent tuples stacked (same results)."""
  def body(carry, x):
    carry, y = f(unpack(carry), x)
    return pack(carry), y
  carry, ys = lax.scan(body, pack(init), xs, length=length)
  return unpack(carry), ys


def while_loop(cond, body, init):
  """``lax.while_loop`` carrying uniform per-agent tuples stacked (same results)."""
  carry = lax.while_loop(lambda c: cond(unpack(c)),
                         lambda c: pack(body(unpack(c))), pack(init))
  return unpack(carry)
