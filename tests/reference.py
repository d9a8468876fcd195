"""A plain float64 NumPy reference for the core of jaxnpg.

Everything here is written the long way, straight from the definitions in SPEC.md,
with explicit Python loops over joint actions, and shares no code with ``jaxnpg``.
Policies are *probabilities* here (lists of 1-D float64 arrays), not log-probabilities.
Rewards are a float64 array ``R`` of shape ``(n, A_1, ..., A_n)``.
"""

import itertools

import numpy as np


def random_rewards(rng, sizes, low=0.0, high=1.0):
  """I.i.d. uniform rewards of shape ``(n, *sizes)`` in float64."""
  sizes = tuple(sizes)
  return rng.uniform(low, high, size=(len(sizes),) + sizes)


def random_probs(rng, sizes, min_prob=0.0):
  """A random policy: one Dirichlet(1, ..., 1) vector per agent, float64.

  Args:
    rng: a ``numpy.random.Generator``.
    sizes: ``(A_1, ..., A_n)``.
    min_prob: mix with the uniform policy so every probability is at least this.

  Returns:
    List of ``n`` probability vectors.
  """
  out = []
  for a in sizes:
    p = rng.dirichlet(np.ones(a))
    p = (1 - min_prob * a) * p + min_prob
    out.append(p / p.sum())
  return out


def marginal_rewards(rewards, probs):
  """``rbar_i(a_i) = sum_{a_-i} prod_{j != i} pi_j(a_j) r_i(a_i, a_-i)``, the long way.

  Args:
    rewards: ``(n, A_1, ..., A_n)``.
    probs: list of ``n`` probability vectors.

  Returns:
    List of ``n`` float64 vectors, ``rbar[i].shape == (A_i,)``.
  """
  rewards = np.asarray(rewards, dtype=np.float64)
  n = rewards.shape[0]
  sizes = rewards.shape[1:]
  rbar = [np.zeros(a) for a in sizes]
  for joint in itertools.product(*[range(a) for a in sizes]):
    for i in range(n):
      weight = 1.0
      for j in range(n):
        if j != i:
          weight *= float(probs[j][joint[j]])
      rbar[i][joint[i]] += weight * rewards[(i,) + joint]
  return rbar


def entropy(p):
  """Shannon entropy ``-sum p log p`` with ``0 log 0 = 0``."""
  p = np.asarray(p, dtype=np.float64)
  nz = p > 0
  return float(-np.sum(p[nz] * np.log(p[nz])))


def soft_best_response(rbar_i, tau):
  """``softmax(rbar_i / tau)``; at ``tau = 0`` the uniform mix over the argmax set."""
  rbar_i = np.asarray(rbar_i, dtype=np.float64)
  if tau == 0:
    is_max = rbar_i == rbar_i.max()
    return is_max / is_max.sum()
  z = np.exp((rbar_i - rbar_i.max()) / tau)
  return z / z.sum()


def regularized_reward(p_i, rbar_i, tau):
  """``rhat_i = <pi_i, rbar_i> + tau * H(pi_i)``."""
  return float(np.dot(p_i, rbar_i)) + tau * entropy(p_i)


def qre_gap_per_agent(rewards, probs, tau):
  """``rhat_i(pi_i^*, pi_-i) - rhat_i(pi_i, pi_-i)`` for every agent (eq. 4)."""
  rbar = marginal_rewards(rewards, probs)
  gaps = []
  for p_i, r_i in zip(probs, rbar):
    star = soft_best_response(r_i, tau)
    gaps.append(regularized_reward(star, r_i, tau)
                - regularized_reward(p_i, r_i, tau))
  return np.array(gaps)


def qre_gap(rewards, probs, tau):
  """``max_i`` of :func:`qre_gap_per_agent`."""
  return float(np.max(qre_gap_per_agent(rewards, probs, tau)))


def ne_gap_per_agent(rewards, probs):
  """``max_a rbar_i(a) - <pi_i, rbar_i>`` for every agent."""
  rbar = marginal_rewards(rewards, probs)
  return np.array([float(r.max() - np.dot(p, r)) for p, r in zip(probs, rbar)])


def ne_gap(rewards, probs):
  """``max_i`` of :func:`ne_gap_per_agent`."""
  return float(np.max(ne_gap_per_agent(rewards, probs)))


def kl(p, q):
  """``KL(p || q)`` with ``0 log 0 = 0``."""
  p = np.asarray(p, dtype=np.float64)
  q = np.asarray(q, dtype=np.float64)
  nz = p > 0
  return float(np.sum(p[nz] * (np.log(p[nz]) - np.log(q[nz]))))


def npg_step(rewards, probs, tau, eta):
  """Eq. (2) in probability space: ``pi_i' ∝ pi_i^(1 - eta tau) exp(eta rbar_i)``.

  ``0 ** 0 = 1``: at ``eta * tau = 1`` zero-probability actions re-enter. The
  constant ``exp(-eta * max rbar_i)`` is divided out of every entry before
  normalizing (it cancels) so that large rewards do not overflow.
  """
  rbar = marginal_rewards(rewards, probs)
  out = []
  for p_i, r_i in zip(probs, rbar):
    w = np.power(np.asarray(p_i, dtype=np.float64), 1.0 - eta * tau)
    w = w * np.exp(eta * (r_i - r_i.max()))
    out.append(w / w.sum())
  return out


def fixed_point_residual(rewards, probs, tau):
  """``max_i max_a |log pi_i(a) - log pi_i^*(a)|`` (``tau > 0``); the NE-gap at 0."""
  if tau == 0:
    return ne_gap(rewards, probs)
  rbar = marginal_rewards(rewards, probs)
  worst = 0.0
  for p_i, r_i in zip(probs, rbar):
    star = soft_best_response(r_i, tau)
    with np.errstate(divide="ignore"):
      worst = max(worst, float(np.max(np.abs(np.log(p_i) - np.log(star)))))
  return worst


def solve(rewards, probs, tau, eta, tol, max_iters):
  """Iterate :func:`npg_step` while the fixed-point residual is above ``tol``.

  Returns:
    ``(probs, num_iters, converged)``.
  """
  k = 0
  m = fixed_point_residual(rewards, probs, tau)
  while k < max_iters and m > tol:
    probs = npg_step(rewards, probs, tau, eta)
    k += 1
    m = fixed_point_residual(rewards, probs, tau)
  return probs, k, m <= tol
