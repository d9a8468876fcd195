"""``jaxnpg run``: NPG on one game for several tau, from one random initial policy.

Prints a table (one row per tau) and writes ``summary.json``, ``trajectories.npz``
and ``qre_gap.png`` to ``--out``. The trajectories come from
:func:`jaxnpg.loop.trajectories.run_pairs`, which carries each algorithm's state
from chunk to chunk (so the result does not depend on the chunking); the
arguments are checked by the library's own rules before any work or output.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import types

import click
import jax
import numpy as np

from jaxnpg import _version
from jaxnpg.cli import games, options, report
from jaxnpg.cli.base import (
  CliError,
  Command,
  option,
  os_reason,
  setup_dtype,
  start_backend,
)
from jaxnpg.core.policy import random_policy
from jaxnpg.core.step_sizes import paper_eta
from jaxnpg.core.validation import check_eta, check_positive_int, check_tau, check_tol
from jaxnpg.loop.algorithms import Algorithm, SampledNPG, get_algorithm
from jaxnpg.loop.trajectories import Trajectories, run_pairs
from jaxnpg.sweeps.progress import Progress
from jaxnpg.sweeps.store import MANIFEST
from jaxnpg.viz import algorithm_title, plot_gap_curves

_EPILOG = """\b
examples:
  jaxnpg run                                  # the paper's random (3,4,5) game
  jaxnpg run --taus 0,0.05,0.1,1 --iters 20000 --out runs/demo
  jaxnpg run --actions 2,2,2,2 --eta 0.05 --dtype float32 --out runs/four
  jaxnpg run --game-file game.nfg --taus 0.5,1 --out runs/gambit
  jaxnpg run --family network_zero_sum --out runs/fig2ab  # Fig. 2a/2b: ring of 5
  jaxnpg run --family markov --taus 0.05,0.1,0.2,0.5,1,2 --iters 800 \\
      --out runs/fig2c                                     # Fig. 2c: 5 states
"""

_FILES = ("summary.json", "trajectories.npz", "qre_gap.png")
_SEEDS = 2**32


def prepare_out(path: str) -> None:
  """Create the output folder of ``run`` and prove it writable, before any work.

  Refuses a sweep folder (``manifest.json``), a path that is a file or lies under
  one, and folders that cannot be created or written (probed with a temporary
  file); every refusal is one line.

  Raises:
    CliError: naming ``--out``, the path and the reason.
  """
  if os.path.exists(os.path.join(path, MANIFEST)):
    raise CliError(
        f"--out: {path!r} holds a sweep ({MANIFEST}); jaxnpg run would write "
        "its files into it. Pick another folder.")
  if os.path.exists(path) and not os.path.isdir(path):
    raise CliError(f"--out: {path!r} exists and is not a folder.")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise CliError(
        f"--out: cannot create the folder {path!r}: {os_reason(e)}.") from None
  try:
    fd, probe = tempfile.mkstemp(prefix=".jaxnpg-write-test-", dir=path)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise CliError(
        f"--out: cannot write in the folder {path!r}: {os_reason(e)}.") from None
  for name in _FILES:
    target = os.path.join(path, name)
    if os.path.isdir(target):
      raise CliError(f"--out: {target!r} is a folder; jaxnpg run writes a file "
                     "there. Pick another folder.")
    if os.path.exists(target) and not os.access(target, os.W_OK):
      raise CliError(f"--out: cannot overwrite {target!r} (permission denied).")


def _checked(args: types.SimpleNamespace) -> tuple[int, Algorithm]:
  """The library's checks of run's numbers (``jaxnpg.run``'s rules, and
  ``SweepConfig``'s for a seed and for records that fit the iterations), made
  before any work; returns ``(record_every, algorithm)``."""
  check_tau(args.taus, "taus")
  options.check_finite_in(args.taus, args.dtype, "--taus")
  check_positive_int(args.iters, "num_iters")
  record_every = args.record_every or max(1, args.iters // 2000)
  check_positive_int(record_every, "record_every")
  if record_every > args.iters:
    raise CliError(f"--record-every={record_every} exceeds --iters={args.iters}.")
  check_tol(args.tol)
  if not 0 <= args.seed < _SEEDS:
    raise CliError(f"--seed must be an integer in [0, 2**32), got {args.seed}.")
  if args.eta != "paper":
    check_eta(args.eta, "eta")
    options.check_finite_in([args.eta], args.dtype, "--eta")
  algorithm = (SampledNPG(num_samples=args.samples)
               if args.algorithm == "sampled_npg"
               else get_algorithm(args.algorithm))
  return record_every, algorithm


@click.command(
    "run", cls=Command, epilog=_EPILOG,
    short_help="run NPG on one game for several tau; summary and plot",
    help="Run independent NPG on one game for several tau values, from one "
    "random initial policy; print a summary per tau and write summary.json, "
    "trajectories.npz and qre_gap.png to --out.")
@options.game_options(
    "covariant family: correlation rho of the agents' payoffs (default: 0)")
@option("--taus", section="Algorithm", type=options.TAUS,
        default="0,0.01,0.05,0.1,0.5,1,5",
        help="entropy weights: a list '0,0.1,1' or a log range 'lo:hi:count' "
        "(default: 0,0.01,0.05,0.1,0.5,1,5)")
@option("--eta", section="Algorithm", type=options.ETA, default="paper",
        help="step size: 'paper' for the paper's rule 1/(2(tau + 2 sum A_i)), "
        "times (1 - gamma) for a Markov game (see help(jaxnpg.paper_eta)), or a "
        "constant (default: paper)")
@options.algorithm_options()
@option("--iters", section="Algorithm", type=int, default=20000,
        help="NPG iterations (default: 20000)")
@option("--tol", section="Algorithm", type=float, default=None,
        help=options.tol_help("QRE-gap tolerance for 'iterations to tol'"))
@option("--record-every", section="Algorithm", type=int, default=0,
        help="record the gaps every N iterations (default 0: about 2000 records "
        "in all)")
@options.dtype_option("float64", "floating point precision (default: float64)")
@options.output_options("runs/run")
def command(args: types.SimpleNamespace) -> int:
  """``jaxnpg run``: check, run, report, write."""
  setup_dtype(args.dtype)
  platform = start_backend()
  record_every, algorithm = _checked(args)
  game, where = games.load_game(args)
  taus = list(args.taus)
  etas = ([float(e) for e in np.asarray(paper_eta(np.asarray(taus), game))]
          if args.eta == "paper" else [float(args.eta)] * len(taus))
  prepare_out(args.out)
  init = random_policy(jax.random.fold_in(jax.random.key(args.seed), 1), game)
  print(f"jaxnpg run: {where}; {len(taus)} tau values, {args.iters} iterations, "
        f"{game.dtype}, device {platform}", file=sys.stderr)
  with Progress(args.iters, "iterations", quiet=args.quiet,
                waiting="compiling...") as progress:
    traj = run_pairs(
        game, taus, etas, args.iters, init=init, record_every=record_every,
        algorithm=algorithm, key=jax.random.key(args.seed + 1), tol=args.tol,
        on_chunk=lambda done: progress.update(done, "game-iterations/s",
                                              per_unit=len(taus)))
  rows = _rows(traj, taus, etas)
  sys.stderr.flush()
  report.print_run_summary(rows)
  settings = {
      "game": where, "num_actions": list(game.num_actions), "seed": args.seed,
      "algorithm": args.algorithm, "taus": taus, "eta_rule": str(args.eta),
      "etas": etas, "iters": args.iters, "record_every": record_every,
      "tol": args.tol, "dtype": str(game.dtype), "device": str(jax.devices()[0]),
      "jaxnpg": _version.__version__, "jax": jax.__version__,
  }
  with open(os.path.join(args.out, "summary.json"), "w") as f:
    json.dump({"settings": settings, "results": rows}, f, indent=2)
  np.savez(os.path.join(args.out, "trajectories.npz"),
           iterations=traj.iterations, qre_gap=traj.qre_gap,
           ne_gap=traj.ne_gap, tau=np.asarray(taus), eta=np.asarray(etas))
  png = _plot(args, traj, taus, game, where)
  print(f"wrote {png}, summary.json and trajectories.npz in {args.out}")
  return 0


def _rows(traj: Trajectories, taus: list[float], etas: list[float]
          ) -> list[dict]:
  """One summary row per tau (the table and ``summary.json``); ``tol`` and
  ``rounding_floor`` hold every agent's (the verdict asks each agent to meet its
  own)."""
  status, tol, floor, hits, rates = (np.asarray(x) for x in (
      traj.status, traj.tol, traj.floor, traj.iterations_to_tol,
      traj.linear_rate))
  rows = []
  for i, (tau, eta) in enumerate(zip(taus, etas)):
    hit, rate = int(hits[i]), float(rates[i])
    rows.append({
        "tau": tau, "eta": eta, "tol": np.atleast_1d(tol[i]).tolist(),
        "final_qre_gap": float(traj.qre_gap[i, -1]),
        "final_ne_gap": float(traj.ne_gap[i, -1]),
        "iterations_to_tol": hit if hit >= 0 else None,
        "linear_rate": rate if math.isfinite(rate) else None,
        "status": report.status_label(int(status[i])),
        "rounding_floor": np.atleast_1d(floor[i]).tolist(),
    })
  return rows


def _plot(args, traj, taus, game, where) -> str:
  """``qre_gap.png``: the QRE-gap per tau against the iteration."""
  markov = float(np.max(game.step_scale)) != 1.0   # eta_bar = eta / (1 - gamma)
  eta_text = (f"paper rule {'(1 - gamma)' if markov else '1'}/(2(tau + 2 sum A_i))"
              if args.eta == "paper" else f"eta {args.eta:g}")
  caption = (f"{where}; {eta_text}; random initial policy; "
             f"{args.dtype}; jaxnpg {_version.__version__}")
  title = algorithm_title(
      args.algorithm, args.samples if args.algorithm == "sampled_npg" else None)
  return plot_gap_curves(
      traj.iterations, {f"tau={t:g}": traj.qre_gap[i] for i, t in enumerate(taus)},
      os.path.join(args.out, "qre_gap.png"), ylabel=game.qre_gap_label,
      title=f"{title}: {game.qre_gap_label} per tau", caption=caption,
      dtype=game.dtype)
