"""The direct QRE solver (``jaxnpg.qre``) against Gambit's ``logit_solve_lambda``.

Both trace the principal branch of the logit QRE from lambda = 0 and return its first
crossing of the requested lambda. Measured side by side, in float64:

* random (3, 4, 5) games (rewards uniform on [0, 1]) at each ``--lams`` value:
  Gambit one game at a time (``--gambit-games`` games), jaxnpg on ``--games`` games
  in one call: ``jaxnpg.qre_batch`` (``--solver batch``, the default: the trace in
  rounds, finished games leave the batch) or ``jax.jit(jax.vmap(jaxnpg.qre))``
  (``--solver vmap``); per-game wall and CPU time, and the fraction converged;
* the paper's network zero-sum game (5 agents on a ring, 10 actions each, edge
  matrices uniform on [-1, 1]) at lambda = 10: Gambit on its dense tensor, and
  ``jaxnpg.qre`` on the native ``PolymatrixGame`` and on the same dense tensor.

Agreement: max |probability difference| between the two answers, with jaxnpg asked
at the lambda Gambit reports reaching (it stops within ~1e-8 of the request), next to
Gambit's own fixed-point residual ``max_i ||log p_i - log softmax(lambda rbar_i)||``
(Gambit's corrector occasionally stops near 1e-7, and then the answers differ by about
that much; jaxnpg polishes to ~1e-15), and how many games' branches folded back
(turning points) before the requested lambda. Games that differ by more than 1e-8
are re-solved by Gambit with small steps (``first_step=0.003, max_accel=1``) and
compared again.

JAX timings exclude compilation (one warm-up call), block until ready, and report the
minimum and median of ``--repeats`` calls; Gambit is timed once per game (its cost
does not vary between calls), summed over the games.

Usage:
  python benchmarks/qre_vs_gambit.py                  # about 2-3 minutes on 2 cores
  python benchmarks/qre_vs_gambit.py --no-ring        # skip the ~25-75 s Gambit ring
  python benchmarks/qre_vs_gambit.py --games 4096 --lams 10,50
  python benchmarks/qre_vs_gambit.py --quick          # 256 games, 32 by Gambit, no ring
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxnpg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--games", type=int, default=1024,
                 help="games in the jaxnpg batch (default 1024)")
  p.add_argument("--gambit-games", type=int, default=128,
                 help="games solved by Gambit, one at a time (default 128)")
  p.add_argument("--lams", default="10,50",
                 help="comma-separated lambdas = 1/tau (default 10,50)")
  p.add_argument("--repeats", type=int, default=3,
                 help="timed jaxnpg calls after one warm-up (default 3)")
  p.add_argument("--no-ring", action="store_true",
                 help="skip the 5-agent ring game (Gambit takes 25-75 s on it)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--solver", choices=("batch", "vmap"), default="batch",
                 help="jaxnpg.qre_batch (default) or jax.jit(jax.vmap(jaxnpg.qre))")
  p.add_argument("--quick", action="store_true",
                 help="256 games, 32 solved by Gambit, 1 repeat, no ring")
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                               "results", "qre_vs_gambit.json"))
  args = p.parse_args(argv)
  if args.quick:
    args.games, args.gambit_games, args.repeats, args.no_ring = 256, 32, 1, True
  args.lams = [float(x) for x in args.lams.split(",") if x]
  return args


def gambit_solve(pygambit, rewards, lam, **steps):
  """Gambit on one dense game: (seconds, cpu seconds, lambda reached, probs)."""
  is_17 = hasattr(pygambit, "StrategicGame")          # 17.x renamed the class
  cls = pygambit.StrategicGame if is_17 else pygambit.Game
  g = cls.from_arrays(*[rewards[i] for i in range(rewards.shape[0])])
  c0, t0 = time.process_time(), time.perf_counter()
  res = pygambit.qre.logit_solve_lambda(g, [lam], **steps)
  wall, cpu = time.perf_counter() - t0, time.process_time() - c0
  q = res[0]
  if is_17:                                             # labels
    probs = [np.array([float(q.profile[pl][s]) for s in g.get_strategies(pl)])
             for pl in g.players]
  else:
    probs = [np.array([float(q.profile[s]) for s in pl.strategies])
             for pl in g.players]
  return wall, cpu, float(q.lam), probs


def marginals(rewards, probs):
  """``rbar_i`` of a dense game in NumPy (tensordot over the other agents)."""
  n = rewards.shape[0]
  out = []
  for i in range(n):
    t = rewards[i]
    for j in range(n - 1, -1, -1):
      if j != i:
        t = np.tensordot(t, probs[j], axes=([j], [0]))
    out.append(t)
  return out


def logit_residual(rewards, probs, lam):
  """``max_i ||log p_i - log softmax(lam rbar_i)||_inf``: 0 exactly at the QRE."""
  worst = 0.0
  for p, r in zip(probs, marginals(rewards, probs)):
    z = lam * r
    log_star = z - (z.max() + np.log(np.sum(np.exp(z - z.max()))))
    worst = max(worst, float(np.max(np.abs(np.log(p) - log_star))))
  return worst


def random_games(args, lam):
  import pygambit
  rng = np.random.default_rng(args.seed)
  rewards = rng.uniform(size=(args.games, 3, 3, 4, 5))
  ng = min(args.gambit_games, args.games)
  wall = cpu = 0.0
  reached, gprobs = [], []
  for b in range(ng):
    w, c, lam_b, probs = gambit_solve(pygambit, rewards[b], lam)
    wall += w
    cpu += c
    reached.append(lam_b)
    gprobs.append(probs)
  # jaxnpg: the whole batch at the requested lambda (timed), then the Gambit subset
  # at the lambdas Gambit reached (checked).
  games = jaxnpg.NormalFormGame(jnp.asarray(rewards), num_agents=3)
  solve = (jax.jit(jax.vmap(jaxnpg.qre)) if args.solver == "vmap"
           else jaxnpg.qre_batch)
  taus = jnp.full((args.games,), 1.0 / lam)
  timing = _common.time_call(lambda: jax.block_until_ready(solve(games, taus)),
                             args.repeats)
  out = solve(games, taus)
  summ = _common.summarize(timing)
  taus_g = jnp.asarray(taus).at[:ng].set(1.0 / np.array(reached))
  chk = solve(games, taus_g)
  diff = np.max(np.stack([np.max(np.abs(np.exp(np.asarray(chk.logp[i][:ng]))
                                         - np.stack([p[i] for p in gprobs])),
                                  axis=-1) for i in range(3)]), axis=0)
  g_res = np.array([logit_residual(rewards[b], gprobs[b], reached[b])
                    for b in range(ng)])
  tight = g_res < 1e-12
  # Where they differ, re-solve with Gambit's small steps (see jaxnpg/theory/logit.py).
  refined = []
  for b in np.flatnonzero(diff > 1e-8):
    _, _, lam_b, fine = gambit_solve(pygambit, rewards[b], lam, first_step=0.003,
                                     max_accel=1.0)
    again = solve(games, jnp.asarray(taus).at[b].set(1.0 / lam_b))
    refined.append(max(float(np.max(np.abs(np.exp(np.asarray(again.logp[i][b]))
                                           - fine[i]))) for i in range(3)))
  return {
      "case": f"random (3,4,5), lambda={lam:g}",
      "lam": lam,
      "gambit_games": ng,
      "jaxnpg_games": args.games,
      "gambit_ms_per_game": 1e3 * wall / ng,
      "gambit_cpu_ms_per_game": 1e3 * cpu / ng,
      "jaxnpg_ms_per_game_min": 1e3 * summ["min_s"] / args.games,
      "jaxnpg_ms_per_game_median": 1e3 * summ["median_s"] / args.games,
      "jaxnpg_cpu_ms_per_game": 1e3 * summ["cpu_s_of_min"] / args.games,
      "speedup_wall_min": (wall / ng) / (summ["min_s"] / args.games),
      "speedup_cpu": (cpu / ng) / (summ["cpu_s_of_min"] / args.games),
      "max_abs_prob_diff": float(diff.max()),
      "games_diff_above_1e-8": int(np.sum(diff > 1e-8)),
      "max_abs_prob_diff_where_gambit_residual_below_1e-12": float(
          diff[tight].max()) if tight.any() else None,
      "gambit_residual_max": float(g_res.max()),
      "gambit_residual_of_games_above_1e-8": g_res[diff > 1e-8].tolist(),
      "max_abs_prob_diff_after_gambit_small_steps_on_those": (
          max(refined) if refined else None),
      "jaxnpg_residual_max": float(np.max(np.asarray(chk.residual[:ng]))),
      "solver": args.solver,
      "converged": int(np.sum(np.asarray(out.converged))),
      "converged_fraction": float(np.mean(np.asarray(out.converged))),
      "bifurcation_games": int(np.sum(np.asarray(out.num_bifurcations) > 0)),
      "turning_point_games": int(np.sum(np.asarray(out.num_turning_points) > 0)),
      "steps_median": float(np.median(np.asarray(out.num_steps))),
      "steps_max": int(np.max(np.asarray(out.num_steps))),
      "jaxnpg_timing": summ,
  }


def ring_game(args):
  import pygambit
  lam = 10.0
  game = jaxnpg.network_zero_sum_game(jax.random.key(args.seed), "ring", (10,) * 5)
  dense = game.to_dense()
  rewards = np.asarray(dense.rewards, dtype=np.float64)
  print("  Gambit on the 5-agent ring game (dense 5 x 10^5 tensor)...", flush=True)
  wall, cpu, lam_g, gprobs = gambit_solve(pygambit, rewards, lam)
  rows = []
  for name, g in (("PolymatrixGame", game), ("NormalFormGame (dense)", dense)):
    solve = jax.jit(jaxnpg.qre)
    tau = jnp.asarray(1.0 / lam_g)
    timing = _common.time_call(lambda: jax.block_until_ready(solve(g, tau)),
                               args.repeats)
    out = solve(g, tau)
    summ = _common.summarize(timing)
    err = max(float(np.max(np.abs(np.exp(np.asarray(out.logp[i])) - gprobs[i])))
              for i in range(5))
    rows.append({
        "case": f"ring 5 x 10, lambda=10, jaxnpg {name}",
        "lam": lam,
        "gambit_s": wall,
        "gambit_cpu_s": cpu,
        "jaxnpg_s_min": summ["min_s"],
        "jaxnpg_s_median": summ["median_s"],
        "jaxnpg_cpu_s": summ["cpu_s_of_min"],
        "speedup_wall_min": wall / summ["min_s"],
        "speedup_cpu": cpu / summ["cpu_s_of_min"],
        "max_abs_prob_diff": err,
        "status": int(out.status),
        "steps": int(out.num_steps),
        "jaxnpg_timing": summ,
    })
  return rows


def main():
  args = parse_args()
  with jax.enable_x64(True):
    results = []
    for lam in args.lams:
      print(f"random (3,4,5) games at lambda={lam:g}...", flush=True)
      results.append(random_games(args, lam))
    ring = [] if args.no_ring else ring_game(args)
  headers = ["case", "Gambit ms/game (CPU)", "jaxnpg ms/game (CPU)",
             "speedup wall", "speedup CPU", "max |dp|", "max Gambit resid.",
             "folded", "converged"]
  rows = [[r["case"],
           f"{r['gambit_ms_per_game']:.2f} ({r['gambit_cpu_ms_per_game']:.2f})",
           f"{r['jaxnpg_ms_per_game_min']:.3f} ({r['jaxnpg_cpu_ms_per_game']:.3f})",
           f"{r['speedup_wall_min']:.1f}x", f"{r['speedup_cpu']:.1f}x",
           f"{r['max_abs_prob_diff']:.1e}", f"{r['gambit_residual_max']:.1e}",
           f"{r['turning_point_games']}/{r['jaxnpg_games']}",
           f"{r['converged_fraction']:.3f}"] for r in results]
  rows += [[r["case"], f"{1e3 * r['gambit_s']:.0f} ({1e3 * r['gambit_cpu_s']:.0f})",
            f"{1e3 * r['jaxnpg_s_min']:.1f} ({1e3 * r['jaxnpg_cpu_s']:.1f})",
            f"{r['speedup_wall_min']:.0f}x", f"{r['speedup_cpu']:.0f}x",
            f"{r['max_abs_prob_diff']:.1e}", "-", "-", "-"] for r in ring]
  print(_common.format_table(headers, rows))
  print(f"load average (1, 5, 15 min): {os.getloadavg()}")
  payload = {"benchmark": "qre_vs_gambit", **_common.run_header(),
             "machine": _common.machine_info(),
             "load_average": os.getloadavg(),
             "config": {"games": args.games, "gambit_games": args.gambit_games,
                        "solver": args.solver,
                        "lams": args.lams, "repeats": args.repeats,
                        "seed": args.seed, "dtype": "float64",
                        "ring": not args.no_ring},
             "results": results + ring}
  _common.write_json(args.out, payload)


if __name__ == "__main__":
  main()
