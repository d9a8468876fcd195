"""The learning-dynamics atlas: sweeps with attractor fields over a family parameter.

:func:`atlas` runs one :func:`jaxnpg.sweep` (with ``lyapunov=True``) per value of
a numeric family option (the covariant games' ``correlation`` by default), each in
its own resumable subfolder of ``out``, and returns an :class:`AtlasResult` with a
leading ``value`` axis. The option enters the compiled sweep as an input, so all
values share one compilation. Other structure (the number of agents, actions per
agent) changes array shapes: run one atlas per structure (``jaxnpg reproduce
--atlas`` does, for 2, 3 and 4 agents).

Regimes per cell (:data:`REGIMES`), from the sweep's atlas fields: *multiple fixed
points* when the ``K`` starts converged to at least 2 distinct fixed points;
otherwise the attractor of start 0: *unique fixed point*, *periodic*, *chaotic* or
*undetermined* (see :class:`jaxnpg.Attractor`).

Example:
  >>> import jaxnpg
  >>> jaxnpg.REGIMES[jaxnpg.Regime.MULTIPLE_FIXED_POINTS]
  'multiple fixed points'
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import pathlib
import sys
import time
import warnings

import numpy as np

from jaxnpg import theory
from jaxnpg.dynamics.attractors import Attractor
from jaxnpg.sweeps.config import SweepConfig
from jaxnpg.sweeps.results import SweepResult
from jaxnpg.sweeps.run import run_sweep
from jaxnpg.sweeps.store import NoFinishedChunkError, load_sweep

ATLAS_FILE = "atlas.json"
ATLAS_FORMAT = "jaxnpg-atlas/1"


class Regime(enum.IntEnum):
  """Regime of one (game, tau, eta) cell of an atlas.

  Example:
    >>> import jaxnpg
    >>> [r.name for r in jaxnpg.Regime]
    ['UNIQUE_FIXED_POINT', 'MULTIPLE_FIXED_POINTS', 'PERIODIC', 'CHAOTIC', 'UNDETERMINED']
  """

  UNIQUE_FIXED_POINT = 0
  MULTIPLE_FIXED_POINTS = 1
  PERIODIC = 2
  CHAOTIC = 3
  UNDETERMINED = 4

  @property
  def label(self) -> str:
    return REGIMES[int(self)]


REGIMES = ("unique fixed point", "multiple fixed points", "periodic", "chaotic",
           "undetermined")
"""The label of every :class:`Regime` code, indexed by the code."""


def regimes(result: SweepResult) -> np.ndarray:
  """The :class:`Regime` code of every cell of a sweep run with ``lyapunov=True``.

  Returns:
    int8 array shaped like ``result.status``.

  Raises:
    ValueError: the sweep recorded no attractor fields.

  Example:
    >>> import jaxnpg
    >>> at = jaxnpg.atlas(num_actions=(3, 3), values=[-1.0, 1.0], taus=[0.1, 1.0],
    ...                   num_games=4, num_inits=2, num_iters=200, quiet=True)
    >>> codes = jaxnpg.regimes(at.sweeps[1])         # one sweep (rho = 1)
    >>> codes.shape, jaxnpg.Regime(int(codes[0, 1, 0])).name   # (game, tau, eta)
    ((4, 2, 1), 'UNIQUE_FIXED_POINT')
  """
  if result.attractor is None:
    raise ValueError("The sweep has no attractor fields; run it with "
                     "lyapunov=True.")
  code = np.asarray(result.attractor)
  out = np.full(code.shape, Regime.UNDETERMINED, np.int8)
  out[code == Attractor.FIXED_POINT] = Regime.UNIQUE_FIXED_POINT
  out[code == Attractor.PERIODIC] = Regime.PERIODIC
  out[code == Attractor.CHAOTIC] = Regime.CHAOTIC
  if result.num_fixed_points is not None:
    out[np.asarray(result.num_fixed_points) >= 2] = Regime.MULTIPLE_FIXED_POINTS
  return out


@dataclasses.dataclass(frozen=True, eq=False)
class AtlasResult:
  """Sweeps of one family over the values of one of its options.

  Attributes:
    option: the family option on the ``value`` axis (e.g. ``"correlation"``).
    values: ``(R,)`` its values.
    sweeps: ``R`` :class:`jaxnpg.SweepResult`, one per value, with the same games
      (indices and keys), ``tau`` and ``eta`` axes.
    attrs: the atlas's parameters (family, num_actions, ...; JSON-able).

  Example:
    >>> import jaxnpg
    >>> at = jaxnpg.atlas(num_actions=(3, 3), values=[-1.0, 1.0], taus=[0.1, 1.0],
    ...                   num_games=4, num_inits=2, num_iters=200, quiet=True)
    >>> at.option, at.values.tolist(), at.regimes().shape   # (value, game, tau, eta)
    ('correlation', [-1.0, 1.0], (2, 4, 2, 1))
  """
  option: str
  values: np.ndarray
  sweeps: tuple
  attrs: dict = dataclasses.field(default_factory=dict)

  regime_names = REGIMES

  @property
  def tau(self) -> np.ndarray:
    return self.sweeps[0].tau

  @property
  def eta(self) -> np.ndarray:
    return self.sweeps[0].eta

  @property
  def num_actions(self) -> tuple[int, ...]:
    return tuple(self.attrs["num_actions"])

  @property
  def num_agents(self) -> int:
    return len(self.num_actions)

  @property
  def gamma(self) -> np.ndarray | None:
    """Sanders et al.'s ``Gamma = (n - 1) rho`` for a correlation axis, else None."""
    if self.option != "correlation":
      return None
    return (self.num_agents - 1) * np.asarray(self.values, dtype=float)

  def regimes(self) -> np.ndarray:
    """``(R, G, T, E)`` int8 :class:`Regime` codes."""
    return np.stack([regimes(s) for s in self.sweeps])

  def regime_fractions(self) -> np.ndarray:
    """``(R, T, E, 5)``: fraction of games in each regime (sums to 1 per cell)."""
    codes = self.regimes()
    return np.stack([np.mean(codes == r, axis=1) for r in Regime], axis=-1)

  def median_exponent(self) -> np.ndarray:
    """``(R, T, E)``: median over games of the largest Lyapunov exponent."""
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)   # all-NaN cells
      return np.stack([np.nanmedian(np.asarray(s.exponent, np.float64), axis=0)
                       for s in self.sweeps])

  def summary(self, boundary=None) -> dict:
    """The atlas's numbers as JSON-able lists (what the atlas JSON files hold).

    Args:
      boundary: optional ``(R, E)`` predicted boundary (:func:`predicted_boundary`).
    """
    frac = self.regime_fractions()
    out = {
        "option": self.option, "values": [float(v) for v in self.values],
        "num_actions": list(self.num_actions), "tau": self.tau.tolist(),
        "eta": self.eta.tolist(), "eta_rule": self.sweeps[0].eta_rule,
        "num_games": int(self.sweeps[0].shape[0]),
        "regimes": list(REGIMES),
        # [value][tau][eta][regime]
        "regime_fractions": np.round(frac, 6).tolist(),
        "median_exponent": _json_floats(self.median_exponent()),
        "converged_fraction": np.round(np.stack(
            [s.converged_fraction() for s in self.sweeps]), 6).tolist(),
    }
    if self.gamma is not None:
      out["gamma"] = self.gamma.tolist()
    if boundary is not None:
      out["predicted_boundary_tau"] = _json_floats(boundary)
    for key in ("num_inits", "num_iters", "burn_in", "max_period", "dtype",
                "seed", "family", "init"):
      out[key] = self.attrs.get(key)
    return out

  def __repr__(self):
    return (f"AtlasResult({self.attrs.get('family')} {self.num_actions}, "
            f"{self.option}={np.round(self.values, 4).tolist()}, "
            f"games={self.sweeps[0].shape[0]}, taus={self.tau.size}, "
            f"etas={self.eta.size})")


def _json_floats(x):
  x = np.asarray(x, dtype=float)
  return [_json_floats(v) for v in x] if x.ndim else (
      round(float(x), 6) if math.isfinite(x) else None)


def _folder(option: str, k: int) -> str:
  return f"{option}-{k:02d}"


def atlas(family: str = "covariant", *, num_actions, values, taus,
          option: str = "correlation", etas=(1.0,), num_games: int = 64,
          num_inits: int | None = 4, num_iters: int = 1000,
          burn_in: int | None = None, max_period: int = 16, seed: int = 0,
          family_options: dict | None = None, out=None, quiet: bool = False,
          lyapunov: bool = True, **sweep_options) -> AtlasResult:
  """Sweep a family over the values of one of its options: the (value, tau) plane.

  For each value ``v`` this is ``jaxnpg.sweep(family, num_actions=...,
  family_options={**family_options, option: v}, lyapunov=True,
  num_inits=num_inits, ...)`` with the same games (keys), starts and cells, so
  every value sees the same random draws. The option is an input of the compiled
  sweep, so all values share one compilation.

  With ``out`` each value's sweep is stored in ``out/<option>-<k>`` (``k`` its
  position, resumable like any sweep) and ``out/atlas.json`` records the option and
  values; running the same atlas again resumes it, a different one is refused.

  Args:
    family: a registered family (default ``"covariant"``).
    num_actions: ``(A_1, ..., A_n)``.
    values: the option's values (each valid for the family).
    taus: entropy weights.
    option: the family option on the axis (default ``"correlation"``).
    etas: step sizes, or ``"paper"`` (as :func:`jaxnpg.sweep`; default ``(1,)``,
      Galla & Farmer's ``eta = beta`` with ``beta = 1``, so ``tau = alpha``).
    num_games, num_inits, num_iters, burn_in, max_period, seed: as
      :func:`jaxnpg.sweep`.
    family_options: other options of the family.
    out: folder for the sweeps (None: in memory).
    quiet: no progress bars.
    lyapunov: record the atlas fields (default True; without them only the
      convergence fields exist).
    **sweep_options: more keywords of :func:`jaxnpg.sweep` (``init``, ``tol``,
      ``chunk_games``, ...).

  Returns:
    An :class:`AtlasResult`.

  Raises:
    ValueError: bad arguments, a value the family refuses, or an ``out`` folder
      holding a different atlas.

  Example:
    >>> import jaxnpg
    >>> res = jaxnpg.atlas(num_actions=(3, 3), values=[-1.0, 1.0], taus=[0.1, 1.0],
    ...                    num_games=4, num_inits=2, num_iters=200, quiet=True)
    >>> res.regime_fractions().shape     # (values, taus, etas, regimes)
    (2, 2, 1, 5)
    >>> float(res.regime_fractions()[1, 1, 0, 0])   # identical interest, tau=1
    1.0
  """
  if not isinstance(option, str) or not option:
    raise ValueError(f"`option` must be a family option name, got {option!r}.")
  vals = np.asarray(values, dtype=np.float64).ravel()
  if vals.size == 0 or not np.all(np.isfinite(vals)):
    raise ValueError(f"`values` must be a non-empty list of finite numbers, got "
                     f"{values!r}.")
  base = dict(family_options or {})
  if option in base:
    raise ValueError(f"{option!r} is the atlas axis; do not also pass it in "
                     "family_options.")
  num_actions = tuple(int(a) for a in num_actions)
  params = {"format": ATLAS_FORMAT, "family": family, "option": option,
            "values": vals.tolist(), "num_actions": list(num_actions),
            "family_options": base,
            "folders": [_folder(option, k) for k in range(vals.size)]}
  if out is not None:
    _open_atlas_folder(pathlib.Path(out), params)
  fields, layout = _split_options(sweep_options)
  configs = [SweepConfig(
      family=family, num_actions=num_actions, num_games=num_games, seed=seed,
      family_options={**base, option: v}, taus=taus, etas=etas,
      num_iters=num_iters, lyapunov=lyapunov,
      num_inits=num_inits if lyapunov else None,
      burn_in=burn_in if lyapunov else None, max_period=max_period, **fields)
      for v in vals.tolist()]
  sweeps, start = [], time.monotonic()
  for k, config in enumerate(configs):
    if not quiet:
      _announce(option, vals, k, time.monotonic() - start, out)
    sweeps.append(run_sweep(
        config, out=None if out is None else os.path.join(out, _folder(option, k)),
        quiet=quiet, traced_options=(option,), **layout))
  return _assemble(option, vals, sweeps, params)


def _announce(option, vals, k, elapsed, out) -> None:
  """One line of the atlas's overall progress before value ``k``'s sweep."""
  n = vals.size
  line = f"atlas: {option}={vals[k]:g}, value {k + 1} of {n}"
  if k:
    left = elapsed / k * (n - k)
    line += f"; {k} done in {_minutes(elapsed)}, about {_minutes(left)} left"
  if out is not None and k == 0:
    line += f" (Ctrl-C keeps finished chunks; run again to resume into {out})"
  print(line, file=sys.stderr, flush=True)


def _minutes(seconds: float) -> str:
  return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# The sweep options atlas() passes on: SweepConfig fields it does not set, and
# the layout options of run_sweep.
_CONFIG_OPTIONS = ("init", "eta_multipliers", "tol", "record_every",
                   "trajectory_points", "tail", "method", "algorithm",
                   "num_seeds", "dtype")
_LAYOUT_OPTIONS = ("chunk_games", "memory_budget", "devices")


def _split_options(options: dict) -> tuple[dict, dict]:
  """``(config fields, layout options)`` of atlas()'s ``**sweep_options``."""
  unknown = sorted(set(options) - set(_CONFIG_OPTIONS) - set(_LAYOUT_OPTIONS))
  if unknown:
    raise ValueError(f"atlas() does not take {unknown}; it takes the sweep "
                     f"options {sorted(_CONFIG_OPTIONS + _LAYOUT_OPTIONS)}.")
  return ({k: v for k, v in options.items() if k in _CONFIG_OPTIONS},
          {k: v for k, v in options.items() if k in _LAYOUT_OPTIONS})


def _assemble(option, vals, sweeps, params) -> AtlasResult:
  attrs = {**sweeps[0].attrs, **{k: v for k, v in params.items()
                                 if k not in ("format", "folders")}}
  attrs.pop("family_options", None)
  attrs["family_options"] = params["family_options"]
  return AtlasResult(option=option, values=np.asarray(vals), sweeps=tuple(sweeps),
                     attrs=attrs)


def _open_atlas_folder(path: pathlib.Path, params: dict) -> None:
  target = path / ATLAS_FILE
  if target.exists():
    try:
      stored = json.loads(target.read_text())
    except (OSError, ValueError) as e:
      raise ValueError(f"{str(target)!r} is not a readable atlas file ({e}); "
                       "move the folder away.") from None
    if stored != json.loads(json.dumps(params)):
      raise ValueError(
          f"The folder {str(path)!r} holds a different atlas (option "
          f"{stored.get('option')!r}, values {stored.get('values')}); use "
          "another output folder, or delete this one to start over.")
    return
  if path.exists() and any(path.iterdir()):
    raise ValueError(f"The folder {str(path)!r} is not empty and holds no atlas; "
                     "pick another output folder.")
  path.mkdir(parents=True, exist_ok=True)
  target.write_text(json.dumps(params, indent=1) + "\n")


def is_atlas(path) -> bool:
  """True when ``path`` is a folder written by :func:`atlas`."""
  return (pathlib.Path(path) / ATLAS_FILE).is_file()


def load_atlas(path, *, allow_partial: bool = False) -> AtlasResult:
  """Read an atlas back from its folder (every sweep fully verified).

  Args:
    path: the atlas folder (``out`` of :func:`atlas`).
    allow_partial: read an unfinished atlas: the values whose sweeps have
      started (each with its finished leading chunks, as
      ``load_sweep(..., allow_partial=True)``); values not started are left out
      of ``values``. ``attrs["partial"]`` says so.

  Raises:
    ValueError: not an atlas folder, or one of its sweeps missing (unless
      ``allow_partial``) or damaged.

  Example:
    >>> import tempfile, jaxnpg
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   at = jaxnpg.atlas(num_actions=(3, 3), values=[-1.0, 1.0],
    ...                     taus=[0.1, 1.0], num_games=4, num_inits=2,
    ...                     num_iters=200, out=folder, quiet=True)
    ...   back = jaxnpg.load_atlas(folder)
    >>> back.values.tolist(), bool((back.regimes() == at.regimes()).all())
    ([-1.0, 1.0], True)
  """
  path = pathlib.Path(path)
  if not is_atlas(path):
    raise ValueError(f"{str(path)!r} holds no atlas (no {ATLAS_FILE}).")
  try:
    params = json.loads((path / ATLAS_FILE).read_text())
    vals = np.asarray(params["values"], dtype=np.float64)
    folders = [str(f) for f in params["folders"]]
    option = str(params["option"])
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{str(path / ATLAS_FILE)!r} is damaged ({e}).") from None
  if len(folders) != vals.size or any(os.sep in f or f.startswith(".")
                                      for f in folders):
    raise ValueError(f"{str(path / ATLAS_FILE)!r} is damaged (folders do not "
                     "match the values).")
  if not allow_partial:
    sweeps = [load_sweep(path / f) for f in folders]
    return _assemble(option, vals, sweeps, params)
  keep, sweeps = [], []
  for k, f in enumerate(folders):
    if not (path / f / "manifest.json").is_file():
      continue            # this value's sweep has not started
    try:
      sweeps.append(load_sweep(path / f, allow_partial=True))
    except NoFinishedChunkError:
      continue            # started, no chunk finished yet
    keep.append(k)
  if not sweeps:
    raise ValueError(f"The atlas in {str(path)!r} has no finished chunk yet; "
                     "nothing to read.")
  result = _assemble(option, vals[keep], sweeps, params)
  result.attrs["partial"] = len(keep) < vals.size or not all(
      s.attrs.get("complete", True) for s in sweeps)
  return result


def predicted_boundary(result: AtlasResult, *, max_games: int = 32,
                       **qre_options) -> np.ndarray:
  """Per value and eta, the median over games of the predicted stability boundary.

  For the first ``max_games`` games of each value (rebuilt as the sweep made
  them), :func:`jaxnpg.theory.predicted_boundary` gives the smallest grid ``tau``
  from which the principal-branch QRE attracts NPG (``rho(J) < 1`` at every larger
  grid ``tau``); games where it never does count as ``+inf``. The median is NaN
  where more than half of the games never attract on the grid.

  Returns:
    ``(R, E)`` float array.
  """
  taus = np.asarray(result.tau, dtype=np.float64)
  out = []
  for res in result.sweeps:
    games = res.games(min(int(res.shape[0]), int(max_games)))
    b = theory.predicted_boundary(games, taus, np.asarray(res.step_size),
                                  **qre_options)
    tau_b = np.asarray(b.tau, dtype=np.float64)                  # (G, E)
    tau_b = np.where(np.isnan(tau_b), np.inf, tau_b)
    med = np.median(tau_b, axis=0)
    out.append(np.where(np.isfinite(med), med, np.nan))
  return np.stack(out)
