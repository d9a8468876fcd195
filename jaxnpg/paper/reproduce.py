"""``jaxnpg reproduce``: the paper's section IV figures, then their phase diagrams.

Each figure of the paper shows one game; its *phase diagram* runs the same
experiment on a whole family (hundreds to thousands of games × a tau grid) with
:func:`jaxnpg.sweep` and draws converged fraction, rates, NE-gaps and trajectories
against tau.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from jaxnpg import theory
from jaxnpg import viz as _plots
from jaxnpg.games.families import make_game
from jaxnpg.paper import figures as _paper
from jaxnpg.sweeps import atlas as _atlas
from jaxnpg.sweeps.run import sweep


class PhaseSpec(NamedTuple):
  """The family sweep that extends one figure (full size / ``quick`` size)."""
  family: str
  num_actions: tuple[int, ...]
  options: dict
  games: tuple[int, int]
  taus: tuple[float, float, int, int]      # lo, hi, count, quick count
  iters: tuple[int, int]
  eta_multipliers: tuple[float, ...] = (1.0,)
  records: int = 400                       # gap records per run


PHASES = {
    "random": PhaseSpec("random", (3, 4, 5), {}, (512, 32),
                        (1e-3, 100.0, 21, 6), (4000, 300), (1.0, 4.0)),
    "network": PhaseSpec("network_zero_sum", (10,) * 5, {"graph": "ring"},
                         (256, 8), (1e-3, 10.0, 16, 5), (2000, 300)),
    # Markov gaps need a best response per agent (value iteration): record less.
    # The paper rule's eta_bar = 1/(2(tau + 2 sum A)) is small on 3 x 5 actions;
    # 10x it is still eta_bar * tau <= 0.31 on this tau grid.
    "markov": PhaseSpec("markov", (5, 5, 5), {"num_states": 5, "discount": 0.9},
                        (96, 4), (1e-2, 2.0, 12, 4), (1000, 100), (1.0, 10.0),
                        records=40),
}

# Figure name -> (function producing it, the phase diagram that extends it).
FIGURES: dict[str, tuple[Callable, str]] = {
    "1": (_paper.figure_1, "random"),
    "2a": (_paper.figure_2ab, "network"),
    "2b": (_paper.figure_2ab, "network"),
    "2c": (_paper.figure_2c, "markov"),
}


def phase_diagram(name: str, out_dir, *, quick: bool = False, seed: int = 0,
                  quiet: bool = False, store: bool = True):
  """Run the family sweep ``PHASES[name]`` and draw its plots.

  Families whose payoffs do not depend on tau (static games; what
  :func:`jaxnpg.qre` solves) get the predicted rate and boundary
  (``jaxnpg.theory``, on up to 128 of the games) drawn beside the observed ones.

  With ``store`` the sweep is stored in ``out_dir`` (running again resumes it);
  the PNGs go to ``out_dir/plots``. Returns ``(sweep_result, {plot: path})``.
  """
  spec = PHASES[name]
  lo, hi, count, quick_count = spec.taus
  taus = np.geomspace(lo, hi, quick_count if quick else count)
  res = sweep(spec.family, num_actions=spec.num_actions,
              family_options=spec.options or None,
              num_games=spec.games[quick], seed=seed, taus=taus, etas="paper",
              eta_multipliers=spec.eta_multipliers,
              num_iters=spec.iters[quick],
              record_every=max(1, spec.iters[quick] // spec.records),
              trajectory_points=50, out=out_dir if store else None,
              quiet=quiet)
  predicted = None
  kind = jax.eval_shape(lambda: make_game(spec.family, jax.random.key(seed),
                                          spec.num_actions, **spec.options))
  if not kind.payoffs_depend_on_tau:   # the QRE solver covers these games
    predicted = theory.predict_for_sweep(res, max_games=128)
  return res, _plots.plot_sweep(res, os.path.join(out_dir, "plots"),
                                predicted=predicted)


def reproduce(out_dir, figures=("1", "2a", "2b", "2c"), *, quick: bool = False,
              phases: bool = True, seed: int = 0, quiet: bool = False,
              store: bool = True, log: Callable[[str], None] = print) -> dict:
  """Write the chosen figures (PNG + JSON each) and their phase diagrams.

  Args:
    out_dir: output folder; figures go to ``out_dir``, phase diagrams to
      ``out_dir/phase_<family>/plots``.
    figures: any of ``"1", "2a", "2b", "2c"``.
    quick: reduced sizes (for tests and a first look).
    phases: also run the family sweeps extending each figure.
    seed: seed of the figures' games and initial policies and of the sweeps.
    quiet: no progress bars.
    store: keep the sweeps' chunk files (resumable); else only the pictures.
    log: where progress lines go.

  Returns:
    ``{"figures": {name: data}, "phases": {family: SweepResult}, "files": [...]}``.

  Example:
    >>> import tempfile, pathlib, jaxnpg
    >>> with tempfile.TemporaryDirectory() as folder:
    ...   out = jaxnpg.reproduce(folder, figures=("2a",), quick=True, phases=False,
    ...                          quiet=True, store=False, log=lambda line: None)
    ...   written = sorted(p.name for p in pathlib.Path(folder).glob("figure_*"))
    >>> written                          # Fig. 2a and 2b come from one run
    ['figure_2a.json', 'figure_2a.png', 'figure_2b.json', 'figure_2b.png']
  """
  unknown = [f for f in figures if f not in FIGURES]
  if unknown or not figures:
    raise ValueError(
        f"Unknown figure(s) {unknown}; choose from {sorted(FIGURES)} or 'all'.")
  os.makedirs(out_dir, exist_ok=True)
  data, results, files, done = {}, {}, [], set()
  for name in figures:
    fn, phase = FIGURES[name]
    if fn in done:
      continue
    done.add(fn)
    start = time.perf_counter()
    data[name] = fn(out_dir, quick=quick, seed=seed)
    names = ("2a", "2b") if fn is _paper.figure_2ab else (name,)
    for n in names:
      data[n] = data[name]
      files.append(os.path.join(out_dir, f"figure_{n}.png"))
    log(f"figure {'/'.join(names)}: {time.perf_counter() - start:.1f}s -> "
        + ", ".join(os.path.join(out_dir, f"figure_{n}.png") for n in names))
  if phases:
    for phase in dict.fromkeys(FIGURES[f][1] for f in figures):
      start = time.perf_counter()
      folder = os.path.join(out_dir, f"phase_{phase}")
      res, paths = phase_diagram(phase, folder, quick=quick, seed=seed,
                                 quiet=quiet, store=store)
      results[phase] = res
      files.extend(paths.values())
      log(f"phase diagram {phase}: {res.shape[0]} games x {res.shape[1]} tau, "
          f"{time.perf_counter() - start:.1f}s -> {os.path.join(folder, 'plots')}")
  with open(os.path.join(out_dir, "reproduce.json"), "w") as f:
    json.dump({"figures": list(figures), "quick": quick, "seed": seed,
               "device": str(jax.devices()[0]), "files": files}, f, indent=2)
  return {"figures": data, "phases": results, "files": files}


class AtlasSpec(NamedTuple):
  """One (rho, tau) atlas of ``jaxnpg reproduce --atlas`` (full size / quick size)."""
  num_actions: tuple[tuple[int, ...], tuple[int, ...]]
  correlations: tuple[int, int]            # count of rho values, full / quick
  games: tuple[int, int]


# 2 agents with 50 actions as in Galla & Farmer (2013); fewer actions for more
# agents. rho runs over [-1/(n-1), 1] (zero-sum to identical interest).
ATLAS = {
    2: AtlasSpec(((50, 50), (8, 8)), (9, 3), (48, 6)),
    3: AtlasSpec(((8, 8, 8), (4, 4, 4)), (9, 3), (48, 6)),
    4: AtlasSpec(((5, 5, 5, 5), (3, 3, 3, 3)), (9, 3), (48, 6)),
}
# Shared settings: (full, quick).
# log-spaced lo, hi, count; eta * tau <= 1 (the paper's assumption; beyond it the
# map overshoots and no QRE attracts).
ATLAS_TAUS = ((1e-2, 1.0, 12), (2e-2, 1.0, 4))
ATLAS_ITERS = ((1000, 1000), (200, 200))          # (num_iters, burn_in)
ATLAS_INITS = (4, 2)
ATLAS_ETA = 1.0                                   # Galla & Farmer's beta
ATLAS_THEORY_GAMES = (32, 4)


def atlas_correlations(n: int, count: int) -> np.ndarray:
  """``count`` values of rho, linear from ``-1/(n-1)`` (zero-sum) to 1."""
  return np.linspace(-1.0 / (n - 1), 1.0, count)


def reproduce_atlas(out_dir, *, quick: bool = False, seed: int = 0,
                    quiet: bool = False, store: bool = True,
                    agents=(2, 3, 4),
                    log: Callable[[str], None] = print) -> dict:
  """The learning-dynamics atlas: (rho, tau) regime maps for 2, 3 and 4 agents.

  For each number of agents ``n`` (:data:`ATLAS`), :func:`jaxnpg.atlas` sweeps
  covariant games over rho (:func:`atlas_correlations`) and tau
  (:data:`ATLAS_TAUS`) at ``eta = 1`` (Galla & Farmer's ``eta = beta = 1``, so
  ``tau = alpha / beta``), with :data:`ATLAS_INITS` starts per game, and the
  predicted stability boundary (:func:`jaxnpg.sweeps.atlas.predicted_boundary`) is
  computed on the first :data:`ATLAS_THEORY_GAMES` games of each rho. Writes into
  ``out_dir/atlas``: ``atlas_<n>_agents_regimes.png``,
  ``atlas_<n>_agents_exponent.png``, ``atlas_regimes.png`` (all ``n`` side by
  side) and ``atlas.json`` with every number drawn (regime fractions, median
  exponents, boundary, settings). With ``store`` the sweeps are kept (resumable)
  in ``out_dir/atlas/data``.

  Returns:
    ``{"atlases": {n: AtlasResult}, "boundaries": {n: (R, 1)}, "files": [...],
    "json": dict}``.
  """
  folder = os.path.join(out_dir, "atlas")
  os.makedirs(folder, exist_ok=True)
  q = int(bool(quick))
  lo, hi, count = ATLAS_TAUS[q]
  taus = np.geomspace(lo, hi, count)
  iters, burn_in = ATLAS_ITERS[q]
  results, boundaries, files, summary = {}, {}, [], {}
  with tempfile.TemporaryDirectory() as scratch:
    data = os.path.join(folder, "data") if store else scratch
    for n in agents:
      spec = ATLAS[n]
      start = time.perf_counter()
      rhos = atlas_correlations(n, spec.correlations[q])
      res = _atlas.atlas(
          "covariant", num_actions=spec.num_actions[q], values=rhos, taus=taus,
          etas=[ATLAS_ETA], num_games=spec.games[q], num_inits=ATLAS_INITS[q],
          num_iters=iters, burn_in=burn_in, seed=seed, quiet=quiet,
          out=os.path.join(data, f"agents_{n}"))
      swept = time.perf_counter() - start
      boundary = _atlas.predicted_boundary(
          res, max_games=ATLAS_THEORY_GAMES[q])
      seconds = time.perf_counter() - start
      results[n], boundaries[n] = res, boundary
      paths = _plots.plot_atlas(res, folder, boundary=boundary)
      for name, path in paths.items():
        target = os.path.join(folder, f"atlas_{n}_agents_{name}.png")
        os.replace(path, target)
        files.append(target)
      entry = res.summary(boundary)
      entry.update(seconds=round(seconds, 2), sweep_seconds=round(swept, 2),
                   theory_games=min(ATLAS_THEORY_GAMES[q], spec.games[q]))
      summary[str(n)] = entry
      log(f"atlas {n} agents {spec.num_actions[q]}: {len(rhos)} rho x "
          f"{len(taus)} tau x {spec.games[q]} games x {ATLAS_INITS[q]} starts, "
          f"{seconds:.1f}s")
  overview = _plots.plot_atlas_overview(
      [results[n] for n in agents], os.path.join(folder, "atlas_regimes.png"),
      boundaries=[boundaries[n] for n in agents])
  files.append(overview)
  doc = {"quick": bool(quick), "seed": seed, "eta": ATLAS_ETA,
         "device": str(jax.devices()[0]),
         "settings": ("covariant games; eta = 1 = Galla & Farmer's beta, so tau "
                      "= alpha / beta; Gamma = (n-1) rho; regimes per cell: "
                      "multiple fixed points if >= 2 distinct converged limits "
                      "among the starts, else the attractor of start 0"),
         "atlases": summary, "files": [os.path.basename(f) for f in files]}
  with open(os.path.join(folder, "atlas.json"), "w") as f:
    json.dump(doc, f, indent=1)
  files.append(os.path.join(folder, "atlas.json"))
  return {"atlases": results, "boundaries": boundaries, "files": files,
          "json": doc}
