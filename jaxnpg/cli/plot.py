"""``jaxnpg plot``: the phase-diagram PNGs of a stored sweep or atlas.

A sweep folder gives the converged fraction (against tau and as a tau x eta
heatmap), the linear rate, the final NE-gap and the QRE-gap trajectories
(:func:`jaxnpg.viz.plot_sweep`); an atlas folder its regime and exponent maps
(:func:`jaxnpg.viz.plot_atlas`). ``--theory`` adds the library's predictions.
"""

from __future__ import annotations

import os
import sys
import types

import click

from jaxnpg import theory
from jaxnpg.cli import options
from jaxnpg.cli.base import CliError, Command, option, start_backend
from jaxnpg.core.validation import check_tau
from jaxnpg.sweeps.atlas import is_atlas, load_atlas, predicted_boundary
from jaxnpg.sweeps.store import load_sweep
from jaxnpg.viz import plot_atlas, plot_sweep

_EPILOG = """\b
examples:
  jaxnpg plot runs/sweep                      # PNGs in runs/sweep/plots/
  jaxnpg plot runs/sweep --theory             # + predicted rate and boundary
  jaxnpg plot runs/sweep --partial --out /tmp/look   # an unfinished sweep
"""


def _eta_index(index: int, size: int) -> None:
  if not 0 <= index < size:
    raise CliError(f"--eta-index must be in [0, {size}), got {index}.")


def _plot_atlas(args: types.SimpleNamespace) -> int:
  res = load_atlas(args.folder, allow_partial=args.partial)
  out = args.out or os.path.join(args.folder, "plots")
  _eta_index(args.eta_index, res.eta.size)
  if res.sweeps[0].attractor is None:
    raise CliError(f"the atlas in {args.folder!r} recorded no attractors (run "
                   "it with --lyapunov); nothing to map.")
  boundary = None
  if args.theory:
    try:
      boundary = predicted_boundary(res, max_games=args.theory_games)
    except (ValueError, TypeError) as e:
      raise CliError(f"--theory: {e}") from None
  for path in plot_atlas(res, out, boundary=boundary,
                         eta_index=args.eta_index).values():
    print(f"wrote {path}")
  return 0


@click.command(
    "plot", cls=Command, epilog=_EPILOG,
    short_help="phase-diagram PNGs of a finished sweep",
    help="Draw the phase diagrams of a sweep folder: converged fraction against "
    "tau and as a tau x eta heatmap, the empirical linear rate with Theorem "
    "3.3's rate, the final NE-gap, and QRE-gap trajectories (an atlas folder: "
    "its regime and exponent maps).")
@click.argument("folder", type=click.Path())
@option("--out", section="Options", default=None, metavar="FOLDER",
        type=click.Path(),
        help="folder for the PNGs (default: FOLDER/plots)")
@option("--taus", section="Options", type=options.TAUS, default=None,
        help="tau values of the trajectory plot (default: 4 spread over the "
        "sweep's taus)")
@option("--eta-index", section="Options", type=int, default=0,
        help="which eta of the sweep the trajectory plot shows (default: 0)")
@option("--partial", section="Options", is_flag=True,
        help="plot the finished chunks of an unfinished sweep (an atlas: the "
        "values started so far)")
@option("--theory", section="Options", is_flag=True,
        help="draw the predicted rate and boundary (local rate at the "
        "principal-branch QRE, jaxnpg.theory) beside the observed ones")
@option("--theory-games", section="Options", type=int, default=128,
        help="games used for the prediction (default: 128)")
def command(args: types.SimpleNamespace) -> int:
  """``jaxnpg plot FOLDER``."""
  if args.taus is not None:
    check_tau(args.taus, "taus")
  if args.theory:   # the predictions compute with JAX
    start_backend()
  if is_atlas(args.folder):
    return _plot_atlas(args)
  res = load_sweep(args.folder, allow_partial=args.partial)
  out = args.out or os.path.join(args.folder, "plots")
  _eta_index(args.eta_index, res.shape[2])
  predicted = None
  if args.theory:
    try:
      predicted = theory.predict_for_sweep(res, max_games=args.theory_games)
    except (ValueError, TypeError) as e:
      raise CliError(f"--theory: {e}") from None
  paths = plot_sweep(res, out, taus=args.taus, eta_index=args.eta_index,
                     predicted=predicted)
  for path in paths.values():
    print(f"wrote {path}")
  if "qre_trajectories" not in paths:
    print("(no trajectory plot: the sweep kept no trajectories; run it with "
          "--trajectory N)", file=sys.stderr)
  return 0
