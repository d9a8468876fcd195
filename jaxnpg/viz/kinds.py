"""``jaxnpg.plot``: any finished result as a matplotlib figure, by kind.

The same pictures ``jaxnpg plot`` writes, returned open so a notebook or script
can show, change or save them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxnpg.loop.iterate import RunResult
from jaxnpg.sweeps.atlas import AtlasResult
from jaxnpg.sweeps.results import SweepResult
from jaxnpg.viz import atlas_plots, curves, sweep_plots

SWEEP_KINDS: dict[str, Callable[..., Any]] = {
    "converged_fraction": sweep_plots.plot_converged_fraction,
    "converged_heatmap": sweep_plots.plot_converged_heatmap,
    "linear_rate": sweep_plots.plot_linear_rate,
    "ne_gap": sweep_plots.plot_ne_gap,
    "qre_trajectories": sweep_plots.plot_sweep_trajectories,
}
ATLAS_KINDS: dict[str, Callable[..., Any]] = {
    "regimes": atlas_plots.plot_regime_map,
    "exponent": atlas_plots.plot_exponent_map,
}
RUN_KINDS = ("qre_gap", "ne_gap")


def plot(result, kind: str | None = None, **options: Any):
  """A figure of a sweep, an atlas or a run (matplotlib ``Figure``, left open).

  Args:
    result: a :class:`jaxnpg.SweepResult` (e.g. from :func:`jaxnpg.load_sweep`),
      a :class:`jaxnpg.AtlasResult`, or a :class:`jaxnpg.RunResult` of one run.
    kind: what to draw. A sweep: ``"converged_fraction"`` (the default),
      ``"converged_heatmap"``, ``"linear_rate"``, ``"ne_gap"``,
      ``"qre_trajectories"``. An atlas: ``"regimes"`` (default) or
      ``"exponent"``. A run: ``"qre_gap"`` (default) or ``"ne_gap"`` against
      the iteration.
    **options: passed to the panel (e.g. ``predicted=`` from
      ``jaxnpg.theory.predict_for_sweep`` for the sweep panels that draw
      predictions, ``eta_index=`` for the trajectories and atlas maps,
      ``caption=``).

  Returns:
    The ``matplotlib.figure.Figure``; ``fig.savefig(path)`` writes it.

  Raises:
    ValueError: an unknown kind for this result.

  Example:
    >>> import jaxnpg
    >>> res = jaxnpg.sweep("random", num_actions=(2, 2), num_games=4,
    ...                    taus=[0.1, 1.0], etas=[0.1], num_iters=100)
    >>> fig = jaxnpg.plot(res, "converged_fraction")
    >>> type(fig).__name__, fig.axes[0].get_xlabel()
    ('Figure', 'tau (entropy weight)')
  """
  if isinstance(result, SweepResult):
    kinds, default = SWEEP_KINDS, "converged_fraction"
    options.setdefault("caption", sweep_plots.sweep_caption(result))
    if kind not in (None, "converged_fraction"):
      result = result.merge_seeds()   # quantiles over games pool the seeds
  elif isinstance(result, AtlasResult):
    kinds, default = ATLAS_KINDS, "regimes"
  elif isinstance(result, RunResult):
    return _plot_run(result, kind or "qre_gap", **options)
  else:
    raise ValueError(f"`result` must be a SweepResult, AtlasResult or "
                     f"RunResult, got {type(result).__name__}.")
  kind = default if kind is None else kind
  if kind not in kinds:
    raise ValueError(f"Unknown kind {kind!r} for a {type(result).__name__}; "
                     f"choose one of {sorted(kinds)}.")
  return kinds[kind](result, None, **options)


def _plot_run(result, kind, **options):
  if kind not in RUN_KINDS:
    raise ValueError(f"Unknown kind {kind!r} for a RunResult; choose one of "
                     f"{list(RUN_KINDS)}.")
  values = getattr(result, kind)
  if values.ndim != 1:
    raise ValueError(f"`plot` draws one run; this RunResult holds a batch "
                     f"({values.shape[:-1]}); index it first (e.g. "
                     "jax.tree_util.tree_map(lambda x: x[0], res)).")
  label = "QRE-gap" if kind == "qre_gap" else "NE-gap"
  return curves.plot_gap_curves(result.iterations, {label: values}, None,
                                ylabel=label, **options)
