"""``jaxnpg reproduce``: the paper's figures and their phase diagrams, or the
learning-dynamics atlas (:mod:`jaxnpg.paper.reproduce`)."""

from __future__ import annotations

import glob
import os
import types
from collections.abc import Callable
from typing import Any

import click

from jaxnpg.cli import options
from jaxnpg.cli.base import Command, Interrupted, option, setup_dtype, start_backend
from jaxnpg.cli.interrupt import interrupt_notice, resume_command, saved_note
from jaxnpg.paper.reproduce import FIGURES, reproduce, reproduce_atlas

_EPILOG = """\b
examples:
  jaxnpg reproduce --figure 1 --out runs/paper     # Fig. 1, its phase diagrams
  jaxnpg reproduce --quick --no-phases             # every figure, in seconds
  jaxnpg reproduce --atlas --quick --out runs/atlas-quick
"""


@click.command(
    "reproduce", cls=Command, epilog=_EPILOG,
    short_help="regenerate the paper's figures and their phase diagrams",
    help="Regenerate the figures of the paper's section IV (Fig. 1: random "
    "3-agent game; Fig. 2a/2b: network zero-sum game; Fig. 2c: Markov game), "
    "each as a PNG with its settings as JSON, then the phase diagrams that "
    "extend each figure to a whole family of games.")
@option("--figure", section="Options", default="all",
        help="1, 2a, 2b, 2c, a comma list, or all (default: all)")
@option("--quick", section="Options", is_flag=True,
        help="reduced sizes: seconds instead of minutes")
@option("--no-phases", section="Options", is_flag=True,
        help="only the paper's figures, no family sweeps")
@option("--pictures-only", section="Options", is_flag=True,
        help="keep only PNGs and JSON settings, not the sweeps' data")
@option("--atlas", section="Options", is_flag=True,
        help="instead of the paper's figures, the learning-dynamics atlas: "
        "(rho, tau) regime maps of covariant games for 2, 3 and 4 agents, into "
        "OUT/atlas (float32 unless --dtype)")
@option("--seed", section="Options", type=int, default=0,
        help="seed (default: 0)")
@options.dtype_option(None, "floating point precision (default: float64; "
                      "float32 with --atlas)")
@options.output_options("runs/paper", quiet_help="no progress bars")
def command(args: types.SimpleNamespace) -> int:
  """``jaxnpg reproduce``."""
  if args.atlas:
    setup_dtype(args.dtype or "float32")
    start_backend()
    out = _interruptible(args, lambda: reproduce_atlas(
        args.out, quick=args.quick, seed=args.seed, quiet=args.quiet,
        store=not args.pictures_only))
    print(f"wrote {len(out['files'])} files under "
          f"{os.path.join(args.out, 'atlas')} (numbers in atlas.json)")
    return 0
  setup_dtype(args.dtype or "float64")
  start_backend()
  figures = (tuple(FIGURES) if args.figure == "all"
             else tuple(f.strip() for f in args.figure.split(",")))
  out = _interruptible(args, lambda: reproduce(
      args.out, figures, quick=args.quick, phases=not args.no_phases,
      seed=args.seed, quiet=args.quiet, store=not args.pictures_only))
  print(f"wrote {len(out['files'])} pictures under {args.out} "
        f"(settings beside each figure as JSON)")
  return 0


def _interruptible(args: types.SimpleNamespace, work: Callable[[], Any]) -> Any:
  """``work()``, where Ctrl-C is answered at once, and then says what is kept
  and the command that resumes.

  Raises:
    Interrupted: on Ctrl-C.
  """
  try:
    with interrupt_notice(
        "jaxnpg reproduce: interrupt received; stopping when the computation "
        "in progress returns (finished chunks are saved)..."):
      return work()
  except KeyboardInterrupt:
    if args.pictures_only:
      raise Interrupted("--pictures-only keeps no sweep; run it again to "
                        "start over") from None
    raise Interrupted(f"{_kept(args)}. Resume with: "
                      f"{resume_command(args.argv)}") from None


def _kept(args: types.SimpleNamespace) -> str:
  """What the interrupted command's sweep folders hold, in one phrase."""
  if args.atlas:   # OUT/atlas/data/agents_<n>/<one sweep per rho>
    folders = sorted(glob.glob(os.path.join(args.out, "atlas", "data",
                                            "agents_*")))
  else:            # OUT/<figure or phase diagram>/... sweep folders
    folders = sorted(os.path.dirname(m) for m in glob.glob(
        os.path.join(args.out, "*", "manifest.json")))
  notes = [saved_note(f) for f in folders]
  return "; ".join(notes) if notes else f"no chunk is saved in {args.out} yet"
