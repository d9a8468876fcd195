"""Flat coordinates for log-policies: logits, centring, and the centred subspace.

The QRE solver and the local-rate tools work on one flat vector ``y`` holding every
agent's logits (``logp[i]`` flattened, agents concatenated). A log-policy is
``log_softmax`` of its logits over the action axis, so adding a constant to one
agent's logits (per state, for state-dependent policies) changes nothing; the
*centred* logits (each agent's mean subtracted) are the canonical representatives
(docs/spec.md, "Local rate"). ``basis`` is an orthonormal basis of that centred subspace,
in which the Jacobian of the NPG map has no spurious directions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


class Layout:
  """Flattening of one game's policy into a vector (sizes are static).

  Attributes:
    shapes: ``game.policy_shapes``.
    sizes: number of entries of each agent's log-policy.
    size: total number of entries ``N``.
    dim: dimension of the centred subspace, ``N`` minus the number of simplices.
  """

  def __init__(self, policy_shapes):
    self.shapes = tuple(tuple(int(d) for d in s) for s in policy_shapes)
    self.sizes = tuple(math.prod(s) for s in self.shapes)
    self.size = sum(self.sizes)
    self.dim = sum(sz - sz // s[-1] for sz, s in zip(self.sizes, self.shapes))

  def flatten(self, parts):
    """Tuple of per-agent arrays -> ``(N,)`` vector."""
    return jnp.concatenate([jnp.reshape(p, (-1,)) for p in parts])

  def unflatten(self, y):
    """``(N,)`` vector -> tuple of per-agent arrays of ``policy_shapes``."""
    out, start = [], 0
    for sz, shape in zip(self.sizes, self.shapes):
      out.append(jnp.reshape(y[start:start + sz], shape))
      start += sz
    return tuple(out)

  def normalize(self, y):
    """Logits -> log-policy (``log_softmax`` over each action axis), as a tuple."""
    return tuple(jax.nn.log_softmax(p, axis=-1) for p in self.unflatten(y))

  def centre(self, v):
    """Subtract each agent's (per state) mean over actions: ``(N,) -> (N,)``."""
    return self.flatten([p - jnp.mean(p, axis=-1, keepdims=True)
                         for p in self.unflatten(v)])

  def basis(self, dtype) -> jax.Array:
    """Orthonormal basis ``Q`` of the centred subspace, shape ``(N, dim)``.

    Block diagonal: per simplex of size ``A``, the Helmert columns
    ``(1, ..., 1, -k, 0, ...) / sqrt(k (k + 1))``, ``k = 1 .. A - 1``.
    """
    blocks = []
    for shape in self.shapes:
      a = shape[-1]
      h = np.zeros((a, a - 1))
      for k in range(1, a):
        h[:k, k - 1] = 1.0
        h[k, k - 1] = -k
        h[:, k - 1] /= math.sqrt(k * (k + 1))
      groups = math.prod(shape[:-1])
      blocks.append(np.kron(np.eye(groups), h))
    q = np.zeros((self.size, self.dim))
    r = c = 0
    for b in blocks:
      q[r:r + b.shape[0], c:c + b.shape[1]] = b
      r += b.shape[0]
      c += b.shape[1]
    return jnp.asarray(q, dtype=dtype)
