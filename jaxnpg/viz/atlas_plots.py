"""The learning-dynamics atlas (``jaxnpg.atlas``): regime maps over (value, tau)."""

from __future__ import annotations

import os

import numpy as np

from jaxnpg.viz.style import PALETTE, finish, new_figure, pyplot

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


def _regime_handles(names, fractions):
  """Legend patches of the regimes; one that no game reached says so."""
  from matplotlib.patches import Patch
  seen = np.zeros(len(names), bool)
  for f in fractions:
    seen |= np.asarray(f).reshape(-1, len(names)).max(axis=0) > 0
  return [Patch(color=c, label=n if s else f"{n} (in no cell)")
          for c, n, s in zip(REGIME_COLORS, names, seen)]


def plot_regime_map(atlas, path, *, boundary=None, eta_index=0, caption=None):
  """The regime map of an atlas over (value, tau), with the fraction in each regime.

  Left: the dominant regime per cell (colour), drawn paler where it holds fewer
  of the games, with that fraction written in the cell. Right: one panel per
  regime, the fraction of games in it. With ``boundary`` (``(R, E)``, e.g.
  ``jaxnpg.sweeps.atlas.predicted_boundary``) the predicted stability boundary of the
  principal-branch QRE is drawn on every panel.
  """
  from matplotlib.colors import LinearSegmentedColormap
  plt = pyplot()
  frac = atlas.regime_fractions()
  names = atlas.regime_names
  fig = plt.figure(figsize=(11.5, 6.4), layout="constrained")
  grid = fig.add_gridspec(2, 4, width_ratios=(1.35, 1, 1, 1))
  ax = fig.add_subplot(grid[:, 0])
  _regime_regions(ax, atlas, frac, eta_index)
  _atlas_axes(ax, atlas)
  line = _draw_boundary(ax, atlas, boundary, eta_index)
  handles = _regime_handles(names, [frac])
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
  return finish(fig, path, caption, (note,))


def plot_exponent_map(atlas, path, *, boundary=None, eta_index=0, caption=None):
  """The median largest Lyapunov exponent over games, per (value, tau) cell.

  Diverging colours centred on 0 (red: nearby trajectories separate, blue: they
  contract); with ``boundary`` the predicted stability boundary is drawn on it.
  """
  from matplotlib.colors import SymLogNorm
  fig, ax = new_figure(figsize=(7.2, 5.2))
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
    # Below the axes: inside, it covered cells (and their numbers).
    ax.legend(fontsize="x-small", loc="upper center", frameon=False,
              bbox_to_anchor=(0.5, -0.12))
  ax.set_title(f"Median largest Lyapunov exponent: {atlas.num_agents} agents, "
               f"actions {atlas.num_actions}", fontsize="medium")
  return finish(fig, path, caption, (_atlas_caption(atlas, eta_index),))


def plot_atlas_overview(atlases, path, *, boundaries=None, eta_index=0,
                        caption=None):
  """Dominant-regime maps of several atlases side by side (e.g. n = 2, 3, 4)."""
  plt = pyplot()
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
  handles = _regime_handles(atlases[0].regime_names,
                            [a.regime_fractions() for a in atlases])
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
  return finish(fig, path, caption, ("covariant games; " + note,))


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

