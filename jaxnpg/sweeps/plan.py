"""A sweep's arguments, checked, as one immutable :class:`Plan`.

:func:`_plan` checks every argument of :func:`jaxnpg.sweep` (in the order the
errors are documented to come) and fixes what the sweep computes: the games, the
``(tau, eta)`` cells, the algorithm and its seeds, the records and the manifest's
parameters. Where the work runs (devices, blocks, chunks) is left to
:func:`jaxnpg.sweeps.layout._layout`, which fills the plan's layout fields with
``Plan._replace``; nothing changes a plan once it is made.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.loop.algorithms import NPG, describe_algorithm, get_algorithm
from jaxnpg.games.families import FAMILIES
from jaxnpg.games.dense import DenseBatchLast
from jaxnpg.core.policy import random_policy, uniform_policy
from jaxnpg.core.protocol import Game
from jaxnpg.sweeps.results import record_iterations, cell_step_sizes, trajectory_indices
from jaxnpg.sweeps.seeding import INITS, game_digest, family_game
from jaxnpg.loop.run import check_tol
from jaxnpg.core.validation import check_policy, check_positive_int

METHODS = ("auto", "dense", "generic")


class Plan(NamedTuple):
  """Everything static about one sweep: cells, games, layout.

  ``T`` taus, ``E`` etas (or multipliers of the rule), ``P = T E`` cells per game
  and seed, ``S`` seeds (1 without ``num_seeds`` or for a deterministic
  algorithm), ``R`` records and ``K`` kept trajectory points per cell.

  Attributes:
    source: ``"family"`` (games made from ``(seed, index)``) or ``"game"`` (a
      user's batch of games).
    family: the family's name; None for ``source == "game"``.
    num_actions: ``(A_1, ..., A_n)``.
    family_options: the family's keyword options (``{}`` for none).
    seed: the sweep's seed (games, initial policies, algorithm keys).
    num_games: ``G``, the games of the sweep.
    game: the user's batch of games (``batch_shape == (G,)``); None for a family.
    init_logp: its initial log-policies (``(G, A_i)`` each); None for a family.
    init: ``"random"``, ``"uniform"`` or ``"given"`` (a user's policies).
    proto: one game of the sweep (for a family only its shapes and dtypes, from
      ``jax.eval_shape``): its type, sizes and dtype decide the layout.
    digest: SHA-256 of the user's games and initial policies; None for a family.
    dtype: the games' float dtype.
    taus: ``(T,)`` entropy weights.
    eta_rule: ``"paper"`` or ``"constant"``.
    eta_axis: ``(E,)`` multipliers of the paper rule, or the step sizes.
    step_size: ``(T, E)`` the step size of every cell.
    tau_cells: ``(P,)`` tau of every cell (tau-major).
    eta_cells: ``(P,)`` step size of every cell.
    cells_per_game: ``P S``.
    algorithm: the algorithm instance (``jaxnpg.NPG()``, ...).
    num_seeds: the ``num_seeds`` argument (None: no seed axis).
    dense: whether blocks run as one batch-last loop (``method="dense"``).
    atlas: None, or ``(num_inits, burn_in, max_period)`` with ``lyapunov=True``.
    num_iters: steps per cell.
    tol: the QRE-gap tolerance; None for the default rule per cell.
    record_every: steps between two recorded gaps.
    record_iterations: ``(R,)`` the recorded iterations.
    traj_idx: ``(K,)`` the records kept as trajectories.
    tail: fraction of the records fitted by ``linear_rate``.
    params: the sweep's parameters as the manifest and ``SweepResult.attrs``
      hold them (JSON-able).
    all_devices: the devices the sweep may use.
    platform: their platform (``"cpu"``, ``"gpu"``, ...).
    memory_budget: the ``memory_budget`` argument (bytes per device; None for a
      quarter of the device's memory).
    traced_options: family options that are inputs of the compiled chunk rather
      than constants (see :func:`jaxnpg.sweeps.run._sweep`).

  Layout, None until :func:`jaxnpg.sweeps.layout._layout` fills it:
    budget: bytes a chunk may use per device.
    work_per_game: bytes per game while a block runs.
    out_per_game: bytes per game of a chunk's outputs.
    devices: the devices the game axis is sharded over (a prefix of
      ``all_devices``).
    num_devices: ``len(devices)``.
    block_games: games per block on one device.
    threads: parts of a chunk run at once, each on its own host thread (CPU
      with one device: the cores; 1 elsewhere).
    chunk_games: games per chunk (a multiple of ``num_devices``).
    num_chunks: ``ceil(G / chunk_games)``.
    mesh: the one-axis (``"games"``) ``Mesh`` over ``devices``.
    layout: ``{"chunk_games", "num_chunks"}``, as the manifest holds it.
  """

  source: str
  family: str | None
  num_actions: tuple[int, ...]
  family_options: dict
  seed: int
  num_games: int
  game: Game | None
  init_logp: tuple[jax.Array, ...] | None
  init: str
  proto: Game
  digest: str | None
  dtype: np.dtype
  taus: np.ndarray
  eta_rule: str
  eta_axis: np.ndarray
  step_size: np.ndarray
  tau_cells: np.ndarray
  eta_cells: np.ndarray
  cells_per_game: int
  algorithm: Any
  num_seeds: int | None
  dense: bool
  atlas: tuple[int | None, int, int] | None
  num_iters: int
  tol: float | None
  record_every: int
  record_iterations: np.ndarray
  traj_idx: np.ndarray
  tail: float
  params: dict
  all_devices: list
  platform: str
  memory_budget: Any
  traced_options: tuple[str, ...] = ()
  budget: int | None = None
  work_per_game: int | None = None
  out_per_game: int | None = None
  devices: list | None = None
  num_devices: int | None = None
  block_games: int | None = None
  threads: int = 1
  chunk_games: int | None = None
  num_chunks: int | None = None
  mesh: jax.sharding.Mesh | None = None
  layout: dict | None = None

  def static_key(self) -> tuple:
    """What the compiled chunk depends on besides input shapes (hashable).

    Options named in ``traced_options`` enter as inputs, not constants (so that
    one compiled chunk serves every value; see :func:`jaxnpg.atlas`).
    """
    traced = tuple(self.traced_options)
    options = tuple(sorted((k, "<input>" if k in traced else v)
                           for k, v in self.family_options.items()))
    return (self.source, self.family, self.num_actions,
            (options, traced), self.init, self.dense,
            self.num_iters, self.record_every, tuple(self.traj_idx.tolist()),
            self.tail, self.block_games, tuple(self.devices), self.platform,
            self.algorithm, self.num_seeds, self.eta_rule, self.atlas)


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


def _plan(*, family, num_actions, num_games, seed, game, init, family_options,
          taus, etas, eta_multipliers, num_iters, tol, record_every,
          trajectory_points, tail, method, memory_budget, devices,
          algorithm=NPG(), num_seeds=None, recorded=False, lyapunov=False,
          num_inits=None, burn_in=None, max_period=16) -> Plan:
  """Check every argument (but ``chunk_games``, see ``_layout``) of the sweep.

  Returns:
    A :class:`Plan` without its layout.
  """
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
    digest = game_digest(game, init_logp)
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
  # The algorithm's own check of the game (as `run` does; sampled_npg: can the
  # game sample rewards?), on the prototype, before any work is stored.
  key = jax.random.key(0) if algorithm.uses_key else None
  jax.eval_shape(lambda g: algorithm.init(g, uniform_policy(g), key), proto)
  S = num_seeds if algorithm.uses_key and num_seeds is not None else 1

  step_size = cell_step_sizes(eta_rule, tau_list, eta_axis, num_actions)
  tau_cells = np.repeat(np.asarray(tau_list), len(eta_axis))
  eta_cells = step_size.ravel()
  P = tau_cells.size
  rec_iters = record_iterations(num_iters, record_every)
  traj_idx = trajectory_indices(rec_iters.size, trajectory_points)

  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("`devices` is empty.")
  platform = devices[0].platform

  params = {
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
  return Plan(
      source=source, family=family_name, num_actions=num_actions,
      family_options=options, seed=int(seed), num_games=G, game=game,
      init_logp=init_logp, init=init_name, proto=proto, digest=digest,
      dtype=dtype, taus=np.asarray(tau_list), eta_rule=eta_rule,
      eta_axis=np.asarray(eta_axis), step_size=step_size, tau_cells=tau_cells,
      eta_cells=eta_cells, cells_per_game=P * S, algorithm=algorithm,
      num_seeds=num_seeds, dense=dense, atlas=atlas, num_iters=num_iters,
      tol=tol, record_every=record_every, record_iterations=rec_iters,
      traj_idx=traj_idx, tail=float(tail), params=params, all_devices=devices,
      platform=platform, memory_budget=memory_budget)


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


def with_traced_options(plan: Plan, traced_options) -> Plan:
  """``plan`` with the family options ``traced_options`` (numbers) as inputs."""
  for name in traced_options:
    value = plan.family_options.get(name)
    if plan.source != "family" or isinstance(value, bool) or not isinstance(
        value, (int, float, np.integer, np.floating)):
      raise ValueError(f"Family option {name!r} must be a number to be an "
                       f"input of the sweep, got {value!r}.")
  return plan._replace(traced_options=tuple(traced_options))
