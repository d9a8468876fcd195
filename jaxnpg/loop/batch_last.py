"""Running the one loop on a batch: batch axes last, in blocks, on every core.

``jaxnpg.run`` is written for one game. Under ``jax.vmap`` its loop
(:func:`jaxnpg.loop.iterate.iterate`) is a :func:`jax.custom_batching.custom_vmap`
function of the flat leaves of its arguments (:func:`loop_fn`). When a vmap maps
it and both the game's loop form and the algorithm work batch-last, the rule
moves the mapped axis of every input to the END (or appends a size-1 axis to an
unmapped one, so inputs shared across the batch, such as a game's rewards across
step sizes, are not copied) and calls the loop again, whose arrays now carry one
more trailing batch axis; nested vmaps stack further trailing axes. Otherwise the
rule is plain ``vmap`` of the same loop.

How the batch-last loop then runs depends on the platform (measured on a 2-core
AMD EPYC, ``benchmarks/paths.py``):

* accelerators: one loop over the whole batch;
* CPU, inside the caller's program: the batch is cut along its last axis into
  *blocks* of about ``BLOCK_CELLS`` cells (each cell counted ``cell_weight``
  times: a Markov game's weighs more than a dense one's) run one after another (``lax.map``), so
  each step's working set stays in the core's caches;
* CPU, a batch of at least ``MIN_THREADED_CELLS`` cells (the default for
  ``jax.vmap(jaxnpg.run)``): XLA:CPU runs such a loop on one core, so the batch
  is also cut into one *part* per core, each run by its own host thread on a
  separately compiled program of the same loop (compiled for 512-bit vectors,
  about 15% faster on AVX-512) and reached through ``jax.pure_callback``.

Every operation of the loop is elementwise over the batch, so blocks, parts and
one loop give the same results bit for bit (tested). ``JAXNPG_THREADS`` caps the
parts (:func:`cores`). Plain-vmap batches are never cut: in that layout XLA:CPU
rounds the short reductions over actions differently for other batch sizes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching, lax

from jaxnpg.loop.iterate import batch_of, iterate

# Cells per block on CPU: 128 to 256 cells of a (3, 4, 5) game in float64 run
# fastest on the development machine; 1024 games in one block run 25-40% slower
# (the rewards of a block then no longer fit in the core's L2 cache).
BLOCK_CELLS = 256
# Fewest cells for which a batch is split over host threads.
MIN_THREADED_CELLS = 2 * BLOCK_CELLS
# XLA:CPU options of the separately compiled loops (and of jaxnpg.sweep's
# chunks): 512-bit vectors where the CPU has them.
CPU_COMPILER_OPTIONS = {"xla_cpu_prefer_vector_width": "512"}


def cores() -> int:
  """Host threads jaxnpg runs batches on: the CPU cores this process may use.

  The environment variable ``JAXNPG_THREADS`` caps it (``JAXNPG_THREADS=1``
  keeps every batch in the caller's program, on one core); read when a batch
  is traced.
  """
  try:
    n = len(os.sched_getaffinity(0))
  except (AttributeError, OSError):
    n = os.cpu_count() or 1
  cap = os.environ.get("JAXNPG_THREADS", "").strip()
  if cap:
    try:
      n = min(n, int(cap))
    except ValueError:
      raise ValueError(
          f"JAXNPG_THREADS must be a whole number >= 1, got {cap!r}.") from None
    if n < 1:
      raise ValueError(f"JAXNPG_THREADS must be >= 1, got {cap!r}.")
  return n


def _on_cpu() -> bool:
  return jax.default_backend() == "cpu"


def compile_for_cpu(lowered):
  """``lowered.compile()`` with :data:`CPU_COMPILER_OPTIONS` where XLA knows them."""
  try:
    return lowered.compile(compiler_options=CPU_COMPILER_OPTIONS)
  except Exception:  # an XLA that does not know the option
    return lowered.compile()


def _trail(x, batched):
  """Axis 0 of a mapped input to the end; a size-1 axis on an unmapped one."""
  return jnp.moveaxis(x, 0, -1) if batched else x[..., None]


def _along_last(leaves, size):
  """Which leaves carry the trailing batch axis of length ``size`` (others: 1)."""
  return [size > 1 and jnp.ndim(x) >= 1 and jnp.shape(x)[-1] == size
          for x in leaves]


def _split_last(x, pieces, xp=jnp):
  """``(..., n)`` -> ``(pieces, ..., n / pieces)``, padded by repeating the end.

  ``xp`` is ``jax.numpy`` (traced blocks) or ``numpy`` (host-thread parts).
  """
  n = x.shape[-1]
  per = -(-n // pieces)
  pad = per * pieces - n
  if pad:   # padded cells are valid copies, computed and then dropped
    x = xp.concatenate([x, xp.repeat(x[..., -1:], pad, axis=-1)], axis=-1)
  return xp.moveaxis(x.reshape(x.shape[:-1] + (pieces, per)), -2, 0)


def _merge_last(out, size, xp=jnp):
  """Inverse of :func:`_split_last` on a RunResult (``iterations`` is shared)."""
  def merge(x):
    x = xp.moveaxis(x, 0, -2)
    return x.reshape(x.shape[:-2] + (-1,))[..., :size]
  return _map_batched(merge, out)._replace(iterations=out.iterations[0])


def _map_batched(fn, out):
  """``fn`` on every batched field of a RunResult (all but ``iterations``)."""
  mapped = jax.tree_util.tree_map(fn, out._replace(iterations=None))
  return mapped._replace(iterations=out.iterations)


def _cells(treedef, leaves, algorithm):
  form, tau, eta, logp, _, tol, state = jax.tree_util.tree_unflatten(
      treedef, leaves)
  return batch_of(form, tau, eta, logp, tol, state, algorithm)


def _weight(treedef, leaves) -> int:
  """The form's ``cell_weight``: dense cells one of its cells counts as."""
  form = jax.tree_util.tree_unflatten(treedef, leaves)[0]
  return max(1, int(form.cell_weight))


def _blocked(run, treedef, leaves, algorithm):
  """``run(*leaves)`` in blocks of about ``BLOCK_CELLS`` cells (``lax.map``)."""
  batch = _cells(treedef, leaves, algorithm)
  size = batch[-1]
  per_block = max(1, BLOCK_CELLS // max(1, math.prod(batch[:-1])
                                       * _weight(treedef, leaves)))
  if size <= per_block:
    return run(*leaves)
  along = _along_last(leaves, size)
  num_blocks = -(-size // per_block)

  def one(block):
    it = iter(block)
    return run(*(next(it) if a else x for x, a in zip(leaves, along)))

  out = lax.map(one, [_split_last(x, num_blocks)
                      for x, a in zip(leaves, along) if a])
  return _merge_last(out, size)


class LoopStatics(NamedTuple):
  """The static arguments of :func:`jaxnpg.loop.iterate.iterate` (hashable)."""
  num_iters: int
  record_every: int
  algorithm: Any
  tail: float


def _runner(treedef, statics: LoopStatics):
  """``iterate`` on the flat leaves of its arguments."""
  def run(*leaves):
    return iterate(*jax.tree_util.tree_unflatten(treedef, leaves),
                   **statics._asdict())
  return run


@functools.lru_cache(maxsize=64)
def _part_program(treedef, avals, statics: LoopStatics):
  """The batch-last loop on one part, in blocks, compiled on its own for CPU."""
  run = _runner(treedef, statics)
  fn = jax.jit(lambda *leaves: _blocked(run, treedef, leaves,
                                        statics.algorithm))
  return compile_for_cpu(fn.lower(*avals))


_POOL: concurrent.futures.ThreadPoolExecutor | None = None


def _pool(workers):
  global _POOL
  if _POOL is None or _POOL._max_workers < workers:
    _POOL = concurrent.futures.ThreadPoolExecutor(
        workers, thread_name_prefix="jaxnpg-part")
  return _POOL


def _threaded(treedef, leaves, statics):
  """The batch-last loop on every core: one part of the batch per host thread.

  Emits a ``jax.pure_callback`` whose callback cuts the trailing batch axis
  into one equal part per core (padding by repeating the last element), runs
  :func:`_part_program` on each part from its own thread and joins the results
  along the same axis (``iterations`` is shared by all parts).
  """
  batch = _cells(treedef, leaves, statics.algorithm)
  _remember_key_impls(leaves)
  size = batch[-1]
  parts = max(1, min(cores(), size, math.prod(batch)
                     * _weight(treedef, leaves) // BLOCK_CELLS))
  per = -(-size // parts)
  along = _along_last(leaves, size)
  program = _part_program(treedef, tuple(
      jax.ShapeDtypeStruct(x.shape[:-1] + (per,) if a else x.shape, x.dtype)
      for x, a in zip(leaves, along)), statics)
  out_shape = jax.eval_shape(_runner(treedef, statics), *leaves)
  x64 = bool(jax.config.read("jax_enable_x64"))

  def host(*words):
    arrays = [_from_words(w, x) for w, x in zip(words, leaves)]

    pieces = [_split_last(x, parts, jnp if _is_key(x.dtype) else np) if a else x
              for x, a in zip(arrays, along)]

    def part(i):   # in a pool thread: JAX's x64 setting is per thread
      with jax.enable_x64(x64):
        return jax.device_get(program(*(p[i] if a else p
                                        for p, a in zip(pieces, along))))

    outs = list(_pool(parts).map(part, range(parts)))
    out = _merge_last(jax.tree_util.tree_map(lambda *xs: np.stack(xs), *outs),
                      size, np)
    return jax.tree_util.tree_map(_to_words_host, out)

  words = jax.pure_callback(host,
                            jax.tree_util.tree_map(_words_aval, out_shape),
                            *(_to_words(x) for x in leaves),
                            vmap_method="sequential")
  return jax.tree_util.tree_map(_from_words_traced, words, out_shape)


# A callback's arguments and results cross as numpy arrays converted under the
# *callback thread's* x64 setting, which can be off while the caller runs under
# `jax.enable_x64()` (a float64 would then arrive as float32). 64-bit arrays
# therefore cross as pairs of uint32 words, which no setting converts. Typed
# PRNG keys (an extended dtype numpy has no name for) cross as their key data
# and are wrapped again on the other side.


def _is_key(dtype) -> bool:
  return jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _wide(dtype) -> bool:
  return not _is_key(dtype) and np.dtype(dtype).itemsize == 8


def _to_words(x):
  if _is_key(x.dtype):
    return jax.random.key_data(x)
  return lax.bitcast_convert_type(x, jnp.uint32) if _wide(x.dtype) else x


def _from_words_traced(w, aval):
  if _is_key(aval.dtype):
    return jax.random.wrap_key_data(w, impl=_key_impl(aval))
  return lax.bitcast_convert_type(w, aval.dtype) if _wide(aval.dtype) else w


_KEY_IMPLS: dict = {}   # str(key dtype) -> its PRNG implementation


def _remember_key_impls(leaves) -> None:
  for x in leaves:
    if _is_key(x.dtype):
      _KEY_IMPLS[str(x.dtype)] = jax.random.key_impl(x)


def _key_impl(aval):
  return _KEY_IMPLS[str(aval.dtype)]


def _words_aval(aval):
  if _is_key(aval.dtype):
    return jax.eval_shape(jax.random.key_data, aval)
  if _wide(aval.dtype):
    return jax.ShapeDtypeStruct(aval.shape + (2,), np.uint32)
  return aval


def _to_words_host(x):
  if _is_key(x.dtype):
    return np.asarray(jax.random.key_data(x))
  x = np.ascontiguousarray(x)
  return x.view(np.uint32).reshape(x.shape + (2,)) if _wide(x.dtype) else x


def _from_words(w, like):
  if _is_key(like.dtype):
    return jax.random.wrap_key_data(w, impl=_key_impl(like))
  w = np.ascontiguousarray(w)
  if _wide(like.dtype):
    return w.view(np.dtype(like.dtype)).reshape(w.shape[:-1])
  return w


@functools.cache
def loop_fn(treedef, statics: LoopStatics, threads: bool):
  """The loop for arguments of structure ``treedef``, as a custom_vmap function.

  ``threads`` (static) allows the host-thread path on CPU (``jaxnpg.sweep``,
  which splits its chunks over threads itself, turns it off).
  """
  algorithm = statics.algorithm
  run = _runner(treedef, statics)

  def body(*leaves):
    form = jax.tree_util.tree_unflatten(treedef, leaves)[0]
    if not form.batch_last or not _on_cpu():
      return run(*leaves)
    batch = _cells(treedef, leaves, algorithm)
    if not batch:
      return run(*leaves)
    weighted = math.prod(batch) * _weight(treedef, leaves)
    if threads and cores() > 1 and weighted >= MIN_THREADED_CELLS:
      return _threaded(treedef, leaves, statics)
    return _blocked(run, treedef, leaves, algorithm)

  loop = custom_batching.custom_vmap(body)

  @loop.def_vmap
  def rule(axis_size, in_batched, *leaves):
    del axis_size
    form = jax.tree_util.tree_unflatten(treedef, leaves)[0]
    if not (form.batch_last and algorithm.batch_last):
      # Plain vmap, in the caller's program: XLA:CPU rounds this layout's
      # short reductions differently for other batch sizes, so it is not cut
      # into parts (a sweep cuts it into blocks of a fixed size instead).
      out = jax.vmap(body, in_axes=tuple(0 if b else None for b in in_batched))(
          *leaves)
      return out, jax.tree_util.tree_map(lambda _: True, out)
    out = loop(*(_trail(x, b) for x, b in zip(leaves, in_batched)))
    out = _map_batched(lambda x: jnp.moveaxis(x, -1, 0), out)
    batched = jax.tree_util.tree_map(lambda _: True, out)._replace(
        iterations=False)
    return out, batched

  return loop
