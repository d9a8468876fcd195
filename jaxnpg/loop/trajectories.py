"""Gap trajectories of one game for a list of (tau, eta) pairs, in chunks.

This is the driver behind ``jaxnpg run`` and the paper's figures: one compiled,
``vmap``-ed call per chunk of iterations, so long runs can report progress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.tolerance import GAP_RTOL
from jaxnpg.loop.algorithms import get_algorithm
from jaxnpg.loop.iterate import VERDICT_TAIL
from jaxnpg.loop.run import run
from jaxnpg.loop.status import Status
from jaxnpg.loop.verdict import verdict


class Trajectories(NamedTuple):
  """Gaps of one game under several ``(tau, eta)``.

  Attributes:
    iterations: ``(T,)`` iteration numbers of the records.
    qre_gap: ``(P, T)`` QRE-gap per pair and record.
    ne_gap: ``(P, T)`` NE-gap per pair and record.
    logp: final log-policy, ``logp[i].shape == (P, *policy_shapes[i])``.
    status: ``(P,)`` int8 :class:`jaxnpg.Status` code of each whole run, decided by
      the same rule as ``jaxnpg.run`` and a ``jaxnpg.sweep`` cell, on all records.
    tol: ``(P, n)`` every agent's QRE-gap tolerance of the verdict (given or
      default).
    floor: ``(P, n)`` every agent's rounding floor of its QRE-gap at the end.
    iterations_to_tol: ``(P,)`` first recorded iteration with QRE-gap ``<= tol``
      (``-1``: never, or blew up).
    linear_rate: ``(P,)`` fitted linear rate of the QRE-gap's tail (NaN: none).
    iterations_needed: ``(P,)`` for a run that is not converged but still
      falling, the iterations it would need at its rate (NaN: none).
  """
  iterations: np.ndarray
  qre_gap: np.ndarray
  ne_gap: np.ndarray
  logp: tuple[Any, ...]
  status: np.ndarray | None = None
  tol: np.ndarray | None = None
  floor: np.ndarray | None = None
  iterations_to_tol: np.ndarray | None = None
  linear_rate: np.ndarray | None = None
  iterations_needed: np.ndarray | None = None


def run_pairs(game, taus, etas, num_iters: int, *, init, record_every: int = 1,
              chunks: int = 20, algorithm="npg", key=None, tol=None,
              on_chunk: Callable[[int], None] | None = None) -> Trajectories:
  """Run NPG on ``game`` for every ``(taus[p], etas[p])`` from the same ``init``.

  Args:
    game: one game.
    taus, etas: equal-length sequences.
    num_iters: iterations per pair.
    init: initial log-policy (one game, shared by all pairs).
    record_every: record the gaps every this many iterations.
    chunks: split the iterations into about this many compiled calls.
    algorithm: as in ``jaxnpg.run``. Stochastic algorithms need ``key``; then
      every pair draws from its own stream (split from ``key``). Each chunk
      goes on from the state the last one handed back (``RunResult.state``),
      so the result does not depend on the number of chunks.
    key: ``jax.random`` key.
    tol: QRE-gap tolerance of the verdicts (default: ``jaxnpg.run``'s rule).
    on_chunk: called with the number of iterations done after each chunk.

  Returns:
    :class:`Trajectories` (NumPy arrays on the host).
  """
  if len(taus) != len(etas) or not len(taus):
    raise ValueError(
        f"Need as many step sizes as tau values (>= 1), got {len(taus)} tau and "
        f"{len(etas)} eta.")
  tau_arr = jnp.asarray(taus, game.dtype)
  eta_arr = jnp.asarray(etas, game.dtype)
  num_records = num_iters // record_every
  per_chunk = max(1, num_records // max(1, min(chunks, num_records))) * record_every
  algorithm = get_algorithm(algorithm)
  if key is None and algorithm.uses_key:
    raise ValueError("A stochastic algorithm needs `key=`.")
  first = jax.jit(
      jax.vmap(lambda t, e, k, n: run(game, t, e, n, init=init,
                                      record_every=record_every,
                                      algorithm=algorithm, tol=tol,
                                      key=k if algorithm.uses_key else None),
               in_axes=(0, 0, 0, None)),
      static_argnums=3)
  more = jax.jit(
      jax.vmap(lambda t, e, s, n: run(game, t, e, n, init=init,
                                      record_every=record_every,
                                      algorithm=algorithm, tol=tol,
                                      init_state=s),
               in_axes=(0, 0, 0, None)),
      static_argnums=3)
  keys = (jax.random.split(key, len(taus)) if algorithm.uses_key
          else jnp.zeros((len(taus),)))
  init = tuple(jnp.asarray(lp, game.dtype) for lp in init)
  done, state, ks = 0, None, []
  records: dict[str, list] = {"qre": [], "rel": [], "ne": []}
  while True:
    n = min(per_chunk, num_iters - done)
    res = (first(tau_arr, eta_arr, keys, n) if state is None
           else more(tau_arr, eta_arr, state, n))
    state, logp = res.state, res.logp
    keep = slice(None) if done == 0 else slice(1, None)  # drop repeated boundary
    for name, x in (("qre", res.qre_gap), ("rel", res.qre_gap_relative),
                    ("ne", res.ne_gap)):
      records[name].append(np.asarray(x)[:, keep])
    ks.append(np.asarray(res.iterations)[0, keep] + done)
    done += n
    if on_chunk is not None:
      on_chunk(done)
    if done >= num_iters:
      break
  its = np.concatenate(ks)
  qre_all, rel_all, ne_all = (np.concatenate(records[k], axis=-1)
                              for k in ("qre", "rel", "ne"))
  # The verdict of each whole run (the last chunk's status saw only its records);
  # tol, floor and the agents' gaps are the last chunk's, at the final iterate
  # as in run.
  valid = res.status != Status.INVALID_INPUT

  def judge(q, r, g, gaps, t, f, ok):
    return verdict(q, g, jnp.asarray(its, game.dtype),
                   judged=r if tol is None else q,
                   threshold=GAP_RTOL if tol is None else tol, agent_gaps=gaps,
                   tol=t, floor=f, tail=VERDICT_TAIL, num_iters=num_iters,
                   valid=ok)

  q, r, g = (jnp.asarray(x, game.dtype) for x in (qre_all, rel_all, ne_all))
  v = jax.vmap(judge)(q, r, g, res.agent_qre_gap, res.tol, res.floor, valid)
  return Trajectories(its, qre_all, ne_all, logp, status=np.asarray(v.status),
                      tol=np.asarray(res.tol), floor=np.asarray(res.floor),
                      iterations_to_tol=np.asarray(v.iterations_to_tol),
                      linear_rate=np.asarray(v.linear_rate),
                      iterations_needed=np.asarray(v.iterations_needed))
