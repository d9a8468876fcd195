"""Does the local rate at the QRE predict what NPG does? Evidence on random games.

For ``--games`` random (3, 4, 5) games (rewards uniform on [0, 1], one random initial
policy per game, the same for every tau and eta: the paper's Fig. 1 setting), a grid
of ``tau`` and two step-size columns (the paper-figure rule
``eta = 1 / (2 (tau + 2 sum_i A_i))`` and a fixed ``eta = --eta``):

* predicted: ``jaxnpg.theory.predicted_rates``: the principal-branch QRE
  (``jaxnpg.qre``) and the spectral radius ``rho`` of the NPG Jacobian there;
  "attracting" is ``rho < 1``;
* observed: NPG itself (``jaxnpg.npg_step`` in a ``lax.scan``, vmapped over games and
  taus, float64) for a fixed budget of iterations, recording the fixed-point residual
  ``max_i ||log pi_i - log pi_i^*||_inf`` (linear in the distance to a QRE) every
  ``--record-every`` steps; "converged" is a final residual ``<= 1e-8``.

Reported: how often prediction and observation agree; the disagreements sorted by
cause (the run went to another QRE; the run is slower than the budget; no
convergence although the QRE attracts: a cycle or another attractor); the error of the
predicted rate against the rate measured on the tail of converged runs (a log-linear
fit of the residual between 1e-4 and 1e-11); the predicted and observed convergence
boundaries in ``tau``; and Theorem 3.3's threshold ``tau > 2 W S`` for comparison.

Usage:
  python benchmarks/local_rate_evidence.py            # 1024 games, 2-5 minutes
  python benchmarks/local_rate_evidence.py --games 256 --budget 10000,2000
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxnpg
from jaxnpg.core import gaps as _gaps
from jaxnpg import theory

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

NUM_ACTIONS = (3, 4, 5)
TOL = 1e-8            # observed convergence: final fixed-point residual
SAME_QRE = 1e-6       # centred log-policy distance below which two QREs are one


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--games", type=int, default=1024)
  p.add_argument("--taus",
                 default="0.01,0.02,0.03,0.05,0.07,0.1,0.15,0.2,0.3,0.5,1.0")
  p.add_argument("--eta", type=float, default=0.5,
                 help="the fixed step size of the second column (default 0.5)")
  p.add_argument("--budget", default="20000,4000",
                 help="NPG iterations for the rule column and the fixed column")
  p.add_argument("--record-every", type=int, default=50)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                               "results", "local_rate_evidence.json"))
  p.add_argument("--plot", default=os.path.join(os.path.dirname(__file__),
                                                "results", "local_rate_evidence.png"))
  args = p.parse_args(argv)
  args.taus = np.array([float(t) for t in args.taus.split(",")])
  args.budget = [int(b) for b in args.budget.split(",")]
  return args


def make_runner(num_iters, record_every):
  """vmapped over games (axis 0) and taus (axis 1): residual records, final logp."""
  blocks = num_iters // record_every

  def one(game, logp0, tau, eta):
    def plain(lp, _):
      return jaxnpg.npg_step(game, lp, tau, eta), None

    def block(lp, _):
      lp, _ = lax.scan(plain, lp, None, length=record_every)
      res = _gaps.fixed_point_residual_from_payoffs(lp, game.payoffs(lp), tau)
      return lp, res

    res0 = _gaps.fixed_point_residual_from_payoffs(logp0, game.payoffs(logp0), tau)
    lp, res = lax.scan(block, logp0, None, length=blocks)
    return jnp.concatenate([res0[None], res]), lp

  over_taus = jax.vmap(one, in_axes=(None, None, 0, 0))
  return jax.jit(jax.vmap(over_taus, in_axes=(0, 0, None, None)))


def tail_rate(res, iters):
  """Per-iteration rate of the residual's tail (log-linear fit in [1e-11, 1e-4])."""
  use = np.flatnonzero((res < 1e-4) & (res > 1e-11))
  if use.size < 3:
    return math.nan
  k = np.arange(use[0], use[-1] + 1)
  k = k[np.isfinite(res[k]) & (res[k] > 0)]
  if k.size < 3:
    return math.nan
  return math.exp(np.polyfit(iters[k], np.log(res[k]), 1)[0])


def centred(logp):
  return np.concatenate([lp - lp.mean(-1, keepdims=True) for lp in logp], -1)


def boundary_from(att, taus):
  """Smallest grid tau from which every larger one is True (nan if none); ``att``
  is ``(games, taus)``."""
  tail = np.flip(np.logical_and.accumulate(np.flip(att, -1), axis=-1), -1)
  first = np.where(tail.any(-1), np.argmax(tail, axis=-1), len(taus))
  return np.append(taus, np.nan)[first]


def pct(x):
  return f"{100 * x:.1f}%"


def main():
  args = parse_args()
  t_start = time.perf_counter()
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.key(args.seed), args.games)
    games = jax.vmap(lambda k: jaxnpg.random_game(k, NUM_ACTIONS))(keys)
    inits = jax.vmap(lambda k, g: jaxnpg.random_policy(k, g))(
        jax.random.split(jax.random.key(args.seed + 1), args.games), games)
    taus = args.taus
    t_n = len(taus)
    rule = np.asarray(jaxnpg.paper_eta(jnp.asarray(taus), NUM_ACTIONS))
    etas = np.stack([rule, np.full(t_n, args.eta)], axis=1)          # (T, 2)
    columns = ["paper rule 1/(2(tau+2S))", f"fixed eta={args.eta:g}"]

    t0 = time.perf_counter()
    pred = theory.predicted_rates(games, taus, etas)
    rho = np.asarray(pred.rho)                                       # (G, T, 2)
    jax.block_until_ready(pred)
    t_pred = time.perf_counter() - t0
    qre_ok = np.asarray(pred.qre_status) <= 1
    qre_star = [np.asarray(lp) for lp in pred.qre_logp]

    records, finals = [], []
    t0 = time.perf_counter()
    for e in range(2):
      run = make_runner(args.budget[e], args.record_every)
      res, lp = run(games, inits, jnp.asarray(taus), jnp.asarray(etas[:, e]))
      records.append(np.asarray(res))                                # (G, T, R)
      finals.append([np.asarray(x) for x in lp])
    t_runs = time.perf_counter() - t0

    # Local rate at each run's own end point (meaningful where it converged).
    own = []
    for e in range(2):
      f = jax.jit(jax.vmap(jax.vmap(
          lambda g, lp, t, eta: jaxnpg.local_rate(g, t, eta, lp).rho,
          in_axes=(None, 0, 0, 0)), in_axes=(0, 0, None, None)))
      own.append(np.asarray(f(games, tuple(jnp.asarray(x) for x in finals[e]),
                              jnp.asarray(taus), jnp.asarray(etas[:, e]))))
    th = theory.theorem_3_3(jax.tree_util.tree_map(lambda x: x[0], games),
                            float(taus[-1]), float(etas[-1, 0]))
    widths = np.asarray(games.rewards.max(axis=(1, 2, 3, 4))
                        - games.rewards.min(axis=(1, 2, 3, 4)))
  t_total = time.perf_counter() - t_start

  # ----------------------------------------------------------------- analysis
  out = {"columns": []}
  dist_star = []
  for e in range(2):
    dist_star.append(np.max(np.abs(centred(finals[e]) - centred(qre_star)), -1))
  table = []
  scatter = []
  for e in range(2):
    res = records[e]
    iters = np.arange(res.shape[-1]) * args.record_every
    final = res[..., -1]
    conv = np.isfinite(final) & (final <= TOL)
    att = rho[..., e] < 1
    valid = qre_ok
    budget = args.budget[e]
    res0 = res[..., 0]
    # The prediction says "attracting but too slow for the budget" when even the
    # asymptotic rate cannot bring the start's residual to TOL in `budget` steps.
    reachable = att & (np.log(np.maximum(rho[..., e], 1e-300)) * budget
                       <= np.log(TOL / np.maximum(res0, 1e-300)))
    same = dist_star[e] < SAME_QRE
    tp = np.asarray(pred.num_turning_points) > 0
    n = int(valid.sum())
    agree = (att == conv) & valid
    agree_budget = (reachable == conv) & valid
    # Disagreements by cause.
    att_not_conv = valid & att & ~conv
    slow = att_not_conv & ~reachable
    half = res.shape[-1] // 2
    decreasing = res[..., -1] < 1e-2 * res[..., half]
    slow_transient = att_not_conv & reachable & decreasing
    no_conv_other = att_not_conv & reachable & ~decreasing
    rep_conv = valid & ~att & conv
    rep_conv_other = rep_conv & ~same
    rep_conv_same = rep_conv & same
    att_conv_other = valid & att & conv & ~same
    # Rates on converged runs.
    meas = np.full(final.shape, np.nan)
    for idx in zip(*np.nonzero(valid & conv)):
      meas[idx] = tail_rate(res[idx], iters)
    on_star = valid & conv & same & np.isfinite(meas)
    rel_star = np.abs(np.log(meas[on_star]) / np.log(rho[..., e][on_star]) - 1)
    abs_star = np.abs(meas[on_star] - rho[..., e][on_star])
    on_any = valid & conv & np.isfinite(meas)
    rel_own = np.abs(np.log(meas[on_any]) / np.log(own[e][on_any]) - 1)
    scatter.append((rho[..., e][on_star], meas[on_star]))
    # Iterations to reach TOL: predicted from rho and the start's residual vs seen.
    hit = np.argmax(res <= TOL, axis=-1) * budget / (res.shape[-1] - 1)
    need = np.log(TOL / np.maximum(res0, 1e-300)) / np.log(
        np.minimum(rho[..., e], 1 - 1e-16))
    ratio = hit[on_star] / need[on_star]
    # Boundaries.
    b_pred = boundary_from(att & valid, taus)
    b_obs = boundary_from(conv, taus)
    b_reach = boundary_from(reachable & valid, taus)
    both_r = np.isfinite(b_reach) & np.isfinite(b_obs)
    steps_r = (np.searchsorted(taus, b_obs[both_r])
               - np.searchsorted(taus, b_reach[both_r]))
    both = np.isfinite(b_pred) & np.isfinite(b_obs)
    steps = (np.searchsorted(taus, b_obs[both]) - np.searchsorted(taus, b_pred[both]))
    per_tau = {f"{t:g}": {
        "predicted_attracting": pct(att[:, k].mean()),
        "observed_converged": pct(conv[:, k].mean()),
        "agree": pct(agree[:, k].sum() / max(valid[:, k].sum(), 1)),
        "principal_branch_folded": pct(tp[:, k].mean()),
        "median_rho": float(np.nanmedian(rho[:, k, e])),
    } for k, t in enumerate(taus)}
    col = {
        "column": columns[e], "budget": budget, "problems": n,
        "qre_failures": int((~valid).sum()),
        "agree": int(agree.sum()), "agree_fraction": float(agree.sum() / n),
        "agree_budget_aware": int(agree_budget.sum()),
        "agree_budget_aware_fraction": float(agree_budget.sum() / n),
        "predicted_attracting": int((att & valid).sum()),
        "observed_converged": int((conv & valid).sum()),
        "disagreements": {
            "attracting_but_budget_too_small_at_predicted_rate": int(slow.sum()),
            "attracting_slow_transient_still_decreasing": int(slow_transient.sum()),
            "attracting_but_no_convergence_cycle_or_other_attractor": int(
                no_conv_other.sum()),
            "repelling_but_converged_to_another_qre": int(rep_conv_other.sum()),
            "repelling_but_converged_to_principal_qre": int(rep_conv_same.sum()),
            "repelling_but_converged_with_several_qres_on_branch": int(
                (rep_conv & tp).sum()),
        },
        "agree_but_converged_to_another_qre": int(att_conv_other.sum()),
        "rate_error_vs_principal_qre": {
            "runs": int(on_star.sum()),
            "median_rel_err_log_rho": float(np.median(rel_star)) if rel_star.size else None,
            "p90_rel_err_log_rho": float(np.percentile(rel_star, 90)) if rel_star.size else None,
            "max_rel_err_log_rho": float(rel_star.max()) if rel_star.size else None,
            "fraction_within_5pct": float(np.mean(rel_star < 0.05)) if rel_star.size else None,
            "median_abs_err_rho": float(np.median(abs_star)) if abs_star.size else None,
            "max_abs_err_rho": float(abs_star.max()) if abs_star.size else None,
        },
        "rate_error_vs_own_limit": {
            "runs": int(on_any.sum()),
            "median_rel_err_log_rho": float(np.median(rel_own)) if rel_own.size else None,
            "p90_rel_err_log_rho": float(np.percentile(rel_own, 90)) if rel_own.size else None,
        },
        "iterations_observed_over_predicted": {
            "median": float(np.median(ratio)) if ratio.size else None,
            "p10": float(np.percentile(ratio, 10)) if ratio.size else None,
            "p90": float(np.percentile(ratio, 90)) if ratio.size else None,
        },
        "boundary": {
            "games_with_both": int(both.sum()),
            "exact_grid_agreement": float(np.mean(steps == 0)) if both.any() else None,
            "observed_minus_predicted_grid_steps": {
                str(s): int(np.sum(steps == s)) for s in np.unique(steps)},
            "predicted_median_tau": float(np.nanmedian(b_pred)),
            "observed_median_tau": float(np.nanmedian(b_obs)),
            "budget_aware_exact_grid_agreement": float(np.mean(steps_r == 0))
            if both_r.any() else None,
            "budget_aware_observed_minus_predicted_grid_steps": {
                str(s): int(np.sum(steps_r == s)) for s in np.unique(steps_r)},
            "budget_aware_predicted_median_tau": float(np.nanmedian(b_reach)),
            "predicted_nan": int(np.isnan(b_pred).sum()),
            "observed_nan": int(np.isnan(b_obs).sum()),
        },
        "per_tau": per_tau,
    }
    out["columns"].append(col)
    d = col["disagreements"]
    r = col["rate_error_vs_principal_qre"]
    table.append([columns[e], f"{budget}", pct(col["agree_fraction"]),
                  pct(col["agree_budget_aware_fraction"]),
                  str(d["attracting_but_budget_too_small_at_predicted_rate"]
                      + d["attracting_slow_transient_still_decreasing"]),
                  str(d["attracting_but_no_convergence_cycle_or_other_attractor"]),
                  str(d["repelling_but_converged_to_another_qre"]
                      + d["repelling_but_converged_to_principal_qre"]),
                  f"{r['median_rel_err_log_rho']:.2%} / {r['p90_rel_err_log_rho']:.2%}",
                  f"{col['boundary']['exact_grid_agreement']:.1%} / "
                  f"{col['boundary']['budget_aware_exact_grid_agreement']:.1%}"])
  print(_common.format_table(
      ["eta", "iters", "agree", "agree (budget-aware)", "slow", "no conv.",
       "repelling but conv.", "rate err median/p90",
       "boundary same grid pt (asympt. / budget-aware)"],
      table))
  intrinsic = boundary_from((np.asarray(pred.max_real) < taus) & qre_ok, taus)
  out["intrinsic_boundary_max_re_mu_below_tau"] = {
      "median_tau": float(np.nanmedian(intrinsic)),
      "nan": int(np.isnan(intrinsic).sum()),
      "counts": {f"{t:g}": int(np.sum(intrinsic == t)) for t in taus},
  }
  out["several_qres_principal_branch_folded_fraction_per_tau"] = {
      f"{t:g}": float(np.mean(np.asarray(pred.num_turning_points)[:, k] > 0))
      for k, t in enumerate(taus)}
  out["theorem_3_3"] = {
      "sum_actions": th.sum_actions,
      "tau_min_2WS_median": float(2 * np.median(widths) * th.sum_actions),
      "tau_min_2S_paper": 2.0 * th.sum_actions,
  }
  payload = {"benchmark": "local_rate_evidence", **_common.run_header(),
             "machine": _common.machine_info(),
             "config": {"games": args.games, "num_actions": NUM_ACTIONS,
                        "taus": taus.tolist(), "etas": etas.tolist(),
                        "columns": columns, "budget": args.budget,
                        "record_every": args.record_every, "tol": TOL,
                        "same_qre": SAME_QRE, "seed": args.seed,
                        "init": "random policy per game (same for all tau, eta)",
                        "dtype": "float64"},
             "seconds": {"total": t_total, "predicted_rates": t_pred,
                         "npg_runs": t_runs},
             **out}
  _common.write_json(args.out, payload)
  if args.plot:
    plot(args.plot, scatter, columns, taus, rho, records, qre_ok, args.budget)


def plot(path, scatter, columns, taus, rho, records, qre_ok, budgets):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
  ax = axes[0]
  for (p, m), name, c in zip(scatter, columns, ("C0", "C1")):
    ax.scatter(-np.log(p), -np.log(m), s=4, alpha=0.4, color=c, label=name)
  lim = [1e-5, 5]
  ax.plot(lim, lim, "k--", lw=0.8)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("predicted -log rho(J) at the principal QRE")
  ax.set_ylabel("measured -log rate (residual tail)")
  ax.set_title("rate per iteration, converged runs on the QRE")
  ax.legend(fontsize="small", markerscale=3)
  ax = axes[1]
  for e, (name, c) in enumerate(zip(columns, ("C0", "C1"))):
    att = (rho[..., e] < 1) & qre_ok
    conv = records[e][..., -1] <= TOL
    ax.plot(taus, att.mean(0), "-o", color=c, ms=3, label=f"predicted, {name}")
    reach = att & (np.log(rho[..., e]) * budgets[e]
                   <= np.log(TOL / np.maximum(records[e][..., 0], 1e-300)))
    ax.plot(taus, reach.mean(0), ":", color=c, lw=2,
            label=f"predicted within {budgets[e]} iterations")
    ax.plot(taus, conv.mean(0), "--s", color=c, ms=3, label=f"observed, {name}")
  ax.set_xscale("log")
  ax.set_xlabel("tau")
  ax.set_ylabel("fraction of games")
  ax.set_title("QRE attracts (predicted) vs NPG converged (observed)")
  ax.legend(fontsize="small")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
