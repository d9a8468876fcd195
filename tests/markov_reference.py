"""A plain float64 NumPy reference for Markov games, straight from SPEC.md.

Shares no code with ``jaxnpg``. Explicit Python loops over states and joint actions;
values by iterating the Bellman equation to convergence (never a linear solve);
best responses by (soft) value iteration to convergence. Policies are
*probabilities*: lists of ``(S, A_i)`` float64 arrays.

Shapes: ``R`` is ``(n, S, A_1, ..., A_n)``, ``P`` is ``(S, A_1, ..., A_n, S)``.
"""

import itertools

import numpy as np

VI_TOL = 1e-15  # stop value iteration when the sup-norm change is below this


def random_markov(rng, num_states, sizes, *, low=0.0, high=1.0):
  """Random rewards (uniform) and transitions (Dirichlet(1)), float64."""
  sizes = tuple(sizes)
  rewards = rng.uniform(low, high, size=(len(sizes), num_states) + sizes)
  transitions = rng.dirichlet(np.ones(num_states),
                              size=(num_states,) + sizes)
  return rewards, transitions


def random_markov_probs(rng, num_states, sizes, min_prob=1e-3):
  """One Dirichlet(1) distribution per agent and state, mixed with uniform."""
  out = []
  for a in sizes:
    p = rng.dirichlet(np.ones(a), size=num_states)
    p = (1 - min_prob * a) * p + min_prob
    out.append(p / p.sum(axis=1, keepdims=True))
  return out


def _joint(sizes):
  return itertools.product(*[range(a) for a in sizes])


def _weight(probs, s, joint, skip=None):
  w = 1.0
  for j, a in enumerate(joint):
    if j != skip:
      w *= float(probs[j][s, a])
  return w


def entropy(p):
  p = np.asarray(p, dtype=np.float64)
  nz = p > 0
  return float(-np.sum(p[nz] * np.log(p[nz])))


def joint_model(R, P, probs):
  """``r_pi[i, s]`` and ``P_pi[s, s']`` under the joint policy, by loops."""
  n, num_states = R.shape[:2]
  sizes = R.shape[2:]
  r_pi = np.zeros((n, num_states))
  p_pi = np.zeros((num_states, num_states))
  for s in range(num_states):
    for joint in _joint(sizes):
      w = _weight(probs, s, joint)
      for i in range(n):
        r_pi[i, s] += w * R[(i, s) + joint]
      p_pi[s] += w * P[(s,) + joint]
  return r_pi, p_pi


def induced_mdp(R, P, probs, i):
  """Agent ``i``'s MDP when the others play ``probs``: ``(S, A_i)``, ``(S, A_i, S)``."""
  num_states = R.shape[1]
  sizes = R.shape[2:]
  r = np.zeros((num_states, sizes[i]))
  p = np.zeros((num_states, sizes[i], num_states))
  for s in range(num_states):
    for joint in _joint(sizes):
      w = _weight(probs, s, joint, skip=i)
      r[s, joint[i]] += w * R[(i, s) + joint]
      p[s, joint[i]] += w * P[(s,) + joint]
  return r, p


def values(R, P, gamma, probs, tau, convention="soft"):
  """``V[i, s]`` by iterating ``V <- r_pi + tau H + gamma P_pi V`` to convergence."""
  r_pi, p_pi = joint_model(R, P, probs)
  n, num_states = r_pi.shape
  bonus = np.zeros((n, num_states))
  if convention == "soft":
    for i in range(n):
      for s in range(num_states):
        bonus[i, s] = tau * entropy(probs[i][s])
  v = np.zeros((n, num_states))
  for _ in range(100_000):
    new = r_pi + bonus + gamma * v @ p_pi.T
    done = np.max(np.abs(new - v)) <= VI_TOL * max(1.0, np.max(np.abs(new)))
    v = new
    if done:
      break
  return v


def q_values(R, P, gamma, probs, v):
  """``Qbar[i][s, a_i] = E_{a_-i} [r_i(s, a) + gamma sum_s' P(s'|s, a) V_i(s')]``."""
  n, num_states = R.shape[:2]
  sizes = R.shape[2:]
  q = [np.zeros((num_states, a)) for a in sizes]
  for s in range(num_states):
    for joint in _joint(sizes):
      for i in range(n):
        w = _weight(probs, s, joint, skip=i)
        q_full = R[(i, s) + joint] + gamma * float(P[(s,) + joint] @ v[i])
        q[i][s, joint[i]] += w * q_full
  return q


def softmax_rows(x, tau):
  """Row-wise ``softmax(x / tau)``; at ``tau = 0`` uniform over each row's argmax."""
  if tau == 0:
    m = x == x.max(axis=1, keepdims=True)
    return m / m.sum(axis=1, keepdims=True)
  z = np.exp((x - x.max(axis=1, keepdims=True)) / tau)
  return z / z.sum(axis=1, keepdims=True)


def optimal(r, p, gamma, tau):
  """(Soft) value iteration in one MDP: ``(V*, optimal policy)``.

  ``V(s) = tau * log sum_a exp(Q(s, a) / tau)`` (``max_a Q`` at ``tau = 0``),
  ``Q = r + gamma P V``; iterated until the change is below ``VI_TOL``.
  """
  v = np.zeros(r.shape[0])
  for _ in range(100_000):
    q = r + gamma * p @ v
    if tau == 0:
      new = q.max(axis=1)
    else:
      m = q.max(axis=1)
      new = m + tau * np.log(np.sum(np.exp((q - m[:, None]) / tau), axis=1))
    done = np.max(np.abs(new - v)) <= VI_TOL * max(1.0, np.max(np.abs(new)))
    v = new
    if done:
      break
  return v, softmax_rows(r + gamma * p @ v, tau)


def gaps_per_agent(R, P, gamma, rho, probs, tau):
  """``V_i(br_i, pi_-i)(rho) - V_i(pi)(rho)`` with (soft-)optimal ``br_i``.

  At ``tau = 0`` this is the Markov NE-gap; at ``tau > 0`` the soft Markov QRE-gap.
  """
  v = values(R, P, gamma, probs, tau, "soft")
  out = []
  for i in range(R.shape[0]):
    r, p = induced_mdp(R, P, probs, i)
    v_star, _ = optimal(r, p, gamma, tau)
    out.append(float(rho @ v_star - rho @ v[i]))
  return np.array(out)


def kl(p, q):
  nz = p > 0
  return float(np.sum(p[nz] * (np.log(p[nz]) - np.log(q[nz]))))


def kl_residual(R, P, gamma, probs, tau, convention):
  """``tau * max_{i, s} KL(pi_i(.|s) || softmax(Qbar_i(s, .) / tau))``."""
  v = values(R, P, gamma, probs, tau, convention)
  q = q_values(R, P, gamma, probs, v)
  worst = 0.0
  for p_i, q_i in zip(probs, q):
    star = softmax_rows(q_i, tau)
    for s in range(p_i.shape[0]):
      worst = max(worst, tau * kl(p_i[s], star[s]))
  return worst


def npg_step(R, P, gamma, probs, tau, eta, convention="soft"):
  """``pi_i' ∝ pi_i^(1 - eta_bar tau) exp(eta_bar Qbar_i)``, ``eta_bar = eta/(1-gamma)``."""
  v = values(R, P, gamma, probs, tau, convention)
  q = q_values(R, P, gamma, probs, v)
  eta_bar = eta / (1 - gamma)
  out = []
  for p_i, q_i in zip(probs, q):
    logits = (1 - eta_bar * tau) * np.log(p_i) + eta_bar * q_i
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    out.append(w / w.sum(axis=1, keepdims=True))
  return out
