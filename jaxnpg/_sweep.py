"""Phase sweeps: every (game, tau, eta) cell of a game family in compiled chunks.

``sweep`` runs ``num_iters`` steps of a learning algorithm (NPG by default; see
``jaxnpg.ALGORITHMS``) for every combination of a batch of games, a list of
entropy weights ``tau`` and a list of step sizes ``eta`` (and, for stochastic
algorithms, of ``num_seeds`` seeds), and keeps a small record per cell (final
gaps, iterations to the tolerance, empirical linear rate, monotonicity, a status
code and optionally a subsampled trajectory).

How the work is laid out:

* games come from a registered family (generated inside the compiled call from
  ``(seed, game index)``, so no host loop over games) or from a user's batched game;
* the game axis is split into *chunks* sized from a memory budget; each chunk is one
  compiled call whose results are copied to the host (and to disk with ``out=``);
* within a chunk the game axis is sharded over all devices (``jax.shard_map`` over
  a one-axis ``Mesh``); on each device it is processed in *blocks* of a fixed number
  of games (sized for the CPU's caches; one block per device on accelerators).
  Every operation is elementwise over games, so chunked and one-shot runs agree
  bit for bit, and so do sharded and one-device runs of the batch-last loop. XLA
  compiles a multi-device program differently: on the generic path in float64 the
  policies stay bit-identical and the QRE-gaps differ in the last bits; Markov
  games in float32 can differ by about 1e-5 relative, enough to move
  ``iterations_to_tol`` by one record (measured; the README states it);
* every cell runs the one NPG loop of :func:`jaxnpg.run` (``jaxnpg._solve._run``
  under ``vmap``). Where the game has a batch-last loop form (small dense games)
  and the algorithm works on it (NPG, optimistic NPG), the loop's ``custom_vmap``
  rule runs the whole block as one loop with the batch axes last
  (``method="dense"``); otherwise it is plain ``vmap`` of the one-game loop
  (``method="generic"``).
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import time
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnpg import _attractors, _store
from jaxnpg._algorithms import NPG, describe_algorithm, get_algorithm
from jaxnpg._families import FAMILIES, make_game
from jaxnpg._games import DenseBatchLast
from jaxnpg._policy import random_policy, uniform_policy
from jaxnpg._progress import Progress
from jaxnpg._protocol import Game
from jaxnpg._solve import _run, check_tol
from jaxnpg._results import (SweepResult, _record_iterations, _step_sizes,
                             _traj_indices, assemble)
from jaxnpg._version import __version__
from jaxnpg._verdict import verdict
from jaxnpg._validation import check_policy, check_positive_int

INITS = ("random", "uniform")
METHODS = ("auto", "dense", "generic")

# Target cells per CPU block (the working set then stays in L2) and per chunk.
_CPU_BLOCK_CELLS = 4096
_CPU_CHUNK_CELLS = 1 << 15
_ACCEL_CHUNK_CELLS = 1 << 22


# --------------------------------------------------------------------------------
# Argument handling.


def _float_list(values, name: str) -> list[float]:
  if isinstance(values, str):
    raise ValueError(f"`{name}` must be a sequence of numbers, got {values!r}.")
  try:
    out = [float(v) for v in np.asarray(values, dtype=float).ravel()]
  except (TypeError, ValueError):
    raise ValueError(f"`{name}` must be a sequence of numbers, got {values!r}."
                     ) from None
  if not out:
    raise ValueError(f"`{name}` is empty; give at least one value.")
  if not all(math.isfinite(v) for v in out):
    raise ValueError(f"`{name}` must be finite, got {out}.")
  return out


def _resolve_etas(etas, eta_multipliers):
  """Return ``(rule, axis_values)``."""
  if isinstance(etas, str):
    if etas != "paper":
      raise ValueError(
          f"`etas` must be a list of step sizes or the rule 'paper', got {etas!r}.")
    mult = [1.0] if eta_multipliers is None else _float_list(
        eta_multipliers, "eta_multipliers")
    if any(m <= 0 for m in mult):
      raise ValueError(f"`eta_multipliers` must be > 0, got {mult}.")
    return "paper", mult
  if eta_multipliers is not None:
    raise ValueError(
        "`eta_multipliers` scales a step-size rule; pass etas='paper' with it, "
        "not a list of step sizes.")
  values = _float_list(etas, "etas")
  if any(v <= 0 for v in values):
    raise ValueError(f"`etas` (the step sizes) must be > 0, got {values}.")
  return "constant", values


def _device_memory(device) -> int:
  """Bytes of memory of ``device`` (physical memory for CPUs)."""
  try:
    stats = device.memory_stats() or {}
  except Exception:  # some backends do not implement it
    stats = {}
  if stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  try:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
  except (ValueError, OSError, AttributeError):
    return 8 << 30


# --------------------------------------------------------------------------------
# Games of a sweep.


def family_game(family: str, seed: int, index, num_actions, options=None,
                init: str = "random"):
  """Game ``index`` of a family sweep and its initial policy, as the sweep makes them.

  The game's key is ``fold_in(fold_in(key(seed), index), 0)`` and the random
  initial policy's ``fold_in(fold_in(key(seed), index), 1)``. Both are drawn in
  float32 and then cast to JAX's default float, so a float32 and a float64 sweep
  of a family run exactly the same games from the same starts. Vmappable over
  ``index``; call it with a Python int to rebuild one cell's game.

  Returns:
    ``(game, logp)``.

  Example:
    >>> import jaxnpg
    >>> game, logp = jaxnpg.family_game("random", 0, 3, (3, 4, 5))
    >>> game.num_actions, [lp.shape for lp in logp]
    ((3, 4, 5), [(3,), (4,), (5,)])
  """
  key = jax.random.fold_in(jax.random.key(seed), index)
  game = make_game(family, jax.random.fold_in(key, 0), tuple(num_actions),
                   dtype=jnp.float32, **(options or {}))
  game = game.astype(jnp.result_type(float))
  if init == "random":
    logp = random_policy(jax.random.fold_in(key, 1), game,
                         draw_dtype=jnp.float32)
  elif init == "uniform":
    logp = uniform_policy(game)
  else:
    raise ValueError(f"`init` must be one of {INITS}, got {init!r}.")
  return game, logp


def sweep_key(seed: int, index, seed_index=0):
  """The ``jax.random`` key a stochastic algorithm gets in a sweep cell.

  Game ``index`` (the family's game index, or the position in a user's batch)
  and seed ``seed_index`` of a sweep with ``seed`` use
  ``fold_in(fold_in(fold_in(key(seed), index), 2), seed_index)``: next to the
  game's (``... , 0)``) and initial policy's (``..., 1)``) keys of
  :func:`family_game`, and the same for every ``(tau, eta)`` of the game (common
  random numbers across the phase diagram). A sweep without ``num_seeds`` uses
  ``seed_index = 0``. Vmappable over ``index`` and ``seed_index``.

  Example:
    >>> import jax, jaxnpg
    >>> game, logp = jaxnpg.family_game("random", 0, 3, (2, 3))
    >>> res = jaxnpg.run(game, 1.0, 0.1, 20, init=logp, algorithm="sampled_npg",
    ...                  key=jaxnpg.sweep_key(0, 3, seed_index=1))
    >>> res.qre_gap.shape     # cell (3, tau, eta, seed 1) of such a sweep
    (21,)
  """
  key = jax.random.fold_in(jax.random.key(seed), index)
  return jax.random.fold_in(jax.random.fold_in(key, 2), seed_index)


def init_key(seed: int, index, init_index):
  """The ``jax.random`` key of start ``init_index >= 1`` of game ``index`` (atlas).

  With ``num_inits=K``, game ``index`` of a sweep with ``seed`` runs its attractor
  classification from ``K`` initial policies: start 0 is the sweep's own initial
  policy (:func:`family_game`'s, or the given one), and start ``k >= 1`` is a
  Dirichlet(1) policy (drawn in float32, as :func:`family_game` draws) from the
  key ``fold_in(fold_in(fold_in(key(seed), index), 3), k)``, next to the game's
  (``..., 0)``), initial policy's (``..., 1)``) and :func:`sweep_key`'s
  (``..., 2)``) keys. The same starts serve every ``(tau, eta)`` of the game.
  Vmappable over ``index`` and ``init_index``.

  Example:
    >>> import jax, jaxnpg
    >>> game, _ = jaxnpg.family_game("covariant", 0, 5, (4, 4))
    >>> start_2 = jaxnpg.random_policy(jaxnpg.init_key(0, 5, 2), game,
    ...                                draw_dtype=jax.numpy.float32)
    >>> [lp.shape for lp in start_2]      # start 2 of game 5 of such a sweep
    [(4,), (4,)]
  """
  key = jax.random.fold_in(jax.random.key(seed), index)
  return jax.random.fold_in(jax.random.fold_in(key, 3), init_index)


def _game_digest(game, init) -> str:
  h = hashlib.sha256()
  leaves, treedef = jax.tree_util.tree_flatten((game, init))
  h.update(repr(treedef).encode())
  for leaf in leaves:
    arr = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{arr.dtype}{arr.shape}".encode())
    h.update(arr.tobytes())
  return h.hexdigest()


# --------------------------------------------------------------------------------
# The compiled chunk.


def _summarize(qre, ne, iterations, *, tol, floor, tail, num_iters, traj_idx):
  """Per-cell record from one cell's recorded gaps (``(R,)`` each).

  The verdict is :func:`jaxnpg._verdict.verdict`, the same as ``jaxnpg.run``'s.
  """
  v = verdict(qre, ne, iterations, tol=tol, floor=floor, tail=tail,
              num_iters=num_iters)
  out = {"qre_gap": v.qre_gap, "ne_gap": v.ne_gap,
         "iterations_to_tol": v.iterations_to_tol,
         "linear_rate": v.linear_rate, "monotone": v.monotone,
         "status": v.status}
  if traj_idx.size:
    out["qre_gap_trajectory"] = qre[traj_idx]
    out["ne_gap_trajectory"] = ne[traj_idx]
  return out


def _block_records(game, logp, tau, eta, keys=None, tol=None, *, dense,
                   num_iters, record_every, algorithm=NPG(), per_scale=False):
  """Recorded gaps, tolerance and rounding floor of a block of games.

  ``(qre, ne, tol, floor)``: gaps ``(B, P, R)`` and ``(B, P)`` scalars per cell,
  or ``(B, P, S, ...)`` with ``keys`` of shape ``(B, S)`` (the keys of a
  stochastic ``algorithm``; ``P`` cells share a game's keys). ``tol`` None takes
  the default rule per cell. With ``per_scale`` the step sizes are the *scaled*
  ones (``eta * game.step_scale``, the paper rule's, SPEC), so each game gets
  ``eta / step_scale``: ``eta (1 - gamma)`` for a Markov game.
  """
  def one(g, lp, k, t, e):
    if per_scale:
      e = e / g.step_scale
    res = _run(g, t, e, lp, k, tol, num_iters=num_iters,
               record_every=record_every, algorithm=algorithm, batch_last=dense)
    return res.qre_gap, res.ne_gap, res.tol, res.floor
  tau, eta = tau.astype(game.dtype), eta.astype(game.dtype)
  if keys is None:
    cells = jax.vmap(lambda g, lp, t, e: one(g, lp, None, t, e),
                     (None, None, 0, 0))
    return jax.vmap(cells, (0, 0, None, None))(game, logp, tau, eta)
  seeds = jax.vmap(one, (None, None, 0, None, None))          # (S, R)
  cells = jax.vmap(seeds, (None, None, None, 0, 0))           # (P, S, R)
  return jax.vmap(cells, (0, 0, 0, None, None))(game, logp, keys, tau, eta)


def _atlas_cells(game, logp, indices, seed, tau, eta, *, num_inits, num_iters,
                 burn_in, max_period, per_scale):
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
      e = e / g.step_scale
    return _attractors.attractor(g, t, e, num_iters, init=lp, burn_in=burn_in,
                                 max_period=max_period)

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


class _Plan:
  """Everything static about one sweep: cells, games, layout."""

  def __init__(self, **kw):
    self.__dict__.update(kw)

  def static_key(self):
    """What the compiled chunk depends on besides input shapes (hashable).

    Options named in ``traced_options`` enter as inputs, not constants (so that
    one compiled chunk serves every value; see :func:`jaxnpg.atlas`).
    """
    traced = tuple(getattr(self, "traced_options", ()))
    options = tuple(sorted((k, "<input>" if k in traced else v)
                           for k, v in self.family_options.items()))
    return (self.source, self.family, self.num_actions,
            (options, traced), self.init, self.dense,
            self.num_iters, self.record_every, tuple(self.traj_idx.tolist()),
            self.tail, self.block_games, tuple(self.devices), self.platform,
            self.algorithm, self.num_seeds, self.eta_rule, self.atlas)


@functools.lru_cache(maxsize=32)
def _chunk_fn(static_key):
  """The jitted function computing one chunk's per-cell records.

  Arguments of the returned function: ``(args, tau, eta, seed, tol)`` with
  ``args`` the per-game inputs (``(indices,)`` for a family, ``(game, logp,
  indices)`` otherwise, leading axis = games of the chunk), ``tau, eta`` the
  ``(P,)`` cells, and the scalars ``seed`` (family games and algorithm keys) and
  ``tol``. Outputs have the axes ``(games, P[, S], ...)``.
  """
  (source, family, num_actions, options, init, dense, num_iters, record_every,
   traj_idx, tail, block, devices, _, algorithm, num_seeds, eta_rule,
   atlas) = static_key
  options, traced = options
  options = dict(options)
  traj_idx = np.asarray(traj_idx, dtype=np.int64)
  rec_iters = _record_iterations(num_iters, record_every)

  def summarize_block(qre, ne, tol, floor):
    dtype = qre.dtype
    iterations = jnp.asarray(rec_iters).astype(dtype)
    fn = lambda q, n, t, f: _summarize(q, n, iterations, tol=t, floor=f,
                                       tail=tail, num_iters=num_iters,
                                       traj_idx=traj_idx)
    lead = qre.shape[:-1]
    out = jax.vmap(fn)(qre.reshape((-1, qre.shape[-1])),
                       ne.reshape((-1, ne.shape[-1])), tol.reshape(-1),
                       floor.reshape(-1))
    return jax.tree_util.tree_map(lambda x: x.reshape(lead + x.shape[1:]), out)

  def block_fn(args, tau, eta, seed, tol, values):
    if source == "family":
      (indices,) = args
      opts = {**options, **dict(zip(traced, values))}
      game, logp = jax.vmap(lambda i: family_game(
          family, seed, i, num_actions, opts, init))(indices)
    else:
      game, logp, indices = args
    keys = None
    if algorithm.uses_key:
      seed_idx = jnp.arange(1 if num_seeds is None else num_seeds)
      keys = jax.vmap(lambda i: jax.vmap(lambda s: sweep_key(seed, i, s))(
          seed_idx))(indices)                                      # (B, S)
    records = _block_records(game, logp, tau, eta, keys, tol, dense=dense,
                             per_scale=eta_rule == "paper",
                             num_iters=num_iters, record_every=record_every,
                             algorithm=algorithm)
    out = summarize_block(*records)                     # (B, P[, S], ...)
    if algorithm.uses_key and num_seeds is None:        # no seed axis
      out = jax.tree_util.tree_map(lambda x: x[:, :, 0], out)
    elif not algorithm.uses_key and num_seeds is not None:   # num_seeds == 1
      out = jax.tree_util.tree_map(lambda x: x[:, :, None], out)
    if atlas is not None:            # (lyapunov: num_inits, burn_in, max_period)
      num_inits, burn_in, max_period = atlas
      out.update(_atlas_cells(game, logp, indices, seed, tau, eta,
                              num_inits=num_inits, num_iters=num_iters,
                              burn_in=burn_in, max_period=max_period,
                              per_scale=eta_rule == "paper"))
    return out

  def local(args, tau, eta, seed, tol, *values):
    lead = jax.tree_util.tree_leaves(args)[0].shape[0]
    nb = lead // block
    blocks = jax.tree_util.tree_map(
        lambda x: x.reshape((nb, block) + x.shape[1:]), args)
    out = lax.map(lambda a: block_fn(a, tau, eta, seed, tol, values), blocks)
    return jax.tree_util.tree_map(
        lambda x: x.reshape((nb * block,) + x.shape[2:]), out)

  spec = jax.sharding.PartitionSpec
  mesh = jax.sharding.Mesh(np.asarray(devices), ("games",))
  sharded = jax.shard_map(local, mesh=mesh,
                          in_specs=(spec("games"),) + (spec(),) * (4 + len(traced)),
                          out_specs=spec("games"))
  return jax.jit(sharded)


_COMPILED: dict = {}


def _compiled_chunk(plan, example):
  """The compiled chunk for ``plan`` and these inputs (cached per process)."""
  leaves, treedef = jax.tree_util.tree_flatten(example)
  key = (plan.static_key(), repr(treedef),
         tuple((x.shape, str(x.dtype)) for x in leaves))
  if key in _COMPILED:
    return _COMPILED[key]
  lowered = _chunk_fn(plan.static_key()).lower(*example)
  compiled = None
  if plan.platform == "cpu":
    try:  # AVX-512 where the CPU has it: ~15% faster on the dense kernel
      compiled = lowered.compile(compiler_options={
          "xla_cpu_prefer_vector_width": "512"})
    except Exception:  # an XLA that does not know the option
      compiled = None
  if compiled is None:
    compiled = lowered.compile()
  if len(_COMPILED) >= 32:
    _COMPILED.pop(next(iter(_COMPILED)))
  _COMPILED[key] = compiled
  return compiled


def _global_array(plan, host: np.ndarray, sharded: bool):
  """Place a host array on the mesh (sharded over games, or replicated)."""
  spec = jax.sharding.PartitionSpec("games") if sharded else (
      jax.sharding.PartitionSpec())
  sharding = jax.sharding.NamedSharding(plan.mesh, spec)
  return jax.make_array_from_callback(host.shape, sharding,
                                      lambda idx: host[idx])


def _to_host(x) -> np.ndarray:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


# --------------------------------------------------------------------------------
# The public entry point.


def sweep(family: str | None = None, *, num_actions: Sequence[int] = (3, 4, 5),
          num_games: int | None = None, seed: int = 0, game: Game | None = None,
          init="random", family_options: dict | None = None,
          taus: Sequence[float], etas: Sequence[float] | str = "paper",
          eta_multipliers: Sequence[float] | None = None, num_iters: int = 1000,
          tol: float | None = None, record_every: int | None = None,
          trajectory_points: int = 0, tail: float = 0.5, method: str = "auto",
          chunk_games: int | None = None, memory_budget: int | None = None,
          devices: Sequence[Any] | None = None, out: str | os.PathLike | None = None,
          quiet: bool = False,
          on_chunk: Callable[[dict], None] | None = None,
          algorithm="npg", num_seeds: int | None = None,
          lyapunov: bool = False, num_inits: int | None = None,
          burn_in: int | None = None, max_period: int = 16) -> SweepResult:
  """Run NPG (or another algorithm) on every (game, tau, eta) cell and record it.

  Every cell starts from its game's initial policy (the same for all ``tau`` and
  ``eta`` of a game, as in the paper's figure) and takes ``num_iters`` steps; the
  QRE- and NE-gaps are recorded every ``record_every`` steps (the records of
  :func:`jaxnpg.run`), and from them each cell keeps its final gaps, the first
  recorded iteration with QRE-gap ``<= tol``, :func:`jaxnpg.linear_rate` of the
  tail, whether the gap decreased monotonically, a status code, and, with
  ``trajectory_points``, the gaps subsampled to that many records. A cell that
  blows up (NaN/inf) or stalls gets its status; it never stops the others.

  The eta axis: ``etas`` is either a list of step sizes (the axis holds them and
  every tau uses each), or the rule ``"paper"``, ``eta = m / (2 (tau + 2 sum A_i))``
  (:func:`jaxnpg.paper_eta`), whose axis holds the multipliers ``m`` from
  ``eta_multipliers`` (default ``[1]``). ``SweepResult.step_size[t, e]`` is the step
  size each cell used either way.

  Status codes (:class:`jaxnpg.Status`, the same verdict as :func:`jaxnpg.run`):
  ``0`` converged (final QRE-gap finite and ``<= tol``), ``1`` not converged,
  ``2`` blew up (a recorded gap not finite; the cell's gaps and rate are then NaN
  and ``iterations_to_tol`` is -1), ``3`` stalled (above ``tol``, and over the
  fitted tail the gap fell by less than a factor 2, or no rate could be fitted),
  ``4`` at the rounding floor (above ``tol`` but at the dtype's rounding floor
  for the cell, which lies above ``tol``: see :mod:`jaxnpg._tolerance`).

  Algorithms: ``algorithm`` is any choice of :func:`jaxnpg.run` (``"npg"``,
  ``"sampled_npg"``, ``"pg"``, ``"optimistic_npg"`` or an instance such as
  ``jaxnpg.SampledNPG(num_samples=16)``); every cell is then exactly
  ``jaxnpg.run(game, tau, eta, num_iters, init=..., algorithm=algorithm,
  key=...)``. Plain NPG on small dense games takes the dense kernel; everything
  else the generic path. A stochastic algorithm (``sampled_npg``) gets the key
  :func:`sweep_key` ``(seed, g, s)`` in every cell of game ``g``; with
  ``num_seeds=S`` the result has a ``seed`` axis of length ``S`` (after ``eta``)
  holding independent repetitions ``s = 0 .. S-1``, and ``SweepResult.summary()``
  reports mean and spread over them. Without ``num_seeds`` there is no seed axis
  and every cell uses ``s = 0``, so it equals seed 0 of a seeded sweep.

  Atlas fields (``lyapunov=True``; plain NPG only): every cell also runs
  :func:`jaxnpg.attractor` ``(game, tau, eta, num_iters, init=..., burn_in=...,
  max_period=...)`` from its game's initial policy (the same start as the gap
  fields), a second trajectory with its tangent: ``burn_in + num_iters +
  2 * max_period`` more steps per start. The cell records the largest Lyapunov
  exponent and its standard error, the :class:`jaxnpg.Attractor` code and the
  period. With ``num_inits=K`` the run is repeated from ``K`` starts per game
  (start 0 the sweep's, starts ``k >= 1`` from :func:`init_key`); the exponent,
  attractor and period stay those of start 0, and ``num_fixed_points`` counts the
  distinct fixed points among the limits of the starts that converged
  (:func:`jaxnpg.count_distinct`, max-abs distance ``1e-3`` in log-policy space),
  so ``>= 2`` means several stable fixed points. Without ``lyapunov`` none of
  this is computed (the compiled program is the one of a plain sweep) and the
  fields are None.

  Args:
    family: a registered family name (default ``"random"``); leave None with
      ``game``.
    num_actions: ``(A_1, ..., A_n)`` of the family's games.
    num_games: number of games (family sweeps; default 64).
    seed: seed of the family's games and random initial policies (game ``g`` uses
      :func:`family_game` ``(family, seed, g, ...)``).
    game: instead of a family, a batch of games with ``batch_shape == (G,)``.
    init: ``"random"`` (a Dirichlet(1) policy per game; default) or
      ``"uniform"``; with ``game=`` also a batched log-policy (``(G, *shape)``).
    family_options: keyword options of the family (e.g. ``{"graph": "ring"}``).
    taus: entropy weights, each ``>= 0``.
    etas: step sizes (each ``> 0``) or ``"paper"`` (default).
    eta_multipliers: multipliers of the ``"paper"`` rule (default ``[1.0]``).
    num_iters: NPG steps per cell.
    tol: QRE-gap tolerance, ``> 0``. Default: per cell, ``1e-6 * (max|rbar| +
      tau log A)`` at the final iterate (relative to the size of the
      regularized reward), the same rule in float32 and float64 so both dtypes
      draw the same phase diagram (see :mod:`jaxnpg._tolerance`).
    record_every: record the gaps every this many steps (default: about 200
      records); the resolution of ``iterations_to_tol`` and of the trajectories.
    trajectory_points: keep this many records of each cell's trajectory (0: none).
    tail: fraction of the trajectory fitted by ``linear_rate``.
    method: ``"dense"`` (batch-last kernel for small dense games), ``"generic"``
      (vmap of the one-game solver; any game type) or ``"auto"``.
    chunk_games: games per chunk (default: from the memory budget, at most about
      32768 cells on CPU); a multiple of the device count.
    memory_budget: bytes a chunk may use per device (default: a quarter of the
      device's memory).
    devices: devices to shard the game axis over (default: all, ``jax.devices()``).
    out: folder to write the chunks and manifest to; an existing sweep there with
      the same parameters is resumed (finished chunks are verified and skipped), a
      different one is refused (``ValueError``).
    quiet: no progress bar (one is shown on stderr for sweeps longer than
      a few seconds).
    on_chunk: called after each chunk with a dict (``chunk``, ``games``,
      ``seconds``, ``skipped``).
    algorithm: the learning algorithm (default ``"npg"``; see above).
    num_seeds: repetitions of a stochastic algorithm with independent keys; adds
      the ``seed`` axis (also for ``num_seeds=1``). Deterministic algorithms
      accept only ``None`` or 1.
    lyapunov: also record the atlas fields (see above); plain NPG without
      seeds only.
    num_inits: ``K >= 1`` starts per game for ``num_fixed_points`` (needs
      ``lyapunov``).
    burn_in: steps of each attractor run before the exponent is averaged over
      ``num_iters`` steps (default: ``num_iters``).
    max_period: largest period the attractor runs look for (default 16).

  Returns:
    A :class:`SweepResult`; ``attrs`` holds the parameters and the chosen chunking.

  Raises:
    ValueError: bad arguments (empty or negative ``taus``, ``etas <= 0``, unknown
      family or algorithm, ...) or an ``out`` folder holding a different sweep
      (other parameters, another algorithm or number of seeds).

  Example:
    >>> import jaxnpg
    >>> res = jaxnpg.sweep("random", num_actions=(2, 2), num_games=4,
    ...                    taus=[0.1, 1.0], etas=[0.05, 0.1], num_iters=200)
    >>> res.shape, res.dims["status"]
    ((4, 2, 2), ('game', 'tau', 'eta'))
    >>> bool((res.status[:, 1] == 0).all())   # tau = 1 converges in every game
    True
  """
  return _sweep(family=family, num_actions=num_actions, num_games=num_games,
                seed=seed, game=game, init=init, family_options=family_options,
                taus=taus, etas=etas, eta_multipliers=eta_multipliers,
                num_iters=num_iters, tol=tol, record_every=record_every,
                trajectory_points=trajectory_points, tail=tail, method=method,
                chunk_games=chunk_games, memory_budget=memory_budget,
                devices=devices, algorithm=algorithm, num_seeds=num_seeds,
                lyapunov=lyapunov, num_inits=num_inits, burn_in=burn_in,
                max_period=max_period, out=out, quiet=quiet, on_chunk=on_chunk)


def _sweep(*, out, quiet, on_chunk, traced_options=(), **kwargs):
  """:func:`sweep`, where the family options named in ``traced_options`` (numbers)
  are inputs of the compiled chunk instead of constants: sweeps that differ only
  in their values share one compilation (``jaxnpg.atlas`` runs one per value).
  Results are those of :func:`sweep` with the same arguments."""

  plan = _plan(recorded=out is not None, **kwargs)
  chunk_games = kwargs["chunk_games"]
  for name in traced_options:
    value = plan.family_options.get(name)
    if plan.source != "family" or isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)):
      raise ValueError(f"Family option {name!r} must be a number to be an "
                       f"input of the sweep, got {value!r}.")
  plan.traced_options = tuple(traced_options)
  store = None
  if out is not None:
    store = _store.SweepStore.open(out, plan.params, plan.layout,
                                   chunk_games_given=chunk_games is not None)
  with _store.held(store):   # the folder lock, released however this ends
    if store is not None and store.layout != plan.layout:   # stored chunking
      plan = _replan(plan, store.layout["chunk_games"])
    return _execute(plan, store, quiet=quiet, on_chunk=on_chunk)


def _plan(*, family, num_actions, num_games, seed, game, init, family_options,
          taus, etas, eta_multipliers, num_iters, tol, record_every,
          trajectory_points, tail, method, chunk_games, memory_budget, devices,
          algorithm=NPG(), num_seeds=None, recorded=False, lyapunov=False,
          num_inits=None, burn_in=None, max_period=16):
  """Check every argument and fix the static layout of the sweep."""
  algorithm = get_algorithm(algorithm)
  atlas = _check_atlas(lyapunov, num_inits, burn_in, max_period, algorithm,
                       num_seeds, num_iters)
  if num_seeds is not None:
    num_seeds = check_positive_int(num_seeds, "num_seeds")
    if num_seeds > 1 and not algorithm.uses_key:
      raise ValueError(
          f"num_seeds={num_seeds} repeats a deterministic algorithm "
          f"({algorithm.name!r}) with identical results; seeds are for "
          "stochastic algorithms (sampled_npg). Leave num_seeds unset.")
  try:
    alg_name, alg_options = describe_algorithm(algorithm)
  except ValueError:
    if recorded:   # the manifest must identify the algorithm to check a resume
      raise
    alg_name, alg_options = algorithm.name, {"description": "unavailable"}
  tau_list = _float_list(taus, "taus")
  if any(t < 0 for t in tau_list):
    raise ValueError(f"`taus` must be >= 0 (entropy weights), got {tau_list}.")
  eta_rule, eta_axis = _resolve_etas(etas, eta_multipliers)
  num_iters = check_positive_int(num_iters, "num_iters")
  trajectory_points = check_positive_int(trajectory_points, "trajectory_points",
                                         allow_zero=True)
  if not 0 < tail <= 1:
    raise ValueError(f"`tail` must be in (0, 1], got {tail}.")
  if method not in METHODS:
    raise ValueError(f"`method` must be one of {METHODS}, got {method!r}.")
  options = dict(family_options or {})
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
      0 <= int(seed) < 2**32):
    raise ValueError(f"`seed` must be an integer in [0, 2**32), got {seed!r}.")

  if game is not None:
    if family is not None:
      raise ValueError("Pass either a `family` name or a batched `game`, not both.")
    if not isinstance(game, Game):
      raise ValueError(f"`game` must be a jaxnpg game, got {type(game).__name__}.")
    if len(game.batch_shape) != 1:
      raise ValueError(
          f"`game` must be a batch of games with one batch axis, got batch shape "
          f"{game.batch_shape}; stack games along a leading axis.")
    G = game.batch_shape[0]
    if num_games is not None and num_games != G:
      raise ValueError(f"`num_games`={num_games} but the game batch holds {G}.")
    if isinstance(init, str):
      if init not in INITS:
        raise ValueError(f"`init` must be one of {INITS} or a policy, got {init!r}.")
      if init == "uniform":
        init_logp = uniform_policy(game)
      else:
        init_logp = random_policy(jax.random.key(seed), game)
      init_name = init
    else:
      check_policy(game, init, batched=True)
      init_logp = tuple(jnp.asarray(lp, game.dtype) for lp in init)
      if any(lp.shape[:1] != (G,) for lp in init_logp):
        raise ValueError(f"`init` must have a leading game axis of size {G}.")
      init_name = "given"
    source = "game"
    proto = jax.tree_util.tree_map(lambda x: x[0], game)
    num_actions = tuple(game.num_actions)
    family_name = None
    digest = _game_digest(game, init_logp)
  else:
    family_name = "random" if family is None else family
    if family_name not in FAMILIES:
      raise ValueError(
          f"Unknown game family {family_name!r}; choose one of "
          f"{sorted(FAMILIES)}.")
    num_actions = tuple(int(a) for a in num_actions)
    if not num_actions or any(a < 1 for a in num_actions):
      raise ValueError(f"`num_actions` must be positive integers, got "
                       f"{num_actions}.")
    G = check_positive_int(64 if num_games is None else num_games, "num_games")
    if not isinstance(init, str) or init not in INITS:
      raise ValueError(f"`init` must be one of {INITS} for a family sweep, got "
                       f"{init!r}.")
    init_name = init
    source = "family"
    # One game, traced abstractly, tells the type, sizes and dtype.
    proto = jax.eval_shape(lambda: family_game(family_name, seed, 0, num_actions,
                                               options, init)[0])
    digest = None
    game = init_logp = None

  dtype = jnp.dtype(proto.dtype)
  if tol is not None:
    check_tol(tol)
    tol = float(tol)
  if record_every is None:
    record_every = max(1, num_iters // 200)
  record_every = check_positive_int(record_every, "record_every")
  if record_every > num_iters:
    raise ValueError(f"`record_every`={record_every} exceeds `num_iters`="
                     f"{num_iters}.")

  dense_ok = proto.loop_form().batch_last
  if method == "dense" and not dense_ok:
    raise ValueError(
        f"method='dense' needs a game with a batch-last loop form (a "
        f"NormalFormGame with n * prod(A) <= {DenseBatchLast.MAX_TERMS}); got "
        f"{type(proto).__name__} with actions {num_actions}. Use "
        "method='generic'.")
  if method == "dense" and not algorithm.batch_last:
    raise ValueError(
        f"method='dense' runs algorithms that work batch-last (npg, "
        f"optimistic_npg); algorithm {algorithm.name!r} takes the generic path "
        "(method='generic' or 'auto').")
  dense = dense_ok and algorithm.batch_last and method != "generic"
  if algorithm.uses_key and not hasattr(proto, "rewards_at"):
    raise ValueError(
        f"{algorithm.name} needs a static game with `rewards_at`; "
        f"{type(proto).__name__} has none.")
  S = num_seeds if algorithm.uses_key and num_seeds is not None else 1

  step_size = _step_sizes(eta_rule, tau_list, eta_axis, num_actions)
  tau_cells = np.repeat(np.asarray(tau_list), len(eta_axis))
  eta_cells = step_size.ravel()
  P = tau_cells.size
  rec_iters = _record_iterations(num_iters, record_every)
  traj_idx = _traj_indices(rec_iters.size, trajectory_points)

  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("`devices` is empty.")
  platform = devices[0].platform

  # Memory per game while a block runs, and per game of a chunk's outputs.
  itemsize = dtype.itemsize
  policy_size = sum(math.prod(s) for s in proto.policy_shapes)
  game_bytes = sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize
                   for x in jax.tree_util.tree_leaves(proto))
  per_cell_work = itemsize * (16 * policy_size + 2 * rec_iters.size + 16)
  samples = int(getattr(algorithm, "num_samples", 0))  # sampled_npg's draws
  per_cell_work += itemsize * 4 * samples * (len(num_actions) + policy_size)
  per_cell_out = itemsize * (8 + 2 * traj_idx.size)
  if atlas is not None:   # K attractor runs: state, tangent, period history
    K = 1 if atlas[0] is None else atlas[0]
    per_cell_work += itemsize * K * policy_size * (2 * atlas[2] + 16)
    per_cell_out += itemsize * 6
  work_per_game = 4 * game_bytes + P * S * per_cell_work
  out_per_game = P * S * per_cell_out
  budget = (int(memory_budget) if memory_budget is not None
            else _device_memory(devices[0]) // 4)
  if budget <= 0:
    raise ValueError(f"`memory_budget` must be > 0, got {memory_budget}.")

  plan = _Plan(
      source=source, family=family_name, num_actions=num_actions,
      family_options=options, seed=int(seed), num_games=G, game=game,
      init_logp=init_logp, init=init_name, taus=np.asarray(tau_list),
      eta_rule=eta_rule, eta_axis=np.asarray(eta_axis), step_size=step_size,
      tau_cells=tau_cells, eta_cells=eta_cells, num_iters=num_iters, tol=tol,
      record_every=record_every, record_iterations=rec_iters, traj_idx=traj_idx,
      tail=float(tail), dense=dense, dtype=dtype, all_devices=devices,
      platform=platform, budget=budget, work_per_game=work_per_game,
      out_per_game=out_per_game, proto=proto, digest=digest,
      algorithm=algorithm, num_seeds=num_seeds, cells_per_game=P * S,
      atlas=atlas)
  plan.params = {
      "format": "jaxnpg-sweep/1", "source": source, "family": family_name,
      "family_options": options, "num_actions": list(num_actions),
      "num_games": G, "seed": int(seed), "game_sha256": digest,
      "init": init_name, "taus": tau_list, "eta_rule": eta_rule,
      "etas": list(eta_axis), "num_iters": num_iters, "tol": tol,
      "record_every": record_every, "trajectory_points": trajectory_points,
      "tail": float(tail), "dtype": str(dtype),
      "method": "dense" if dense else "generic",
      "algorithm": alg_name, "algorithm_options": alg_options,
      "num_seeds": num_seeds,
      "lyapunov": atlas is not None,
      "num_inits": None if atlas is None else atlas[0],
      "burn_in": None if atlas is None else atlas[1],
      "max_period": None if atlas is None else atlas[2],
  }
  return _layout(plan, chunk_games)


def _check_atlas(lyapunov, num_inits, burn_in, max_period, algorithm, num_seeds,
                 num_iters):
  """``None`` (no atlas fields) or ``(num_inits, burn_in, max_period)``."""
  if not isinstance(lyapunov, (bool, np.bool_)):
    raise ValueError(f"`lyapunov` must be True or False, got {lyapunov!r}.")
  if not lyapunov:
    if num_inits is not None:
      raise ValueError(
          "`num_inits` sets the starts of the attractor runs; pass "
          "lyapunov=True with it.")
    return None
  if type(algorithm) is not NPG:
    raise ValueError(
        f"lyapunov=True classifies the exact NPG map; algorithm "
        f"{algorithm.name!r} is not plain NPG.")
  if num_seeds is not None:
    raise ValueError("lyapunov=True runs the deterministic NPG map; leave "
                     "num_seeds unset.")
  if num_inits is not None:
    num_inits = check_positive_int(num_inits, "num_inits")
  num_iters = check_positive_int(num_iters, "num_iters")
  burn_in = num_iters if burn_in is None else check_positive_int(
      burn_in, "burn_in", allow_zero=True)
  max_period = check_positive_int(max_period, "max_period")
  return (num_inits, int(burn_in), int(max_period))


def _layout(plan, chunk_games):
  """Fix devices, block size and chunk size (in games) of ``plan``.

  On CPU a device runs its games in blocks of about ``_CPU_BLOCK_CELLS`` cells (the
  working set of a block stays in cache) and a chunk holds about
  ``_CPU_CHUNK_CELLS`` cells; on accelerators a device runs its whole share of the
  chunk as one block and a chunk holds up to ``_ACCEL_CHUNK_CELLS`` cells. Both are
  capped by the memory budget per device.
  """
  G, P = plan.num_games, plan.cells_per_game
  devices = plan.all_devices
  if chunk_games is not None:
    chunk_games = check_positive_int(chunk_games, "chunk_games")
    # Use as many devices as divide the chunk evenly.
    devices = devices[:max(d for d in range(1, len(devices) + 1)
                           if chunk_games % d == 0)]
  nd = len(devices)
  cpu = plan.platform == "cpu"
  work_games = max(1, plan.budget // max(plan.work_per_game, 1))
  out_games = max(1, plan.budget // max(plan.out_per_game, 1))
  block_target = max(1, min(_CPU_BLOCK_CELLS // P, work_games)) if cpu else None
  if chunk_games is None:
    target = _CPU_CHUNK_CELLS if cpu else _ACCEL_CHUNK_CELLS
    per_dev = max(1, target // P // nd)
    per_dev = min(per_dev, out_games if cpu else work_games, -(-G // nd))
    if cpu:  # a whole number of blocks
      block_target = min(block_target, per_dev)
      per_dev = per_dev // block_target * block_target
    chunk_games = per_dev * nd
  local = chunk_games // nd
  if cpu:
    block = max(b for b in range(1, min(block_target, local) + 1)
                if local % b == 0)
  else:
    block = local
  plan.devices = devices
  plan.num_devices = nd
  plan.block_games = block
  plan.chunk_games = chunk_games
  plan.num_chunks = -(-G // chunk_games)
  plan.mesh = jax.sharding.Mesh(np.asarray(devices), ("games",))
  plan.layout = {"chunk_games": chunk_games, "num_chunks": plan.num_chunks}
  return plan


def _replan(plan, chunk_games):
  return _layout(plan, int(chunk_games))


def _chunk_inputs(plan, c):
  """Host arrays of chunk ``c`` (padded to ``chunk_games``) and its game range."""
  start = c * plan.chunk_games
  stop = min(start + plan.chunk_games, plan.num_games)
  idx = np.arange(start, start + plan.chunk_games, dtype=np.int32)
  if plan.source == "family":
    return (idx,), (start, stop)
  take = np.minimum(idx, plan.num_games - 1)
  args = jax.tree_util.tree_map(lambda x: np.asarray(x)[take],
                                (plan.game, plan.init_logp))
  return args + (idx,), (start, stop)


def _execute(plan, store, *, quiet, on_chunk):
  tau = _global_array(plan, plan.tau_cells.astype(plan.dtype), sharded=False)
  eta = _global_array(plan, plan.eta_cells.astype(plan.dtype), sharded=False)
  seed = _global_array(plan, np.asarray(plan.seed, np.uint32), sharded=False)
  tol = (None if plan.tol is None else
         _global_array(plan, np.asarray(plan.tol, plan.dtype), sharded=False))
  values = tuple(_global_array(plan, np.asarray(plan.family_options[k],
                                                plan.dtype), sharded=False)
                 for k in getattr(plan, "traced_options", ()))
  todo = [c for c in range(plan.num_chunks)
          if store is None or not store.is_complete(c)]
  damaged = [] if store is None else store.damaged_chunks(todo)
  compiled = None
  t_compile = time.perf_counter()
  if todo:
    args0, _ = _chunk_inputs(plan, todo[0])
    compiled = _compiled_chunk(plan, (jax.tree_util.tree_map(
        lambda x: _global_array(plan, x, True), args0), tau, eta, seed, tol)
        + values)
  compile_seconds = time.perf_counter() - t_compile
  progress = Progress(len(todo), "chunks", quiet=quiet)
  results: dict[int, dict] = {}
  start_all = time.perf_counter()
  cells_per_game = plan.cells_per_game
  done_iters = 0

  def launch(c):
    args, rng = _chunk_inputs(plan, c)
    placed = jax.tree_util.tree_map(lambda x: _global_array(plan, x, True), args)
    return (compiled(placed, tau, eta, seed, tol, *values), rng,
            time.perf_counter())

  pending = launch(todo[0]) if todo else None
  for k, c in enumerate(todo):
    out, (lo, hi), t0 = pending
    # Dispatch the next chunk before waiting for this one (overlaps host work).
    pending = launch(todo[k + 1]) if k + 1 < len(todo) else None
    arrays = {name: _to_host(x)[: hi - lo] for name, x in out.items()}
    arrays = {name: _unflatten_cells(plan, x) for name, x in arrays.items()}
    seconds = time.perf_counter() - t0
    if store is not None:
      store.write_chunk(c, arrays, games=(lo, hi), seconds=seconds)
    results[c] = arrays
    done_iters += (hi - lo) * cells_per_game * plan.num_iters
    elapsed = time.perf_counter() - start_all
    progress.update(k + 1, "game-iterations/s", done_iters / max(elapsed, 1e-9))
    if on_chunk is not None:
      on_chunk({"chunk": c, "games": (lo, hi), "seconds": seconds,
                "skipped": False})
  for c in range(plan.num_chunks):
    if c not in results:
      results[c] = store.read_chunk(c)
      if on_chunk is not None:
        on_chunk({"chunk": c, "games": store.chunk_games_range(c),
                  "seconds": 0.0, "skipped": True})
  elapsed = time.perf_counter() - start_all
  attrs = dict(plan.params)
  attrs.update(
      chunk_games=plan.chunk_games, num_chunks=plan.num_chunks,
      block_games=plan.block_games, num_devices=plan.num_devices,
      devices=[str(d) for d in plan.devices], platform=plan.platform,
      jaxnpg=__version__, jax=jax.__version__, seconds=elapsed,
      compile_seconds=compile_seconds,
      chunks_computed=len(todo), chunks_damaged=damaged,
      game_iterations_per_second=(done_iters / elapsed if todo and elapsed > 0
                                  else None),
      sum_actions=int(sum(plan.num_actions)),
  )
  if store is not None:
    attrs["out"] = str(store.path)
  return assemble(plan.params, results, plan.num_chunks, attrs)


def _unflatten_cells(plan, x):
  """``(g, P, ...)`` -> ``(g, T, E, ...)`` (``...`` starts with the seed axis)."""
  T, E = plan.taus.size, plan.eta_axis.size
  return x.reshape((x.shape[0], T, E) + x.shape[2:])
