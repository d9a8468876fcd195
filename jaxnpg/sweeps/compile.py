"""The compiled chunk of a sweep: one jitted call for a chunk of games.

Every cell runs the one NPG loop of :func:`jaxnpg.run` (``jaxnpg.loop.run.run_loop``
under ``vmap``). Where the game has a batch-last loop form (small dense games) and
the algorithm works on it (NPG, optimistic NPG), the loop's ``custom_vmap`` rule
runs the whole block as one loop with the batch axes last (``method="dense"``);
otherwise it is plain ``vmap`` of the one-game loop (``method="generic"``).

A family's games are generated inside the compiled call from ``(seed, game
index)`` (:func:`jaxnpg.sweeps.seeding.family_game`), so there is no host loop over
games. The chunk is sharded over the plan's devices and run in blocks on each
(see :mod:`jaxnpg.sweeps.layout`); each block's records are reduced to the
per-cell record (:func:`_summarize`) before they leave the device.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnpg.core.policy import random_policy
from jaxnpg.core.step import unscaled_eta
from jaxnpg.dynamics import attractors as _attractors
from jaxnpg.loop.algorithms import NPG
from jaxnpg.loop.batch_last import compile_for_cpu
from jaxnpg.loop.run import run_loop
from jaxnpg.loop.status import Status
from jaxnpg.sweeps.plan import ChunkKey
from jaxnpg.sweeps.seeding import family_game, init_key, sweep_key


def _summarize(res, traj_idx, keep_logp):
  """The per-cell record (a dict of arrays) of one cell's :class:`RunResult`.

  The status, iterations to tolerance and rates are the run's own verdict
  (:func:`jaxnpg.loop.verdict.verdict`): a sweep cell is exactly ``jaxnpg.run``.
  """
  bad = (res.status == Status.BLEW_UP) | (res.status == Status.INVALID_INPUT)
  nan = jnp.asarray(jnp.nan, res.qre_gap.dtype)
  out = {"qre_gap": jnp.where(bad, nan, res.qre_gap[..., -1]),
         "ne_gap": jnp.where(bad, nan, res.ne_gap[..., -1]),
         "iterations_to_tol": res.iterations_to_tol,
         "linear_rate": res.linear_rate, "monotone": res.monotone,
         "status": res.status, "iterations_needed": res.iterations_needed}
  if traj_idx.size:
    out["qre_gap_trajectory"] = res.qre_gap[..., traj_idx]
    out["ne_gap_trajectory"] = res.ne_gap[..., traj_idx]
  if keep_logp:   # one game's policies, flattened and concatenated
    out["final_logp"] = jnp.concatenate([jnp.ravel(lp) for lp in res.logp])
  return out


def _block_records(game, logp, tau, eta, keys=None, tol=None, *, dense,
                   num_iters, record_every, traj_idx, tail, keep_logp,
                   algorithm=NPG(), per_scale=False):
  """Per-cell records of a block of games: ``{name: (B, P[, S], ...)}``.

  ``P`` cells per game, and ``S`` seeds with ``keys`` of shape ``(B, S)`` (the
  keys of a stochastic ``algorithm``; ``P`` cells share a game's keys). ``tol``
  None takes the default rule per cell. With ``per_scale`` the step sizes are
  the *scaled* ones (``eta * game.step_scale``, the paper rule's), so each game
  gets ``eta / step_scale``: ``eta (1 - gamma)`` for a Markov game.
  """
  def one(g, lp, k, t, e):
    if per_scale:
      e = unscaled_eta(g, e)
    res = run_loop(g, t, e, lp, k, tol, num_iters=num_iters,
                   record_every=record_every, algorithm=algorithm,
                   batch_last=dense, threads=False, tail=tail)
    return _summarize(res, traj_idx, keep_logp)
  tau, eta = tau.astype(game.dtype), eta.astype(game.dtype)
  if keys is None:
    cells = jax.vmap(lambda g, lp, t, e: one(g, lp, None, t, e),
                     (None, None, 0, 0))
    return jax.vmap(cells, (0, 0, None, None))(game, logp, tau, eta)
  seeds = jax.vmap(one, (None, None, 0, None, None))          # (S, ...)
  cells = jax.vmap(seeds, (None, None, None, 0, 0))           # (P, S, ...)
  return jax.vmap(cells, (0, 0, 0, None, None))(game, logp, keys, tau, eta)


def _atlas_cells(game, logp, indices, seed, tau, eta, *, num_inits, num_iters,
                 burn_in, max_period, per_scale, algorithm):
  """Atlas fields of a block of games: ``{name: (B, P)}`` (see ``ATLAS_FIELDS``).

  Every cell runs :func:`jaxnpg.attractor` from each of its game's ``K`` starts
  (:func:`init_key`); the fields are those of start 0, and with ``num_inits``
  ``num_fixed_points`` counts the distinct limits of the starts that converged.
  """
  K = 1 if num_inits is None else num_inits

  def starts(g, lp, i):                                    # (K, *shape) each
    if K == 1:
      return tuple(x[None] for x in lp)
    extra = jax.vmap(lambda k: random_policy(init_key(seed, i, k), g,
                                             draw_dtype=jnp.float32))(
        jnp.arange(1, K))
    return tuple(jnp.concatenate([x[None], y], axis=0)
                 for x, y in zip(lp, extra))

  def one(g, lp, t, e):
    if per_scale:
      e = unscaled_eta(g, e)
    return _attractors.attractor(g, t, e, num_iters, init=lp, burn_in=burn_in,
                                 max_period=max_period, algorithm=algorithm)

  def game_cells(g, lp, i):
    inits = starts(g, lp, i)
    per_init = jax.vmap(one, (None, 0, None, None))            # (K, ...)
    res = jax.vmap(per_init, (None, None, 0, 0))(g, inits, tau, eta)  # (P, K)
    out = {"exponent": res.exponent[:, 0],
           "exponent_stderr": res.stderr[:, 0],
           "attractor": res.attractor[:, 0],
           "period": res.period[:, 0]}
    if num_inits is not None:
      out["num_fixed_points"] = jax.vmap(
          lambda lps, ok: _attractors.count_distinct(lps, valid=ok))(
              res.logp, res.converged)
    return out

  tau, eta = tau.astype(game.dtype), eta.astype(game.dtype)
  return jax.vmap(game_cells)(game, logp, indices)


@functools.lru_cache(maxsize=32)
def _chunk_fn(key: ChunkKey):
  """The jitted function computing one chunk's per-cell records.

  Arguments of the returned function: ``(args, tau, eta, seed, tol)`` with
  ``args`` the per-game inputs (``(indices,)`` for a family, ``(game, logp,
  indices)`` otherwise, leading axis = games of the chunk), ``tau, eta`` the
  ``(P,)`` cells, and the scalars ``seed`` (family games and algorithm keys) and
  ``tol``. Outputs have the axes ``(games, P[, S], ...)``.
  """
  num_iters, record_every, tail = key.num_iters, key.record_every, key.tail
  algorithm, num_seeds, traced = key.algorithm, key.num_seeds, key.traced
  options = dict(key.options)
  traj_idx = np.asarray(key.traj_idx, dtype=np.int64)
  per_scale = key.eta_rule == "paper"

  def block_fn(args, tau, eta, seed, tol, values):
    if key.source == "family":
      (indices,) = args
      opts = {**options, **dict(zip(traced, values))}
      game, logp = jax.vmap(lambda i: family_game(
          key.family, seed, i, key.num_actions, opts, key.init,
          dtype=key.dtype))(indices)
    else:
      game, logp, indices = args
    keys = None
    if algorithm.uses_key:
      seed_idx = jnp.arange(1 if num_seeds is None else num_seeds)
      keys = jax.vmap(lambda i: jax.vmap(lambda s: sweep_key(seed, i, s))(
          seed_idx))(indices)                                      # (B, S)
    out = _block_records(game, logp, tau, eta, keys, tol, dense=key.dense,
                         per_scale=per_scale, num_iters=num_iters,
                         record_every=record_every, traj_idx=traj_idx,
                         tail=tail, keep_logp=key.keep_logp,
                         algorithm=algorithm)  # (B, P[, S], ...)
    if algorithm.uses_key and num_seeds is None:        # no seed axis
      out = jax.tree_util.tree_map(lambda x: x[:, :, 0], out)
    elif not algorithm.uses_key and num_seeds is not None:   # num_seeds == 1
      out = jax.tree_util.tree_map(lambda x: x[:, :, None], out)
    if key.atlas is not None:      # (lyapunov: num_inits, burn_in, max_period)
      num_inits, burn_in, max_period = key.atlas
      out.update(_atlas_cells(game, logp, indices, seed, tau, eta,
                              num_inits=num_inits, num_iters=num_iters,
                              burn_in=burn_in, max_period=max_period,
                              per_scale=per_scale, algorithm=algorithm))
    return out

  block = key.block_games

  def local(args, tau, eta, seed, tol, *values):
    lead = jax.tree_util.tree_leaves(args)[0].shape[0]
    nb = lead // block
    blocks = jax.tree_util.tree_map(
        lambda x: x.reshape((nb, block) + x.shape[1:]), args)
    out = lax.map(lambda a: block_fn(a, tau, eta, seed, tol, values), blocks)
    return jax.tree_util.tree_map(
        lambda x: x.reshape((nb * block,) + x.shape[2:]), out)

  spec = jax.sharding.PartitionSpec
  mesh = jax.sharding.Mesh(np.asarray(key.devices), ("games",))
  sharded = jax.shard_map(local, mesh=mesh,
                          in_specs=(spec("games"),) + (spec(),) * (4 + len(traced)),
                          out_specs=spec("games"))
  return jax.jit(sharded)


_COMPILED: dict = {}


def compiled_chunk(key: ChunkKey, example):
  """The compiled chunk for ``key`` and these inputs (cached per process)."""
  leaves, treedef = jax.tree_util.tree_flatten(example)
  cache_key = (key, repr(treedef),
               tuple((x.shape, str(x.dtype)) for x in leaves))
  if cache_key in _COMPILED:
    return _COMPILED[cache_key]
  lowered = _chunk_fn(key).lower(*example)
  compiled = (compile_for_cpu(lowered) if key.platform == "cpu"
              else lowered.compile())
  if len(_COMPILED) >= 32:
    _COMPILED.pop(next(iter(_COMPILED)))
  _COMPILED[cache_key] = compiled
  return compiled
