"""The ``jaxnpg`` command line (also ``python -m jaxnpg``).

``jaxnpg run`` runs independent NPG on one game for several tau values and writes a
summary (JSON), the trajectories (NPZ) and a QRE-gap plot (PNG). Errors in the
arguments are reported as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

_DESCRIPTION = """\
Entropy-regularized independent natural policy gradient (NPG) in games.

Each agent updates  log pi_i <- (1 - eta*tau) log pi_i + eta * rbar_i  (normalized),
where rbar_i is its expected reward against the others' current policies and tau
the entropy weight. For large enough tau the iteration converges linearly to the
quantal response equilibrium (QRE); the QRE-gap measures the distance to it.
"""

_RUN_EPILOG = """\
examples:
  jaxnpg run                                   # the paper's random (3,4,5) game
  jaxnpg run --taus 0,0.05,0.1,1 --iters 20000 --out runs/demo
  jaxnpg run --actions 2,2,2,2 --eta 0.05 --dtype float32
  jaxnpg run --game-file game.nfg --taus 0.5,1
"""


class CliError(Exception):
  """A user-facing error: printed as one line, exit status 2."""


def parse_floats(text: str, name: str) -> list[float]:
  """Parse ``"0,0.1,1"`` or a log-spaced range ``"1e-3:1e2:64"`` (lo:hi:count)."""
  text = text.strip()
  try:
    if ":" in text:
      lo, hi, count = text.split(":")
      lo, hi, count = float(lo), float(hi), int(count)
      if lo <= 0 or hi <= 0 or count < 1:
        raise CliError(
            f"{name}: a range lo:hi:count needs lo, hi > 0 and count >= 1, got "
            f"{text!r}.")
      return [float(v) for v in np.geomspace(lo, hi, count)]
    values = [float(v) for v in text.split(",") if v.strip()]
  except ValueError:
    raise CliError(
        f"{name}: expected numbers like '0,0.1,1' or a range 'lo:hi:count', got "
        f"{text!r}.") from None
  if not values:
    raise CliError(f"{name}: the list is empty.")
  return values


def parse_ints(text: str, name: str) -> tuple[int, ...]:
  """Parse ``"3,4,5"`` into a tuple of positive integers."""
  try:
    values = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise CliError(f"{name}: expected integers like '3,4,5', got {text!r}.") from None
  if not values or any(v < 1 for v in values):
    raise CliError(f"{name}: expected positive integers like '3,4,5', got {text!r}.")
  return values


def eta_values(rule: str, taus, num_actions) -> list[float]:
  """Step sizes for each tau: ``paper`` (SPEC default) or a constant."""
  if rule == "paper":
    s = sum(num_actions)
    return [1.0 / (2.0 * (t + 2.0 * s)) for t in taus]
  try:
    eta = float(rule)
  except ValueError:
    raise CliError(
        f"--eta: expected 'paper' or a positive number, got {rule!r}.") from None
  if not eta > 0 or not math.isfinite(eta):
    raise CliError(f"--eta: the step size must be > 0, got {rule!r}.")
  return [eta] * len(taus)


# The progress bar lives in jaxnpg._progress (jaxnpg.sweep uses it too).
from jaxnpg._progress import Progress  # noqa: E402,F401


def _setup_dtype(dtype: str):
  import jax
  jax.config.update("jax_enable_x64", dtype == "float64")


def _load_game(args):
  """Return ``(game, description)`` from ``--family``/``--actions`` or ``--game-file``."""
  import jax
  import jaxnpg
  if args.game_file:
    if not os.path.exists(args.game_file):
      raise CliError(f"--game-file: no such file {args.game_file!r}.")
    from_gambit = getattr(jaxnpg, "from_gambit", None)
    if from_gambit is None:
      raise CliError("--game-file needs jaxnpg.from_gambit, not available here.")
    return from_gambit(args.game_file), f"game file {args.game_file}"
  actions = parse_ints(args.actions, "--actions")
  options = {}
  if getattr(args, "graph", None):
    options["graph"] = args.graph
  key = jax.random.key(args.seed)
  game = jaxnpg.make_game(args.family, key, actions, **options)
  return game, f"{args.family} game, actions {actions}, seed {args.seed}"


def _cmd_run(args) -> int:
  _setup_dtype(args.dtype)
  import jax
  import jax.numpy as jnp
  import jaxnpg
  from jaxnpg import _plots
  from jaxnpg._trajectories import run_pairs

  taus = parse_floats(args.taus, "--taus")
  if any(t < 0 for t in taus):
    raise CliError(f"--taus: tau must be >= 0, got {taus}.")
  if args.iters < 1:
    raise CliError(f"--iters must be >= 1, got {args.iters}.")
  game, where = _load_game(args)
  etas = eta_values(args.eta, taus, game.num_actions)
  init = jaxnpg.random_policy(jax.random.fold_in(jax.random.key(args.seed), 1),
                              game)
  record_every = args.record_every or max(1, args.iters // 2000)
  print(f"jaxnpg run: {where}; {len(taus)} tau values, {args.iters} iterations, "
        f"{game.dtype}, device {jax.devices()[0].platform}", file=sys.stderr)
  progress = Progress(args.iters, "iterations", quiet=args.quiet)
  start = time.perf_counter()
  traj = run_pairs(
      game, taus, etas, args.iters, init=init, record_every=record_every,
      algorithm=_algorithm(args), key=jax.random.key(args.seed + 1),
      on_chunk=lambda done: progress.update(
          done, "game-iterations/s",
          done * len(taus) / (time.perf_counter() - start)))
  qre, ne, ks = traj.qre_gap, traj.ne_gap, traj.iterations

  rates = np.asarray(jax.vmap(lambda g: jaxnpg.linear_rate(g, ks))(jnp.asarray(qre)))
  rows = []
  for i, (tau, eta) in enumerate(zip(taus, etas)):
    hit = np.nonzero(qre[i] <= args.tol)[0]
    rows.append({
        "tau": tau, "eta": eta,
        "final_qre_gap": float(qre[i, -1]), "final_ne_gap": float(ne[i, -1]),
        "iterations_to_tol": int(ks[hit[0]]) if hit.size else None,
        "linear_rate": None if np.isnan(rates[i]) else float(rates[i]),
    })
  sys.stderr.flush()
  _print_summary(rows, args.tol)

  os.makedirs(args.out, exist_ok=True)
  settings = {
      "game": where, "num_actions": list(game.num_actions), "seed": args.seed,
      "algorithm": args.algorithm, "taus": taus, "eta_rule": args.eta, "etas": etas, "iters": args.iters,
      "record_every": record_every, "tol": args.tol, "dtype": str(game.dtype),
      "device": str(jax.devices()[0]), "jaxnpg": jaxnpg.__version__,
      "jax": jax.__version__,
  }
  with open(os.path.join(args.out, "summary.json"), "w") as f:
    json.dump({"settings": settings, "results": rows}, f, indent=2)
  np.savez(os.path.join(args.out, "trajectories.npz"), iterations=ks,
           qre_gap=qre, ne_gap=ne, tau=np.asarray(taus), eta=np.asarray(etas))
  caption = (f"{where}; eta rule {args.eta}; random initial policy; "
             f"{args.dtype}; jaxnpg {jaxnpg.__version__}")
  png = _plots.plot_gap_curves(
      ks, {f"tau={t:g}": qre[i] for i, t in enumerate(taus)},
      os.path.join(args.out, "qre_gap.png"),
      title="Independent NPG: QRE-gap per tau", caption=caption)
  print(f"wrote {png}, summary.json and trajectories.npz in {args.out}")
  return 0


def _algorithm(args):
  """The algorithm instance named by ``--algorithm`` (and ``--samples``)."""
  import jaxnpg
  if args.algorithm == "sampled_npg":
    if args.samples < 1:
      raise CliError(f"--samples must be >= 1, got {args.samples}.")
    return jaxnpg.SampledNPG(num_samples=args.samples)
  return jaxnpg.ALGORITHMS[args.algorithm]()


_SWEEP_EPILOG = """\
examples:
  jaxnpg sweep --games 256 --taus 1e-2:1e2:16 --iters 1000 --out runs/small
  jaxnpg sweep --family random --actions 3,4,5 --games 4096 --taus 1e-3:1e2:64 \
      --etas paper:0.5,1,2 --iters 2000 --out runs/random345
  jaxnpg sweep --etas 0.01,0.02,0.05 --taus 0,0.1,1,10 --out runs/const-eta
  jaxnpg sweep --algorithm sampled_npg --samples 32 --seeds 5 --out runs/bandit
  jaxnpg plot runs/random345

--etas takes step sizes ('0.01,0.02'), the rule 'paper' (eta = 1/(2(tau + 2 sum
A_i)), the default) or multipliers of the rule ('paper:0.5,1,2', or a range
'paper:0.25:4:5'). Running the same command again resumes an interrupted sweep.
Multi-host: start the same command on every host with --coordinator HOST:PORT
--num-processes N --process-id I (or --distributed on SLURM/MPI/TPU clusters);
--out must be on a shared file system.
"""


def _sweep_etas(text: str):
  """``(etas, multipliers)`` for jaxnpg.sweep from the --etas text."""
  text = text.strip()
  if text == "paper":
    return "paper", None
  if text.startswith("paper:"):
    mult = parse_floats(text[len("paper:"):], "--etas multipliers")
    if any(m <= 0 or not math.isfinite(m) for m in mult):
      raise CliError(f"--etas: multipliers of the rule must be > 0, got {mult}.")
    return "paper", mult
  values = parse_floats(text, "--etas")
  if any(not v > 0 or not math.isfinite(v) for v in values):
    raise CliError(f"--etas: step sizes must be > 0, got {values}.")
  return values, None


def _parse_bytes(text):
  if text is None:
    return None
  units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
  t = text.strip().lower().rstrip("b")
  try:
    if t and t[-1] in units:
      return int(float(t[:-1]) * units[t[-1]])
    return int(float(t))
  except ValueError:
    raise CliError(f"--memory-budget: expected bytes like '2G' or '500M', got "
                   f"{text!r}.") from None


def _init_distributed(args):
  import jax
  if args.coordinator or args.num_processes or args.process_id is not None:
    if not (args.coordinator and args.num_processes and args.process_id is not None):
      raise CliError("multi-host needs all of --coordinator, --num-processes and "
                     "--process-id (or --distributed for auto-detection).")
    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes,
                               process_id=args.process_id)
  elif args.distributed:
    jax.distributed.initialize()


def _cmd_sweep(args) -> int:
  _init_distributed(args)
  _setup_dtype(args.dtype)
  import jax
  import jaxnpg

  taus = parse_floats(args.taus, "--taus")
  if any(t < 0 for t in taus):
    raise CliError(f"--taus: tau must be >= 0, got {taus}.")
  etas, multipliers = _sweep_etas(args.etas)
  if args.iters < 1:
    raise CliError(f"--iters must be >= 1, got {args.iters}.")
  options = {"graph": args.graph} if args.graph else {}
  kwargs = dict(taus=taus, etas=etas, eta_multipliers=multipliers,
                num_iters=args.iters, tol=args.tol,
                record_every=args.record_every or None,
                trajectory_points=args.trajectory, method=args.method,
                chunk_games=args.chunk_games,
                memory_budget=_parse_bytes(args.memory_budget), out=args.out,
                quiet=args.quiet, algorithm=_algorithm(args))
  if args.seeds is not None:
    if args.seeds < 1:
      raise CliError(f"--seeds must be >= 1, got {args.seeds}.")
    kwargs["num_seeds"] = args.seeds
  if args.game_file:
    game, where = _load_game(args)
    game = jax.tree_util.tree_map(lambda x: x[None], game)
    kwargs.update(game=game, init=args.init, seed=args.seed)
  else:
    where = (f"{args.family} games, actions {parse_ints(args.actions, '--actions')}"
             f", {args.games} games, seed {args.seed}")
    kwargs.update(family=args.family, num_actions=parse_ints(args.actions,
                                                             "--actions"),
                  num_games=args.games, seed=args.seed, init=args.init,
                  family_options=options)
  if args.games < 1:
    raise CliError(f"--games must be >= 1, got {args.games}.")
  print(f"jaxnpg sweep: {args.algorithm} on {where}; {len(taus)} tau x "
        f"{len(multipliers or ([1] if etas == 'paper' else etas))} eta, "
        f"{args.iters} iterations, {args.dtype}, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s); writing to {args.out}",
        file=sys.stderr)
  chunks = []
  res = jaxnpg.sweep(**kwargs, on_chunk=chunks.append)
  a = res.attrs
  skipped = sum(c["skipped"] for c in chunks)
  print(f"chunks: {a['num_chunks']} of {a['chunk_games']} games "
        f"({a['chunk_games'] * math.prod(res.shape[1:])} cells), "
        f"{skipped} already done and verified, method {a['method']}",
        file=sys.stderr)
  if a.get("game_iterations_per_second"):
    print(f"speed: {a['game_iterations_per_second']:.3g} game-iterations/s "
          f"(compile {a.get('compile_seconds', 0):.1f}s)", file=sys.stderr)
  frac = res.converged_fraction()
  if res.seed is not None:   # mean +- std over seeds
    spread = res.summary()["converged_fraction_std"]
    cell = lambda t, e: f"{frac[t, e]:.3f}+-{spread[t, e]:.3f}"
    width = 15
    print(f"converged fraction, mean +- std over {res.num_seeds} seeds")
  else:
    cell = lambda t, e: f"{frac[t, e]:.3f}"
    width = 11
  head = f"{'tau':>10} " + " ".join(f"{'conv@' + format(e, '.3g'):>{width}}"
                                     for e in res.eta[:6])
  print(head)
  print("-" * len(head))
  for t, tau in enumerate(res.tau):
    print(f"{tau:>10.4g} " + " ".join(f"{cell(t, e):>{width}}"
                                      for e in range(min(6, res.shape[2]))))
  print(f"status counts: {res.status_counts()}")
  print(f"wrote {args.out} (plot it with: jaxnpg plot {args.out})")
  return 0


def _cmd_plot(args) -> int:
  import jaxnpg
  from jaxnpg import _plots
  if not os.path.isdir(args.folder):
    raise CliError(f"no such sweep folder {args.folder!r}.")
  res = jaxnpg.load_sweep(args.folder, allow_partial=args.partial)
  out = args.out or os.path.join(args.folder, "plots")
  taus = parse_floats(args.taus, "--taus") if args.taus else None
  if not 0 <= args.eta_index < res.shape[2]:
    raise CliError(f"--eta-index must be in [0, {res.shape[2]}), got "
                   f"{args.eta_index}.")
  predicted = None
  if args.theory:
    from jaxnpg import theory
    try:
      predicted = theory.predict_for_sweep(res, max_games=args.theory_games)
    except (ValueError, TypeError, NotImplementedError) as e:
      raise CliError(f"--theory: {e}") from None
  paths = _plots.plot_sweep(res, out, taus=taus, eta_index=args.eta_index,
                            predicted=predicted)
  for name, path in paths.items():
    print(f"wrote {path}")
  if "qre_trajectories" not in paths:
    print("(no trajectory plot: the sweep kept no trajectories; run it with "
          "--trajectory N)", file=sys.stderr)
  return 0


def _cmd_reproduce(args) -> int:
  _setup_dtype(args.dtype)
  from jaxnpg import _reproduce
  figures = (tuple(_reproduce.FIGURES) if args.figure == "all"
             else tuple(f.strip() for f in args.figure.split(",")))
  out = _reproduce.reproduce(args.out, figures, quick=args.quick,
                             phases=not args.no_phases, seed=args.seed,
                             quiet=args.quiet, store=not args.pictures_only)
  print(f"wrote {len(out['files'])} pictures under {args.out} "
        f"(settings beside each figure as JSON)")
  return 0


def _print_summary(rows, tol):
  head = (f"{'tau':>9} {'eta':>9} {'QRE-gap':>10} {'NE-gap':>10} "
          f"{'iters to ' + format(tol, 'g'):>14} {'rate':>9}")
  print(head)
  print("-" * len(head))
  for r in rows:
    it = "not reached" if r["iterations_to_tol"] is None else r["iterations_to_tol"]
    rate = "-" if r["linear_rate"] is None else f"{r['linear_rate']:.6f}"
    print(f"{r['tau']:>9.4g} {r['eta']:>9.3g} {r['final_qre_gap']:>10.3e} "
          f"{r['final_ne_gap']:>10.3e} {it:>14} {rate:>9}")


def _add_game_args(p):
  import jaxnpg
  names = ", ".join(sorted(jaxnpg.families()))
  g = p.add_argument_group("game")
  g.add_argument("--family", default="random",
                 help=f"game family: {names} (default: random)")
  g.add_argument("--actions", default="3,4,5",
                 help="actions per agent, comma separated (default: 3,4,5)")
  g.add_argument("--graph", default=None,
                 help="graph for network families: ring, complete, ...")
  g.add_argument("--seed", type=int, default=0,
                 help="seed for the game and the initial policy (default: 0)")
  g.add_argument("--game-file", default=None,
                 help="read the game from a Gambit .nfg file instead")


def _add_algorithm_args(group):
  group.add_argument(
      "--algorithm", default="npg",
      choices=("npg", "sampled_npg", "pg", "optimistic_npg"),
      help="npg: exact NPG (default); sampled_npg: NPG from sampled rewards; "
      "pg: softmax policy gradient; optimistic_npg: predictive NPG")
  group.add_argument("--samples", type=int, default=64,
                     help="joint actions sampled per iteration by sampled_npg "
                     "(default: 64)")


def build_parser() -> argparse.ArgumentParser:
  """The argument parser of the ``jaxnpg`` command."""
  parser = argparse.ArgumentParser(
      prog="jaxnpg", description=_DESCRIPTION,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", metavar="COMMAND")
  sub.required = True

  p = sub.add_parser(
      "run", help="run NPG on one game for several tau; summary and plot",
      description="Run independent NPG on one game for several tau values, from "
      "one random initial policy; print a summary per tau and write "
      "summary.json, trajectories.npz and qre_gap.png to --out.",
      epilog=_RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  _add_game_args(p)
  a = p.add_argument_group("algorithm")
  a.add_argument("--taus", default="0,0.01,0.05,0.1,0.5,1,5",
                 help="entropy weights: a list '0,0.1,1' or a log range "
                 "'lo:hi:count' (default: 0,0.01,0.05,0.1,0.5,1,5)")
  a.add_argument("--eta", default="paper",
                 help="step size: 'paper' for 1/(2(tau + 2 sum A_i)) (SPEC "
                 "default) or a constant (default: paper)")
  _add_algorithm_args(a)
  a.add_argument("--iters", type=int, default=20000,
                 help="NPG iterations (default: 20000)")
  a.add_argument("--tol", type=float, default=1e-10,
                 help="QRE-gap tolerance for 'iterations to tol' (default: 1e-10)")
  a.add_argument("--record-every", type=int, default=0,
                 help="record the gaps every N iterations (default: about 2000 "
                 "records in all)")
  a.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                 help="floating point precision (default: float64)")
  o = p.add_argument_group("output")
  o.add_argument("--out", default="runs/run", help="output folder (default: runs/run)")
  o.add_argument("--quiet", action="store_true", help="no progress bar")
  p.set_defaults(func=_cmd_run)

  p = sub.add_parser(
      "reproduce", help="regenerate the paper's figures and their phase diagrams",
      description="Regenerate the figures of the paper's section IV (Fig. 1: "
      "random 3-agent game; Fig. 2a/2b: network zero-sum game; Fig. 2c: Markov "
      "game), each as a PNG with its settings as JSON, then the phase diagrams "
      "that extend each figure to a whole family of games.",
      formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--figure", default="all",
                 help="1, 2a, 2b, 2c, a comma list, or all (default: all)")
  p.add_argument("--quick", action="store_true",
                 help="reduced sizes: seconds instead of minutes")
  p.add_argument("--no-phases", action="store_true",
                 help="only the paper's figures, no family sweeps")
  p.add_argument("--pictures-only", action="store_true",
                 help="keep only PNGs and JSON settings, not the sweeps' data")
  p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
  p.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                 help="floating point precision (default: float64)")
  p.add_argument("--out", default="runs/paper",
                 help="output folder (default: runs/paper)")
  p.add_argument("--quiet", action="store_true", help="no progress bars")
  p.set_defaults(func=_cmd_reproduce)

  p = sub.add_parser(
      "sweep", help="phase sweep: many games x tau x eta, resumable",
      description="Run independent NPG on every (game, tau, eta) combination of a "
      "game family in compiled, sharded chunks; write each finished chunk and a "
      "manifest to --out (running the command again resumes) and print the "
      "converged fraction per tau.",
      epilog=_SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  _add_game_args(p)
  p.add_argument("--games", type=int, default=256,
                 help="number of games of the family (default: 256)")
  p.add_argument("--init", choices=("random", "uniform"), default="random",
                 help="initial policy of each game (default: random)")
  a = p.add_argument_group("algorithm")
  a.add_argument("--taus", default="1e-2:1e2:16",
                 help="entropy weights: '0,0.1,1' or a log range 'lo:hi:count' "
                 "(default: 1e-2:1e2:16)")
  a.add_argument("--etas", default="paper",
                 help="step sizes '0.01,0.02', the rule 'paper', or multipliers "
                 "of it 'paper:0.5,1,2' (default: paper)")
  _add_algorithm_args(a)
  a.add_argument("--seeds", type=int, default=None,
                 help="repetitions of a stochastic algorithm (sampled_npg) with "
                 "independent draws: adds a seed axis; the summary shows mean "
                 "+- std over seeds (default: one draw, no seed axis)")
  a.add_argument("--iters", type=int, default=1000,
                 help="NPG iterations per cell (default: 1000)")
  a.add_argument("--tol", type=float, default=None,
                 help="QRE-gap tolerance (default: 1e-10 in float64, 1e-5 in "
                 "float32)")
  a.add_argument("--record-every", type=int, default=0,
                 help="record the gaps every N iterations (default: about 200 "
                 "records)")
  a.add_argument("--trajectory", type=int, default=32,
                 help="keep N points of each cell's gap trajectory (0: none; "
                 "default: 32)")
  a.add_argument("--method", choices=("auto", "dense", "generic"), default="auto",
                 help="dense: batch-last kernel for small dense games; generic: "
                 "any game type (default: auto)")
  a.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                 help="floating point precision (default: float64)")
  r = p.add_argument_group("resources")
  r.add_argument("--chunk-games", type=int, default=None,
                 help="games per chunk (default: from the memory budget)")
  r.add_argument("--memory-budget", default=None,
                 help="memory a chunk may use per device, e.g. 2G (default: a "
                 "quarter of the device's memory)")
  r.add_argument("--distributed", action="store_true",
                 help="multi-host: jax.distributed.initialize() with cluster "
                 "auto-detection (SLURM, Open MPI, TPU)")
  r.add_argument("--coordinator", default=None,
                 help="multi-host: coordinator address HOST:PORT (process 0's)")
  r.add_argument("--num-processes", type=int, default=None,
                 help="multi-host: number of processes")
  r.add_argument("--process-id", type=int, default=None,
                 help="multi-host: this process's id, 0 .. N-1")
  o = p.add_argument_group("output")
  o.add_argument("--out", default="runs/sweep",
                 help="output folder (default: runs/sweep)")
  o.add_argument("--quiet", action="store_true", help="no progress bar")
  p.set_defaults(func=_cmd_sweep)

  p = sub.add_parser(
      "plot", help="phase-diagram PNGs of a finished sweep",
      description="Draw the phase diagrams of a sweep folder: converged fraction "
      "against tau and as a tau x eta heatmap, the empirical linear rate with "
      "Theorem 3.3's rate, the final NE-gap, and QRE-gap trajectories.")
  p.add_argument("folder", help="the sweep's output folder")
  p.add_argument("--out", default=None,
                 help="folder for the PNGs (default: FOLDER/plots)")
  p.add_argument("--taus", default=None,
                 help="tau values of the trajectory plot (default: 4 spread "
                 "over the sweep's taus)")
  p.add_argument("--eta-index", type=int, default=0,
                 help="which eta of the sweep the trajectory plot shows "
                 "(default: 0)")
  p.add_argument("--partial", action="store_true",
                 help="plot the finished chunks of an unfinished sweep")
  p.add_argument("--theory", action="store_true",
                 help="draw the predicted rate and boundary (local rate at the "
                 "principal-branch QRE, jaxnpg.theory) beside the observed ones")
  p.add_argument("--theory-games", type=int, default=128,
                 help="games used for the prediction (default: 128)")
  p.set_defaults(func=_cmd_plot)
  return parser


def main(argv=None) -> int:
  """Entry point of the ``jaxnpg`` console script."""
  parser = build_parser()
  args = parser.parse_args(argv)
  try:
    return args.func(args)
  except (CliError, ValueError) as e:
    print(f"jaxnpg {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("\njaxnpg: interrupted", file=sys.stderr)
    return 130
