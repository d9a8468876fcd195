"""Phase diagrams of a sweep (``jaxnpg.sweep`` / ``jaxnpg sweep``).

They read a finished :class:`jaxnpg.SweepResult` (e.g. from
:func:`jaxnpg.load_sweep`), never a live run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxnpg.loop.status import Status
from jaxnpg.theory.predictions import Boundary
from jaxnpg.theory.theorem import theorem_rate
from jaxnpg.viz.style import (
  algorithm_title,
  band,
  band_handle,
  clip_to_floor,
  display_floor,
  draw_floor,
  finish,
  floor_note,
  legend,
  line_color,
  new_figure,
  quartiles,
  tau_axis,
)

# Phase diagrams of a sweep (jaxnpg.sweep / jaxnpg sweep). They read a finished
# SweepResult (e.g. from jaxnpg.load_sweep), never a live run.

SWEEP_PLOTS = ("converged_fraction", "converged_heatmap", "linear_rate", "ne_gap",
               "qre_trajectories")
# Panels that draw theory predictions: with ``predicted`` they are also written as
# ``<name>_theory.png`` (the plain versions keep their names).
THEORY_PLOTS = ("converged_fraction", "converged_heatmap", "linear_rate")


def wilson_interval(successes, trials, z: float = 1.959963984540054):
  """Wilson score interval ``(lo, hi)`` of a binomial proportion (95% by default).

  Unlike the normal approximation it stays inside ``[0, 1]`` and is not empty at
  a proportion of 0 or 1. ``trials = 0`` gives ``(0, 1)``.

  Example:
    >>> lo, hi = wilson_interval(8, 10)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.4902, 0.9433)
  """
  k = np.asarray(successes, dtype=float)
  n = np.asarray(trials, dtype=float)
  with np.errstate(divide="ignore", invalid="ignore"):
    p = np.where(n > 0, k / n, 0.5)
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # The interval holds p exactly (rounding could leave it a hair outside).
    lo = np.where(n > 0, np.clip(np.minimum(centre - half, p), 0, 1), 0.0)
    hi = np.where(n > 0, np.clip(np.maximum(centre + half, p), 0, 1), 1.0)
  return lo, hi


def boundary_from_rates(predicted):
  """Per game and eta, the smallest grid tau from which the QRE attracts NPG.

  The grid reading of :func:`jaxnpg.theory.predicted_boundary` (``refine=0``),
  taken from an existing ``PredictedRates`` (no new QRE solves): the first grid
  ``tau`` from which every larger grid ``tau`` has ``rho < 1``; NaN where it does
  not attract even at the largest ``tau``. A ``theory.Boundary`` is returned as
  its ``tau``.

  Returns:
    ``(*G, E)`` float array.
  """
  if isinstance(predicted, Boundary):
    return np.asarray(predicted.tau, dtype=float)
  att = np.asarray(predicted.attracting, dtype=bool)             # (*G, T, E)
  taus = np.asarray(predicted.taus, dtype=float)
  tail_ok = np.flip(np.logical_and.accumulate(np.flip(att, -2), axis=-2), -2)
  first = np.where(tail_ok.any(axis=-2), np.argmax(tail_ok, axis=-2), taus.size)
  return np.append(taus, np.nan)[first]


def _rates_of(predicted):
  """The ``PredictedRates`` of ``predicted`` (itself, or a Boundary's ``rates``)."""
  return predicted.rates if isinstance(predicted, Boundary) else predicted



def _eta_labels(result):
  if result.eta_rule == "constant":
    return [f"eta={e:g}" for e in result.eta]
  return [f"eta={m:g} x paper rule" for m in result.eta]


def _eta_description(result):
  """What the eta axis shows, in words (for footers)."""
  values = ", ".join(f"{v:g}" for v in result.eta)
  if result.eta_rule == "constant":
    return f"constant eta in {{{values}}}"
  if result.eta_rule == "paper":
    # Markov games: the rule sets eta_bar = eta / (1 - gamma) (jaxnpg.paper_eta).
    # A stored result holds no game whose declarations could be read, only the
    # family name of its manifest; so the name decides this footer's wording.
    markov = result.attrs.get("family") == "markov"
    rule = ("(1 - gamma)/(2(tau + 2 sum A_i))" if markov
            else "1/(2(tau + 2 sum A_i))")
    return f"eta = m x paper rule {rule}, m in {{{values}}}"
  return f"eta rule {result.eta_rule}, eta axis {{{values}}}"



def result_title(result):
  a = result.attrs
  return algorithm_title(a.get("algorithm"),
                         (a.get("algorithm_options") or {}).get("num_samples"))


def _result_dtype(result):
  try:
    return np.dtype(result.attrs.get("dtype") or result.qre_gap.dtype)
  except TypeError:
    return np.dtype(np.float64)


def sweep_caption(result):
  a = result.attrs
  if a.get("family"):
    what = f"{a['family']} games {tuple(a.get('num_actions', ()))}"
  else:
    what = f"user games {tuple(a.get('num_actions', ()))}"
  if a.get("algorithm", "npg") != "npg":
    what = f"{a['algorithm']} on {what}"
  if result.seed is not None:
    what = f"{what}, {result.seed.size} seeds"
  if "num_iters" not in a:
    return f"{what}, {result.shape[0]} games, {_eta_description(result)}"
  return (f"{what}, {result.shape[0]} games, {a.get('num_iters')} iterations, "
          f"{tol_description(result)}, {_eta_description(result)}, init "
          f"{a.get('init')}, {a.get('dtype')}, jaxnpg {a.get('jaxnpg')}")


def tol_description(result) -> str:
  """``"tol 1e-10"``, or the default rule when the sweep used it."""
  tol = result.attrs.get("tol")
  return ("tol 1e-6 (max|rbar| + tau log A)" if tol is None
          else f"tol {tol:g}")



def plot_converged_fraction(result, path, *, caption=None, predicted=None):
  """Fraction of games whose QRE-gap reached ``tol``, against tau, one line per eta.

  Error bars: the Wilson 95% interval of the fraction over the games (over
  games x seeds, counted as independent, when the sweep has seeds). Where cells
  ended at the rounding floor (``Status.AT_FLOOR``) their fraction is drawn
  dashed. With ``predicted`` (a ``jaxnpg.theory.PredictedRates`` or ``Boundary``
  for the sweep's games), the fraction of games whose principal-branch QRE
  attracts the iteration is drawn dotted beside it: the predicted boundary.
  """
  fig, ax = new_figure()
  status = result.merge_seeds().status                      # (G', T, E)
  n = status.shape[0]
  counts = np.sum(status == Status.CONVERGED, axis=0)
  at_floor = np.sum(status == Status.AT_FLOOR, axis=0)
  frac = counts / n
  lo, hi = wilson_interval(counts, n)
  labels = _eta_labels(result)
  rates = _rates_of(predicted) if predicted is not None else None
  taus = np.asarray(result.tau, dtype=float)
  n_eta = frac.shape[1]
  for e in range(n_eta):
    color = line_color(e)
    # Dodge the error bars of different etas sideways (on the log axis).
    x = (taus * np.exp(0.03 * (e - (n_eta - 1) / 2)) if np.all(taus > 0)
         else taus)
    ax.errorbar(x, frac[:, e], yerr=[frac[:, e] - lo[:, e],
                                     hi[:, e] - frac[:, e]],
                marker="o", ms=3.5, lw=1.5, capsize=2.5, elinewidth=0.9,
                color=color, label=f"{labels[e]} (Wilson 95% interval)")
    if np.any(at_floor[:, e]):
      ax.plot(result.tau, at_floor[:, e] / n, ls="--", marker="s", ms=3,
              lw=1.1, color=color, mfc="white",
              label=f"{labels[e]}: {Status.AT_FLOOR.label}")
    if rates is not None:
      attract = np.asarray(rates.attracting)[:, :, e].mean(axis=0)
      ax.plot(result.tau, attract, ls=":", lw=1.8, color=color,
              label=f"{labels[e]}: predicted, QRE attracts (local rate < 1)"
              "\n(asymptotic: ignores the iteration budget)")
  tau_axis(ax, result.tau)
  ax.set_ylim(-0.03, 1.03)
  ax.set_ylabel("fraction of games with QRE-gap <= tol")
  ax.set_title(f"{result_title(result)}: converged fraction")
  ax.grid(True, alpha=0.3)
  handles, labels_ = ax.get_legend_handles_labels()
  order = sorted(range(len(labels_)), key=lambda i: ":" in labels_[i])
  # Fractions rise to 1 at large tau, so the right middle is usually free.
  ax.legend([handles[i] for i in order], [labels_[i] for i in order],
            fontsize="x-small", loc="center right")
  note = (f"error bars: Wilson 95% interval over {n} "
          + ("games x seeds" if result.seed is not None else "games"))
  if rates is not None:
    note += (f"; predictions on {np.asarray(rates.attracting).shape[0]} games: "
             "the fraction whose QRE attracts NPG at all (local rate < 1), "
             "whatever the iterations it would need; where the rate is close "
             "to 1 the budget ends first and fewer cells converge")
  return finish(fig, path, caption, (note,))


def plot_converged_heatmap(result, path, *, caption=None, predicted=None):
  """The converged fraction as a tau x eta heatmap.

  With ``predicted`` (``jaxnpg.theory.PredictedRates`` or ``Boundary``) the
  predicted boundary is drawn on it: per eta row, a white bar at the median over
  games of the smallest tau from which the principal-branch QRE attracts NPG
  (:func:`boundary_from_rates`), with a whisker over its interquartile range.
  Cells to the right of the bar are predicted to converge.
  """
  from matplotlib import patheffects
  fig, ax = new_figure()
  frac = result.converged_fraction()
  taus = np.asarray(result.tau, dtype=float)
  n_tau, n_eta = frac.shape
  mesh = ax.pcolormesh(np.arange(n_tau + 1), np.arange(n_eta + 1), frac.T,
                       vmin=0, vmax=1, cmap="viridis", shading="flat")
  fig.colorbar(mesh, ax=ax, label="converged fraction")
  # The numbers, when they fit: "0.00" needs about 1/16 of the axis width.
  if n_tau <= 16 and n_tau * n_eta <= 80:
    for t in range(n_tau):
      for e in range(n_eta):
        ax.text(t + 0.5, e + 0.5, f"{frac[t, e]:.2f}", ha="center", va="center",
                fontsize=6 if n_tau > 10 else 7,
                color="white" if frac[t, e] < 0.6 else "black")
  step = max(1, n_tau // 10)
  ticks = np.arange(0, n_tau, step)
  ax.set_xticks(ticks + 0.5, [f"{taus[i]:.3g}" for i in ticks],
                rotation=45, fontsize="small")
  if result.eta_rule == "constant":
    ax.set_yticks(np.arange(n_eta) + 0.5, [f"{v:.3g}" for v in result.eta],
                  fontsize="small")
    ax.set_ylabel("eta (constant step size)")
  else:
    ax.set_yticks(np.arange(n_eta) + 0.5, [f"{v:g}x" for v in result.eta],
                  fontsize="small")
    ax.set_ylabel("m: eta = m x paper rule")
  ax.set_xlabel("tau (entropy weight)")
  ax.set_title(f"{result_title(result)}: converged fraction over tau x eta")
  notes = []
  if predicted is not None:
    tau_b = boundary_from_rates(predicted)                   # (G, E)
    # Cell k covers [k, k+1]; "attracts from taus[k]" is the left edge x = k.
    if np.all(taus > 0):
      pos = lambda v: np.interp(np.log(v), np.log(taus), np.arange(n_tau))
    else:
      pos = lambda v: np.interp(v, taus, np.arange(n_tau))
    ax.set_xlim(-0.25, n_tau + 0.25)          # room for a bar on either edge
    ax.set_ylim(0, n_eta)
    outline = [patheffects.withStroke(linewidth=3.2, foreground="black")]
    never = []
    for e in range(n_eta):
      col = tau_b[:, e]
      if np.mean(np.isnan(col)) > 0.5:            # median: never attracts
        never.append(e)
        ax.text(n_tau - 0.1, e + 0.5, "no attraction on grid", ha="right",
                va="center", fontsize=7, color="white",
                path_effects=[patheffects.withStroke(linewidth=2,
                                                     foreground="black")])
        continue
      # Quantiles of the bar positions (never attracting: the right edge).
      xs = np.where(np.isnan(col), float(n_tau), pos(np.where(np.isnan(col), taus[-1], col)))
      x = np.percentile(xs, (25, 50, 75))
      if x[1] <= 0:         # at or below the smallest tau: say so, no edge bar
        ax.text(0.12, e + 0.5, f"attracts from\ntau <= {taus[0]:.3g}",
                ha="left", va="center", fontsize=6.5, color="white",
                path_effects=[patheffects.withStroke(linewidth=2,
                                                     foreground="black")])
        continue
      ax.plot([x[0], x[2]], [e + 0.22, e + 0.22], color="white", lw=1.4,
              path_effects=outline, zorder=3)
      ax.plot([x[1], x[1]], [e + 0.06, e + 0.94], color="white", lw=2.6,
              path_effects=outline, solid_capstyle="butt", zorder=4)
    rates = _rates_of(predicted)
    notes.append(
        f"white bar per row: predicted boundary, the median over "
        f"{np.asarray(rates.attracting).shape[0]} games of the smallest grid tau "
        f"from which the principal-branch QRE attracts NPG (rho < 1), drawn at "
        f"the left edge of that tau's cell (cells to its right are predicted to "
        f"converge; on the left edge: at or below the smallest tau); whisker: "
        f"interquartile range over games")
    ax.set_title(f"{result_title(result)}: converged fraction over tau x "
                 f"eta\nwith the predicted boundary (white bar)")
  return finish(fig, path, caption, notes)


def reward_width(result, max_games: int = 256):
  """The reward width ``W = max - min`` over all rewards of the sweep's games.

  Theorem 3.3 holds for a game with its own width; ``W`` over (up to
  ``max_games``, rebuilt) games is at least each one's, so the theorem's line
  drawn with it holds for each of them.
  None where the games cannot be rebuilt (a sweep of a user's games, or a game
  type without a reward range).
  """
  try:
    games = result.games(min(int(result.shape[0]), max_games))
    lo, hi = games.reward_range()
  except (TypeError, ValueError):
    return None
  return float(hi - lo)


def plot_linear_rate(result, path, *, caption=None, predicted=None):
  """Empirical linear rate against tau, drawn as ``1 - rate`` on a log axis.

  Top: ``1 - rate`` of the QRE-gap per iteration (median and interquartile band
  over games with a fitted rate); larger is faster, and rates 0.99 and 0.999 are
  a decade apart. Theorem 3.3's ``1 - rate = eta*tau - 2*eta*W*sum A_i`` is
  drawn dashed where its conditions hold (:func:`jaxnpg.theory.theorem_rate`,
  with ``W`` from :func:`reward_width`); with ``predicted``
  (``jaxnpg.theory.PredictedRates`` or ``Boundary``), ``1 - rho(J)^2`` (median) is
  drawn dotted. Bottom: the share of games without a fitted rate (too few gap
  records above the rounding floor, e.g. converged within a few records, or blew
  up), and, when any, the share whose gap did not decay (rate >= 1).
  """
  fig, (ax, low) = new_figure(
      figsize=(8.6, 5.6), nrows=2, sharex=True,
      gridspec_kw={"height_ratios": (3.2, 1)})
  labels = _eta_labels(result)
  s = sum(result.attrs.get("num_actions", ()))
  width = reward_width(result)
  n_eta = result.shape[2]
  rates_pred = _rates_of(predicted) if predicted is not None else None
  drawn = False
  for e in range(n_eta):
    color = line_color(e)
    rate = result.linear_rate[:, :, e].astype(float)
    q25, med, q75 = quartiles(rate)
    # 1 - rate reverses the order of the quartiles.
    with np.errstate(invalid="ignore"):
      pos = lambda v: np.where(1 - v > 0, 1 - v, np.nan)
      ax.plot(result.tau, pos(med), color=color, lw=1.6, marker="o", ms=3,
              label=f"{labels[e]} (median)")
      band(ax, result.tau, pos(q75), pos(q25), color)
    drawn |= bool(np.any(np.isfinite(pos(med))))
    bound = (np.full(result.tau.shape, np.nan) if width is None else
             theorem_rate(result.tau, result.step_size[:, e], s, width))
    if np.any(np.isfinite(bound)):
      ax.plot(result.tau, 1 - bound, ls="-.", color=color, lw=1.2,
              label=f"{labels[e]}: Theorem 3.3 bound (W = {width:.3g})")
    if rates_pred is not None:
      rho2 = np.asarray(rates_pred.rho, dtype=float)[:, :, e] ** 2
      with np.errstate(invalid="ignore"):
        gap = np.where(rho2 < 1, 1 - rho2, np.nan)
      _, pmed, _ = quartiles(gap)
      ax.plot(result.tau, pmed, ls=":", color=color, lw=1.8,
              label=f"{labels[e]}: predicted, 1 - local rate^2 (median)")
    missing = np.mean(np.isnan(rate), axis=0)
    low.plot(result.tau, missing, color=color, marker="o", ms=3.5, lw=1.2,
             label=f"{labels[e]}: no fitted rate")
    with np.errstate(invalid="ignore"):
      flat = np.mean(rate >= 1, axis=0)
    if np.any(flat > 0):
      low.plot(result.tau, flat, color=color, marker="x", ms=4, ls="--",
               lw=1.0, label=f"{labels[e]}: rate >= 1 (no decay)")
  ax.set_yscale("log")
  if not drawn:
    ax.text(0.5, 0.5, "no fitted rate below 1 in any cell", transform=ax.transAxes,
            ha="center", va="center", color="0.3")
  tau_axis(low, result.tau)
  ax.set_xlabel("")
  ax.set_ylabel("1 - rate of the QRE-gap\nper iteration (log; up = faster)")
  ax.set_title(f"{result_title(result)}: empirical linear rate")
  ax.grid(True, which="major", alpha=0.3)
  legend(ax, (band_handle(),), fontsize="x-small", loc="upper left",
          bbox_to_anchor=(1.01, 1.0))
  low.set_ylim(-0.05, 1.05)
  low.set_ylabel("share of\ngames", fontsize="small")
  low.grid(True, alpha=0.3)
  low.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
  note = ("no fitted rate: fewer than 3 gap records above the rounding floor in "
          "the fitted tail (converged too fast, or blew up)")
  return finish(fig, path, caption, (note,))


def plot_ne_gap(result, path, *, caption=None):
  """Final NE-gap against tau (median, interquartile band): how far from Nash.

  Gaps below :func:`display_floor` of the sweep's dtype (exact zeros included)
  are drawn at that floor.
  """
  fig, ax = new_figure()
  labels = _eta_labels(result)
  dtype = _result_dtype(result)
  floor = display_floor(dtype)
  clipped = False
  for e in range(result.shape[2]):
    color = line_color(e)
    vals, _ = clip_to_floor(result.ne_gap[:, :, e].astype(float), floor)
    lo, med, hi = quartiles(vals)
    # The floor is drawn (and pulls the axis down) only where a drawn quartile
    # reaches it, not for a few games below the band.
    clipped |= bool(np.any(lo <= floor))
    ax.plot(result.tau, med, color=color, lw=1.6, marker="o", ms=3,
            label=f"{labels[e]} (median)")
    band(ax, result.tau, lo, hi, color)
  tau_axis(ax, result.tau)
  ax.set_yscale("log")
  if clipped:
    draw_floor(ax, floor)
  ax.set_ylabel("final NE-gap")
  ax.set_title(f"{result_title(result)}: distance of the final policy "
               "from Nash")
  ax.grid(True, which="major", alpha=0.3)
  legend(ax, (band_handle(),))
  return finish(fig, path, caption,
                 (floor_note(floor, dtype),) if clipped else ())


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
  fig, ax = new_figure()
  dtype = _result_dtype(result)
  floor = display_floor(dtype)
  clipped = False
  picks = _pick_taus(result.tau, taus)
  for k, t in enumerate(picks):
    color = line_color(k)
    traj, low = clip_to_floor(
        result.qre_gap_trajectory[:, t, eta_index, :].astype(float), floor)
    clipped |= low
    lo, med, hi = quartiles(traj)
    ax.plot(result.iteration, med, color=color, lw=1.6,
            label=f"tau={result.tau[t]:.3g} (median)")
    band(ax, result.iteration, lo, hi, color)
  ax.set_yscale("log")
  if clipped:
    draw_floor(ax, floor)
  ax.set_xlabel("iteration")
  ax.set_ylabel("QRE-gap")
  ax.set_title(f"{result_title(result)}: QRE-gap trajectories, "
               f"{_eta_labels(result)[eta_index]}")
  ax.grid(True, which="major", alpha=0.3)
  legend(ax, (band_handle(),))
  return finish(fig, path, caption,
                 (floor_note(floor, dtype),) if clipped else ())


def plot_sweep(result, out_dir, *, taus=None, eta_index=0, predicted=None) -> dict:
  """Write every phase diagram of a sweep as PNGs into ``out_dir``.

  Args:
    result: a :class:`jaxnpg.SweepResult` (e.g. ``jaxnpg.load_sweep(folder)``).
    out_dir: folder for the PNGs (created).
    taus: tau values for the trajectory panel (default: 4 spread over the axis).
    eta_index: the eta shown in the trajectory panel.
    predicted: optional ``jaxnpg.theory.PredictedRates`` (or ``Boundary``) for
      the sweep's games (``jaxnpg.theory.predict_for_sweep``): the panels in
      ``THEORY_PLOTS`` are then also written with the predicted rate and boundary
      drawn beside the observed ones, as ``<name>_theory.png``; the plain
      ``<name>.png`` are written as without it.

  Returns:
    ``{name: path}`` for the written plots, names from ``SWEEP_PLOTS`` (the
    trajectory plot only when the sweep kept trajectories) and, with
    ``predicted``, ``<name>_theory`` for each of ``THEORY_PLOTS``.
  """
  caption = sweep_caption(result)
  out = {}
  seeded, result = result, result.merge_seeds()  # quantiles pool the seeds
  panels: dict[str, tuple[Callable[..., str], Any]] = {
      "converged_fraction": (plot_converged_fraction, seeded),
            "converged_heatmap": (plot_converged_heatmap, result),
            "linear_rate": (plot_linear_rate, result),
            "ne_gap": (plot_ne_gap, result)}
  for name, (fn, res) in panels.items():
    out[name] = fn(res, os.path.join(out_dir, f"{name}.png"), caption=caption)
  if predicted is not None:
    for name in THEORY_PLOTS:
      fn, res = panels[name]
      out[f"{name}_theory"] = fn(
          res, os.path.join(out_dir, f"{name}_theory.png"), caption=caption,
          predicted=predicted)
  if result.qre_gap_trajectory is not None:
    out["qre_trajectories"] = plot_sweep_trajectories(
        result, os.path.join(out_dir, "qre_trajectories.png"), taus=taus,
        eta_index=eta_index, caption=caption)
  return out


