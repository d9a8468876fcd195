"""The look every jaxnpg figure shares: palette, footers, log floors, legends.

Figures read finished results (arrays, stored sweeps), never live runs.
"""

from __future__ import annotations

import os

import numpy as np


def pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


# Okabe & Ito's colour-blind-safe hues that keep a WCAG contrast ratio >= 3
# against the white background (their yellow, orange and sky blue do not, and
# darkened they came too close to vermillion and blue), then purple and grey:
# every two colours at least 40 apart in CIELAB (Delta E 1976).
PALETTE = ("#000000", "#D55E00", "#0072B2", "#009E73", "#CC79A7", "#6A3D9A",
           "#7A7A7A")
LINESTYLES = ("-", "--", "-.", ":")


def line_color(i):
  return PALETTE[i % len(PALETTE)]


def line_style(i):
  """Solid for the first ``len(PALETTE)`` lines, then other styles (colours repeat)."""
  return LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]


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


def clip_to_floor(values, floor):
  """``(clipped, any_clipped)``: finite values below ``floor`` raised to it (NaN stays)."""
  v = np.asarray(values, dtype=float)
  low = np.isfinite(v) & (v < floor)
  return np.where(low, floor, v), bool(np.any(low))


def floor_note(floor, dtype):
  return (f"values below {floor:.0e} (exact 0 included) drawn at {floor:.0e}, "
          f"dotted line ({np.dtype(dtype).name} rounding floor)")


def draw_floor(ax, floor):
  ax.axhline(floor, color="0.45", ls=":", lw=1.0, zorder=0)



def footer(fig, text, *, fontsize=6.5):
  """Write ``text`` under the axes, wrapped by matplotlib to fit the figure.

  The layout engine's rectangle is raised above the footer's (wrapped) height.
  Returns the ``Text`` artist.
  """
  artist = fig.text(0.01, 0.006, text, fontsize=fontsize, color="0.25",
                    va="bottom", ha="left", wrap=True)
  ext = artist.get_window_extent(fig.canvas.get_renderer())
  height = (ext.height + 0.012 * fig.bbox.height) / fig.bbox.height
  engine = fig.get_layout_engine()
  if engine is not None:
    engine.set(rect=(0, height, 1, 1 - height))
  return artist


def close(fig):
  import matplotlib.pyplot as plt
  plt.close(fig)


def save(fig, path):
  """Write ``fig`` to ``path`` (a PNG; folders are created) and close it; the
  path. With ``path=None`` the figure itself, open (``jaxnpg.plot``)."""
  if path is None:
    return fig
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=130)
  close(fig)
  return path


def quartiles(x, axis=0):
  """``(q25, median, q75)`` ignoring NaN, without All-NaN warnings."""
  import warnings
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    return tuple(np.nanpercentile(x, q, axis=axis) for q in (25, 50, 75))


def band(ax, x, lo, hi, color):
  """An interquartile band: light fill with thin edges (overlaps stay readable)."""
  ax.fill_between(x, lo, hi, color=color, alpha=0.07, lw=0)
  for edge in (lo, hi):
    ax.plot(x, edge, color=color, lw=0.7, alpha=0.7)


def band_handle():
  from matplotlib.patches import Patch
  return Patch(facecolor=(0.5, 0.5, 0.5, 0.15), edgecolor="0.3", lw=0.7,
               label="band: interquartile range over games")


def legend(ax, extra=(), **kw):
  handles, labels = ax.get_legend_handles_labels()
  for h in extra:
    handles.append(h)
    labels.append(h.get_label())
  kw.setdefault("fontsize", "small")
  return ax.legend(handles, labels, **kw)


def tau_axis(ax, taus):
  taus = np.asarray(taus, dtype=float)
  if np.all(taus > 0):
    ax.set_xscale("log")
  elif np.any(taus > 0):
    ax.set_xscale("symlog", linthresh=float(np.min(taus[taus > 0])))
  ax.set_xlabel("tau (entropy weight)")


def new_figure(figsize=(7.2, 4.6), **kw):
  plt = pyplot()
  return plt.subplots(figsize=figsize, layout="constrained", **kw)


def finish(fig, path, caption, notes=()):
  """Write the footer (the caption and notes) and :func:`save`."""
  text = "; ".join(t for t in (caption, *notes) if t)
  if text:
    footer(fig, text)
  return save(fig, path)


ALGORITHM_TITLES = {"npg": "Independent NPG", "sampled_npg": "Sampled NPG",
                     "pg": "Independent PG", "optimistic_npg": "Optimistic NPG"}


def algorithm_title(name="npg", num_samples=None) -> str:
  """The title words for an algorithm name (``SweepResult.attrs["algorithm"]``).

  Example:
    >>> algorithm_title("sampled_npg", 32)
    'Sampled NPG (32 samples)'
  """
  name = name or "npg"
  title = ALGORITHM_TITLES.get(name, name)
  return f"{title} ({num_samples} samples)" if num_samples else title

