"""Sweep results: :class:`SweepResult`, its fields, and assembling it from chunks.

Everything here reads plain arrays (from a live sweep or from the store); nothing
runs a sweep. ``jaxnpg.sweeps.run`` computes chunks, ``jaxnpg.sweeps.store`` writes and reads
them, and both build the result with :func:`assemble`.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxnpg.core.step_sizes import paper_eta
from jaxnpg.loop.status import STATUS_NAMES, Status
from jaxnpg.sweeps.config import SweepConfig
from jaxnpg.sweeps.schema import (
  ATLAS_FIELDS,
  CELL_FIELDS,
  INITS_FIELDS,
  TRAJECTORY_FIELDS,
  VERDICT2_FIELDS,
)
from jaxnpg.sweeps.seeding import family_game


@dataclasses.dataclass(frozen=True, eq=False)
class SweepResult:
  """Per-cell results of :func:`sweep` with named axes.

  Axes: ``game`` (``G`` games), ``tau`` (``T`` entropy weights), ``eta`` (``E``
  step sizes, or multipliers of a step-size rule, see ``eta_rule``), ``seed``
  (``S`` seeds, only when the sweep was given ``num_seeds``; see :func:`sweep`)
  and, for the trajectories, ``iteration`` (``K`` kept records). The seed axis
  comes after ``eta``, so ``field[g, t, e]`` is one cell without seeds and the
  vector over seeds with them.

  Attributes:
    game: ``(G,)`` game indices (the family's seed index, or the position in the
      user's batch).
    tau: ``(T,)`` entropy weights.
    eta: ``(E,)`` the eta axis: step sizes when ``eta_rule == "constant"``,
      multipliers of the rule otherwise.
    eta_rule: ``"constant"`` or ``"paper"`` (``eta = m * paper_eta(tau, A)``).
    step_size: ``(T, E)`` the step size each ``(tau, eta)`` cell used. Under
      the ``"paper"`` rule it is the *scaled* step ``eta * step_scale``: a Markov
      game then runs ``eta = step_size * (1 - gamma)``, so that
      ``eta_bar * tau = tau / (2 (tau + 2 sum A_i)) < 1/2`` as for static games.
    iteration: ``(K,)`` iterations of the kept trajectory records (empty if none).
    qre_gap: ``(G, T, E[, S])`` QRE-gap after ``num_iters`` steps.
    ne_gap: ``(G, T, E[, S])`` NE-gap after ``num_iters`` steps.
    iterations_to_tol: ``(G, T, E[, S])`` int, first recorded iteration whose
      QRE-gap is ``<= tol`` (resolution ``record_every``); ``-1`` if never.
    linear_rate: ``(G, T, E[, S])`` :func:`jaxnpg.linear_rate` of the recorded
      QRE-gap over the ``tail`` (NaN when it cannot be fitted, e.g. at the float
      floor).
    monotone: ``(G, T, E[, S])`` bool, the recorded QRE-gap never increased
      (ignoring values at the floating-point floor).
    status: ``(G, T, E[, S])`` int8, a :class:`jaxnpg.Status` code (its
      ``.label`` and ``.description`` say what each means).
    qre_gap_trajectory: ``(G, T, E[, S], K)`` or None.
    ne_gap_trajectory: ``(G, T, E[, S], K)`` or None.
    attrs: the sweep's parameters (``algorithm``, ``algorithm_options``,
      ``num_seeds``, ...), versions, device, chunking (JSON-able).
    seed: ``(S,)`` seed indices ``0 .. S-1``, or None when the sweep has no seed
      axis.
    exponent: ``(G, T, E)`` largest Lyapunov exponent per step of the NPG map
      along the cell's trajectory from init 0 (:func:`jaxnpg.attractor`), or
      None when the sweep was run without ``lyapunov``.
    exponent_stderr: ``(G, T, E)`` its standard error (block means), or None.
    attractor: ``(G, T, E)`` int8 :class:`jaxnpg.Attractor` code of init 0's
      run (0 fixed point, 1 periodic, 2 chaotic, 3 undetermined), or None.
    period: ``(G, T, E)`` int, the detected period of init 0's run (1: fixed
      point; 0: none up to ``max_period``), or None.
    final_logp: every cell's final log-policy, a tuple with one array per
      agent of shape ``(G, T, E[, S], *policy_shape_i)`` (``(A_i,)``, or
      ``(S_states, A_i)`` for a Markov game); None when the sweep did not keep
      them (``keep_logp=False``, or stored before they were kept). Which
      equilibrium each cell reached: :func:`jaxnpg.reached_equilibria`.
    iterations_needed: ``(G, T, E[, S])`` for a ``NOT_CONVERGED`` cell, the
      iterations it would need in all at its fitted rate to meet the tolerance
      (NaN elsewhere); None for sweeps stored before it was recorded.
    num_fixed_points: ``(G, T, E)`` int, the number of distinct fixed points
      among the limits of the ``K = num_inits`` starts that converged
      (:func:`jaxnpg.count_distinct`, ``tol=1e-3``), or None without
      ``num_inits``.

  Example:
    >>> import jaxnpg
    >>> res = jaxnpg.sweep("random", num_actions=(2, 2), num_games=4,
    ...                    taus=[0.1, 1.0], etas=[0.1], num_iters=100, quiet=True)
    >>> res.shape, res.dims["qre_gap"]
    ((4, 2, 1), ('game', 'tau', 'eta'))
    >>> res.converged_fraction().shape           # (tau, eta)
    (2, 1)
    >>> res.tau.tolist(), res.status.dtype.name
    ([0.1, 1.0], 'int8')
  """
  game: np.ndarray
  tau: np.ndarray
  eta: np.ndarray
  eta_rule: str
  step_size: np.ndarray
  iteration: np.ndarray
  qre_gap: np.ndarray
  ne_gap: np.ndarray
  iterations_to_tol: np.ndarray
  linear_rate: np.ndarray
  monotone: np.ndarray
  status: np.ndarray
  qre_gap_trajectory: np.ndarray | None = None
  ne_gap_trajectory: np.ndarray | None = None
  attrs: dict = dataclasses.field(default_factory=dict)
  seed: np.ndarray | None = None
  exponent: np.ndarray | None = None
  exponent_stderr: np.ndarray | None = None
  attractor: np.ndarray | None = None
  period: np.ndarray | None = None
  num_fixed_points: np.ndarray | None = None
  iterations_needed: np.ndarray | None = None
  final_logp: tuple[np.ndarray, ...] | None = None

  @property
  def cell_fields(self) -> tuple[str, ...]:
    """Names of the per-cell fields this result holds (atlas fields if recorded)."""
    return CELL_FIELDS + tuple(f for f in VERDICT2_FIELDS + ATLAS_FIELDS
                               + INITS_FIELDS
                               if getattr(self, f) is not None)

  @property
  def config(self):
    """The :class:`jaxnpg.SweepConfig` of this sweep (read from ``attrs``).

    Equal to the config the sweep was run with. A sweep of a user's games comes
    back without the games (they are not stored; ``config.runnable`` is False).
    """
    return SweepConfig.from_params(self.attrs)

  def games(self, count: int | None = None):
    """The first ``count`` (default all) games of a family sweep, as it made them.

    Returns one game with a leading batch axis of ``count`` games (rebuilt from
    the sweep's family, seed and options with :func:`jaxnpg.family_game`, in the
    sweep's dtype; a float64 sweep read with 64-bit JAX off comes back in
    float32, which holds its rewards exactly: families draw in float32).

    Raises:
      ValueError: the sweep was not made from a family (a user's games are not
        stored), or ``count`` is out of range.
    """
    a = self.attrs
    if a.get("source", "family") != "family" or not a.get("family"):
      raise ValueError("Only a family sweep's games can be rebuilt (from their "
                       "seed); this sweep ran a user's games, which are not "
                       "stored.")
    total = int(self.shape[0])
    count = total if count is None else int(count)
    if not 0 < count <= total:
      raise ValueError(f"`count` must be in [1, {total}], got {count}.")
    options = a.get("family_options") or None
    dtype = a.get("dtype")
    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
      dtype = "float32"
    games, _ = jax.vmap(lambda i: family_game(
        a["family"], int(a["seed"]), i, tuple(a["num_actions"]), options,
        dtype=dtype))(jnp.arange(count))
    return games

  @property
  def algorithm(self) -> str:
    """Name of the algorithm the sweep ran (``"npg"`` for older sweeps)."""
    return self.attrs.get("algorithm") or "npg"

  @property
  def num_seeds(self) -> int:
    """``S``, the length of the seed axis (1 when there is none)."""
    return 1 if self.seed is None else int(self.seed.size)

  @property
  def dims(self) -> dict[str, tuple[str, ...]]:
    """Axis names of every array field."""
    cell = ("game", "tau", "eta") + (() if self.seed is None else ("seed",))
    dims = dict.fromkeys(self.cell_fields, cell)
    dims["step_size"] = ("tau", "eta")
    if self.qre_gap_trajectory is not None:
      for f in TRAJECTORY_FIELDS:
        dims[f] = cell + ("iteration",)
    return dims

  @property
  def shape(self) -> tuple[int, ...]:
    """``(games, taus, etas)``, or ``(games, taus, etas, seeds)`` with seeds."""
    return self.qre_gap.shape

  def _per_seed(self, x) -> np.ndarray:
    """``x`` with a seed axis last: ``(G, T, E, S)`` (``S = 1`` without seeds)."""
    return x[..., None] if self.seed is None else x

  def converged_fraction(self, per_seed: bool = False) -> np.ndarray:
    """Fraction of games whose final QRE-gap is ``<= tol``.

    Args:
      per_seed: return the fraction of each seed, ``(T, E, S)`` (``S = 1``
        without a seed axis), instead of the mean over seeds, ``(T, E)``.
    """
    frac = np.mean(self._per_seed(self.status) == Status.CONVERGED, axis=0)
    return frac if per_seed else frac.mean(axis=-1)

  def summary(self) -> dict[str, np.ndarray]:
    """Statistics per ``(tau, eta)``, as mean and spread over seeds.

    For each seed the statistic is taken over the games; the result holds its
    mean over seeds and, under the name with ``_std``, its standard deviation
    over seeds (``ddof=1``; 0 with one seed).

    Returns:
      ``{name: (T, E) array}`` for ``converged_fraction``,
      ``median_linear_rate`` and ``median_qre_gap`` (medians over games,
      ignoring NaN), each with its ``_std``.
    """
    import warnings
    per_seed = {"converged_fraction": self.converged_fraction(per_seed=True)}
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
      for name, field in (("median_linear_rate", self.linear_rate),
                          ("median_qre_gap", self.qre_gap)):
        per_seed[name] = np.nanmedian(
            self._per_seed(field).astype(np.float64), axis=0)
      out = {}
      for name, x in per_seed.items():
        out[name] = np.nanmean(x, axis=-1)
        out[name + "_std"] = (np.nanstd(x, axis=-1, ddof=1) if x.shape[-1] > 1
                              else np.zeros(x.shape[:-1]))
    return out

  def merge_seeds(self) -> SweepResult:
    """The result with the seed axis folded into the game axis (``G*S`` games).

    Game ``g`` of seed ``s`` becomes row ``g*S + s``; ``game`` repeats each
    index ``S`` times. Without a seed axis the result itself. Quantiles over
    games of the merged result pool all seeds (what the sweep plots draw).
    """
    if self.seed is None:
      return self
    S = self.seed.size

    def fold(x):
      if x is None:
        return None
      x = np.moveaxis(x, 3, 1)                       # (G, S, T, E, ...)
      return x.reshape((x.shape[0] * S,) + x.shape[2:])

    fields = {f: fold(getattr(self, f)) for f in
              CELL_FIELDS + VERDICT2_FIELDS + TRAJECTORY_FIELDS + ATLAS_FIELDS
              + INITS_FIELDS}
    if self.final_logp is not None:
      fields["final_logp"] = tuple(fold(lp) for lp in self.final_logp)
    return dataclasses.replace(self, game=np.repeat(self.game, S), seed=None,
                               attrs={**self.attrs, "merged_seeds": S}, **fields)

  def status_counts(self) -> dict[str, int]:
    """How many cells ended in each status."""
    return {name: int(np.sum(self.status == code))
            for code, name in enumerate(STATUS_NAMES)}

  def to_xarray(self):
    """The result as an ``xarray.Dataset`` (needs the ``xarray`` extra).

    Raises:
      ImportError: xarray is not installed.
    """
    try:
      import xarray as xr
    except ImportError:
      raise ImportError(
          "SweepResult.to_xarray needs xarray: pip install 'jaxnpg[xarray]'."
      ) from None
    coords = {"game": self.game, "tau": self.tau, "eta": self.eta}
    if self.seed is not None:
      coords["seed"] = self.seed
    if self.qre_gap_trajectory is not None:
      coords["iteration"] = self.iteration
    data = {name: (axes, getattr(self, name)) for name, axes in self.dims.items()}
    attrs = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
             for k, v in {**self.attrs, "eta_rule": self.eta_rule}.items()
             if v is not None}
    return xr.Dataset(data, coords=coords, attrs=attrs)

  def to_dataframe(self):
    """One row per (game, tau, eta[, seed]) cell as a pandas DataFrame.

    Columns: ``game, tau, eta, step_size`` (and ``seed`` with a seed axis) and
    the per-cell fields, plus ``status_name``. Trajectories are left out. Needs
    the ``xarray`` extra.

    Raises:
      ImportError: pandas is not installed.
    """
    try:
      import pandas as pd
    except ImportError:
      raise ImportError(
          "SweepResult.to_dataframe needs pandas: pip install 'jaxnpg[xarray]'."
      ) from None
    grids = np.meshgrid(*[np.arange(n) for n in self.shape], indexing="ij")
    g, t, e = (x.ravel() for x in grids[:3])
    cols = {"game": self.game[g], "tau": self.tau[t], "eta": self.eta[e]}
    if self.seed is not None:
      cols["seed"] = self.seed[grids[3].ravel()]
    cols["step_size"] = self.step_size[t, e]
    for name in self.cell_fields:
      cols[name] = getattr(self, name).ravel()
    cols["status_name"] = np.asarray(STATUS_NAMES)[self.status.ravel()]
    return pd.DataFrame(cols)

  def __repr__(self):
    traj = (f", trajectories of {len(self.iteration)} points"
            if self.qre_gap_trajectory is not None else "")
    seeds = f", seeds={self.seed.size}" if self.seed is not None else ""
    atlas = ", exponents" if self.exponent is not None else ""
    if self.num_fixed_points is not None:
      atlas += f", {self.attrs.get('num_inits')} inits"
    return (f"SweepResult({self.algorithm}, games={self.shape[0]}, "
            f"taus={self.shape[1]}, etas={self.shape[2]} ({self.eta_rule})"
            f"{seeds}{traj}{atlas}, status={self.status_counts()})")


def cell_step_sizes(rule, taus, eta_axis, num_actions) -> np.ndarray:
  taus = np.asarray(taus, dtype=np.float64)
  if rule == "constant":
    return np.broadcast_to(np.asarray(eta_axis)[None, :],
                           (len(taus), len(eta_axis))).copy()
  base = np.asarray(paper_eta(taus, num_actions), dtype=np.float64)
  return base[:, None] * np.asarray(eta_axis)[None, :]


def trajectory_indices(num_records: int, points: int) -> np.ndarray:
  if points <= 0:
    return np.zeros((0,), np.int64)
  if points >= num_records:
    return np.arange(num_records)
  return np.unique(np.round(np.linspace(0, num_records - 1, points)).astype(int))


def record_iterations(num_iters: int, record_every: int) -> np.ndarray:
  starts = np.arange(0, num_iters, record_every)  # as jaxnpg.run records
  return np.append(starts, num_iters)


def assemble(params: dict, chunks: dict[int, dict], num_chunks: int,
             attrs: dict) -> SweepResult:
  """Concatenate per-chunk arrays into a :class:`SweepResult`."""
  parts = [chunks[c] for c in range(num_chunks)]
  cat = {name: np.concatenate([p[name] for p in parts], axis=0)
         for name in parts[0]}
  taus = np.asarray(params["taus"], dtype=np.float64)
  eta_axis = np.asarray(params["etas"], dtype=np.float64)
  step_size = cell_step_sizes(params["eta_rule"], taus, eta_axis,
                          params["num_actions"])
  rec = record_iterations(params["num_iters"], params["record_every"])
  idx = trajectory_indices(rec.size, params["trajectory_points"])
  G = cat["qre_gap"].shape[0]
  num_seeds = params.get("num_seeds")
  return SweepResult(
      game=np.arange(G), tau=taus, eta=eta_axis, eta_rule=params["eta_rule"],
      step_size=step_size, iteration=rec[idx],
      qre_gap=cat["qre_gap"], ne_gap=cat["ne_gap"],
      iterations_to_tol=cat["iterations_to_tol"], linear_rate=cat["linear_rate"],
      monotone=cat["monotone"], status=cat["status"],
      qre_gap_trajectory=cat.get("qre_gap_trajectory"),
      ne_gap_trajectory=cat.get("ne_gap_trajectory"), attrs=attrs,
      seed=None if num_seeds is None else np.arange(num_seeds),
      final_logp=_split_policies(cat.get("final_logp"),
                                 params.get("policy_shapes")),
      **{f: cat.get(f) for f in VERDICT2_FIELDS + ATLAS_FIELDS + INITS_FIELDS})


def _split_policies(flat, shapes):
  """The per-agent log-policies of a ``(..., N)`` array of flattened ones."""
  if flat is None or shapes is None:
    return None
  sizes = [math.prod(s) for s in shapes]
  pieces = np.split(flat, np.cumsum(sizes)[:-1], axis=-1)
  return tuple(p.reshape(flat.shape[:-1] + tuple(s))
               for p, s in zip(pieces, shapes))
