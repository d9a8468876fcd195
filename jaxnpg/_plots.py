"""Figures. Plots read finished results (arrays, stored sweeps), never live runs."""

from __future__ import annotations

import os

import numpy as np


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_gap_curves(iterations, curves, path, *, ylabel="QRE-gap", title=None,
                    log=True, caption=None):
  """Gap against iteration, one line per labelled curve, written as a PNG.

  Args:
    iterations: ``(T,)`` iteration numbers shared by every curve.
    curves: mapping ``label -> (T,)`` values (e.g. ``"tau=0.1" -> qre_gap``).
    path: output ``.png`` path (folders are created).
    ylabel, title: axis label and title.
    log: log-scale y axis (values <= 0 are not drawn).
    caption: small text under the axes (e.g. the settings).

  Returns:
    ``path``.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
  cmap = plt.get_cmap("viridis")
  k = np.asarray(iterations)
  for idx, (label, values) in enumerate(curves.items()):
    v = np.asarray(values, dtype=float)
    if log:
      v = np.where(v > 0, v, np.nan)
    color = cmap(idx / max(len(curves) - 1, 1))
    ax.plot(k, v, label=label, color=color, lw=1.6)
  if log:
    ax.set_yscale("log")
  ax.set_xlabel("iteration")
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize="small", ncol=2 if len(curves) > 6 else 1)
  if caption:
    fig.text(0.01, 0.005, caption, fontsize=6.5, color="0.3", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=130)
  plt.close(fig)
  return path


# ------------------------------------------------------------------------------
# Phase diagrams of a sweep (jaxnpg.sweep / jaxnpg sweep). They read a finished
# SweepResult (e.g. from jaxnpg.load_sweep), never a live run.

SWEEP_PLOTS = ("converged_fraction", "converged_heatmap", "linear_rate", "ne_gap",
               "qre_trajectories")


def theorem_rate(tau, eta, sum_actions):
  """Theorem 3.3's rate ``1 - eta*tau + 2*eta*S`` where its conditions hold.

  The conditions are ``tau > 2 S`` and ``eta < 1 / (tau - 2 S)`` with
  ``S = sum_i A_i``; elsewhere the result is NaN.

  Example:
    >>> float(theorem_rate(30.0, 0.01, 12))
    0.94
  """
  tau = np.asarray(tau, dtype=float)
  eta = np.asarray(eta, dtype=float)
  s = float(sum_actions)
  with np.errstate(divide="ignore", invalid="ignore"):
    ok = (tau > 2 * s) & (eta < 1.0 / np.where(tau > 2 * s, tau - 2 * s, 1.0))
  return np.where(ok, 1 - eta * tau + 2 * eta * s, np.nan)


def _quartiles(x, axis=0):
  """``(q25, median, q75)`` ignoring NaN, without All-NaN warnings."""
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    return tuple(np.nanpercentile(x, q, axis=axis) for q in (25, 50, 75))


def _tau_axis(ax, taus):
  taus = np.asarray(taus, dtype=float)
  if np.all(taus > 0):
    ax.set_xscale("log")
  elif np.any(taus > 0):
    ax.set_xscale("symlog", linthresh=float(np.min(taus[taus > 0])))
  ax.set_xlabel("tau (entropy weight)")


def _eta_labels(result):
  if result.eta_rule == "constant":
    return [f"eta={e:g}" for e in result.eta]
  return [f"eta={m:g} x paper" for m in result.eta]


def _sweep_caption(result):
  a = result.attrs
  if a.get("family"):
    what = f"{a['family']} games {tuple(a.get('num_actions', ()))}"
  else:
    what = f"user games {tuple(a.get('num_actions', ()))}"
  if a.get("algorithm", "npg") != "npg":
    what = f"{a['algorithm']} on {what}"
  if getattr(result, "seed", None) is not None:
    what = f"{what}, {result.seed.size} seeds"
  return (f"{what}, {result.shape[0]} games, {a.get('num_iters')} iterations, "
          f"tol {a.get('tol'):g}, eta rule {result.eta_rule}, init "
          f"{a.get('init')}, {a.get('dtype')}, jaxnpg {a.get('jaxnpg')}")


def _finish(fig, path, caption):
  if caption:
    fig.text(0.01, 0.005, caption, fontsize=6.5, color="0.3", va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.05, 1, 0.95))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=130)
  import matplotlib.pyplot as plt
  plt.close(fig)
  return path


def plot_converged_fraction(result, path, *, caption=None, predicted=None):
  """Fraction of games whose QRE-gap reached ``tol``, against tau, one line per eta.

  With ``predicted`` (a ``jaxnpg.theory.PredictedRates`` for the sweep's games), the
  fraction of games whose principal-branch QRE attracts the iteration is drawn
  dotted beside it: the predicted boundary.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
  frac = result.converged_fraction()
  cmap = plt.get_cmap("viridis")
  labels = _eta_labels(result)
  spread = (result.summary()["converged_fraction_std"]
            if getattr(result, "seed", None) is not None else None)
  for e in range(frac.shape[1]):
    ax.plot(result.tau, frac[:, e], marker="o", ms=3, lw=1.5, label=labels[e],
            color=cmap(e / max(frac.shape[1] - 1, 1)))
    if spread is not None:   # +- one standard deviation over seeds
      ax.fill_between(result.tau, frac[:, e] - spread[:, e],
                      frac[:, e] + spread[:, e], alpha=0.2, lw=0,
                      color=cmap(e / max(frac.shape[1] - 1, 1)))
    if predicted is not None:
      attract = np.asarray(predicted.attracting)[:, :, e].mean(axis=0)
      ax.plot(result.tau, attract, ls=":", lw=1.5,
              color=cmap(e / max(frac.shape[1] - 1, 1)),
              label=f"{labels[e]}: QRE attracts (local rate < 1)")
  _tau_axis(ax, result.tau)
  ax.set_ylim(-0.03, 1.03)
  ax.set_ylabel(f"fraction of games with QRE-gap <= {result.attrs.get('tol'):g}")
  ax.set_title("Independent NPG: converged fraction")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize="small")
  return _finish(fig, path, caption)


def plot_converged_heatmap(result, path, *, caption=None):
  """The converged fraction as a tau x eta heatmap."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
  frac = result.converged_fraction()
  mesh = ax.pcolormesh(np.arange(frac.shape[0] + 1), np.arange(frac.shape[1] + 1),
                       frac.T, vmin=0, vmax=1, cmap="viridis", shading="flat")
  fig.colorbar(mesh, ax=ax, label="converged fraction")
  step = max(1, frac.shape[0] // 8)
  ticks = np.arange(0, frac.shape[0], step)
  ax.set_xticks(ticks + 0.5, [f"{result.tau[i]:.3g}" for i in ticks],
                rotation=45, fontsize="small")
  ax.set_yticks(np.arange(frac.shape[1]) + 0.5,
                [f"{v:.3g}" for v in result.eta], fontsize="small")
  ax.set_xlabel("tau (entropy weight)")
  ax.set_ylabel("eta" if result.eta_rule == "constant"
                else "eta multiplier of the paper rule")
  ax.set_title("Converged fraction over tau x eta")
  return _finish(fig, path, caption)


def plot_linear_rate(result, path, *, caption=None, predicted=None):
  """Empirical linear rate against tau (median, interquartile band over games).

  Theorem 3.3's rate ``1 - eta*tau + 2*eta*sum A_i`` is drawn dashed where its
  conditions hold. With ``predicted`` (``jaxnpg.theory.PredictedRates``), the median
  predicted rate of the QRE-gap, ``rho(J)^2``, is drawn dotted.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
  cmap = plt.get_cmap("viridis")
  labels = _eta_labels(result)
  s = result.attrs.get("sum_actions") or sum(result.attrs.get("num_actions", ()))
  n_eta = result.shape[2]
  for e in range(n_eta):
    color = cmap(e / max(n_eta - 1, 1))
    lo, med, hi = _quartiles(result.linear_rate[:, :, e].astype(float))
    ax.plot(result.tau, med, color=color, lw=1.6, label=f"{labels[e]} (median)")
    ax.fill_between(result.tau, lo, hi, color=color, alpha=0.2, lw=0)
    bound = theorem_rate(result.tau, result.step_size[:, e], s)
    if np.any(np.isfinite(bound)):
      ax.plot(result.tau, bound, ls="--", color=color, lw=1.2,
              label=f"{labels[e]}: Theorem 3.3 bound")
    if predicted is not None:
      rho2 = np.asarray(predicted.rho, dtype=float)[:, :, e] ** 2
      ax.plot(result.tau, np.nanmedian(np.where(rho2 < 1, rho2, np.nan), axis=0),
              ls=":", color=color, lw=1.8,
              label=f"{labels[e]}: predicted, local rate squared (median)")
  _tau_axis(ax, result.tau)
  ax.set_ylabel("linear rate of the QRE-gap per iteration")
  ax.set_title("Empirical linear rate (band: interquartile range over games)")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize="x-small")
  return _finish(fig, path, caption)


def plot_ne_gap(result, path, *, caption=None):
  """Final NE-gap against tau (median, interquartile band): how far from Nash."""
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
  cmap = plt.get_cmap("viridis")
  labels = _eta_labels(result)
  n_eta = result.shape[2]
  for e in range(n_eta):
    color = cmap(e / max(n_eta - 1, 1))
    vals = result.ne_gap[:, :, e].astype(float)
    vals = np.where(vals > 0, vals, np.nan)
    lo, med, hi = _quartiles(vals)
    ax.plot(result.tau, med, color=color, lw=1.6, label=labels[e])
    ax.fill_between(result.tau, lo, hi, color=color, alpha=0.2, lw=0)
  _tau_axis(ax, result.tau)
  ax.set_yscale("log")
  ax.set_ylabel("final NE-gap")
  ax.set_title("Distance of the final policy from Nash (NE-gap)")
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize="small")
  return _finish(fig, path, caption)


def _pick_taus(taus, wanted, count=4):
  taus = np.asarray(taus, dtype=float)
  if wanted is None:
    return sorted(set(np.round(np.linspace(0, len(taus) - 1,
                                           min(count, len(taus)))).astype(int)))
  return sorted({int(np.argmin(np.abs(taus - float(w)))) for w in wanted})


def plot_sweep_trajectories(result, path, *, taus=None, eta_index=0,
                            caption=None):
  """QRE-gap against iteration for a few tau (median and band over games).

  Args:
    result: a SweepResult with trajectories (``trajectory_points > 0``).
    path: output PNG.
    taus: tau values to show (nearest on the axis); default 4 spread over it.
    eta_index: which eta of the axis to show.

  Raises:
    ValueError: the sweep kept no trajectories.
  """
  if result.qre_gap_trajectory is None:
    raise ValueError(
        "This sweep kept no trajectories; run it with trajectory_points > 0 "
        "(--trajectory N) to plot them.")
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
  cmap = plt.get_cmap("plasma")
  picks = _pick_taus(result.tau, taus)
  for k, t in enumerate(picks):
    color = cmap(k / max(len(picks) - 1, 1) * 0.85)
    traj = result.qre_gap_trajectory[:, t, eta_index, :].astype(float)
    traj = np.where(traj > 0, traj, np.nan)
    lo, med, hi = _quartiles(traj)
    ax.plot(result.iteration, med, color=color, lw=1.6,
            label=f"tau={result.tau[t]:.3g}")
    ax.fill_between(result.iteration, lo, hi, color=color, alpha=0.2, lw=0)
  ax.set_yscale("log")
  ax.set_xlabel("iteration")
  ax.set_ylabel("QRE-gap")
  ax.set_title(f"QRE-gap trajectories, {_eta_labels(result)[eta_index]} "
               "(median, interquartile band)")
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize="small")
  return _finish(fig, path, caption)


def plot_sweep(result, out_dir, *, taus=None, eta_index=0, predicted=None) -> dict:
  """Write every phase diagram of a sweep as PNGs into ``out_dir``.

  Args:
    result: a :class:`jaxnpg.SweepResult` (e.g. ``jaxnpg.load_sweep(folder)``).
    out_dir: folder for the PNGs (created).
    taus: tau values for the trajectory panel (default: 4 spread over the axis).
    eta_index: the eta shown in the trajectory panel.
    predicted: optional ``jaxnpg.theory.PredictedRates`` for the sweep's games
      (``jaxnpg.theory.predict_for_sweep``): predicted rate and boundary are drawn
      beside the observed ones.

  Returns:
    ``{name: path}`` for the written plots, names from ``SWEEP_PLOTS``; the
    trajectory plot only when the sweep kept trajectories.
  """
  caption = _sweep_caption(result)
  out = {}
  seeded, result = result, result.merge_seeds()  # quantiles pool the seeds
  for name, fn in (("converged_fraction", plot_converged_fraction),
                   ("converged_heatmap", plot_converged_heatmap),
                   ("linear_rate", plot_linear_rate),
                   ("ne_gap", plot_ne_gap)):
    extra = ({"predicted": predicted}
             if predicted is not None and name in ("converged_fraction",
                                                   "linear_rate") else {})
    out[name] = fn(seeded if name == "converged_fraction" else result,
                   os.path.join(out_dir, f"{name}.png"), caption=caption,
                   **extra)
  if result.qre_gap_trajectory is not None:
    out["qre_trajectories"] = plot_sweep_trajectories(
        result, os.path.join(out_dir, "qre_trajectories.png"), taus=taus,
        eta_index=eta_index, caption=caption)
  return out
