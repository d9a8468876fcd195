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


class Progress:
  """A one-line progress indicator on stderr for work longer than a few seconds."""

  def __init__(self, total: int, unit: str, *, quiet: bool = False,
               delay: float = 2.0):
    self.total, self.unit, self.quiet, self.delay = total, unit, quiet, delay
    self.start = time.perf_counter()
    self.shown = False

  def update(self, done: int, rate_label: str = "", rate: float = 0.0):
    elapsed = time.perf_counter() - self.start
    if self.quiet or (elapsed < self.delay and done < self.total):
      return
    if done < self.total or self.shown:
      frac = done / max(self.total, 1)
      left = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
      bar = "#" * int(30 * frac)
      extra = f", {rate:.3g} {rate_label}" if rate_label else ""
      end = "\n" if done >= self.total else ""
      sys.stderr.write(f"\r[{bar:<30}] {done}/{self.total} {self.unit}{extra}, "
                       f"{elapsed:.1f}s elapsed, ~{left:.0f}s left{end}")
      sys.stderr.flush()
      self.shown = True


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
      "taus": taus, "eta_rule": args.eta, "etas": etas, "iters": args.iters,
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
