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
