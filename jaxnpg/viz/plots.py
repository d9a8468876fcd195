"""Figures. Plots read finished results (arrays, stored sweeps), never live runs."""

from __future__ import annotations

import os

import numpy as np

from jaxnpg.loop.status import Status


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


# Okabe & Ito's colour-blind-safe palette, with its orange and sky blue darkened
# so that every line has a WCAG contrast ratio >= 3 against the white background
# (their yellow is left out: it is invisible on white).
PALETTE = ("#000000", "#D55E00", "#0072B2", "#009E73", "#CC79A7", "#A66F00",
           "#3A8FC9")
_LINESTYLES = ("-", "--", "-.", ":")


def _color(i):
  return PALETTE[i % len(PALETTE)]


def _linestyle(i):
  """Solid for the first ``len(PALETTE)`` lines, then other styles (colours repeat)."""
  return _LINESTYLES[(i // len(PALETTE)) % len(_LINESTYLES)]


def contrast_ratio(color, background="white") -> float:
  """WCAG 2 contrast ratio of two colours (1 to 21; >= 3 reads for lines).

  Example:
    >>> round(contrast_ratio("black"), 1)
    21.0
  """
  from matplotlib.colors import to_rgb

  def lum(c):
    rgb = np.asarray(to_rgb(c))
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(lin @ np.array([0.2126, 0.7152, 0.0722]))

  hi, lo = sorted((lum(color), lum(background)), reverse=True)
  return (hi + 0.05) / (lo + 0.05)


def display_floor(dtype=np.float64) -> float:
  """Smallest gap drawn on a log axis: a decade below the dtype's epsilon.

  Gaps at or below it (rounding noise, exact zeros) are drawn at this value, so a
  curve that reaches 0 stays visible instead of vanishing from the log axis.

  Example:
    >>> display_floor(np.float64), display_floor(np.float32)
    (1e-17, 1e-08)
  """
  eps = float(np.finfo(np.dtype(dtype)).eps)
  return float(10.0 ** (np.floor(np.log10(eps)) - 1))


def _clip_to_floor(values, floor):
  """``(clipped, any_clipped)``: finite values below ``floor`` raised to it (NaN stays)."""
  v = np.asarray(values, dtype=float)
  low = np.isfinite(v) & (v < floor)
  return np.where(low, floor, v), bool(np.any(low))


def _floor_note(floor, dtype):
  return (f"values below {floor:.0e} (exact 0 included) drawn at {floor:.0e}, "
          f"dotted line ({np.dtype(dtype).name} rounding floor)")


def _draw_floor(ax, floor):
  ax.axhline(floor, color="0.45", ls=":", lw=1.0, zorder=0)


def _wrap(text, width):
  """Wrap each paragraph of ``text`` at spaces to ``width`` characters."""
  import textwrap
  lines = []
  for para in text.split("\n"):
    lines.extend(textwrap.wrap(para, width, break_long_words=True,
                               break_on_hyphens=False) or [""])
  return "\n".join(lines)


def _footer(fig, text, *, fontsize=6.5):
  """Write ``text`` under the axes, wrapped so that it fits inside the figure.

  The layout engine's rectangle is raised above the footer's height. Returns the
  ``Text`` artist.
  """
  renderer = fig.canvas.get_renderer()
  width_px = fig.bbox.width
  # A first guess from the average glyph width (about half the font size).
  chars = max(30, int(fig.get_figwidth() * 72 / (0.52 * fontsize)))
  while True:
    artist = fig.text(0.01, 0.006, _wrap(text, chars), fontsize=fontsize,
                      color="0.25", va="bottom", ha="left")
    ext = artist.get_window_extent(renderer)
    if ext.x1 <= width_px - 0.01 * width_px or chars <= 30:
      break
    artist.remove()
    chars = int(chars * 0.92)
  height = (ext.height + 0.012 * fig.bbox.height) / fig.bbox.height
  engine = fig.get_layout_engine()
  if engine is not None:
    engine.set(rect=(0, height, 1, 1 - height))
  return artist


def _close(fig):
  import matplotlib.pyplot as plt
  plt.close(fig)


def _save(fig, path):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=130)
  _close(fig)
  return path


def plot_gap_curves(iterations, curves, path, *, ylabel="QRE-gap", title=None,
                    log=True, caption=None, dtype=None):
  """Gap against iteration, one line per labelled curve, written as a PNG.

  Args:
    iterations: ``(T,)`` iteration numbers shared by every curve.
    curves: mapping ``label -> (T,)`` values (e.g. ``"tau=0.1" -> qre_gap``).
    path: output ``.png`` path (folders are created).
    ylabel, title: axis label and title.
    log: log-scale y axis. Values below :func:`display_floor` of ``dtype``
      (exact zeros included) are drawn at that floor (a dotted line), and the
      footer says so; NaN is not drawn.
    caption: small text under the axes (e.g. the settings), wrapped to fit.
    dtype: the dtype the gaps were computed in (default: that of the curves;
      float64 for Python lists).

  Returns:
    ``path``.
  """
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(7.6, 4.6), layout="constrained")
  k = np.asarray(iterations)
  if dtype is None:
    kinds = [np.asarray(v).dtype for v in curves.values()]
    floats = [d for d in kinds if np.issubdtype(d, np.floating)]
    dtype = min(floats, key=lambda d: d.itemsize) if floats else np.float64
  floor = display_floor(dtype)
  clipped = False
  for idx, (label, values) in enumerate(curves.items()):
    v = np.asarray(values, dtype=float)
    if log:
      v, low = _clip_to_floor(v, floor)
      clipped |= low
    ax.plot(k, v, label=label, color=_color(idx), ls=_linestyle(idx), lw=1.6)
  if log:
    ax.set_yscale("log")
    if clipped:
      _draw_floor(ax, floor)
  ax.set_xlabel("iteration")
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(True, which="major", alpha=0.3)
  # Outside the axes: it never covers a curve's tail.
  fig.legend(loc="outside right upper", fontsize="small")
  note = _floor_note(floor, dtype) if log and clipped else None
  text = "; ".join(t for t in (caption, note) if t)
  if text:
    _footer(fig, text)
  return _save(fig, path)


# ------------------------------------------------------------------------------
# Phase diagrams of a sweep (jaxnpg.sweep / jaxnpg sweep). They read a finished
# SweepResult (e.g. from jaxnpg.load_sweep), never a live run.

SWEEP_PLOTS = ("converged_fraction", "converged_heatmap", "linear_rate", "ne_gap",
               "qre_trajectories")
# Panels that draw theory predictions: with ``predicted`` they are also written as
# ``<name>_theory.png`` (the plain versions keep their names).
THEORY_PLOTS = ("converged_fraction", "converged_heatmap", "linear_rate")

_ALGORITHM_TITLES = {"npg": "Independent NPG", "sampled_npg": "Sampled NPG",
                     "pg": "Independent PG", "optimistic_npg": "Optimistic NPG"}


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
  if hasattr(predicted, "below_grid"):          # a theory.Boundary
    return np.asarray(predicted.tau, dtype=float)
  att = np.asarray(predicted.attracting, dtype=bool)             # (*G, T, E)
  taus = np.asarray(predicted.taus, dtype=float)
  tail_ok = np.flip(np.logical_and.accumulate(np.flip(att, -2), axis=-2), -2)
  first = np.where(tail_ok.any(axis=-2), np.argmax(tail_ok, axis=-2), taus.size)
  return np.append(taus, np.nan)[first]


def _rates_of(predicted):
  """The ``PredictedRates`` of ``predicted`` (itself, or a Boundary's ``rates``)."""
  return predicted.rates if hasattr(predicted, "below_grid") else predicted


def _quartiles(x, axis=0):
  """``(q25, median, q75)`` ignoring NaN, without All-NaN warnings."""
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    return tuple(np.nanpercentile(x, q, axis=axis) for q in (25, 50, 75))


def _band(ax, x, lo, hi, color):
  """An interquartile band: light fill with thin edges (overlaps stay readable)."""
  ax.fill_between(x, lo, hi, color=color, alpha=0.07, lw=0)
  for edge in (lo, hi):
    ax.plot(x, edge, color=color, lw=0.7, alpha=0.7)


def _band_handle():
  from matplotlib.patches import Patch
  return Patch(facecolor=(0.5, 0.5, 0.5, 0.15), edgecolor="0.3", lw=0.7,
               label="band: interquartile range over games")


def _legend(ax, extra=(), **kw):
  handles, labels = ax.get_legend_handles_labels()
  for h in extra:
    handles.append(h)
    labels.append(h.get_label())
  kw.setdefault("fontsize", "small")
  return ax.legend(handles, labels, **kw)


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


def algorithm_title(name="npg", num_samples=None) -> str:
  """The title words for an algorithm name (``SweepResult.attrs["algorithm"]``).

  Example:
    >>> algorithm_title("sampled_npg", 32)
    'Sampled NPG (32 samples)'
  """
  name = name or "npg"
  title = _ALGORITHM_TITLES.get(name, name)
  return f"{title} ({num_samples} samples)" if num_samples else title


def _algorithm_title(result):
  a = result.attrs
  return algorithm_title(a.get("algorithm"),
                         (a.get("algorithm_options") or {}).get("num_samples"))


def _result_dtype(result):
  try:
    return np.dtype(result.attrs.get("dtype") or result.qre_gap.dtype)
  except TypeError:
    return np.dtype(np.float64)


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


def _new_figure(figsize=(7.2, 4.6), **kw):
  plt = _pyplot()
  return plt.subplots(figsize=figsize, layout="constrained", **kw)


def _finish(fig, path, caption, notes=()):
  text = "; ".join(t for t in (caption, *notes) if t)
  if text:
    _footer(fig, text)
  return _save(fig, path)


def plot_converged_fraction(result, path, *, caption=None, predicted=None):
  """Fraction of games whose QRE-gap reached ``tol``, against tau, one line per eta.

  Error bars: the Wilson 95% interval of the fraction over the games (over
  games x seeds, counted as independent, when the sweep has seeds). Where cells
  ended at the rounding floor (``Status.AT_FLOOR``) their fraction is drawn
  dashed. With ``predicted`` (a ``jaxnpg.theory.PredictedRates`` or ``Boundary``
  for the sweep's games), the fraction of games whose principal-branch QRE
  attracts the iteration is drawn dotted beside it: the predicted boundary.
  """
  fig, ax = _new_figure()
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
    color = _color(e)
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
              label=f"{labels[e]}: predicted, QRE attracts (local rate < 1)")
  _tau_axis(ax, result.tau)
  ax.set_ylim(-0.03, 1.03)
  ax.set_ylabel("fraction of games with QRE-gap <= tol")
  ax.set_title(f"{_algorithm_title(result)}: converged fraction")
  ax.grid(True, alpha=0.3)
  handles, labels_ = ax.get_legend_handles_labels()
  order = sorted(range(len(labels_)), key=lambda i: ":" in labels_[i])
  # Fractions rise to 1 at large tau, so the right middle is usually free.
  ax.legend([handles[i] for i in order], [labels_[i] for i in order],
            fontsize="x-small", loc="center right")
  note = (f"error bars: Wilson 95% interval over {n} "
          + ("games x seeds" if result.seed is not None else "games"))
  if rates is not None:
    note += f"; predictions on {np.asarray(rates.attracting).shape[0]} games"
  return _finish(fig, path, caption, (note,))


def plot_converged_heatmap(result, path, *, caption=None, predicted=None):
  """The converged fraction as a tau x eta heatmap.

  With ``predicted`` (``jaxnpg.theory.PredictedRates`` or ``Boundary``) the
  predicted boundary is drawn on it: per eta row, a white bar at the median over
  games of the smallest tau from which the principal-branch QRE attracts NPG
  (:func:`boundary_from_rates`), with a whisker over its interquartile range.
  Cells to the right of the bar are predicted to converge.
  """
  from matplotlib import patheffects
  fig, ax = _new_figure()
  frac = result.converged_fraction()
  taus = np.asarray(result.tau, dtype=float)
  n_tau, n_eta = frac.shape
  mesh = ax.pcolormesh(np.arange(n_tau + 1), np.arange(n_eta + 1), frac.T,
                       vmin=0, vmax=1, cmap="viridis", shading="flat")
  fig.colorbar(mesh, ax=ax, label="converged fraction")
  if n_tau * n_eta <= 60:                         # the numbers, when they fit
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
  ax.set_title(f"{_algorithm_title(result)}: converged fraction over tau x eta")
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
    ax.set_title(f"{_algorithm_title(result)}: converged fraction over tau x "
                 f"eta\nwith the predicted boundary (white bar)")
  return _finish(fig, path, caption, notes)


def plot_linear_rate(result, path, *, caption=None, predicted=None):
  """Empirical linear rate against tau, drawn as ``1 - rate`` on a log axis.

  Top: ``1 - rate`` of the QRE-gap per iteration (median and interquartile band
  over games with a fitted rate); larger is faster, and rates 0.99 and 0.999 are
  a decade apart. Theorem 3.3's ``1 - rate = eta*tau - 2*eta*sum A_i`` is drawn
  dashed where its conditions hold; with ``predicted``
  (``jaxnpg.theory.PredictedRates`` or ``Boundary``), ``1 - rho(J)^2`` (median) is
  drawn dotted. Bottom: the share of games without a fitted rate (too few gap
  records above the rounding floor, e.g. converged within a few records, or blew
  up), and, when any, the share whose gap did not decay (rate >= 1).
  """
  fig, (ax, low) = _new_figure(
      figsize=(8.6, 5.6), nrows=2, sharex=True,
      gridspec_kw={"height_ratios": (3.2, 1)})
  labels = _eta_labels(result)
  s = result.attrs.get("sum_actions") or sum(result.attrs.get("num_actions", ()))
  n_eta = result.shape[2]
  rates_pred = _rates_of(predicted) if predicted is not None else None
  drawn = False
  for e in range(n_eta):
    color = _color(e)
    rate = result.linear_rate[:, :, e].astype(float)
    q25, med, q75 = _quartiles(rate)
    # 1 - rate reverses the order of the quartiles.
    with np.errstate(invalid="ignore"):
      pos = lambda v: np.where(1 - v > 0, 1 - v, np.nan)
      ax.plot(result.tau, pos(med), color=color, lw=1.6, marker="o", ms=3,
              label=f"{labels[e]} (median)")
      _band(ax, result.tau, pos(q75), pos(q25), color)
    drawn |= bool(np.any(np.isfinite(pos(med))))
    bound = theorem_rate(result.tau, result.step_size[:, e], s)
    if np.any(np.isfinite(bound)):
      ax.plot(result.tau, 1 - bound, ls="-.", color=color, lw=1.2,
              label=f"{labels[e]}: Theorem 3.3 bound")
    if rates_pred is not None:
      rho2 = np.asarray(rates_pred.rho, dtype=float)[:, :, e] ** 2
      with np.errstate(invalid="ignore"):
        gap = np.where(rho2 < 1, 1 - rho2, np.nan)
      _, pmed, _ = _quartiles(gap)
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
  _tau_axis(low, result.tau)
  ax.set_xlabel("")
  ax.set_ylabel("1 - rate of the QRE-gap\nper iteration (log; up = faster)")
  ax.set_title(f"{_algorithm_title(result)}: empirical linear rate")
  ax.grid(True, which="major", alpha=0.3)
  _legend(ax, (_band_handle(),), fontsize="x-small", loc="upper left",
          bbox_to_anchor=(1.01, 1.0))
  low.set_ylim(-0.05, 1.05)
  low.set_ylabel("share of\ngames", fontsize="small")
  low.grid(True, alpha=0.3)
  low.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
  note = ("no fitted rate: fewer than 3 gap records above the rounding floor in "
          "the fitted tail (converged too fast, or blew up)")
  return _finish(fig, path, caption, (note,))


def plot_ne_gap(result, path, *, caption=None):
  """Final NE-gap against tau (median, interquartile band): how far from Nash.

  Gaps below :func:`display_floor` of the sweep's dtype (exact zeros included)
  are drawn at that floor.
  """
  fig, ax = _new_figure()
  labels = _eta_labels(result)
  dtype = _result_dtype(result)
  floor = display_floor(dtype)
  clipped = False
  for e in range(result.shape[2]):
    color = _color(e)
    vals, low = _clip_to_floor(result.ne_gap[:, :, e].astype(float), floor)
    clipped |= low
    lo, med, hi = _quartiles(vals)
    ax.plot(result.tau, med, color=color, lw=1.6, marker="o", ms=3,
            label=f"{labels[e]} (median)")
    _band(ax, result.tau, lo, hi, color)
  _tau_axis(ax, result.tau)
  ax.set_yscale("log")
  if clipped:
    _draw_floor(ax, floor)
  ax.set_ylabel("final NE-gap")
  ax.set_title(f"{_algorithm_title(result)}: distance of the final policy "
               "from Nash")
  ax.grid(True, which="major", alpha=0.3)
  _legend(ax, (_band_handle(),))
  return _finish(fig, path, caption,
                 (_floor_note(floor, dtype),) if clipped else ())


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
  fig, ax = _new_figure()
  dtype = _result_dtype(result)
  floor = display_floor(dtype)
  clipped = False
  picks = _pick_taus(result.tau, taus)
  for k, t in enumerate(picks):
    color = _color(k)
    traj, low = _clip_to_floor(
        result.qre_gap_trajectory[:, t, eta_index, :].astype(float), floor)
    clipped |= low
    lo, med, hi = _quartiles(traj)
    ax.plot(result.iteration, med, color=color, lw=1.6,
            label=f"tau={result.tau[t]:.3g} (median)")
    _band(ax, result.iteration, lo, hi, color)
  ax.set_yscale("log")
  if clipped:
    _draw_floor(ax, floor)
  ax.set_xlabel("iteration")
  ax.set_ylabel("QRE-gap")
  ax.set_title(f"{_algorithm_title(result)}: QRE-gap trajectories, "
               f"{_eta_labels(result)[eta_index]}")
  ax.grid(True, which="major", alpha=0.3)
  _legend(ax, (_band_handle(),))
  return _finish(fig, path, caption,
                 (_floor_note(floor, dtype),) if clipped else ())


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
  caption = _sweep_caption(result)
  out = {}
  seeded, result = result, result.merge_seeds()  # quantiles pool the seeds
  panels = {"converged_fraction": (plot_converged_fraction, seeded),
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


# --------------------------------------------------------------------------------
# The learning-dynamics atlas (jaxnpg.atlas): regime maps over (value, tau).

# Colours of the atlas regimes (jaxnpg.REGIMES order): unique fixed point,
# multiple fixed points, periodic, chaotic, undetermined.
REGIME_COLORS = (PALETTE[2], PALETTE[3], PALETTE[4], PALETTE[1], "#9A9A9A")
ATLAS_PLOTS = ("regimes", "exponent")


def _edges(x, log):
  """Cell edges around the centres ``x`` (geometric midpoints when ``log``)."""
  x = np.asarray(x, dtype=float)
  if x.size == 1:
    return (np.array([x[0] / 1.5, x[0] * 1.5]) if log
            else np.array([x[0] - 0.5, x[0] + 0.5]))
  if log:
    lx = np.log(x)
    mid = (lx[1:] + lx[:-1]) / 2
    return np.exp(np.concatenate([[2 * lx[0] - mid[0]], mid,
                                  [2 * lx[-1] - mid[-1]]]))
  mid = (x[1:] + x[:-1]) / 2
  return np.concatenate([[2 * x[0] - mid[0]], mid, [2 * x[-1] - mid[-1]]])


def _atlas_axes(ax, atlas, *, gamma_axis=True, labels=True):
  """Log tau axis, value axis (and Gamma = (n-1) rho on top for correlations)."""
  ax.set_yscale("log")
  if labels:
    name = ("payoff correlation rho" if atlas.option == "correlation"
            else atlas.option)
    ax.set_xlabel(name)
    ax.set_ylabel("tau = alpha / beta")
  n = atlas.num_agents
  if gamma_axis and atlas.option == "correlation" and n > 2:
    sec = ax.secondary_xaxis("top", functions=(lambda r: (n - 1) * r,
                                               lambda g: g / (n - 1)))
    sec.set_xlabel("Gamma = (n-1) rho", fontsize="small")
    sec.tick_params(labelsize="small")


def _draw_boundary(ax, atlas, boundary, eta_index, label=True):
  if boundary is None:
    return None
  from matplotlib import patheffects
  b = np.asarray(boundary, dtype=float)[:, eta_index]
  line, = ax.plot(atlas.values, b, color="black", lw=1.8, marker="o", ms=3.5,
                  path_effects=[patheffects.withStroke(linewidth=3.5,
                                                       foreground="white")],
                  label=("predicted stability boundary\n(principal QRE attracts "
                         "above it;\nmedian over games)") if label else None,
                  zorder=5)
  return line


def _atlas_caption(atlas, eta_index):
  a = atlas.attrs
  res = atlas.sweeps[0]
  eta = res.step_size[0, eta_index]
  step = (f"eta = {eta:g} (Galla & Farmer's beta; tau = alpha / beta)"
          if res.eta_rule == "constant"
          else f"eta = {res.eta[eta_index]:g} x paper rule")
  inits = a.get("num_inits")
  return (f"{a.get('family')} games {tuple(a.get('num_actions', ()))}, "
          f"{res.shape[0]} games per cell, {step}, "
          f"{inits or 1} start(s) per game, {a.get('num_iters')} averaged steps "
          f"after {a.get('burn_in')} burn-in, periods up to "
          f"{a.get('max_period')}, chaotic: exponent > max(0.01, 3 stderr), "
          f"multiple: >= 2 distinct converged limits (1e-3 apart), "
          f"{a.get('dtype')}, jaxnpg {a.get('jaxnpg')}")


def _regime_regions(ax, atlas, frac, eta_index, annotate=True):
  """Dominant regime per cell, coloured; the dominant fraction written in it."""
  from matplotlib.colors import ListedColormap
  xe = _edges(atlas.values, log=False)
  ye = _edges(atlas.tau, log=True)
  f = frac[:, :, eta_index, :]                                  # (R, T, 5)
  dom = np.argmax(f, axis=-1)
  cmap = ListedColormap(REGIME_COLORS)
  ax.pcolormesh(xe, ye, dom.T, cmap=cmap, vmin=-0.5,
                vmax=len(REGIME_COLORS) - 0.5, shading="flat")
  # Lighter where the dominant regime holds few of the games.
  share = np.max(f, axis=-1)
  ax.pcolormesh(xe, ye, share.T, cmap=ListedColormap([(1, 1, 1, 1)]),
                alpha=np.clip(0.75 * (1 - share.T), 0, 0.75), shading="flat")
  if annotate and f.shape[0] * f.shape[1] <= 160:
    for r in range(f.shape[0]):
      for t in range(f.shape[1]):
        ax.text(atlas.values[r], atlas.tau[t], f"{share[r, t]:.2f}"[1:]
                if share[r, t] < 1 else "1", ha="center", va="center",
                fontsize=5.5, color="white" if share[r, t] > 0.6 else "black")
  ax.set_xlim(xe[0], xe[-1])
  ax.set_ylim(ye[0], ye[-1])


def plot_regime_map(atlas, path, *, boundary=None, eta_index=0, caption=None):
  """The regime map of an atlas over (value, tau), with the fraction in each regime.

  Left: the dominant regime per cell (colour), drawn paler where it holds fewer
  of the games, with that fraction written in the cell. Right: one panel per
  regime, the fraction of games in it. With ``boundary`` (``(R, E)``, e.g.
  ``jaxnpg.sweeps.atlas.predicted_boundary``) the predicted stability boundary of the
  principal-branch QRE is drawn on every panel.
  """
  from matplotlib.colors import LinearSegmentedColormap
  from matplotlib.patches import Patch
  plt = _pyplot()
  frac = atlas.regime_fractions()
  names = atlas.regime_names
  fig = plt.figure(figsize=(11.5, 6.4), layout="constrained")
  grid = fig.add_gridspec(2, 4, width_ratios=(1.35, 1, 1, 1))
  ax = fig.add_subplot(grid[:, 0])
  _regime_regions(ax, atlas, frac, eta_index)
  _atlas_axes(ax, atlas)
  line = _draw_boundary(ax, atlas, boundary, eta_index)
  handles = [Patch(color=c, label=n) for c, n in zip(REGIME_COLORS, names)]
  if line is not None:
    handles.append(line)
  slot = fig.add_subplot(grid[1, 3])
  slot.axis("off")
  slot.legend(handles=handles, fontsize="x-small", loc="center",
              frameon=False)
  ax.set_title("dominant regime (paler: a smaller share;\nnumber: its fraction "
               "of games)", fontsize="small")
  xe = _edges(atlas.values, log=False)
  ye = _edges(atlas.tau, log=True)
  slots = [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2)]
  mesh = None
  for k, (row, col) in enumerate(slots):
    a2 = fig.add_subplot(grid[row, col])
    cmap = LinearSegmentedColormap.from_list(
        f"regime{k}", ["#FFFFFF", REGIME_COLORS[k]])
    mesh = a2.pcolormesh(xe, ye, frac[:, :, eta_index, k].T, vmin=0, vmax=1,
                         cmap=cmap, shading="flat")
    fig.colorbar(mesh, ax=a2, fraction=0.08, pad=0.02)
    _atlas_axes(a2, atlas, gamma_axis=False, labels=False)
    a2.tick_params(labelsize="x-small")
    _draw_boundary(a2, atlas, boundary, eta_index, label=False)
    a2.set_title(f"fraction: {names[k]}", fontsize="small")
  n = atlas.num_agents
  fig.suptitle(f"Independent NPG learning-dynamics atlas: {n} agents, actions "
               f"{atlas.num_actions}", fontsize="medium")
  note = _atlas_caption(atlas, eta_index)
  return _finish(fig, path, caption, (note,))


def plot_exponent_map(atlas, path, *, boundary=None, eta_index=0, caption=None):
  """The median largest Lyapunov exponent over games, per (value, tau) cell.

  Diverging colours centred on 0 (red: nearby trajectories separate, blue: they
  contract); with ``boundary`` the predicted stability boundary is drawn on it.
  """
  from matplotlib.colors import SymLogNorm
  fig, ax = _new_figure(figsize=(7.2, 5.2))
  med = atlas.median_exponent()[:, :, eta_index]              # (R, T)
  xe = _edges(atlas.values, log=False)
  ye = _edges(atlas.tau, log=True)
  finite = med[np.isfinite(med)]
  m = max(float(np.abs(finite).max()) if finite.size else 1.0, 0.1)
  lo, hi = -m, m
  # Symmetric log colours: the small positive exponents of chaos (~0.01-0.1)
  # stay visible beside strongly contracting fixed points (~ -1).
  mesh = ax.pcolormesh(xe, ye, med.T, cmap="RdBu_r", shading="flat",
                       norm=SymLogNorm(linthresh=0.01, linscale=0.6, vmin=lo,
                                       vmax=hi, base=10))
  fig.colorbar(mesh, ax=ax, label="median exponent per step (symlog)")
  if med.size <= 160:
    for r in range(med.shape[0]):
      for t in range(med.shape[1]):
        if np.isfinite(med[r, t]):
          ax.text(atlas.values[r], atlas.tau[t], f"{med[r, t]:.2g}",
                  ha="center", va="center", fontsize=5.5,
                  color="white" if abs(med[r, t]) > 0.3 * m else "black")
  _atlas_axes(ax, atlas)
  ax.set_xlim(xe[0], xe[-1])
  ax.set_ylim(ye[0], ye[-1])
  if _draw_boundary(ax, atlas, boundary, eta_index) is not None:
    ax.legend(fontsize="x-small", loc="lower right")
  ax.set_title(f"Median largest Lyapunov exponent: {atlas.num_agents} agents, "
               f"actions {atlas.num_actions}", fontsize="medium")
  return _finish(fig, path, caption, (_atlas_caption(atlas, eta_index),))


def plot_atlas_overview(atlases, path, *, boundaries=None, eta_index=0,
                        caption=None):
  """Dominant-regime maps of several atlases side by side (e.g. n = 2, 3, 4)."""
  from matplotlib.patches import Patch
  plt = _pyplot()
  k = len(atlases)
  fig, axes = plt.subplots(1, k, figsize=(3.9 * k + 2.2, 4.9),
                           layout="constrained", squeeze=False)
  line = None
  for i, atlas in enumerate(atlases):
    ax = axes[0, i]
    _regime_regions(ax, atlas, atlas.regime_fractions(), eta_index,
                    annotate=False)
    _atlas_axes(ax, atlas)
    b = None if boundaries is None else boundaries[i]
    line = _draw_boundary(ax, atlas, b, eta_index, label=True) or line
    ax.set_title(f"{atlas.num_agents} agents, actions {atlas.num_actions}",
                 fontsize="small")
  handles = [Patch(color=c, label=n) for c, n in
             zip(REGIME_COLORS, atlases[0].regime_names)]
  if line is not None:
    handles.append(line)
  fig.legend(handles=handles, fontsize="x-small", loc="outside right center",
             frameon=False)
  fig.suptitle("Where independent NPG (= EWA learning) settles, by payoff "
               "correlation and tau (dominant regime; paler: smaller share)",
               fontsize="medium")
  note = _atlas_caption(atlases[0], eta_index)
  note = note[note.index(" games per cell") - len(str(
      atlases[0].sweeps[0].shape[0])):]           # drop the first game's sizes
  return _finish(fig, path, caption, ("covariant games; " + note,))


def plot_atlas(atlas, out_dir, *, boundary=None, eta_index=0) -> dict:
  """Write the atlas plots (``ATLAS_PLOTS``) of one atlas into ``out_dir``.

  Returns:
    ``{name: path}``.
  """
  return {
      "regimes": plot_regime_map(atlas, os.path.join(out_dir, "regimes.png"),
                                 boundary=boundary, eta_index=eta_index),
      "exponent": plot_exponent_map(atlas, os.path.join(out_dir,
                                                        "exponent.png"),
                                    boundary=boundary, eta_index=eta_index),
  }
