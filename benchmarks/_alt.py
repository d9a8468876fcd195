"""Benchmark-only alternative formulations of the dense marginals (not library code).

Every function takes one game (batch with ``jax.vmap``), like
``jaxnpg.games.dense.dense_marginals``: ``rewards`` of shape ``(n, A_0, ..., A_{n-1})``
(or ``(A_0, ..., A_{n-1})`` for the identical-interest functions) and ``probs`` a
tuple of ``n`` probability vectors; they return the tuple of marginals
``rbar_i(a_i) = sum_{a_-i} prod_{j != i} probs[j][a_j] * rewards[i, a]``.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
from jax import lax

LETTERS = "abcdefghijklmnopqrstuvwxy"   # action axes; "z" is a batch axis


def agent_specs(n: int, batch: bool = False) -> list[str]:
  """einsum subscripts of agent i's marginal: its reward slice with the others."""
  z = "z" if batch else ""
  axes = LETTERS[:n]
  specs = []
  for i in range(n):
    others = ",".join(z + axes[j] for j in range(n) if j != i)
    specs.append(f"{z}{axes},{others}->{z}{axes[i]}")
  return specs


def naive_marginals(rewards, probs):
  """One independent ``jnp.einsum`` per agent: ``rewards[i]`` with the other
  ``n - 1`` vectors (opt_einsum picks the pairwise order)."""
  n = len(probs)
  specs = agent_specs(n)
  return tuple(
      jnp.einsum(specs[i], rewards[i], *(probs[j] for j in range(n) if j != i))
      for i in range(n))


def noslice_marginals(rewards, probs):
  """``dense_marginals`` with one line changed: the suffix step contracts the
  whole stack and slices the (``A_{k-1}`` times smaller) result,
  ``(suffix @ p)[:k-1]``, instead of slicing the big operand,
  ``suffix[:k-1] @ p``. Under ``vmap`` the batch axis leads, so ``suffix[:k-1]``
  is a strided slice that XLA copies (a fresh buffer of ``(n-1)/n`` of the
  tensor on every call) before the dot; this spends ``1/n`` more flops on the
  first step and avoids the copy."""
  n = len(probs)
  out = [None] * n
  suffix = rewards
  for k in range(n, 0, -1):
    t = suffix[k - 1]
    for j in range(k - 1):
      t = jnp.tensordot(probs[j], t, axes=(0, 0))
    out[k - 1] = t
    if k > 1:
      suffix = (suffix @ probs[k - 1])[: k - 1]
  return tuple(out)


def _contract(t, p, axis):
  """``sum_a p[a] * t[..., a, ...]`` along ``axis``, unrolled over the slices."""
  terms = (p[a] * lax.index_in_dim(t, a, axis, keepdims=False)
           for a in range(t.shape[axis]))
  return functools.reduce(jnp.add, terms)


def unrolled_marginals(rewards, probs):
  """``dense_marginals``' suffix chain with every contraction an unrolled sum of
  slices: only elementwise multiply-adds, no dot and no reduce op."""
  n = len(probs)
  out = [None] * n
  suffix = rewards
  for k in range(n, 0, -1):
    t = suffix[k - 1]
    for j in range(k - 1):
      t = _contract(t, probs[j], 0)
    out[k - 1] = t
    if k > 1:
      suffix = _contract(suffix[: k - 1], probs[k - 1], -1)
  return tuple(out)


def bcast_marginals(rewards, probs):
  """``dense_marginals``' suffix chain with every contraction written as a
  broadcast multiply followed by ``jnp.sum`` (a reduce op)."""
  n = len(probs)
  out = [None] * n
  suffix = rewards
  for k in range(n, 0, -1):
    t = suffix[k - 1]
    for j in range(k - 1):
      t = jnp.sum(t * probs[j].reshape((-1,) + (1,) * (t.ndim - 1)), axis=0)
    out[k - 1] = t
    if k > 1:
      suffix = jnp.sum(suffix[: k - 1] * probs[k - 1], axis=-1)
  return tuple(out)


def _unrolled_lse(x):
  """``logsumexp`` over the last axis as elementwise max/exp/add of its slices."""
  cols = [x[..., a] for a in range(x.shape[-1])]
  m = functools.reduce(jnp.maximum, cols)
  m = jnp.where(jnp.isfinite(m), m, 0.0)
  s = functools.reduce(jnp.add, [jnp.exp(c - m) for c in cols])
  return (m + jnp.log(s))[..., None]


def unrolled_update(logp, payoffs, tau, eta):
  """``jaxnpg.core.step.npg_update`` (same zero-probability handling) with the
  logsumexp unrolled over actions, so the step has no reduce op at all."""
  dtype = payoffs[0].dtype
  tau = jnp.asarray(tau, dtype)
  eta = jnp.asarray(eta, dtype)
  coef = 1 - eta * tau
  out = []
  for lp, q in zip(logp, payoffs):
    lp = lp.astype(dtype)
    zero_prob = jnp.isneginf(lp)
    carried = jnp.where(zero_prob, jnp.where(coef > 0, -jnp.inf, 0.0),
                        coef * jnp.where(zero_prob, 0.0, lp))
    logits = carried + eta * q
    out.append(logits - _unrolled_lse(logits))
  return tuple(out)


# --------------------------------------------------- identical interest (one R)
def naive_marginals_common(reward, probs):
  """Identical interest, ``reward`` of shape ``(A_0, ..., A_{n-1})`` shared by all
  agents: one ``jnp.einsum`` per agent, so ``n`` passes over the tensor."""
  n = len(probs)
  specs = agent_specs(n)
  return tuple(
      jnp.einsum(specs[i], reward, *(probs[j] for j in range(n) if j != i))
      for i in range(n))


def shared_marginals_common(reward, probs):
  """Identical interest with shared partial contractions (suffix chain).

  ``S_k`` = ``reward`` with the actions of agents ``k..n-1`` summed out (shape
  ``(A_0, ..., A_{k-1})``). Agent ``i``'s marginal is ``S_{i+1}`` with its leading
  ``i`` axes summed out, so the tensor is read about twice (once for ``S_{n-1}``,
  once for agent ``n-1``) however many agents there are, instead of ``n`` times.
  """
  n = len(probs)
  out = [None] * n
  suffix = reward                       # S_n
  for k in range(n, 0, -1):
    t = suffix                          # agent k-1 finishes from S_k
    for j in range(k - 1):
      t = jnp.tensordot(probs[j], t, axes=(0, 0))
    out[k - 1] = t
    if k > 1:
      suffix = suffix @ probs[k - 1]    # S_{k-1}
  return tuple(out)
