"""The paper's figures (section IV), each written as a PNG plus its settings as JSON.

Every ``figure_*`` function takes an output folder and ``quick`` (a reduced size for
tests), runs the experiment, writes ``<name>.png`` and ``<name>.json`` (seeds, tau
list, eta rule, iterations, dtype, device) and returns the data it plotted, so
callers can check the paper's claims numerically.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from jaxnpg import _plots
from jaxnpg._families import make_game
from jaxnpg._policy import random_policy
from jaxnpg._step_sizes import paper_eta
from jaxnpg._trajectories import run_pairs

FIGURE_1_TAUS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def _settings(**kw):
  import jaxnpg
  kw.update(device=str(jax.devices()[0]), jax=jax.__version__,
            jaxnpg=jaxnpg.__version__)
  return kw


def _write(out_dir, name, settings, iterations, curves, *, ylabel, title,
           log=True):
  """Write ``name.png`` (one curve per label) and ``name.json`` (settings + data)."""
  os.makedirs(out_dir, exist_ok=True)
  caption = "; ".join(f"{k}={v}" for k, v in settings.items()
                      if k in ("game", "seed", "eta_rule", "iters", "dtype"))
  png = _plots.plot_gap_curves(iterations, curves,
                               os.path.join(out_dir, f"{name}.png"),
                               ylabel=ylabel, title=title, log=log,
                               caption=caption)
  with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
    json.dump({"settings": settings,
               "iterations": np.asarray(iterations).tolist(),
               "curves": {k: np.asarray(v).tolist() for k, v in curves.items()}},
              f)
  return png


def figure_1(out_dir, *, quick: bool = False, seed: int = 0):
  """Fig. 1: QRE-gap of the random (3, 4, 5) game for several tau (log scale).

  Same game and random initial policy for every tau; ``eta = paper_eta(tau)``
  (SPEC). Returns ``(iterations, {tau: qre_gap})``.
  """
  iters = 4000 if quick else 20000
  taus = FIGURE_1_TAUS
  key = jax.random.key(seed)
  game = make_game("random", key, (3, 4, 5))
  init = random_policy(jax.random.fold_in(key, 1), game)
  etas = [float(paper_eta(t, game.num_actions)) for t in taus]
  traj = run_pairs(game, taus, etas, iters, init=init,
                   record_every=max(1, iters // 1000))
  curves = {f"tau={t:g}": traj.qre_gap[i] for i, t in enumerate(taus)}
  settings = _settings(figure="1", game="random (3,4,5)", seed=seed,
                       taus=list(taus), eta_rule="1/(2(tau+2*sum A_i))",
                       etas=etas, iters=iters, dtype=str(game.dtype))
  _write(out_dir, "figure_1", settings, traj.iterations, curves,
         ylabel="QRE-gap", title="Fig. 1: random (3,4,5) game")
  return traj.iterations, dict(zip(taus, traj.qre_gap))
