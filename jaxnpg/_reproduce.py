"""``jaxnpg reproduce``: the paper's section IV figures, then their phase diagrams.

Each figure of the paper shows one game; its *phase diagram* runs the same
experiment on a whole family (hundreds to thousands of games × a tau grid) with
:func:`jaxnpg.sweep` and draws converged fraction, rates, NE-gaps and trajectories
against tau.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, NamedTuple

import jax
import numpy as np

from jaxnpg import _paper, _plots


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
    "markov": PhaseSpec("markov", (5, 5, 5), {"num_states": 5, "discount": 0.9},
                        (96, 4), (1e-2, 2.0, 12, 4), (1000, 100), records=40),
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

  Static families get the predicted rate and boundary (``jaxnpg.theory``, on up
  to 128 of the games) drawn beside the observed ones.

  With ``store`` the sweep is stored in ``out_dir`` (running again resumes it);
  the PNGs go to ``out_dir/plots``. Returns ``(sweep_result, {plot: path})``.
  """
  # Imported here: the sweep engine sits downstream of the figures module.
  from jaxnpg._sweep import sweep
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
  if spec.family != "markov":  # the QRE solver covers static games
    from jaxnpg import theory
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
