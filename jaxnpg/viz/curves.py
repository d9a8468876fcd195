"""Gap trajectories of runs: one line per labelled curve (``jaxnpg run``, the paper's figures)."""

from __future__ import annotations

import numpy as np

from jaxnpg.viz.style import (
  clip_to_floor,
  display_floor,
  draw_floor,
  floor_note,
  footer,
  line_color,
  line_style,
  pyplot,
  save,
)


def plot_gap_curves(iterations, curves, path, *, ylabel="QRE-gap", title=None,
                    log=True, caption=None, dtype=None):
  """Gap against iteration, one line per labelled curve, written as a PNG.

  Args:
    iterations: ``(T,)`` iteration numbers shared by every curve.
    curves: mapping ``label -> (T,)`` values (e.g. ``"tau=0.1" -> qre_gap``).
    path: output ``.png`` path (folders are created), or None to return the
      open figure.
    ylabel, title: axis label and title.
    log: log-scale y axis. Values below :func:`display_floor` of ``dtype``
      (exact zeros included) are drawn at that floor (a dotted line), and the
      footer says so; NaN is not drawn.
    caption: small text under the axes (e.g. the settings), wrapped to fit.
    dtype: the dtype the gaps were computed in (default: that of the curves;
      float64 for Python lists).

  Returns:
    ``path`` (the figure with ``path=None``).
  """
  plt = pyplot()
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
      v, low = clip_to_floor(v, floor)
      clipped |= low
    ax.plot(k, v, label=label, color=line_color(idx), ls=line_style(idx), lw=1.6)
  if log:
    ax.set_yscale("log")
    if clipped:
      draw_floor(ax, floor)
  ax.set_xlabel("iteration")
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(True, which="major", alpha=0.3)
  # Outside the axes: it never covers a curve's tail.
  fig.legend(loc="outside right upper", fontsize="small")
  note = floor_note(floor, dtype) if log and clipped else None
  text = "; ".join(t for t in (caption, note) if t)
  if text:
    footer(fig, text)
  return save(fig, path)

