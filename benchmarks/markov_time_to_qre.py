"""Time to the QRE per Markov game at the paper's sizes, against sgamesolver.

sgamesolver (Eibelshäuser and Poensgen's homotopy solver for stochastic games)
reports 22 to 100 ms per game for games of about this size; jaxnpg's answer is
entropy-regularized NPG to the fixed-point residual tolerance, batched:
``jax.jit(jax.vmap(lambda g: jaxnpg.solve(g, tau, eta, max_iters=M)))`` over
``--games`` random games (3 agents x 5 actions, 5 states, ``gamma = 0.9``,
``soft`` convention, ``tau = 0.2``, ``eta * tau = 0.25 (1 - gamma)``), float64.
The time per game is the wall time of the batch divided by the games (the batch
runs until its slowest game stops). Reported: time per game, NPG iterations
(median and max), converged fraction, and the residual. Writes
``benchmarks/results/markov_time_to_qre.json``.

    python benchmarks/markov_time_to_qre.py                 # ~1 minute on 2 cores
    python benchmarks/markov_time_to_qre.py --games 64 --repeats 2
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--games", type=int, default=256)
  p.add_argument("--tau", type=float, default=0.2)
  p.add_argument("--max-iters", type=int, default=2000)
  p.add_argument("--tol", type=float, default=1e-8,
                 help="fixed-point residual tolerance (default 1e-8)")
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--out", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results",
      "markov_time_to_qre.json"))
  return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import jaxnpg  # noqa: E402

NUM_ACTIONS, NUM_STATES, GAMMA = (5, 5, 5), 5, 0.9


def main():
  args = ARGS
  tau = args.tau
  eta = 0.25 * (1 - GAMMA) / tau   # the same eta_bar * tau as benchmarks/markov.py
  info = _common.machine_info()
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.key(0), args.games)
    games = jax.vmap(lambda k: jaxnpg.random_markov_game(
        k, num_states=NUM_STATES, num_actions=NUM_ACTIONS, discount=GAMMA))(keys)
    f = jax.jit(jax.vmap(lambda g: jaxnpg.solve(
        g, tau, eta, tol=args.tol, max_iters=args.max_iters)))
    wall, cpu, _ = _common.time_call(lambda: jax.block_until_ready(f(games)),
                                     args.repeats)
    sol = f(games)
    iters = np.asarray(sol.num_iters)
    conv = np.asarray(sol.converged)
    best = min(wall)
  per_game_ms = 1e3 * best / args.games
  rows = [["jaxnpg.solve (vmap)", f"{args.games}", f"{best:.3f}",
           f"{per_game_ms:.3f}", f"{int(np.median(iters))}", f"{iters.max()}",
           f"{conv.mean():.3f}", "22-100 (sgamesolver, as published)"]]
  print(f"# Markov time to QRE: {NUM_ACTIONS} actions, {NUM_STATES} states, "
        f"gamma {GAMMA}, tau {tau}, eta {eta:.4g}, float64, residual tol "
        f"{args.tol:g}; {info['cpu_model']}, load "
        f"{info['load_average_1m_start']:.2f}; jax {jax.__version__}")
  print(_common.format_table(
      ["method", "games", "batch s (best)", "ms per game", "iters (median)",
       "iters (max)", "converged", "reference ms per game"], rows))
  _common.write_json(args.out, {
      "header": _common.run_header(), "machine": info,
      "problem": {"num_actions": NUM_ACTIONS, "num_states": NUM_STATES,
                  "discount": GAMMA, "tau": tau, "eta": eta, "tol": args.tol,
                  "max_iters": args.max_iters, "games": args.games},
      "wall_seconds": wall, "cpu_seconds": cpu, "ms_per_game": per_game_ms,
      "iterations": {"median": float(np.median(iters)), "max": int(iters.max())},
      "converged_fraction": float(conv.mean())})


if __name__ == "__main__":
  main()
