"""Phase sweeps: every (game, tau, eta) cell of a game family in compiled chunks.

``sweep`` runs ``num_iters`` steps of a learning algorithm (NPG by default; see
``jaxnpg.ALGORITHMS``) for every combination of a batch of games, a list of
entropy weights ``tau`` and a list of step sizes ``eta`` (and, for stochastic
algorithms, of ``num_seeds`` seeds), and keeps a small record per cell (final
gaps, iterations to the tolerance, empirical linear rate, monotonicity, a status
code and optionally a subsampled trajectory).

How the work is laid out, one module each:

* :mod:`jaxnpg.sweeps.config`: what the sweep computes, one checked
  :class:`~jaxnpg.sweeps.config.SweepConfig`;
* :mod:`jaxnpg.sweeps.seeding`: the keys of games, starts and algorithms (a
  family's games are generated inside the compiled call from ``(seed, game
  index)``, so no host loop over games);
* :mod:`jaxnpg.sweeps.plan`: the cells and records the config implies;
* :mod:`jaxnpg.sweeps.layout`: the game axis is split into *chunks* sized from a
  memory budget, sharded over all devices within a chunk and processed in
  *blocks* on each device;
* :mod:`jaxnpg.sweeps.compile`: each chunk is one compiled call running the one
  NPG loop of :func:`jaxnpg.run` in every cell;
* here: the chunks run one after the other (the next one dispatched before the
  host waits for the last), and their results are copied to the host (and to
  disk with ``out=``, :mod:`jaxnpg.sweeps.store`) and assembled into a
  :class:`jaxnpg.SweepResult`.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxnpg._version import __version__
from jaxnpg.games.markov import MarkovGame
from jaxnpg.loop.describe import describe_algorithm
from jaxnpg.sweeps import store as _store
from jaxnpg.sweeps.compile import compiled_chunk
from jaxnpg.sweeps.config import SweepConfig
from jaxnpg.sweeps.layout import Layout, lay_out
from jaxnpg.sweeps.plan import Plan, chunk_key, make_plan
from jaxnpg.sweeps.progress import Progress
from jaxnpg.sweeps.results import SweepResult, assemble


def sweep(config: SweepConfig | str | None = None, /, *,
          out: str | os.PathLike | None = None, quiet: bool = False,
          on_chunk: Callable[[dict], None] | None = None,
          chunk_games: int | None = None, memory_budget: int | None = None,
          devices: Sequence[Any] | None = None, **fields) -> SweepResult:
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

  Each cell's status is a :class:`jaxnpg.Status` code, decided exactly as
  :func:`jaxnpg.run` decides it on the same records (a cell that blew up has NaN
  gaps and rate and ``iterations_to_tol == -1``).

  The sweep is defined by a :class:`jaxnpg.SweepConfig`: pass one as ``config``,
  or its fields as keywords (``family`` may also come first, positionally).
  ``out``, ``quiet``, ``on_chunk`` and the layout options (``chunk_games``,
  ``memory_budget``, ``devices``) say how it runs, never what it computes.

  Algorithms: ``algorithm`` is any choice of :func:`jaxnpg.run` (``"npg"``,
  ``"sampled_npg"``, ``"pg"``, ``"optimistic_npg"``, an instance such as
  ``jaxnpg.SampledNPG(num_samples=16)``, or any object with the
  :class:`jaxnpg.Algorithm` protocol); every cell is then exactly
  ``jaxnpg.run(game, tau, eta, num_iters, init=..., algorithm=algorithm,
  key=...)``, the same loop. NPG and optimistic NPG on small dense games run it
  with the batch axes last (``method="dense"``); everything else as plain
  ``vmap`` of the one-game loop (``method="generic"``). A stochastic algorithm (``sampled_npg``) gets the key
  :func:`sweep_key` ``(seed, g, s)`` in every cell of game ``g``; with
  ``num_seeds=S`` the result has a ``seed`` axis of length ``S`` (after ``eta``)
  holding independent repetitions ``s = 0 .. S-1``, and ``SweepResult.summary()``
  reports mean and spread over them. Without ``num_seeds`` there is no seed axis
  and every cell uses ``s = 0``, so it equals seed 0 of a seeded sweep.

  Atlas fields (``lyapunov=True``; deterministic algorithms): every cell also
  runs :func:`jaxnpg.attractor` ``(game, tau, eta, num_iters, init=...,
  burn_in=..., max_period=..., algorithm=...)`` from its game's initial policy (the same start as the gap
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
    config: a :class:`jaxnpg.SweepConfig` (then no field keywords), or a
      family name (the ``family`` field).
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
      draw the same phase diagram (see :mod:`jaxnpg.core.tolerance`).
    record_every: record the gaps every this many steps (default: about 200
      records); the resolution of ``iterations_to_tol`` and of the trajectories.
    trajectory_points: keep this many records of each cell's trajectory (0: none).
    tail: fraction of the trajectory fitted by ``linear_rate``.
    method: ``"dense"`` (the loop with the batch axes last, for small dense
      games), ``"generic"`` (plain vmap of the one-game loop; any game type) or
      ``"auto"``.
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
    lyapunov: also record the atlas fields (see above); deterministic
      algorithms without seeds only.
    num_inits: ``K >= 1`` starts per game for ``num_fixed_points`` (needs
      ``lyapunov``).
    burn_in: steps of each attractor run before the exponent is averaged over
      ``num_iters`` steps (default: ``num_iters``).
    max_period: largest period the attractor runs look for (default 16).
    dtype: ``"float32"`` or ``"float64"`` (default: JAX's default float for a
      family, the game's dtype with ``game``); float64 needs
      ``jax_enable_x64``.

  Returns:
    A :class:`SweepResult`; ``attrs`` holds the parameters and the chosen
    chunking, and ``result.config`` the config.

  Raises:
    ValueError: bad arguments (a :class:`jaxnpg.sweeps.config.ConfigError`
      naming the field: empty or negative ``taus``, ``etas <= 0``, unknown
      family or algorithm, ...), work that does not fit the memory budget, or
      an ``out`` folder holding a different sweep (other parameters, another
      algorithm or number of seeds).

  Example:
    >>> import jaxnpg
    >>> res = jaxnpg.sweep("random", num_actions=(2, 2), num_games=4,
    ...                    taus=[0.1, 1.0], etas=[0.05, 0.1], num_iters=200)
    >>> res.shape, res.dims["status"]
    ((4, 2, 2), ('game', 'tau', 'eta'))
    >>> bool((res.status[:, 1] == 0).all())   # tau = 1 converges in every game
    True
    >>> cfg = jaxnpg.SweepConfig(num_actions=(2, 2), num_games=4,
    ...                          taus=[0.1, 1.0], etas=[0.05, 0.1], num_iters=200)
    >>> res.config == cfg, bool((jaxnpg.sweep(cfg).status == res.status).all())
    (True, True)
  """
  if isinstance(config, SweepConfig):
    if fields:
      raise ValueError(
          f"Pass either a SweepConfig or its fields, not both (got "
          f"{sorted(fields)}); use config.replace(...) to change fields.")
  elif config is None or isinstance(config, str):
    if config is not None:
      if "family" in fields:
        raise ValueError("`family` was given twice (first argument and keyword).")
      fields["family"] = config
    config = SweepConfig(**fields)
  else:
    raise ValueError(f"`config` must be a jaxnpg.SweepConfig or a family name, "
                     f"got {type(config).__name__}.")
  return run_sweep(config, out=out, quiet=quiet, on_chunk=on_chunk,
                   chunk_games=chunk_games, memory_budget=memory_budget,
                   devices=devices)


def run_sweep(config: SweepConfig, *, out=None, quiet=False, on_chunk=None,
              chunk_games=None, memory_budget=None, devices=None,
              traced_options=()) -> SweepResult:
  """:func:`sweep` of ``config``, where the family options named in
  ``traced_options`` (numbers) are inputs of the compiled chunk instead of
  constants: sweeps that differ only in their values share one compilation
  (``jaxnpg.atlas`` runs one per value). Results are those of :func:`sweep`."""
  if config.dtype == "float64" and not jax.config.read("jax_enable_x64"):
    raise ValueError(
        "This sweep runs in float64, which needs 64-bit JAX: call "
        "jax.config.update('jax_enable_x64', True) (or use dtype='float32').")
  plan = make_plan(config, traced_options)
  if out is not None:   # the manifest must identify the algorithm for a resume
    describe_algorithm(config.algorithm)
  layout = lay_out(plan, devices=devices, memory_budget=memory_budget,
                   chunk_games=chunk_games)
  store = None
  if out is not None:
    store = _store.SweepStore.open(out, plan.params, layout.manifest(),
                                   chunk_games_given=chunk_games is not None)
  with _store.held(store):   # the folder lock, released however this ends
    if store is not None and store.layout != layout.manifest():  # stored chunks
      layout = lay_out(plan, devices=devices, memory_budget=memory_budget,
                       chunk_games=int(store.layout["chunk_games"]))
    return _execute(plan, layout, store, quiet=quiet, on_chunk=on_chunk)


# --------------------------------------------------------------------------------
# Running the chunks.


def _chunk_inputs(plan: Plan, layout: Layout, c):
  """Host arrays of chunk ``c`` (padded to ``chunk_games``) and its game range."""
  size = layout.chunk_games
  start = c * size
  stop = min(start + size, plan.num_games)
  idx = np.arange(start, start + size, dtype=np.int32)
  if plan.config.source == "family":
    return (idx,), (start, stop)
  take = np.minimum(idx, plan.num_games - 1)
  args = jax.tree_util.tree_map(lambda x: np.asarray(x)[take],
                                (plan.config.game, plan.config.init_logp))
  return args + (idx,), (start, stop)


def _parts(layout: Layout, args):
  """The chunk inputs ``args`` cut into ``layout.threads`` equal parts of games."""
  n = layout.threads
  if n == 1:
    return [args]
  return [jax.tree_util.tree_map(lambda x, i=i: np.split(x, n)[i], args)
          for i in range(n)]


class _Chunks:
  """Runs the chunks of one sweep: inputs on the mesh, the compiled chunk, and
  (with ``layout.threads > 1``) one part of each chunk per host thread."""

  def __init__(self, plan: Plan, layout: Layout):
    self.plan, self.layout = plan, layout
    config, dtype = plan.config, plan.dtype
    self.inputs = (self._put(plan.tau_cells.astype(dtype)),
                   self._put(plan.eta_cells.astype(dtype)),
                   self._put(np.asarray(config.seed, np.uint32)),
                   None if config.tol is None
                   else self._put(np.asarray(config.tol, dtype)),
                   *(self._put(np.asarray(config.family_options[k], dtype))
                     for k in plan.traced_options))
    self.pool = (concurrent.futures.ThreadPoolExecutor(layout.threads)
                 if layout.threads > 1 else None)
    # JAX's x64 setting is per thread: the pool's threads take the caller's.
    self.x64 = bool(jax.config.read("jax_enable_x64"))
    self.compiled = None

  def _put(self, host, sharded=False):
    return _global_array(self.layout.mesh, host, sharded)

  def compile(self, c) -> float:
    """Compile the chunk program on chunk ``c``'s inputs; the seconds it took."""
    start = time.perf_counter()
    args = _parts(self.layout, _chunk_inputs(self.plan, self.layout, c)[0])[0]
    example = (jax.tree_util.tree_map(lambda x: self._put(x, True), args),
               *self.inputs)
    self.compiled = compiled_chunk(chunk_key(self.plan, self.layout), example)
    return time.perf_counter() - start

  def _run_part(self, args):
    with jax.enable_x64(self.x64):
      placed = jax.tree_util.tree_map(lambda x: self._put(x, True), args)
      out = self.compiled(placed, *self.inputs)
      if self.pool is None:
        return out
      return {name: _to_host(x) for name, x in out.items()}

  def launch(self, c):
    """Dispatch chunk ``c``: ``(parts, (lo, hi), start time)``."""
    args, games = _chunk_inputs(self.plan, self.layout, c)
    if self.pool is None:
      return [self._run_part(args)], games, time.perf_counter()
    return ([self.pool.submit(self._run_part, a)
             for a in _parts(self.layout, args)], games, time.perf_counter())

  def gather(self, pending) -> tuple[dict, tuple[int, int], float]:
    """Wait for a launched chunk: its host arrays ``(g, T, E, ...)``, its games
    and seconds. The wait polls, so Ctrl-C is answered within a fraction of a
    second (a computation in progress cannot be stopped, only left)."""
    parts, (lo, hi), start = pending
    if self.pool is not None:   # each part's host arrays, in game order
      while concurrent.futures.wait(parts, timeout=_POLL)[1]:
        pass
      done = [p.result() for p in parts]
      arrays = {name: np.concatenate([p[name] for p in done])[:hi - lo]
                for name in done[0]}
    else:
      wait = _FIRST_POLL   # short first looks: a small chunk is not held up
      while not all(x.is_ready() for x in parts[0].values()):
        time.sleep(wait)
        wait = min(2 * wait, _POLL)
      arrays = {name: _to_host(x)[:hi - lo] for name, x in parts[0].items()}
    arrays = {name: _unflatten_cells(self.plan, x) for name, x in arrays.items()}
    return arrays, (lo, hi), time.perf_counter() - start

  def close(self, *, wait: bool) -> None:
    """Stop the pool; without ``wait`` (an interrupt) running parts are left."""
    if self.pool is not None:
      self.pool.shutdown(wait=wait, cancel_futures=True)


# Seconds between two looks at a computation being waited for (the first
# looks come sooner, doubling from _FIRST_POLL).
_POLL = 0.05
_FIRST_POLL = 0.0005


def _execute(plan: Plan, layout: Layout, store, *, quiet,
             on_chunk) -> SweepResult:
  """Run the chunks of ``plan`` that ``store`` lacks (all without one); the result."""
  todo = [c for c in range(layout.num_chunks)
          if store is None or not store.is_complete(c)]
  damaged = [] if store is None else store.damaged_chunks(todo)
  chunks = _Chunks(plan, layout)
  compile_seconds = chunks.compile(todo[0]) if todo else 0.0
  progress = Progress(len(todo), "chunks", quiet=quiet)
  results: dict[int, dict] = {}
  start_all = time.perf_counter()
  done_iters = 0
  interrupted = True
  try:
    pending = chunks.launch(todo[0]) if todo else None
    for k, c in enumerate(todo):
      current = pending
      # Dispatch the next chunk before waiting for this one (overlaps host
      # work).
      pending = chunks.launch(todo[k + 1]) if k + 1 < len(todo) else None
      arrays, (lo, hi), seconds = chunks.gather(current)
      if store is not None:
        store.write_chunk(c, arrays, games=(lo, hi), seconds=seconds)
      results[c] = arrays
      done_iters += (hi - lo) * plan.cells_per_game * plan.config.num_iters
      elapsed = time.perf_counter() - start_all
      progress.update(k + 1, "game-iterations/s",
                      done_iters / max(elapsed, 1e-9))
      if on_chunk is not None:
        on_chunk({"chunk": c, "games": (lo, hi), "seconds": seconds,
                  "skipped": False})
    interrupted = False
  finally:
    chunks.close(wait=not interrupted)
  for c in range(layout.num_chunks):
    if c not in results:
      results[c] = store.read_chunk(c)
      if on_chunk is not None:
        on_chunk({"chunk": c, "games": store.chunk_games_range(c),
                  "seconds": 0.0, "skipped": True})
  elapsed = time.perf_counter() - start_all
  attrs = _attrs(plan, layout, store, seconds=elapsed,
                 compile_seconds=compile_seconds, computed=len(todo),
                 damaged=damaged, rate=(done_iters / elapsed
                                        if todo and elapsed > 0 else None))
  return assemble(plan.params, results, layout.num_chunks, attrs)


def _attrs(plan, layout, store, *, seconds, compile_seconds, computed, damaged,
           rate) -> dict:
  """A live sweep's ``SweepResult.attrs``: parameters, chunking, versions, timing."""
  attrs = dict(plan.params)
  attrs.update(
      chunk_games=layout.chunk_games, num_chunks=layout.num_chunks,
      block_games=layout.block_games, threads=layout.threads,
      num_devices=layout.num_devices,
      devices=[str(d) for d in layout.devices], platform=layout.platform,
      jaxnpg=__version__, jax=jax.__version__, seconds=seconds,
      compile_seconds=compile_seconds, chunks_computed=computed,
      chunks_damaged=damaged, game_iterations_per_second=rate,
      sum_actions=int(sum(plan.config.num_actions)))
  if layout.num_devices > 1:
    attrs["reproducibility"] = reproducibility(plan)
  if store is not None:
    attrs["out"] = str(store.path)
  return attrs


def reproducibility(plan) -> str:
  """How a sweep sharded over several devices compares with one device (measured
  on 4 CPU host devices; docs/concepts/devices.md)."""
  if plan.dense:
    return "bit for bit equal to one device (the batch-last loop)"
  if isinstance(plan.config.prototype, MarkovGame) and plan.config.dtype == "float32":
    return ("not bit for bit with one device: Markov games in float32 (NE-gaps "
            "within about 2e-5 relative, iterations_to_tol within one record, "
            "statuses equal as measured)")
  return ("policies bit for bit with one device; recorded gaps within about "
          "1e-11 relative in float64 (1.2e-11 measured), statuses equal")


def _unflatten_cells(plan: Plan, x):
  """``(g, P, ...)`` -> ``(g, T, E, ...)`` (``...`` starts with the seed axis)."""
  T, E = plan.step_size.shape
  return x.reshape((x.shape[0], T, E) + x.shape[2:])


def _global_array(mesh, host: np.ndarray, sharded: bool):
  """Place a host array on the mesh (sharded over games, or replicated)."""
  spec = jax.sharding.PartitionSpec("games") if sharded else (
      jax.sharding.PartitionSpec())
  sharding = jax.sharding.NamedSharding(mesh, spec)
  return jax.make_array_from_callback(host.shape, sharding,
                                      lambda idx: host[idx])


def _to_host(x) -> np.ndarray:
  """A global array on the host (gathered from every process)."""
  if jax.process_count() > 1:
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)
