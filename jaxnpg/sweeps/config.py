"""What a sweep computes: :class:`SweepConfig`, one frozen object checked once.

A sweep is defined by its games, its ``(tau, eta)`` cells, the algorithm and what
each cell records; where it runs (devices, chunks, blocks, threads) is not part of
it (see :mod:`jaxnpg.sweeps.layout`). :class:`SweepConfig` holds exactly that
definition. It checks every value when it is made (a bad one raises
:class:`ConfigError`, a ``ValueError`` naming the field), and it is the one source
of the sweep's parameters everywhere else:

* ``jaxnpg.sweep(config, ...)`` runs it (``jaxnpg.sweep(**fields)`` builds one);
* the manifest of a stored sweep holds :meth:`SweepConfig.to_params` (its fields
  as JSON, with the user's games replaced by their SHA-256 and the algorithm by
  its name and settings), and :meth:`SweepConfig.from_params` reads it back, so
  ``jaxnpg.load_sweep(path).config == config``;
* the command line builds the same object from its options;
* two configs are equal exactly when they describe the same sweep (equal
  parameters), which is also what a stored sweep is resumed on.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.policy import random_policy, uniform_policy
from jaxnpg.core.protocol import Game
from jaxnpg.core.validation import (
  SUPPORTED_DTYPES,
  check_policy,
  check_positive_int,
  check_tol,
  warn_overshoot,
)
from jaxnpg.games.dense import DenseBatchLast
from jaxnpg.games.families import FAMILIES
from jaxnpg.loop.algorithms import ALGORITHMS, get_algorithm
from jaxnpg.loop.describe import describe_algorithm
from jaxnpg.sweeps.seeding import INITS, family_game

FORMAT = "jaxnpg-sweep/1"
METHODS = ("auto", "dense", "generic")

# Parameters added to the manifest after the first sweeps were written: a
# manifest without them holds a sweep with these values.
PARAM_DEFAULTS: dict[str, Any] = {
    "algorithm": "npg", "algorithm_options": {}, "num_seeds": None,
    "lyapunov": False, "num_inits": None, "burn_in": None, "max_period": None,
    "verdict_rules": 1, "keep_logp": False, "policy_shapes": None}
# The verdict rules this jaxnpg applies (2: per-agent tolerances, STALLED only
# on evidence, INVALID_INPUT; 3: STALLED also needs a repeating tail; see
# jaxnpg.loop.verdict). A stored sweep judged by other rules is never resumed
# under these (it still loads).
VERDICT_RULES = 3


class ConfigError(ValueError):
  """A value of a :class:`SweepConfig` that cannot be; ``field`` names it."""

  def __init__(self, field: str, message: str):
    super().__init__(message)
    self.field = field


@dataclasses.dataclass(frozen=True)
class AlgorithmRecord:
  """An algorithm known only by its stored description (a sweep read from disk).

  A stored sweep's algorithm is rebuilt when its settings are plain values; one
  whose settings were functions (an optax optimizer, a schedule) is kept as this
  record: it compares and describes as the original did, but cannot run.
  """
  name: str
  options: str   # the settings as canonical JSON
  uses_key: bool = False


def _fail(field, message):
  raise ConfigError(field, message)


# Most values on one axis of a sweep (a tau grid of 1e8 values is a typo, not a
# sweep: each cell runs num_iters steps).
MAX_AXIS = 1 << 20


def _float_tuple(values, field) -> tuple[float, ...]:
  if isinstance(values, str):
    _fail(field, f"`{field}` must be a sequence of numbers, got {values!r}.")
  try:
    arr = np.asarray(values, dtype=float).ravel()
  except (TypeError, ValueError):
    _fail(field, f"`{field}` must be a sequence of numbers, got {values!r}.")
  if arr.size > MAX_AXIS:
    _fail(field, f"`{field}` holds {arr.size} values, more than {MAX_AXIS} "
          "on one axis; every value is a column of cells that each run "
          "num_iters steps. Use fewer.")
  out = tuple(float(v) for v in arr)
  if not out:
    _fail(field, f"`{field}` is empty; give at least one value.")
  if not all(math.isfinite(v) for v in out):
    _fail(field, f"`{field}` must be finite, got {list(out)}.")
  return out


def _int(value, field, *, allow_zero=False):
  try:
    return check_positive_int(value, field, allow_zero=allow_zero)
  except ValueError as e:
    raise ConfigError(field, str(e)) from None


def _canonical(obj):
  """JSON round trip, so stored and requested values compare equal."""
  return json.loads(json.dumps(obj))


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SweepConfig:
  """The definition of one phase sweep (see :func:`jaxnpg.sweep` for each field).

  Made once, checked once: every value is validated in ``__post_init__`` and
  normalized (sequences become tuples of floats or ints, the algorithm name its
  instance, ``record_every`` and ``burn_in`` their defaults, ``dtype`` the
  computation's dtype), so a config that exists is one that runs.

  Attributes:
    taus: ``(T,)`` entropy weights, each ``>= 0``.
    family: a registered family name (``"random"`` when neither it nor ``game``
      is given); None for a sweep of ``game``.
    num_actions: ``(A_1, ..., A_n)`` of the family's games (of ``game``'s).
    num_games: ``G`` (family default 64; ``game``'s batch size).
    seed: seed of the games, starts and algorithm keys, in ``[0, 2**32)``.
    game: a batch of games with ``batch_shape == (G,)``, or None.
    init: ``"random"`` or ``"uniform"``, or (with ``game``) a batched
      log-policy; ``"given"`` in a config read from a stored sweep of one.
    family_options: the family's keyword options.
    etas: step sizes, or the rule ``"paper"``.
    eta_multipliers: multipliers of the ``"paper"`` rule (None: ``(1.0,)``).
    num_iters: NPG steps per cell.
    tol: QRE-gap tolerance, or None for the default rule per cell.
    record_every: steps between recorded gaps (default ``num_iters // 200``).
    trajectory_points: records kept of each cell's trajectory.
    tail: fraction of the records fitted by ``linear_rate``.
    method: ``"auto"``, ``"dense"`` or ``"generic"`` (:attr:`resolved_method`
      is what runs).
    algorithm: the algorithm instance (a name is resolved).
    keep_logp: record every cell's final log-policy
      (:attr:`jaxnpg.SweepResult.final_logp`; default True).
    num_seeds: repetitions of a stochastic algorithm (None: no seed axis).
    lyapunov: record the atlas fields.
    num_inits: starts per game of the attractor runs (needs ``lyapunov``).
    burn_in: attractor steps before the exponent is averaged (default
      ``num_iters`` with ``lyapunov``).
    max_period: longest period the attractor runs detect.
    dtype: ``"float32"`` or ``"float64"`` (default: JAX's default float for a
      family, the game's dtype for ``game``; a game is cast to it).
    game_sha256: SHA-256 of ``game`` and its starts; computed from ``game``
      (leave it unset), or read from a stored sweep whose games are not stored.

  Example:
    >>> import jaxnpg
    >>> cfg = jaxnpg.SweepConfig(taus=[0.1, 1.0], num_actions=(2, 2),
    ...                          num_games=4, num_iters=200)
    >>> cfg.family, cfg.record_every, cfg.resolved_method
    ('random', 1, 'dense')
    >>> cfg == jaxnpg.SweepConfig.from_params(cfg.to_params())
    True
  """

  # Fields whose default None is resolved at construction are typed by what a
  # config holds (the ignores mark them).
  taus: Sequence[float]
  family: str | None = None
  num_actions: Sequence[int] = (3, 4, 5)
  num_games: int = None  # type: ignore[assignment]
  seed: int = 0
  game: Game | None = None
  init: Any = "random"
  family_options: Mapping[str, Any] = None  # type: ignore[assignment]
  etas: Sequence[float] | str = "paper"
  eta_multipliers: Sequence[float] | None = None
  num_iters: int = 1000
  tol: float | None = None
  record_every: int = None  # type: ignore[assignment]
  trajectory_points: int = 0
  tail: float = 0.5
  method: str = "auto"
  algorithm: Any = "npg"
  num_seeds: int | None = None
  keep_logp: bool = True
  lyapunov: bool = False
  num_inits: int | None = None
  burn_in: int | None = None
  max_period: int = 16
  dtype: str = None  # type: ignore[assignment]
  game_sha256: str | None = None
  # Derived, not given: the user's games' starts, and a stored sweep's method.
  _init_logp: Any = dataclasses.field(default=None, init=False, repr=False)
  _stored_method: str = dataclasses.field(default="generic", init=False,
                                          repr=False)
  _stored_shapes: Any = dataclasses.field(default=None, init=False, repr=False)

  def __post_init__(self):
    put = functools.partial(object.__setattr__, self)
    put("algorithm", self._checked_algorithm())
    self._check_atlas(put)
    self._check_seeds(put)
    put("taus", _float_tuple(self.taus, "taus"))
    if any(t < 0 for t in self.taus):
      _fail("taus", f"`taus` must be >= 0 (entropy weights), got "
            f"{list(self.taus)}.")
    self._check_etas(put)
    put("num_iters", _int(self.num_iters, "num_iters"))
    put("trajectory_points", _int(self.trajectory_points, "trajectory_points",
                                  allow_zero=True))
    if not (isinstance(self.tail, (int, float)) and 0 < self.tail <= 1):
      _fail("tail", f"`tail` must be in (0, 1], got {self.tail}.")
    put("tail", float(self.tail))
    if self.method not in METHODS:
      _fail("method", f"`method` must be one of {METHODS}, got "
            f"{self.method!r}.")
    put("family_options", dict(self.family_options or {}))
    seed = self.seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
        0 <= int(seed) < 2**32):
      _fail("seed", f"`seed` must be an integer in [0, 2**32), got {seed!r}.")
    put("seed", int(seed))
    self._check_games(put)
    if self.tol is not None:
      try:
        check_tol(self.tol)
      except ValueError as e:
        raise ConfigError("tol", str(e)) from None
      put("tol", float(self.tol))
    record_every = (max(1, self.num_iters // 200) if self.record_every is None
                    else self.record_every)
    put("record_every", _int(record_every, "record_every"))
    if self.record_every > self.num_iters:
      _fail("record_every", f"`record_every`={self.record_every} exceeds "
            f"`num_iters`={self.num_iters}.")
    if self.lyapunov and self.burn_in is None:
      put("burn_in", self.num_iters)
    self._check_method()

  # --------------------------------------------------------------- the checks
  def _checked_algorithm(self):
    if isinstance(self.algorithm, AlgorithmRecord):
      return self.algorithm
    try:
      return get_algorithm(self.algorithm)
    except ValueError as e:
      raise ConfigError("algorithm", str(e)) from None

  @property
  def runnable(self) -> bool:
    """False for a config read from a stored sweep of a user's games (the games
    are not stored) or whose algorithm is only a stored description."""
    return not (isinstance(self.algorithm, AlgorithmRecord)
                or (self.game is None and self.game_sha256 is not None))

  def _check_atlas(self, put):
    if not isinstance(self.lyapunov, (bool, np.bool_)):
      _fail("lyapunov", f"`lyapunov` must be True or False, got "
            f"{self.lyapunov!r}.")
    put("lyapunov", bool(self.lyapunov))
    if not isinstance(self.keep_logp, (bool, np.bool_)):
      _fail("keep_logp", f"`keep_logp` must be True or False, got "
            f"{self.keep_logp!r}.")
    if not self.lyapunov:
      if self.num_inits is not None:
        _fail("num_inits", "`num_inits` sets the starts of the attractor runs; "
              "pass lyapunov=True with it.")
      return
    if self.algorithm.uses_key:
      _fail("lyapunov", f"lyapunov=True follows a deterministic map; algorithm "
            f"{self.algorithm.name!r} draws random samples.")
    if self.num_seeds is not None:
      _fail("num_seeds", "lyapunov=True runs a deterministic map; leave "
            "num_seeds unset.")
    if self.num_inits is not None:
      put("num_inits", _int(self.num_inits, "num_inits"))
    if self.burn_in is not None:
      put("burn_in", _int(self.burn_in, "burn_in", allow_zero=True))
    put("max_period", _int(self.max_period, "max_period"))

  def _check_seeds(self, put):
    if self.num_seeds is None:
      return
    put("num_seeds", _int(self.num_seeds, "num_seeds"))
    if self.num_seeds > 1 and not self.algorithm.uses_key:
      _fail("num_seeds", f"num_seeds={self.num_seeds} repeats a deterministic "
            f"algorithm ({self.algorithm.name!r}) with identical results; seeds "
            "are for stochastic algorithms (sampled_npg). Leave num_seeds unset.")

  def _check_etas(self, put):
    if isinstance(self.etas, str):
      if self.etas != "paper":
        _fail("etas", f"`etas` must be a list of step sizes or the rule "
              f"'paper', got {self.etas!r}.")
      if self.eta_multipliers is not None:
        mult = _float_tuple(self.eta_multipliers, "eta_multipliers")
        if any(m <= 0 for m in mult):
          _fail("eta_multipliers", f"`eta_multipliers` must be > 0, got "
                f"{list(mult)}.")
        put("eta_multipliers", mult)
      return
    if self.eta_multipliers is not None:
      _fail("eta_multipliers", "`eta_multipliers` scales a step-size rule; "
            "pass etas='paper' with it, not a list of step sizes.")
    etas = _float_tuple(self.etas, "etas")
    if any(v <= 0 for v in etas):
      _fail("etas", f"`etas` (the step sizes) must be > 0, got {list(etas)}.")
    put("etas", etas)
    scale = 1.0
    if self.family == "markov":   # eta_bar = eta / (1 - gamma)
      scale = 1.0 / (1.0 - float((self.family_options or {}).get("discount",
                                                                 0.9)))
    warn_overshoot(np.outer(self.taus, etas) * scale, " in some cells")

  def _check_games(self, put):
    if self.game is not None:
      self._check_user_games(put)
    elif self.game_sha256 is not None:   # read back from a stored sweep
      put("num_actions", tuple(int(a) for a in self.num_actions))
      put("num_games", _int(self.num_games, "num_games"))
    else:
      self._check_family(put)
    if self.dtype not in SUPPORTED_DTYPES:
      _fail("dtype", f"`dtype` must be one of {SUPPORTED_DTYPES}, got "
            f"{self.dtype!r}.")

  def _check_family(self, put):
    family = "random" if self.family is None else self.family
    if family not in FAMILIES:
      _fail("family", f"Unknown game family {family!r}; choose one of "
            f"{sorted(FAMILIES)}.")
    put("family", family)
    try:
      actions = tuple(int(a) for a in self.num_actions)
    except (TypeError, ValueError):
      _fail("num_actions", f"`num_actions` must be positive integers, got "
            f"{self.num_actions!r}.")
    if not actions or any(a < 1 for a in actions):
      _fail("num_actions", f"`num_actions` must be positive integers, got "
            f"{actions}.")
    put("num_actions", actions)
    put("num_games", _int(64 if self.num_games is None else self.num_games,
                          "num_games"))
    if not isinstance(self.init, str) or self.init not in INITS:
      _fail("init", f"`init` must be one of {INITS} for a family sweep, got "
            f"{self.init!r}.")
    put("dtype", jnp.dtype(self.dtype or jnp.result_type(float)).name)

  def _check_user_games(self, put):
    game = self.game
    if self.family is not None:
      _fail("family", "Pass either a `family` name or a batched `game`, not both.")
    if not isinstance(game, Game):
      _fail("game", f"`game` must be a jaxnpg game, got {type(game).__name__}.")
    if len(game.batch_shape) != 1:
      _fail("game", f"`game` must be a batch of games with one batch axis, got "
            f"batch shape {game.batch_shape}; stack games with "
            "jaxnpg.stack_games([...]), or give one game a leading axis of 1.")
    count = game.batch_shape[0]
    if self.num_games is not None and self.num_games != count:
      _fail("num_games", f"`num_games`={self.num_games} but the game batch "
            f"holds {count}.")
    dtype = jnp.dtype(self.dtype or game.dtype).name
    put("dtype", dtype)
    if jnp.dtype(game.dtype) != jnp.dtype(dtype):
      game = game.astype(dtype)
      put("game", game)
    put("num_games", count)
    put("num_actions", tuple(game.num_actions))
    logp = self._user_starts(game, count)
    put("init", self.init if isinstance(self.init, str) else logp)
    object.__setattr__(self, "_init_logp", logp)
    put("game_sha256", game_digest(game, logp))

  def _user_starts(self, game, count):
    if isinstance(self.init, str):
      if self.init not in INITS:
        _fail("init", f"`init` must be one of {INITS} or a policy, got "
              f"{self.init!r}.")
      if self.init == "uniform":
        return uniform_policy(game)
      return random_policy(jax.random.key(self.seed), game)
    try:
      check_policy(game, self.init, batched=True)
    except ValueError as e:
      raise ConfigError("init", str(e)) from None
    logp = tuple(jnp.asarray(lp, game.dtype) for lp in self.init)
    if any(lp.shape[:1] != (count,) for lp in logp):
      _fail("init", f"`init` must have a leading game axis of size {count}.")
    return logp

  def _check_method(self):
    if not self.runnable:
      return
    proto = self.prototype
    # The algorithm's own check of the game (as `run` makes it; sampled_npg:
    # can the game sample rewards?), on the prototype.
    key = jax.random.key(0) if self.algorithm.uses_key else None
    try:
      jax.eval_shape(lambda g: self.algorithm.init(g, uniform_policy(g), key),
                     proto)
    except ValueError as e:
      raise ConfigError("algorithm", str(e)) from None
    dense_ok = proto.loop_form().batch_last
    if self.method == "dense" and not dense_ok:
      _fail("method", f"method='dense' needs a game with a batch-last loop "
            f"form (a NormalFormGame with n * prod(A) <= "
            f"{DenseBatchLast.MAX_TERMS}); got {type(proto).__name__} with "
            f"actions {self.num_actions}. Use method='generic'.")
    if self.method == "dense" and not self.algorithm.batch_last:
      _fail("method", f"method='dense' runs algorithms that work batch-last "
            f"(npg, optimistic_npg); algorithm {self.algorithm.name!r} takes "
            "the generic path (method='generic' or 'auto').")

  # ------------------------------------------------------------ derived
  @property
  def source(self) -> str:
    """``"family"`` (games made from ``(seed, index)``) or ``"game"``."""
    return "family" if self.family is not None else "game"

  @functools.cached_property
  def prototype(self) -> Game:
    """One game of the sweep: its type, sizes and abilities.

    A family's game only as shapes (``jax.eval_shape``), drawn in float32 (the
    dtype the family draws in; checking a config never needs 64-bit JAX).
    """
    if self.game is not None:
      return jax.tree_util.tree_map(lambda x: x[0], self.game)
    try:
      return jax.eval_shape(lambda: family_game(
          str(self.family), self.seed, 0, self.num_actions, self.family_options,
          self.init, dtype=jnp.float32)[0])
    except (TypeError, ValueError) as e:
      raise ConfigError("family_options", f"`family_options`: {e}") from None

  @property
  def init_logp(self):
    """The user's games' starts (``(G, *shape)`` each); None for a family."""
    return self._init_logp

  @property
  def policy_shapes(self) -> tuple[tuple[int, ...], ...]:
    """Each agent's log-policy shape for one game (``(A_i,)`` or ``(S, A_i)``)."""
    if self.runnable:
      return tuple(tuple(s) for s in self.prototype.policy_shapes)
    if self._stored_shapes is None:
      return tuple((int(a),) for a in self.num_actions)
    return self._stored_shapes

  @property
  def resolved_method(self) -> str:
    """``"dense"`` (the batch-last loop) or ``"generic"``: what runs."""
    if not self.runnable:
      return self._stored_method
    dense = (self.prototype.loop_form().batch_last and self.algorithm.batch_last
             and self.method != "generic")
    return "dense" if dense else "generic"

  @property
  def eta_rule(self) -> str:
    """``"paper"`` or ``"constant"``."""
    return "paper" if isinstance(self.etas, str) else "constant"

  @property
  def eta_axis(self) -> tuple[float, ...]:
    """The eta axis: the multipliers of the rule, or the step sizes."""
    if isinstance(self.etas, str):   # the paper rule
      return tuple(self.eta_multipliers or (1.0,))
    return tuple(self.etas)

  @property
  def num_cell_seeds(self) -> int:
    """``S``: seeds per cell (1 without ``num_seeds`` or for deterministic
    algorithms)."""
    uses_key = self.algorithm.uses_key
    return self.num_seeds if uses_key and self.num_seeds is not None else 1

  # -------------------------------------------------------- JSON round trip
  def to_params(self) -> dict:
    """The config as JSON values: what a stored sweep's manifest holds.

    The fields, with ``game`` replaced by ``game_sha256`` (and ``source``),
    ``etas``/``eta_multipliers`` by ``eta_rule`` and the eta axis, the
    algorithm by its name and settings (:func:`describe_algorithm`), and
    ``method`` resolved.
    """
    if isinstance(self.algorithm, AlgorithmRecord):
      alg_name, alg_options = self.algorithm.name, json.loads(
          self.algorithm.options)
    else:
      try:
        alg_name, alg_options = describe_algorithm(self.algorithm)
      except ValueError:
        alg_name, alg_options = self.algorithm.name, {"description":
                                                      "unavailable"}
    atlas = self.lyapunov
    return _canonical({
        "format": FORMAT, "source": self.source, "family": self.family,
        "family_options": self.family_options,
        "num_actions": list(self.num_actions), "num_games": self.num_games,
        "seed": self.seed, "game_sha256": self.game_sha256,
        "init": self.init if isinstance(self.init, str) else "given",
        "taus": list(self.taus), "eta_rule": self.eta_rule,
        "etas": list(self.eta_axis), "num_iters": self.num_iters,
        "tol": self.tol, "record_every": self.record_every,
        "trajectory_points": self.trajectory_points, "tail": self.tail,
        "dtype": self.dtype, "method": self.resolved_method,
        "algorithm": alg_name, "algorithm_options": alg_options,
        "num_seeds": self.num_seeds, "lyapunov": atlas,
        "num_inits": self.num_inits if atlas else None,
        "burn_in": self.burn_in if atlas else None,
        "max_period": self.max_period if atlas else None,
        "verdict_rules": VERDICT_RULES,
        "keep_logp": self.keep_logp,
        "policy_shapes": [list(s) for s in self.policy_shapes],
    })

  @classmethod
  def from_params(cls, params: Mapping[str, Any]) -> SweepConfig:
    """The config of a stored sweep's parameters (:meth:`to_params`).

    Unknown keys are ignored; keys added to the manifest after the first
    sweeps were written take their old meaning when absent. A sweep of a
    user's games comes back without the games (:attr:`runnable` is False).

    Raises:
      ConfigError: a value is missing or cannot be (naming the field).
    """
    p = {**PARAM_DEFAULTS, **params}
    for key in ("taus", "eta_rule", "etas", "num_actions", "num_games",
                "num_iters", "record_every", "trajectory_points", "tail",
                "dtype", "init", "seed"):
      if key not in p:
        _fail(key, f"the parameter {key!r} is missing")
    paper = p["eta_rule"] == "paper"
    if not paper and p["eta_rule"] != "constant":
      _fail("eta_rule", f"`eta_rule` must be 'paper' or 'constant', got "
            f"{p['eta_rule']!r}.")
    stored_game = p.get("source", "family") == "game"
    with warnings.catch_warnings():   # said when the sweep was made
      warnings.simplefilter("ignore", UserWarning)
      config = cls(
          taus=p["taus"], family=None if stored_game else p.get("family"),
          num_actions=p["num_actions"], num_games=p["num_games"],
          seed=p["seed"], init=p["init"],
          family_options=p.get("family_options") or {},
          etas="paper" if paper else p["etas"],
          eta_multipliers=p["etas"] if paper else None,
          num_iters=p["num_iters"], tol=p.get("tol"),
          record_every=p["record_every"],
          trajectory_points=p["trajectory_points"], tail=p["tail"],
          keep_logp=bool(p.get("keep_logp", False)),
          method=p.get("method") or "auto",
          algorithm=_stored_algorithm(p["algorithm"], p["algorithm_options"]),
          num_seeds=p["num_seeds"], lyapunov=p["lyapunov"],
          num_inits=p["num_inits"], burn_in=p["burn_in"],
          max_period=16 if p["max_period"] is None else p["max_period"],
          dtype=p["dtype"],
          game_sha256=(p.get("game_sha256") or "unknown") if stored_game
          else None)
    object.__setattr__(config, "_stored_method", p.get("method") or "generic")
    if p.get("policy_shapes") is not None:
      object.__setattr__(config, "_stored_shapes", tuple(
          tuple(int(d) for d in s) for s in p["policy_shapes"]))
    return config

  def replace(self, **changes) -> SweepConfig:
    """A copy with ``changes`` (checked again)."""
    fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
              if f.init}
    if "game" in changes or "init" in changes:
      fields["game_sha256"] = None
    return SweepConfig(**{**fields, **changes})

  # ------------------------------------------------------------ identity
  def __eq__(self, other):
    if not isinstance(other, SweepConfig):
      return NotImplemented
    return self.to_params() == other.to_params()

  def __hash__(self):
    return hash(json.dumps(self.to_params(), sort_keys=True))

  def __repr__(self):
    what = (f"family={self.family!r}" if self.family is not None
            else f"game=<{self.num_games} games, sha256 "
            f"{(self.game_sha256 or '')[:12]}>")
    eta = (f"etas='paper' x {list(self.eta_axis)}" if self.eta_rule == "paper"
           else f"etas={list(self.etas)}")
    return (f"SweepConfig({what}, num_actions={tuple(self.num_actions)}, "
            f"num_games={self.num_games}, taus=<{len(self.taus)} values>, {eta}, "
            f"num_iters={self.num_iters}, algorithm={self.algorithm.name!r}, "
            f"dtype={self.dtype!r})")


def _stored_algorithm(name, options):
  """The algorithm a manifest names: rebuilt when its settings are plain values."""
  cls = ALGORITHMS.get(name)
  if cls is not None and isinstance(options, dict):
    try:
      algorithm = cls(**options)
      if _canonical(describe_algorithm(algorithm)[1]) == _canonical(options):
        return algorithm
    except (TypeError, ValueError):
      pass
  return AlgorithmRecord(str(name), json.dumps(options, sort_keys=True),
                         uses_key=bool(cls is not None and cls.uses_key))


def game_digest(game, init) -> str:
  """SHA-256 (hex) of a user's batch of games and initial policies (manifest)."""
  h = hashlib.sha256()
  leaves, treedef = jax.tree_util.tree_flatten((game, init))
  h.update(repr(treedef).encode())
  for leaf in leaves:
    arr = np.ascontiguousarray(np.asarray(leaf))
    h.update(f"{arr.dtype}{arr.shape}".encode())
    h.update(arr.tobytes())
  return h.hexdigest()
