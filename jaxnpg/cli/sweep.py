"""``jaxnpg sweep``: a resumable phase sweep (many games x tau x eta), or an atlas.

The options become a :class:`jaxnpg.SweepConfig`, the object Python users build,
so the library checks every value (and the message names the option). The
layout (chunk size, memory budget) is laid out once before anything is printed,
so work that cannot fit is refused in one line too. With several
``--correlation`` values the command draws an atlas (:func:`jaxnpg.atlas`, one
sweep per value). Ctrl-C keeps the finished chunks and prints the command that
resumes.
"""

from __future__ import annotations

import errno
import pathlib
import sys
import types
from collections.abc import Callable
from typing import Any

import click
import jax

from jaxnpg.cli import games, options, report
from jaxnpg.cli.base import (
  CliError,
  Command,
  Interrupted,
  describe_os_error,
  option,
  setup_dtype,
  start_backend,
)
from jaxnpg.cli.interrupt import interrupt_notice, resume_command, saved_note
from jaxnpg.games.families import FAMILIES
from jaxnpg.loop.algorithms import SampledNPG
from jaxnpg.sweeps.atlas import atlas
from jaxnpg.sweeps.config import SweepConfig
from jaxnpg.sweeps.folder import SweepStoreError
from jaxnpg.sweeps.layout import lay_out
from jaxnpg.sweeps.plan import make_plan
from jaxnpg.sweeps.run import sweep
from jaxnpg.sweeps.store import check_out_path

_EPILOG = """\b
examples:
  jaxnpg sweep --games 256 --taus 1e-2:1e2:16 --iters 1000 --out runs/small
  jaxnpg sweep --family random --actions 3,4,5 --games 4096 --taus 1e-3:1e2:64 \\
      --etas paper:0.5,1,2 --iters 2000 --out runs/random345
  jaxnpg sweep --etas 0.01,0.02,0.05 --taus 0,0.1,1,10 --out runs/const-eta
  jaxnpg sweep --algorithm sampled_npg --samples 32 --seeds 5 --out runs/bandit
  jaxnpg sweep --family covariant --actions 3,3 --correlation -0.9:1:9 \\
      --taus 1e-2:1:12 --lyapunov --out runs/atlas
  jaxnpg plot runs/random345

--etas takes step sizes ('0.01,0.02'), the rule 'paper' (eta = 1/(2(tau + 2 sum
A_i)), the default) or multipliers of the rule ('paper:0.5,1,2', or a range
'paper:0.25:4:5'). Running the same command again resumes an interrupted sweep.

Multi-host: start the same command on every host with --coordinator HOST:PORT
--num-processes N --process-id I (or --distributed on SLURM/MPI/TPU clusters);
--out must be on a shared file system.
"""

_CORRELATION_HELP = (
    "covariant family: correlation rho of the agents' payoffs (default: 0); "
    "also a list '-0.5,0,0.5' or a LINEAR range 'lo:hi:count' (e.g. -0.9:1:9), "
    "which draws an atlas over rho (one resumable sweep per value)")


def _init_distributed(args: types.SimpleNamespace) -> None:
  """``jax.distributed.initialize`` for a multi-host sweep (before JAX starts)."""
  if args.coordinator or args.num_processes or args.process_id is not None:
    if not (args.coordinator and args.num_processes
            and args.process_id is not None):
      raise CliError("multi-host needs all of --coordinator, --num-processes "
                     "and --process-id (or --distributed for auto-detection).")
    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes,
                               process_id=args.process_id)
  elif args.distributed:
    jax.distributed.initialize()


def _fields(args: types.SimpleNamespace
            ) -> tuple[dict[str, Any], str, list[float] | None]:
  """``(SweepConfig fields, description, atlas values)`` of the options; the
  values are None for a plain sweep (the fields then hold its one correlation;
  an atlas's hold its first)."""
  family = FAMILIES.get(args.family)
  etas, multipliers = args.etas or options.parse_sweep_etas(
      (family and family.default_etas) or "paper")
  fields: dict[str, Any] = {
      "taus": args.taus, "etas": etas, "eta_multipliers": multipliers,
      "num_iters": args.iters, "tol": args.tol,
      "record_every": args.record_every or None,
      "trajectory_points": args.trajectory, "method": args.method,
      "algorithm": (SampledNPG(num_samples=args.samples)
                    if args.algorithm == "sampled_npg" else args.algorithm),
      "num_seeds": args.seeds, "lyapunov": args.lyapunov,
      "num_inits": args.inits, "burn_in": args.burn_in,
      "max_period": args.max_period, "init": args.init, "seed": args.seed,
      "dtype": args.dtype}
  if args.game_file:
    game = games.load_game_file(args.game_file)
    fields["game"] = jax.tree_util.tree_map(lambda x: x[None], game)
    return fields, f"game file {args.game_file}", None
  spec = games.family_spec(args, "sweep")
  where = (spec.description.replace(" game,", " games,", 1)
           + f", {args.games} games, seed {args.seed}")
  values = spec.options.get("correlation")
  values = values if isinstance(values, list) else None
  family_options = dict(spec.options)
  if values is not None:
    family_options["correlation"] = values[0]
  fields.update(family=spec.family, num_actions=spec.num_actions,
                num_games=args.games, family_options=family_options)
  return fields, where, values


def _checked(args: types.SimpleNamespace, fields: dict[str, Any],
             values: list[float] | None) -> SweepConfig:
  """The config, checked: the numbers' range in the dtype (first: the library
  would warn of their size), then by the library its fields, every atlas value
  and the layout (chunk size, memory)."""
  options.check_finite_in(fields["taus"], args.dtype, "--taus")
  options.check_finite_in(fields["eta_multipliers"] or (
      [] if fields["etas"] == "paper" else fields["etas"]), args.dtype, "--etas")
  config = SweepConfig(**fields)
  for value in (values or [])[1:]:
    config.replace(family_options={**config.family_options,
                                   "correlation": value})
  lay_out(make_plan(config, ("correlation",) if values else ()),
          memory_budget=args.memory_budget, chunk_games=args.chunk_games)
  if args.out:   # a file, or under one: before the header
    check_out_path(pathlib.Path(args.out))
  return config


def _interruptible(args: types.SimpleNamespace, what: str,
                   work: Callable[[], Any], chunks: list[dict] | None = None
                   ) -> Any:
  """``work()``, where Ctrl-C and a fault of the disk say what is saved and the
  command that resumes (``chunks``: those finished so far, if known).

  Raises:
    Interrupted: on Ctrl-C.
    CliError: an OSError after work began (a full disk), in one line.
  """
  resume = resume_command(args.argv)
  try:
    with interrupt_notice(
        f"jaxnpg sweep: interrupt received; stopping when the computation in "
        f"progress returns (finished {what} are saved)..."):
      return work()
  except KeyboardInterrupt:
    raise Interrupted(f"{saved_note(args.out)}. Resume with: {resume}"
                      ) from None
  except OSError as e:
    # A fault before any work (a bad --out) is one plain line; one during the
    # sweep (a full disk) also says what is saved and how to resume.
    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
    if not (chunks or full):
      raise
    note = "" if isinstance(e, SweepStoreError) else (   # it says what is kept
        (" (the disk is full: free some space)" if full else "")
        + f"; {saved_note(args.out)}.")
    raise CliError(f"{describe_os_error(e)}{note} Resume with: {resume}"
                   ) from None


def _header(args, config, where, values) -> str:
  what = (f"atlas over {len(values)} correlations, " if values else "")
  return (f"jaxnpg sweep: {what}{args.algorithm} on {where}; "
          f"{len(config.taus)} tau x {len(config.eta_axis)} eta, "
          f"{config.num_iters} iterations, {config.dtype}, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s); "
          f"writing to {args.out}")


def _run_atlas(args, config: SweepConfig, values: list[float]) -> int:
  base = {k: v for k, v in config.family_options.items() if k != "correlation"}
  res = _interruptible(args, "sweeps' chunks", lambda: atlas(
      str(config.family), num_actions=config.num_actions, values=values,
      option="correlation", family_options=base or None, taus=config.taus,
      etas=config.etas, eta_multipliers=config.eta_multipliers,
      num_games=config.num_games,
      num_inits=config.num_inits if config.lyapunov else None,
      num_iters=config.num_iters, burn_in=config.burn_in,
      max_period=config.max_period, seed=config.seed, out=args.out,
      quiet=args.quiet, lyapunov=config.lyapunov, init=config.init,
      tol=config.tol, record_every=config.record_every,
      trajectory_points=config.trajectory_points, method=config.method,
      algorithm=config.algorithm, num_seeds=config.num_seeds,
      dtype=config.dtype, chunk_games=args.chunk_games,
      memory_budget=args.memory_budget))
  report.print_atlas_report(res, args.out)
  return 0


@click.command(
    "sweep", cls=Command, epilog=_EPILOG,
    short_help="phase sweep: many games x tau x eta, resumable",
    help="Run independent NPG on every (game, tau, eta) combination of a game "
    "family in compiled, sharded chunks; write each finished chunk and a "
    "manifest to --out (running the command again resumes) and print the "
    "converged fraction per tau.")
@options.game_options(_CORRELATION_HELP)
@option("--games", section="Game", type=int, default=256,
        help="number of games of the family (default: 256)")
@option("--init", section="Game", type=click.Choice(("random", "uniform")),
        default="random", help="initial policy of each game (default: random)")
@option("--taus", section="Algorithm", type=options.TAUS, default="1e-2:1e2:16",
        help="entropy weights: '0,0.1,1' or a log range 'lo:hi:count' "
        "(default: 1e-2:1e2:16)")
@option("--etas", section="Algorithm", type=options.SWEEP_ETAS, default=None,
        help="step sizes '0.01,0.02', the rule 'paper', or multipliers of it "
        "'paper:0.5,1,2' (default: paper; 1 for the covariant family, Galla & "
        "Farmer's eta = beta = 1)")
@options.algorithm_options()
@option("--seeds", section="Algorithm", type=int, default=None,
        help="repetitions of a stochastic algorithm (sampled_npg) with "
        "independent draws: adds a seed axis; the summary shows mean +- std "
        "over seeds (default: one draw, no seed axis)")
@option("--iters", section="Algorithm", type=int, default=1000,
        help="NPG iterations per cell (default: 1000)")
@option("--lyapunov", section="Algorithm", is_flag=True,
        help="also record per cell the largest Lyapunov exponent, the attractor "
        "type and period (a second run with its tangent)")
@option("--inits", section="Algorithm", type=int, default=None,
        help="with --lyapunov: K starts per game; records the number of "
        "distinct fixed points they reach")
@option("--burn-in", section="Algorithm", type=int, default=None,
        help="with --lyapunov: steps before the exponent is averaged (default: "
        "--iters)")
@option("--max-period", section="Algorithm", type=int, default=16,
        help="with --lyapunov: longest period detected (default: 16)")
@option("--tol", section="Algorithm", type=float, default=None,
        help=options.tol_help())
@option("--record-every", section="Algorithm", type=int, default=0,
        help="record the gaps every N iterations (default 0: about 200 records)")
@option("--trajectory", section="Algorithm", type=int, default=32,
        help="keep N points of each cell's gap trajectory (0: none; default: 32)")
@option("--method", section="Algorithm",
        type=click.Choice(("auto", "dense", "generic")), default="auto",
        help="dense: the loop with batch axes last, for small dense games; "
        "generic: plain vmap, any game type (default: auto)")
@options.dtype_option("float64", "floating point precision (default: float64)")
@option("--chunk-games", section="Resources", type=int, default=None,
        help="games per chunk (default: from the memory budget)")
@option("--memory-budget", section="Resources", type=options.SIZE, default=None,
        help="memory a chunk may use per device, e.g. 2G (default: a quarter of "
        "the device's memory)")
@option("--distributed", section="Resources", is_flag=True,
        help="multi-host: jax.distributed.initialize() with cluster "
        "auto-detection (SLURM, Open MPI, TPU)")
@option("--coordinator", section="Resources", default=None, metavar="HOST:PORT",
        help="multi-host: coordinator address HOST:PORT (process 0's)")
@option("--num-processes", section="Resources", type=int, default=None,
        help="multi-host: number of processes")
@option("--process-id", section="Resources", type=int, default=None,
        help="multi-host: this process's id, 0 .. N-1")
@options.output_options("runs/sweep")
def command(args: types.SimpleNamespace) -> int:
  """``jaxnpg sweep``: build and check the config, run it, report."""
  _init_distributed(args)
  setup_dtype(args.dtype)
  start_backend()
  fields, where, values = _fields(args)
  config = _checked(args, fields, values)
  print(_header(args, config, where, values), file=sys.stderr)
  if values:
    return _run_atlas(args, config, values)
  chunks: list[dict] = []
  res = _interruptible(args, "chunks", lambda: sweep(
      config, out=args.out, quiet=args.quiet, on_chunk=chunks.append,
      chunk_games=args.chunk_games, memory_budget=args.memory_budget), chunks)
  report.print_sweep_report(res, chunks, args.out)
  return 0
