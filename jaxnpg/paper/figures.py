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

from jaxnpg import viz as _plots
from jaxnpg._version import __version__
from jaxnpg.core.policy import random_policy
from jaxnpg.core.step_sizes import paper_eta
from jaxnpg.games.families import make_game
from jaxnpg.loop.trajectories import run_pairs

FIGURE_1_TAUS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def _settings(**kw):
  kw.update(device=str(jax.devices()[0]), jax=jax.__version__,
            jaxnpg=__version__)
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
                               caption=caption, dtype=settings.get("dtype"))
  with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
    json.dump({"settings": settings,
               "iterations": np.asarray(iterations).tolist(),
               "curves": {k: np.asarray(v).tolist() for k, v in curves.items()}},
              f)
  return png


def figure_1(out_dir, *, quick: bool = False, seed: int = 0):
  """Fig. 1: QRE-gap of the random (3, 4, 5) game for several tau (log scale).

  Same game and random initial policy for every tau; ``eta = paper_eta(tau)``
  (docs/spec.md). Returns ``(iterations, {tau: qre_gap})``.
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


# Fig. 2c (Markov game; jaxnpg/games/markov.py).
FIGURE_2C_TAUS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
FIGURE_2C_DISCOUNT = 0.9   # the paper does not state gamma
FIGURE_2C_ETA_BAR_TAU = 0.25


def figure_2c(out_dir, *, quick: bool = False, seed: int = 0, x64: bool = True):
  """Fig. 2c: Markov QRE-gap of a random Markov game for several tau (log scale).

  The paper's sizes: 3 agents, 5 actions each, 5 states; rewards uniform on
  ``[0, 1]``, transitions Dirichlet(1), uniform start, exact evaluation.
  ``gamma = 0.9`` (the paper does not give it). The ``soft`` convention (docs/spec.md) and
  its update ``log pi' = (1 - eta_bar tau) log pi + eta_bar Qbar - lse`` with
  ``eta_bar = eta / (1 - gamma)``, whose fixed point is the QRE at ``tau``; step
  ``eta_bar * tau = 0.25``, i.e. ``eta = 0.25 (1 - gamma) / tau`` (docs/spec.md). Same
  game and random initial policy for every tau. The gap is the Markov QRE-gap at
  the initial distribution. Runs in float64 by default (``x64=True``): in float32
  the gap's rounding floor is about ``eps |Q| / (1 - gamma) ~ 1e-6``, reached in
  a few dozen iterations, which hides the rates. Returns
  ``(iterations, {tau: qre_gap})``.
  """
  with jax.enable_x64(x64):
    iters = 100 if quick else 800
    taus = FIGURE_2C_TAUS
    gamma = FIGURE_2C_DISCOUNT
    key = jax.random.key(seed)
    game = make_game("markov", key, (5, 5, 5), num_states=5, discount=gamma)
    init = random_policy(jax.random.fold_in(key, 1), game)
    etas = [FIGURE_2C_ETA_BAR_TAU * (1 - gamma) / t for t in taus]
    traj = run_pairs(game, taus, etas, iters, init=init,
                     record_every=5 if quick else 4, chunks=1 if quick else 4)
    curves = {f"tau={t:g}": traj.qre_gap[i] for i, t in enumerate(taus)}
    settings = _settings(figure="2c", game="random Markov, 3 agents x 5 "
                         "actions, 5 states, gamma=0.9", seed=seed,
                         discount=gamma, convention=game.convention,
                         taus=list(taus),
                         eta_rule="eta_bar*tau=0.25 (eta=0.25(1-gamma)/tau)",
                         etas=etas, iters=iters, dtype=str(game.dtype))
    _write(out_dir, "figure_2c", settings, traj.iterations, curves,
           ylabel=game.qre_gap_label,
           title="Fig. 2c: random Markov game, n=3, |A_i|=5, |S|=5")
  return traj.iterations, dict(zip(taus, traj.qre_gap))


# Fig. 2a and 2b (network zero-sum polymatrix game; jaxnpg/games/polymatrix.py).
FIGURE_2AB_TAUS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def figure_2ab(out_dir, *, quick: bool = False, seed: int = 0):
  """Fig. 2a (QRE-gap) and 2b (NE-gap) of the network zero-sum game (log scale).

  The paper draws them on a linear axis, which squashes every converging curve
  onto 0; we use a log axis (gaps below the dtype's display floor drawn at it).

  5 agents on a ring, 10 actions each; each edge ``(i, j)`` a matrix ``B_ij`` with
  entries uniform on ``[-1, 1]`` and ``B_ji = -B_ij^T`` (the paper gives neither
  the distribution nor its tau list; we use Fig. 1's taus). Same game and random
  initial policy for every tau; ``eta = paper_eta(tau)`` (docs/spec.md). Writes
  ``figure_2a.png``/``.json`` and ``figure_2b.png``/``.json``.

  Returns:
    ``(iterations, {tau: qre_gap}, {tau: ne_gap})``.
  """
  iters = 2000 if quick else 20000
  taus = FIGURE_2AB_TAUS
  key = jax.random.key(seed)
  game = make_game("network_zero_sum", key, (10,) * 5, graph="ring")
  init = random_policy(jax.random.fold_in(key, 1), game)
  etas = [float(paper_eta(t, game.num_actions)) for t in taus]
  traj = run_pairs(game, taus, etas, iters, init=init,
                   record_every=max(1, iters // 1000))
  settings = _settings(figure="2ab", game="network zero-sum, ring of 5, 10 "
                       "actions, B_ij ~ U[-1, 1], B_ji = -B_ij^T", seed=seed,
                       taus=list(taus), eta_rule="1/(2(tau+2*sum A_i))",
                       etas=etas, iters=iters, dtype=str(game.dtype))
  qre = {f"tau={t:g}": traj.qre_gap[i] for i, t in enumerate(taus)}
  ne = {f"tau={t:g}": traj.ne_gap[i] for i, t in enumerate(taus)}
  _write(out_dir, "figure_2a", settings, traj.iterations, qre, ylabel="QRE-gap",
         title="Fig. 2a: network zero-sum game (ring, n=5, |A_i|=10)")
  _write(out_dir, "figure_2b", settings, traj.iterations, ne, ylabel="NE-gap",
         title="Fig. 2b: network zero-sum game (ring, n=5, |A_i|=10)")
  return (traj.iterations, dict(zip(taus, traj.qre_gap)),
          dict(zip(taus, traj.ne_gap)))
