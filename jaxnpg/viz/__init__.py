"""Figures: gap curves of runs, phase diagrams of sweeps, regime maps of atlases.

Every function reads finished results (arrays, a :class:`jaxnpg.SweepResult`, a
stored sweep folder through :func:`jaxnpg.load_sweep`) and writes PNGs; none runs
a computation. Modules: :mod:`~jaxnpg.viz.style` (palette, footers, floors),
:mod:`~jaxnpg.viz.curves`, :mod:`~jaxnpg.viz.sweep_plots`,
:mod:`~jaxnpg.viz.atlas_plots`.
"""

from jaxnpg.viz.atlas_plots import (
                                    ATLAS_PLOTS,
                                    REGIME_COLORS,
                                    plot_atlas,
                                    plot_atlas_overview,
                                    plot_exponent_map,
                                    plot_regime_map,
)
from jaxnpg.viz.curves import plot_gap_curves
from jaxnpg.viz.style import PALETTE, algorithm_title, contrast_ratio, display_floor
from jaxnpg.viz.sweep_plots import (
                                    SWEEP_PLOTS,
                                    THEORY_PLOTS,
                                    boundary_from_rates,
                                    plot_converged_fraction,
                                    plot_converged_heatmap,
                                    plot_linear_rate,
                                    plot_ne_gap,
                                    plot_sweep,
                                    plot_sweep_trajectories,
                                    result_title,
                                    sweep_caption,
                                    tol_description,
                                    wilson_interval,
)

__all__ = [
    "ATLAS_PLOTS", "PALETTE", "REGIME_COLORS", "SWEEP_PLOTS", "THEORY_PLOTS",
    "algorithm_title", "boundary_from_rates", "contrast_ratio", "display_floor",
    "plot_atlas", "plot_atlas_overview", "plot_converged_fraction",
    "plot_converged_heatmap", "plot_exponent_map", "plot_gap_curves",
    "plot_linear_rate", "plot_ne_gap", "plot_regime_map", "plot_sweep",
    "plot_sweep_trajectories", "result_title", "sweep_caption",
    "tol_description", "wilson_interval",
]
