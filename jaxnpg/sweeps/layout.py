"""Where a sweep runs: devices, memory, blocks and chunks.

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

:func:`_layout` fills the layout fields of a :class:`jaxnpg.sweeps.plan.Plan`.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.loop.batch_last import cores
from jaxnpg.sweeps.plan import Plan
from jaxnpg.core.validation import check_positive_int

# Target cells per CPU block (the working set then stays in L2; blocks are also
# the unit of the per-core parts) and per chunk.
_CPU_BLOCK_CELLS = 256
_CPU_CHUNK_CELLS = 1 << 15
_ACCEL_CHUNK_CELLS = 1 << 22


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


def _memory_per_game(plan: Plan) -> tuple[int, int]:
  """Bytes per game while a block runs, and per game of a chunk's outputs."""
  proto, algorithm, atlas = plan.proto, plan.algorithm, plan.atlas
  itemsize = plan.dtype.itemsize
  policy_size = sum(math.prod(s) for s in proto.policy_shapes)
  game_bytes = sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize
                   for x in jax.tree_util.tree_leaves(proto))
  per_cell_work = itemsize * (16 * policy_size + 2 * plan.record_iterations.size
                              + 16)
  samples = int(getattr(algorithm, "num_samples", 0))  # sampled_npg's draws
  per_cell_work += itemsize * 4 * samples * (len(plan.num_actions) + policy_size)
  per_cell_out = itemsize * (8 + 2 * plan.traj_idx.size)
  if atlas is not None:   # K attractor runs: state, tangent, period history
    K = 1 if atlas[0] is None else atlas[0]
    per_cell_work += itemsize * K * policy_size * (2 * atlas[2] + 16)
    per_cell_out += itemsize * 6
  work_per_game = 4 * game_bytes + plan.cells_per_game * per_cell_work
  out_per_game = plan.cells_per_game * per_cell_out
  return work_per_game, out_per_game


def _layout(plan: Plan, chunk_games) -> Plan:
  """``plan`` with its memory budget, devices, block size and chunk size (games).

  On CPU a device runs its games in blocks of about ``_CPU_BLOCK_CELLS`` cells (the
  working set of a block stays in cache) and a chunk holds about
  ``_CPU_CHUNK_CELLS`` cells. With one CPU device (JAX's default) a chunk of
  the batch-last loop is cut into ``threads`` parts of whole blocks, one per
  core, run at once from host threads (XLA:CPU runs such a loop on one core;
  the parts are elementwise independent, so results are bit for bit those of
  one part). On accelerators a device runs its whole share of the
  chunk as one block and a chunk holds up to ``_ACCEL_CHUNK_CELLS`` cells. Both are
  capped by the memory budget per device.
  """
  work_per_game, out_per_game = _memory_per_game(plan)
  budget = (int(plan.memory_budget) if plan.memory_budget is not None
            else _device_memory(plan.all_devices[0]) // 4)
  if budget <= 0:
    raise ValueError(f"`memory_budget` must be > 0, got {plan.memory_budget}.")
  G, P = plan.num_games, plan.cells_per_game
  devices = plan.all_devices
  if chunk_games is not None:
    chunk_games = check_positive_int(chunk_games, "chunk_games")
    # Use as many devices as divide the chunk evenly.
    devices = devices[:max(d for d in range(1, len(devices) + 1)
                           if chunk_games % d == 0)]
  nd = len(devices)
  cpu = plan.platform == "cpu"
  work_games = max(1, budget // max(work_per_game, 1))
  out_games = max(1, budget // max(out_per_game, 1))
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
  num_chunks = -(-G // chunk_games)
  return plan._replace(
      budget=budget, work_per_game=work_per_game, out_per_game=out_per_game,
      devices=devices, num_devices=nd, block_games=block, threads=threads,
      chunk_games=chunk_games, num_chunks=num_chunks,
      mesh=jax.sharding.Mesh(np.asarray(devices), ("games",)),
      layout={"chunk_games": chunk_games, "num_chunks": num_chunks})


def relayout(plan: Plan, chunk_games) -> Plan:
  """``plan`` laid out again with ``chunk_games`` (a stored sweep's chunking)."""
  return _layout(plan, int(chunk_games))
