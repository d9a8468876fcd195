"""Where a sweep runs: devices, memory, blocks and chunks (a :class:`Layout`).

The game axis is split into *chunks* sized from a memory budget; each chunk is one
compiled call whose results are copied to the host (and to disk with ``out=``).
Within a chunk the game axis is sharded over all devices (``jax.shard_map`` over a
one-axis ``Mesh``); on each device it is processed in *blocks* of a fixed number of
games (sized for the CPU's caches; one block per device on accelerators).
Every operation is elementwise over games, so chunked and one-shot runs agree bit
for bit, and so do sharded and one-device runs of the batch-last loop. XLA
compiles a multi-device program differently: on the generic path in float64 the
policies stay bit-identical and the QRE-gaps differ in the last bits; Markov games
in float32 can differ by about 1e-5 relative, enough to move ``iterations_to_tol``
by one record (measured; the README states it).

The memory a cell needs is read off the algorithm's step itself (the sizes of
every intermediate array of one traced step, :func:`step_bytes`), so any
algorithm, however it samples or what state it carries, is sized the same way;
nothing is compiled for it. Work that cannot fit, or a chunk padded far beyond
the work, is refused before anything compiles.
"""

from __future__ import annotations

import functools
import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core

from jaxnpg.core.policy import uniform_policy
from jaxnpg.core.validation import check_positive_int
from jaxnpg.loop.batch_last import BLOCK_CELLS, cores
from jaxnpg.sweeps.plan import Plan

# Target cells per chunk (CPU blocks are BLOCK_CELLS cells, the batch-last
# loop's, so a block's working set stays in L2; blocks are also the unit of the
# per-core parts).
CPU_CHUNK_CELLS = 1 << 15
ACCEL_CHUNK_CELLS = 1 << 22
# On CPU a large sweep is cut into at least about this many chunks (none
# smaller than MIN_CPU_CHUNK_CELLS), so that a Ctrl-C, a kill or a full disk
# loses at most about an eighth of it. Blocks do not change with it, so neither
# does any result.
TARGET_CHUNKS = 8
MIN_CPU_CHUNK_CELLS = 1 << 12
# A chunk may hold at most this many times the games it has work for.
MAX_PADDING = 8


class Layout(NamedTuple):
  """Where one sweep runs.

  Attributes:
    budget: bytes a chunk may use per device.
    work_per_game: bytes per game while a block runs.
    out_per_game: bytes per game of a chunk's outputs.
    devices: the devices the game axis is sharded over.
    platform: their platform (``"cpu"``, ``"gpu"``, ...).
    block_games: games per block on one device.
    threads: parts of a chunk run at once, each on its own host thread (CPU
      with one device: the cores; 1 elsewhere).
    chunk_games: games per chunk (a multiple of the device count).
    num_chunks: ``ceil(G / chunk_games)``.
  """
  budget: int
  work_per_game: int
  out_per_game: int
  devices: tuple[Any, ...]
  platform: str
  block_games: int
  threads: int
  chunk_games: int
  num_chunks: int

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def mesh(self) -> jax.sharding.Mesh:
    """The one-axis (``"games"``) mesh over :attr:`devices`."""
    return jax.sharding.Mesh(np.asarray(self.devices), ("games",))

  def manifest(self) -> dict:
    """``{"chunk_games", "num_chunks"}``, as a stored sweep's manifest holds it."""
    return {"chunk_games": self.chunk_games, "num_chunks": self.num_chunks}


def device_memory(device) -> int:
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


def _itemsize(dtype) -> int:
  if jax.dtypes.issubdtype(dtype, jax.dtypes.extended):   # PRNG keys
    return 8
  return np.dtype(dtype).itemsize


def _jaxpr_bytes(jaxpr) -> int:
  """Bytes of every value a jaxpr (and its sub-jaxprs) computes."""
  total = 0
  for eqn in jaxpr.eqns:
    for v in eqn.outvars:
      aval = v.aval
      if hasattr(aval, "shape") and hasattr(aval, "dtype"):
        total += math.prod(aval.shape) * _itemsize(aval.dtype)
    for sub in jax_core.jaxprs_in_params(eqn.params):
      total += _jaxpr_bytes(sub)
  return total


def step_bytes(proto, algorithm) -> int:
  """Bytes of all intermediate arrays of one step of ``algorithm`` on one game.

  An upper bound of what one cell holds while it steps (XLA fuses most of them
  away); read from the traced step (``jax.make_jaxpr``), nothing is compiled.
  """
  leaves, treedef = jax.tree_util.tree_flatten(proto)
  specs = tuple((tuple(jnp.shape(x)), str(jnp.result_type(x))) for x in leaves)
  return _step_bytes(treedef, specs, algorithm)


@functools.lru_cache(maxsize=64)
def _step_bytes(treedef, specs, algorithm) -> int:
  game = jax.tree_util.tree_unflatten(
      treedef, [jax.ShapeDtypeStruct(s, d) for s, d in specs])

  def one_step(g):
    key = jax.random.key(0) if algorithm.uses_key else None
    state = algorithm.init(g, uniform_policy(g), key)
    payoffs = g.payoffs(algorithm.policy(state), 0.1)
    return algorithm.step(g, state, payoffs if algorithm.uses_payoffs else None,
                          tau=0.1, eta=0.1)

  return _jaxpr_bytes(jax.make_jaxpr(one_step)(game).jaxpr)


def memory_per_game(plan: Plan) -> tuple[int, int]:
  """Bytes per game while a block runs, and per game of a chunk's outputs."""
  config = plan.config
  proto = config.prototype
  itemsize = plan.dtype.itemsize
  policy_size = sum(math.prod(s) for s in proto.policy_shapes)
  game_bytes = sum(math.prod(x.shape) * itemsize
                   for x in jax.tree_util.tree_leaves(proto))
  per_cell_work = (step_bytes(proto, config.algorithm)
                   + itemsize * (4 * policy_size + 2 * plan.record_iterations.size
                                 + 16))
  per_cell_out = itemsize * (8 + 2 * plan.traj_idx.size)
  if plan.atlas is not None:   # K attractor runs: state, tangent, period history
    num_inits, _, max_period = plan.atlas
    k = 1 if num_inits is None else num_inits
    per_cell_work += itemsize * k * policy_size * (2 * max_period + 16)
    per_cell_out += itemsize * 6
  work_per_game = 4 * game_bytes + plan.cells_per_game * per_cell_work
  out_per_game = plan.cells_per_game * per_cell_out
  return work_per_game, out_per_game


def _gb(n) -> str:
  return f"{n / 2**30:.3g} GiB"


def lay_out(plan: Plan, *, devices=None, memory_budget=None,
            chunk_games=None) -> Layout:
  """The :class:`Layout` of ``plan``: memory budget, devices, blocks, chunks.

  On CPU a device runs its games in blocks of about ``BLOCK_CELLS`` cells (the
  working set of a block stays in cache) and a chunk holds about
  ``CPU_CHUNK_CELLS`` cells, or fewer, down to ``MIN_CPU_CHUNK_CELLS``, so a
  large sweep has about ``TARGET_CHUNKS`` chunks. With one CPU device (JAX's default) a chunk of
  the batch-last loop is cut into ``threads`` parts of whole blocks, one per
  core, run at once from host threads (XLA:CPU runs such a loop on one core;
  the parts are elementwise independent, so results are bit for bit those of
  one part). On accelerators a device runs its whole share of the
  chunk as one block and a chunk holds up to ``ACCEL_CHUNK_CELLS`` cells. Both
  are capped by the memory budget per device.

  Raises:
    ValueError: empty ``devices``, a bad ``memory_budget`` or ``chunk_games``,
      one game's work that does not fit the budget, or a ``chunk_games`` that
      pads the work more than ``MAX_PADDING`` times (each naming the sizes and
      the option to change).
  """
  all_devices = list(jax.devices() if devices is None else devices)
  if not all_devices:
    raise ValueError("`devices` is empty.")
  platform = all_devices[0].platform
  if memory_budget is not None and not (
      isinstance(memory_budget, (int, np.integer)) and memory_budget > 0):
    raise ValueError(f"`memory_budget` must be a number of bytes > 0, got "
                     f"{memory_budget!r}.")
  budget = (int(memory_budget) if memory_budget is not None
            else device_memory(all_devices[0]) // 4)
  work_per_game, out_per_game = memory_per_game(plan)
  if work_per_game > budget:
    raise ValueError(
        f"One game of this sweep needs about {_gb(work_per_game)} while it runs "
        f"({plan.cells_per_game} cells), more than the memory budget of "
        f"{_gb(budget)} per device; use fewer taus/etas/seeds or smaller games, "
        "or raise memory_budget (--memory-budget).")
  num_games, cells = plan.num_games, plan.cells_per_game
  if chunk_games is not None:
    chunk_games = check_positive_int(chunk_games, "chunk_games")
    if chunk_games > MAX_PADDING * num_games:
      raise ValueError(
          f"chunk_games={chunk_games} would pad the sweep's {num_games} games to "
          f"{chunk_games} ({chunk_games / num_games:.3g}x the work); use "
          f"chunk_games <= {num_games} (--chunk-games), or leave it unset.")
    # Use as many devices as divide the chunk evenly.
    all_devices = all_devices[:max(d for d in range(1, len(all_devices) + 1)
                                   if chunk_games % d == 0)]
  nd = len(all_devices)
  cpu = platform == "cpu"
  work_games = max(1, budget // max(work_per_game, 1))
  out_games = max(1, budget // max(out_per_game, 1))
  block_target = max(1, min(BLOCK_CELLS // cells, work_games))
  if chunk_games is None:
    target = CPU_CHUNK_CELLS if cpu else ACCEL_CHUNK_CELLS
    if cpu:
      target = min(target, max(MIN_CPU_CHUNK_CELLS,
                               num_games * cells // TARGET_CHUNKS))
    per_dev = max(1, target // cells // nd)
    per_dev = min(per_dev, out_games if cpu else work_games, -(-num_games // nd))
    if cpu:  # a whole number of blocks
      block_target = min(block_target, per_dev)
      per_dev = per_dev // block_target * block_target
    chunk_games = per_dev * nd
  local = chunk_games // nd
  threads = 1
  if cpu:
    block = max(b for b in range(1, min(block_target, local) + 1)
                if local % b == 0)
    # Parts of whole blocks, one per core, for the batch-last loop: the blocks
    # (and so every result, bit for bit) do not depend on the core count. The
    # generic path stays in one part: Markov games in float32 came out
    # different in the last bits when run in parts (measured; the dense and
    # generic random paths agreed bit for bit).
    if plan.dense and nd == 1 and jax.process_count() == 1:
      most = min(cores(), local // block, max(1, work_games // block))
      threads = max(t for t in range(1, most + 1) if (local // block) % t == 0)
  else:
    block = local
  return Layout(budget=budget, work_per_game=work_per_game,
                out_per_game=out_per_game, devices=tuple(all_devices),
                platform=platform, block_games=block, threads=threads,
                chunk_games=chunk_games, num_chunks=-(-num_games // chunk_games))
