"""What a sweep runs, derived once from its :class:`~jaxnpg.sweeps.config.SweepConfig`.

A :class:`Plan` holds the config and what follows from it without knowing where
the work runs: the ``(tau, eta)`` cells, the records, the loop form. Where it runs
(devices, blocks, chunks, threads) is a :class:`jaxnpg.sweeps.layout.Layout`; the
compiled chunk depends on both through one named :class:`ChunkKey`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from jaxnpg.sweeps.config import ConfigError, SweepConfig
from jaxnpg.sweeps.results import cell_step_sizes, record_iterations, trajectory_indices


class Plan(NamedTuple):
  """Everything a sweep computes, derived from its config (no layout).

  ``T`` taus, ``E`` etas (or multipliers of the rule), ``P = T E`` cells per game
  and seed, ``S`` seeds (1 without ``num_seeds`` or for a deterministic
  algorithm), ``R`` records and ``K`` kept trajectory points per cell.

  Attributes:
    config: the sweep's :class:`SweepConfig`.
    dtype: the computation's dtype.
    step_size: ``(T, E)`` the step size of every cell (under the paper rule,
      the scaled step; see :attr:`jaxnpg.SweepResult.step_size`).
    tau_cells: ``(P,)`` tau of every cell (tau-major).
    eta_cells: ``(P,)`` step size of every cell.
    cells_per_game: ``P S``.
    dense: whether blocks run as one batch-last loop (``method="dense"``).
    record_iterations: ``(R,)`` the recorded iterations.
    traj_idx: ``(K,)`` the records kept as trajectories.
    params: the config's parameters (:meth:`SweepConfig.to_params`).
    traced_options: family options that are inputs of the compiled chunk
      rather than constants (see :func:`jaxnpg.sweeps.run.run_sweep`).
  """

  config: SweepConfig
  dtype: np.dtype
  step_size: np.ndarray
  tau_cells: np.ndarray
  eta_cells: np.ndarray
  cells_per_game: int
  dense: bool
  record_iterations: np.ndarray
  traj_idx: np.ndarray
  params: dict
  traced_options: tuple[str, ...] = ()

  @property
  def num_games(self) -> int:
    return self.config.num_games

  @property
  def atlas(self) -> tuple[int | None, int, int] | None:
    """None, or ``(num_inits, burn_in, max_period)`` with ``lyapunov=True``."""
    c = self.config
    return (c.num_inits, int(c.burn_in or 0), c.max_period) if c.lyapunov else None


def make_plan(config: SweepConfig, traced_options=()) -> Plan:
  """The plan of ``config``; ``traced_options`` name numeric family options that
  enter the compiled chunk as inputs (one compilation for every value).

  Raises:
    ConfigError: a traced option that is not a number of a family sweep.
    ValueError: ``config`` is not runnable (read from a stored sweep without
      its games or its algorithm).
  """
  if not config.runnable:
    raise ValueError(
        "This SweepConfig was read from a stored sweep whose games (or "
        "algorithm) are not stored; pass `game=` (or `algorithm=`) to "
        "SweepConfig.replace to run it.")
  for name in traced_options:
    value = config.family_options.get(name)
    if config.source != "family" or isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)):
      raise ConfigError("family_options",
                        f"Family option {name!r} must be a number to be an "
                        f"input of the sweep, got {value!r}.")
  taus = np.asarray(config.taus)
  eta_axis = np.asarray(config.eta_axis)
  step_size = cell_step_sizes(config.eta_rule, taus, eta_axis,
                              config.num_actions)
  tau_cells = np.repeat(taus, eta_axis.size)
  rec = record_iterations(config.num_iters, config.record_every)
  return Plan(
      config=config, dtype=np.dtype(config.dtype), step_size=step_size,
      tau_cells=tau_cells, eta_cells=step_size.ravel(),
      cells_per_game=tau_cells.size * config.num_cell_seeds,
      dense=config.resolved_method == "dense", record_iterations=rec,
      traj_idx=trajectory_indices(rec.size, config.trajectory_points),
      params=config.to_params(), traced_options=tuple(traced_options))


class ChunkKey(NamedTuple):
  """What the compiled chunk depends on besides its input shapes (hashable).

  Options named in ``traced`` enter as inputs, not constants (so one compiled
  chunk serves every value; see :func:`jaxnpg.atlas`), and are ``"<input>"``
  in ``options``.
  """
  source: str
  family: str | None
  num_actions: tuple[int, ...]
  options: tuple[tuple[str, Any], ...]
  traced: tuple[str, ...]
  init: str
  dtype: str
  dense: bool
  num_iters: int
  record_every: int
  traj_idx: tuple[int, ...]
  tail: float
  block_games: int
  devices: tuple[Any, ...]
  platform: str
  algorithm: Any
  num_seeds: int | None
  eta_rule: str
  atlas: tuple[int | None, int, int] | None
  keep_logp: bool


def chunk_key(plan: Plan, layout) -> ChunkKey:
  """The :class:`ChunkKey` of ``plan`` laid out as ``layout``."""
  c = plan.config
  traced = plan.traced_options
  options = tuple(sorted((k, "<input>" if k in traced else v)
                         for k, v in c.family_options.items()))
  return ChunkKey(
      source=c.source, family=c.family, num_actions=tuple(c.num_actions),
      options=options, traced=traced,
      init=c.init if isinstance(c.init, str) else "given", dtype=c.dtype,
      dense=plan.dense, num_iters=c.num_iters, record_every=c.record_every,
      traj_idx=tuple(plan.traj_idx.tolist()), tail=c.tail,
      block_games=layout.block_games, devices=tuple(layout.devices),
      platform=layout.platform, algorithm=c.algorithm, num_seeds=c.num_seeds,
      eta_rule=c.eta_rule, atlas=plan.atlas, keep_logp=c.keep_logp)
