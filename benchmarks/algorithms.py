"""NPG, sampled NPG, policy gradient and optimistic NPG side by side.

Two pieces of evidence, both computed with ``jaxnpg.sweep(..., algorithm=...)``
(float64):

1. Phase comparison. On the random (3, 4, 5) family (rewards uniform on [0, 1],
   the paper's Fig. 1 games) and the 5-agent ring (``network_zero_sum`` family,
   ``graph="ring"``, 3 actions each, the paper's Fig. 2 games), for every
   algorithm and a grid of tau: the fraction of games whose QRE-gap reaches
   ``--tol`` within ``--iters`` steps, the median empirical linear rate of the
   QRE-gap (``jaxnpg.linear_rate`` of the tail), and the median final QRE-gap.
   Step sizes: the paper's rule ``eta = m / (2 (tau + 2 sum_i A_i))`` for each
   multiplier ``m`` of ``--eta-multipliers``. Sampled NPG (``--samples`` joint
   actions per iteration) runs ``--seeds`` seeds: mean and spread (std) over
   seeds.
2. Sampled NPG against the exact oracle. On ``--curve-games`` random (3, 4, 5)
   games at ``tau = --curve-tau`` (paper step size), the QRE-gap against
   iteration for several sample counts M (``--curve-samples``) and one decaying
   schedule ``eta_k = eta / (1 + k / 200)`` at the largest-but-one M, with exact
   NPG beside them: median and interquartile band over games x seeds. The noise
   floor (median gap over the last fifth of the run) is fitted against M.

Writes ``phase.png``, ``sampled_curves.png`` and ``algorithms.json`` to ``--out``
(default ``benchmarks/results/algorithms/``) and prints tables.

Usage:
  python benchmarks/algorithms.py            # 2 to 3 minutes on 2 busy cores
  python benchmarks/algorithms.py --quick    # about 1 minute
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import jax
import numpy as np

import jaxnpg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

FAMILIES = {
    "random (3,4,5)": dict(family="random", num_actions=(3, 4, 5)),
    "ring of 5, 3 actions": dict(family="network_zero_sum", num_actions=(3,) * 5,
                                 family_options={"graph": "ring"}),
}
ALGORITHMS = ("npg", "optimistic_npg", "pg", "sampled_npg")
COLORS = {"npg": "C0", "optimistic_npg": "C1", "pg": "C2", "sampled_npg": "C3"}
MARKERS = {"npg": "o", "optimistic_npg": "s", "pg": "^", "sampled_npg": "v"}


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--games", type=int, default=48)
  p.add_argument("--taus", default="0.01:10:10",
                 help="tau grid, 'lo:hi:count' (log) or a list (default "
                 "0.01:10:10)")
  p.add_argument("--eta-multipliers", default="1,10")
  p.add_argument("--iters", type=int, default=2000)
  p.add_argument("--tol", type=float, default=1e-8)
  p.add_argument("--samples", type=int, default=64)
  p.add_argument("--seeds", type=int, default=3)
  p.add_argument("--curve-games", type=int, default=12)
  p.add_argument("--curve-samples", default="4,16,64,256,1024")
  p.add_argument("--curve-tau", type=float, default=1.0)
  p.add_argument("--curve-iters", type=int, default=1500)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--quick", action="store_true",
                 help="16 games, 6 taus, 1500 iterations, M up to 256, 2 seeds")
  p.add_argument("--out", default=os.path.join(os.path.dirname(
      os.path.abspath(__file__)), "results", "algorithms"))
  args = p.parse_args(argv)
  if args.quick:
    args.games, args.taus, args.iters = 16, "0.01:10:6", 1500
    args.curve_games, args.curve_samples, args.curve_iters = 8, "4,16,64,256", 1000
    args.seeds = 2
  if ":" in args.taus:
    lo, hi, n = args.taus.split(":")
    args.taus = [float(t) for t in np.geomspace(float(lo), float(hi), int(n))]
  else:
    args.taus = [float(t) for t in args.taus.split(",")]
  args.eta_multipliers = [float(m) for m in args.eta_multipliers.split(",")]
  args.curve_samples = [int(m) for m in args.curve_samples.split(",")]
  return args


def _algorithm(name, samples, schedule=None):
  if name == "sampled_npg":
    return jaxnpg.SampledNPG(num_samples=samples, schedule=schedule)
  return name


def phase(args):
  """Sweeps of every family x algorithm; returns the JSON rows."""
  rows = []
  for label, fam in FAMILIES.items():
    for name in ALGORITHMS:
      seeds = args.seeds if name == "sampled_npg" else None
      t0 = time.perf_counter()
      res = jaxnpg.sweep(
          **fam, num_games=args.games, seed=args.seed, taus=args.taus,
          etas="paper", eta_multipliers=args.eta_multipliers,
          num_iters=args.iters, tol=args.tol, record_every=max(1, args.iters // 100),
          algorithm=_algorithm(name, args.samples), num_seeds=seeds, quiet=True)
      seconds = time.perf_counter() - t0
      summ = res.summary()
      for e, m in enumerate(res.eta):
        rows.append({
            "family": label, "algorithm": name, "eta_multiplier": float(m),
            "taus": [float(t) for t in res.tau],
            "step_sizes": res.step_size[:, e].tolist(),
            "seeds": res.num_seeds,
            **{k: [None if not np.isfinite(v) else float(v) for v in x[:, e]]
               for k, x in summ.items()},
            "status_counts": res.status_counts(),
            "seconds": seconds, "compile_seconds": res.attrs["compile_seconds"],
            "method": res.attrs["method"],
        })
      print(f"  {label:>22} {name:>15}: {seconds:5.1f}s "
            f"(compile {res.attrs['compile_seconds']:.1f}s, {res.attrs['method']})",
            flush=True)
  return rows


def curves(args):
  """Sampled NPG's QRE-gap against iteration for several M, and exact NPG."""
  fam = FAMILIES["random (3,4,5)"]
  kw = dict(**fam, num_games=args.curve_games, seed=args.seed,
            taus=[args.curve_tau], etas="paper", num_iters=args.curve_iters,
            record_every=max(1, args.curve_iters // 100), trajectory_points=101,
            tol=args.tol, quiet=True)
  out = {}
  t0 = time.perf_counter()
  exact = jaxnpg.sweep(**kw)
  out["exact"] = exact
  decay = args.curve_samples[-2] if len(args.curve_samples) > 1 else (
      args.curve_samples[0])
  runs = [(f"M={m}", jaxnpg.SampledNPG(num_samples=m))
          for m in args.curve_samples]
  runs.append((f"M={decay}, eta/(1+k/200)",
               jaxnpg.SampledNPG(num_samples=decay, schedule=_decay)))
  for label, alg in runs:
    out[label] = jaxnpg.sweep(**kw, algorithm=alg, num_seeds=args.seeds)
    print(f"  curve {label}: {time.perf_counter() - t0:5.1f}s", flush=True)
  return out


def _decay(k):
  return 1.0 / (1.0 + k / 200.0)


def _median_band(traj):
  """Median and quartiles over all leading axes of ``(..., K)``."""
  flat = traj.reshape((-1, traj.shape[-1])).astype(float)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    return [np.nanpercentile(flat, q, axis=0) for q in (25, 50, 75)]


def floors(curve_results, fraction=0.2):
  """Median QRE-gap over the last ``fraction`` of each run (games x seeds)."""
  out = {}
  for label, res in curve_results.items():
    traj = res.qre_gap_trajectory[:, 0, 0]             # (G, [S,] K)
    k = traj.shape[-1]
    tail = traj[..., int(k * (1 - fraction)):]
    out[label] = float(np.median(tail))
  return out


def plot_phase(rows, path, args):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fams = list(FAMILIES)
  stats = (("converged_fraction", f"fraction with QRE-gap <= {args.tol:g}"),
           ("median_linear_rate", "median linear rate of the QRE-gap"),
           ("median_qre_gap", f"median QRE-gap after {args.iters} steps"))
  fig, axes = plt.subplots(len(fams), 3, figsize=(15, 8.5), constrained_layout=True)
  styles = {m: ls for m, ls in zip(args.eta_multipliers, ("-", "--", ":", "-."))}
  for r, fam in enumerate(fams):
    for c, (stat, ylabel) in enumerate(stats):
      ax = axes[r, c]
      for row in rows:
        if row["family"] != fam:
          continue
        y = np.array([np.nan if v is None else v for v in row[stat]])
        sd = np.array([np.nan if v is None else v for v in row[stat + "_std"]])
        color = COLORS[row["algorithm"]]
        npg = row["algorithm"] == "npg"   # drawn wider: optimistic NPG often on it
        ax.plot(row["taus"], y, color=color, ls=styles[row["eta_multiplier"]],
                marker=MARKERS[row["algorithm"]], ms=5 if npg else 3,
                lw=3 if npg else 1.4, alpha=0.6 if npg else 1.0,
                label=f"{row['algorithm']}, eta={row['eta_multiplier']:g}x paper")
        if row["seeds"] > 1:
          ax.fill_between(row["taus"], y - sd, y + sd, color=color, alpha=0.15,
                          lw=0)
      ax.set_xscale("log")
      if stat == "median_qre_gap":
        ax.set_yscale("log")
      if stat == "median_linear_rate":
        ax.set_ylim(0.3, 1.02)
      ax.set_xlabel("tau")
      ax.set_ylabel(ylabel)
      ax.set_title(fam, fontsize="medium")
      ax.grid(True, alpha=0.3)
  axes[0, 0].legend(fontsize="x-small")
  fig.suptitle(
      f"NPG, optimistic NPG, policy gradient, sampled NPG (M={args.samples}, "
      f"{args.seeds} seeds, band: std over seeds); {args.games} games, "
      f"{args.iters} iterations, float64")
  fig.savefig(path, dpi=110)
  plt.close(fig)
  print(f"wrote {path}")


def plot_curves(curve_results, path, args):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
  cmap = plt.get_cmap("viridis")
  labels = [k for k in curve_results if k != "exact"]
  for i, label in enumerate(labels):
    res = curve_results[label]
    lo, med, hi = _median_band(res.qre_gap_trajectory[:, 0, 0])
    color = "C3" if "/(1+k" in label else cmap(i / max(len(labels) - 2, 1) * 0.9)
    ax.plot(res.iteration, med, color=color, lw=1.4, label=f"sampled NPG, {label}",
            ls="--" if "/(1+k" in label else "-")
    ax.fill_between(res.iteration, lo, hi, color=color, alpha=0.15, lw=0)
  ex = curve_results["exact"]
  lo, med, hi = _median_band(ex.qre_gap_trajectory[:, 0, 0])
  ax.plot(ex.iteration, med, color="k", lw=2, label="exact NPG (oracle)")
  ax.set_yscale("log")
  ax.set_ylim(max(np.nanmin(med[med > 0]) / 10, 1e-16), None)
  ax.set_xlabel("iteration")
  ax.set_ylabel("QRE-gap")
  ax.set_title(f"Sampled NPG vs exact NPG: random (3,4,5), tau={args.curve_tau:g}, "
               f"eta=paper; median and IQR over {args.curve_games} games x "
               f"{args.seeds} seeds", fontsize="small")
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize="x-small")
  fig.savefig(path, dpi=120)
  plt.close(fig)
  print(f"wrote {path}")


def main(argv=None):
  args = parse_args(argv)
  jax.config.update("jax_enable_x64", True)
  os.makedirs(args.out, exist_ok=True)
  start = time.perf_counter()
  print(f"phase comparison: {args.games} games, {len(args.taus)} taus, eta "
        f"multipliers {args.eta_multipliers}, {args.iters} iterations")
  rows = phase(args)
  print("sampled NPG curves")
  curve_results = curves(args)
  total = time.perf_counter() - start

  table = []
  for row in rows:
    for t, tau in enumerate(row["taus"]):
      if t % 2 and t != len(row["taus"]) - 1:
        continue
      rate = row["median_linear_rate"][t]
      frac, sd = row["converged_fraction"][t], row["converged_fraction_std"][t]
      table.append([row["family"], row["algorithm"], f"{row['eta_multiplier']:g}",
                    f"{tau:.3g}",
                    f"{frac:.2f}" + (f" +- {sd:.2f}" if row["seeds"] > 1 else ""),
                    "-" if rate is None else f"{rate:.4f}",
                    f"{row['median_qre_gap'][t]:.2e}"])
  print(_common.format_table(
      ["family", "algorithm", "eta x", "tau", "converged", "median rate",
       "median gap"], table))

  fl = floors(curve_results)
  ms = np.array(args.curve_samples, dtype=float)
  fm = np.array([fl[f"M={m}"] for m in args.curve_samples])
  slope = float(np.polyfit(np.log(ms), np.log(fm), 1)[0]) if len(ms) > 1 else None
  print(_common.format_table(
      ["curve", "median QRE-gap, last 20% of the run"],
      [[k, f"{v:.3e}"] for k, v in fl.items()]))
  if slope is not None:
    print(f"noise floor ~ M^{slope:.2f} (log-log fit over M = {args.curve_samples})")

  plot_phase(rows, os.path.join(args.out, "phase.png"), args)
  plot_curves(curve_results, os.path.join(args.out, "sampled_curves.png"), args)
  payload = {
      **_common.run_header(), "machine": _common.machine_info(),
      "settings": {k: v for k, v in vars(args).items()},
      "seconds_total": total, "phase": rows,
      "curves": {
          "tau": args.curve_tau,
          "iterations": curve_results["exact"].iteration.tolist(),
          "step_size": float(curve_results["exact"].step_size[0, 0]),
          "median_trajectory": {
              k: _median_band(r.qre_gap_trajectory[:, 0, 0])[1].tolist()
              for k, r in curve_results.items()},
          "floor_last_20pct": fl, "floor_slope_vs_M": slope},
  }
  _common.write_json(os.path.join(args.out, "algorithms.json"), payload)
  print(f"total {total:.1f}s")


if __name__ == "__main__":
  main()
