"""The ``jaxnpg`` command line (also ``python -m jaxnpg``).

``jaxnpg run`` runs independent NPG on one game for several tau values and writes a
summary (JSON), the trajectories (NPZ) and a QRE-gap plot (PNG). Errors in the
arguments are reported as one line, not a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import pathlib
import shlex
import signal
import socket
import sys
import tempfile
import threading
import time

import jax
import numpy as np

from jaxnpg import _version
from jaxnpg.sweeps import atlas as _atlas
from jaxnpg.games import interop as _interop
from jaxnpg import viz as _plots
from jaxnpg.paper import reproduce as _reproduce
from jaxnpg.sweeps import store as _store
from jaxnpg import theory
from jaxnpg.loop.algorithms import ALGORITHMS, SampledNPG
from jaxnpg.sweeps.atlas import atlas, load_atlas
from jaxnpg.games.families import FAMILIES, families, make_game
from jaxnpg.core.policy import random_policy
from jaxnpg.sweeps.progress import Progress, close_all  # noqa: F401 (the bar; sweep's too)
from jaxnpg.loop.status import STATUS_NAMES
from jaxnpg.core.step_sizes import paper_eta
from jaxnpg.sweeps.store import load_sweep
from jaxnpg.sweeps.run import sweep
from jaxnpg.core.tolerance import GAP_RTOL
from jaxnpg.loop.trajectories import run_pairs

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
  jaxnpg run --family network_zero_sum          # Fig. 2a/2b: ring of 5, 10 actions
  jaxnpg run --family markov --taus 0.05,0.1,0.2,0.5,1,2 --iters 800   # Fig. 2c
"""


class CliError(Exception):
  """A user-facing error: printed as one line, exit status 2."""


class _UsageError(Exception):
  """An argparse error (unknown option, bad int, ...): one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
  """argparse, but an error is one line (no usage block) and no ``SystemExit``."""

  def error(self, message):
    raise _UsageError(f"{self.prog}: error: {message} (see: {self.prog} --help)")

  def parse_known_args(self, args=None, namespace=None):
    if args is not None:   # "--correlation -0.9:1:9" is a value, not an option
      args = _join_negative_values(list(args))
    return super().parse_known_args(args, namespace)


def parse_floats(text: str, name: str) -> list[float]:
  """Parse ``"0,0.1,1"`` or a log-spaced range ``"1e-3:1e2:64"`` (lo:hi:count)."""
  text = text.strip()
  try:
    if ":" in text:
      lo, hi, count = text.split(":")
      lo, hi, count = float(lo), float(hi), int(count)
      if not (0 < lo < math.inf and 0 < hi < math.inf) or count < 1:
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
  bad = [v for v in values if not math.isfinite(v)]
  if bad:
    raise CliError(f"{name}: values must be finite numbers, got {bad[0]} in "
                   f"{text!r}.")
  return values


def parse_linear(text: str, name: str) -> list[float]:
  """Parse ``"0.5"``, ``"-0.5,0,0.5"`` or a LINEAR range ``"-0.9:1:9"`` (lo:hi:count).

  Unlike :func:`parse_floats` (log-spaced ranges, for ``--taus``), the range is
  ``numpy.linspace(lo, hi, count)``, so it may hold negative values.
  """
  text = text.strip()
  if ":" in text:
    try:
      lo, hi, count = text.split(":")
      lo, hi, count = float(lo), float(hi), int(count)
    except ValueError:
      raise CliError(f"{name}: expected a value, a list '-0.5,0,0.5' or a linear "
                     f"range 'lo:hi:count', got {text!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or count < 1:
      raise CliError(f"{name}: a range lo:hi:count needs finite lo, hi and "
                     f"count >= 1, got {text!r}.")
    return [float(v) for v in np.linspace(lo, hi, count)]
  return parse_floats(text, name)


def parse_taus(text: str) -> list[float]:
  """``--taus``: finite entropy weights ``>= 0``."""
  taus = parse_floats(text, "--taus")
  if any(t < 0 for t in taus):
    raise CliError(f"--taus: tau must be >= 0, got {taus}.")
  return taus


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
  """Step sizes for each tau: ``paper`` (SPEC default, ``paper_eta``) or a
  constant."""
  if rule == "paper":
    return [float(paper_eta(t, tuple(num_actions))) for t in taus]
  try:
    eta = float(rule)
  except ValueError:
    raise CliError(
        f"--eta: expected 'paper' or a positive number, got {rule!r}.") from None
  if not eta > 0 or not math.isfinite(eta):
    raise CliError(f"--eta: the step size must be > 0, got {rule!r}.")
  return [eta] * len(taus)



def _setup_dtype(dtype: str):
  jax.config.update("jax_enable_x64", dtype == "float64")


def _check_int(value, name: str, *, low: int = 1, high: int | None = None,
               note: str = ""):
  """``value`` (an int option) must lie in ``[low, high)``."""
  if value is None:
    return
  if value < low or (high is not None and value >= high):
    bound = f">= {low}" if high is None else f"in [{low}, {high})"
    raise CliError(f"{name} must be {bound}{note}, got {value}.")


def _check_tol(tol):
  if tol is not None and not (0 < tol < math.inf):
    raise CliError(f"--tol must be a finite number > 0, got {tol}.")


def _check_common(args):
  """Checks shared by run and sweep, before any work or output."""
  _check_int(args.iters, "--iters")
  _check_int(args.record_every, "--record-every", low=0,
             note=" (0: automatic)")
  _check_int(args.seed, "--seed", low=0, high=1 << 32)
  _check_int(args.samples, "--samples")
  _check_tol(args.tol)


def _family_spec(args):
  """``(family, num_actions, options, description)`` from the game options.

  Network families default to the paper's Fig. 2 game (a ring of 5 agents with 10
  actions each), the Markov family to Fig. 2c's (3 agents x 5 actions, 5 states,
  discount 0.9); ``--agents N`` repeats a single ``--actions A`` N times.
  """
  name = args.family
  if name not in FAMILIES:
    raise CliError(f"--family: Unknown game family {name!r}; choose one of "
                   f"{', '.join(sorted(FAMILIES))}.")
  spec = FAMILIES[name]
  defaults = dict(spec.defaults or {})
  correlation = getattr(args, "correlation", None)
  if correlation is not None:
    correlation = parse_linear(correlation, "--correlation")
    if len(correlation) == 1:
      correlation = correlation[0]
    elif not getattr(args, "structure_ok", False):
      raise CliError(f"--correlation: {args.command} takes one value, got "
                     f"{len(correlation)}; jaxnpg sweep takes a list (an atlas).")
  given = {"graph": args.graph, "num_states": args.states,
           "discount": args.discount, "correlation": correlation}
  flags = {"graph": "--graph", "num_states": "--states",
           "discount": "--discount", "correlation": "--correlation"}
  for key, value in given.items():
    if value is not None and key not in spec.options:
      takes = [flags[k] for k in spec.options if k in flags]
      raise CliError(
          f"{flags[key]} does not apply to the {name!r} family"
          + (f" (it takes {', '.join(takes)})." if takes else "."))
  _check_int(args.agents, "--agents")
  _check_int(args.states, "--states")
  if args.discount is not None and not 0 <= args.discount < 1:
    raise CliError(f"--discount must be in [0, 1), got {args.discount}.")
  if given["correlation"] is not None and not all(
      math.isfinite(v) for v in np.atleast_1d(given["correlation"])):
    raise CliError(f"--correlation must be finite, got {given['correlation']}.")
  default_actions = tuple(spec.default_actions or (3, 4, 5))
  if args.actions is not None:
    actions = parse_ints(args.actions, "--actions")
  elif args.agents is not None and len(set(default_actions)) != 1:
    raise CliError(
        f"--agents {args.agents}: also give the actions per agent (--actions A); "
        f"the {name!r} family's default {default_actions} is not one size.")
  else:
    actions = default_actions[:1] if args.agents is not None else default_actions
  agents = args.agents
  if (agents is None and args.actions is not None and len(actions) == 1
      and spec.default_actions and len(set(spec.default_actions)) == 1):
    agents = len(spec.default_actions)   # '--actions 10': 10 each, default agents
  if agents is not None:
    if len(actions) == 1:
      actions = actions * agents
    elif len(actions) != agents:
      raise CliError(
          f"--agents {args.agents} but --actions lists {len(actions)} agents "
          f"({args.actions}); give one number of actions per agent, or one "
          "for all.")
  options = {k: v for k, v in given.items() if v is not None}
  options = {**defaults, **options}
  graph = options.get("graph")
  if graph == "ring" and len(actions) < 3:
    raise CliError(
        f"a ring needs at least 3 agents, got {len(actions)} (--agents N, or "
        f"--actions with one entry per agent).")
  parts = [f"{name} game"]
  if graph is not None:
    parts.append(f"{graph} graph of {len(actions)} agents")
  parts.append(f"actions {actions}")
  if "num_states" in options:
    parts.append(f"{options['num_states']} states")
  if "discount" in options:
    parts.append(f"discount {options['discount']:g}")
  if "correlation" in options:
    rho = np.atleast_1d(options["correlation"])
    parts.append(f"correlation {rho[0]:g}" if rho.size == 1 else
                 f"correlation {rho.size} values {rho[0]:g}..{rho[-1]:g}")
  return name, actions, options, ", ".join(parts)


def _load_game_file(path: str):
  """The game in a Gambit file, with one-line errors for file-system faults."""
  if not os.path.exists(path):
    raise CliError(f"--game-file: no such file {path!r}.")
  if os.path.isdir(path):
    raise CliError(f"--game-file: {path!r} is a folder, not a game file.")
  if not os.access(path, os.R_OK):
    raise CliError(f"--game-file: {path!r} is not readable (permission denied).")
  try:
    return _interop.from_gambit(path)
  except OSError as e:
    raise CliError(f"--game-file: cannot read {path!r}: {_os_reason(e)}.") from None
  except OverflowError as e:
    raise CliError(f"--game-file: {path!r} has a payoff out of range: {e}."
                   ) from None


def _load_game(args):
  """Return ``(game, description)`` from ``--family``/``--actions`` or ``--game-file``."""
  if args.game_file:
    return _load_game_file(args.game_file), f"game file {args.game_file}"
  family, actions, options, where = _family_spec(args)
  key = jax.random.key(args.seed)
  game = make_game(family, key, actions, **options)
  return game, f"{where}, seed {args.seed}"


def _os_reason(e: OSError) -> str:
  """The cause of an OSError in words (``"Permission denied"``)."""
  return e.strerror or str(e) or type(e).__name__


_RUN_FILES = ("summary.json", "trajectories.npz", "qre_gap.png")


def _prepare_out(path: str, files=_RUN_FILES) -> None:
  """Create the output folder of ``run`` and prove it writable, before any work.

  Refuses a sweep folder (``manifest.json``), a path that is a file or lies under
  one, and folders that cannot be created or written (probed with a temporary
  file); every refusal is one line.
  """
  if os.path.exists(os.path.join(path, "manifest.json")):
    raise CliError(
        f"--out: {path!r} holds a sweep (manifest.json); jaxnpg run would write "
        "its files into it. Pick another folder.")
  if os.path.exists(path) and not os.path.isdir(path):
    raise CliError(f"--out: {path!r} exists and is not a folder.")
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise CliError(
        f"--out: cannot create the folder {path!r}: {_os_reason(e)}.") from None
  try:
    fd, probe = tempfile.mkstemp(prefix=".jaxnpg-write-test-", dir=path)
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise CliError(
        f"--out: cannot write in the folder {path!r}: {_os_reason(e)}.") from None
  for name in files:
    target = os.path.join(path, name)
    if os.path.isdir(target):
      raise CliError(f"--out: {target!r} is a folder; jaxnpg run writes a file "
                     "there. Pick another folder.")
    if os.path.exists(target) and not os.access(target, os.W_OK):
      raise CliError(f"--out: cannot overwrite {target!r} (permission denied).")


def _cmd_run(args) -> int:
  _setup_dtype(args.dtype)

  taus = parse_taus(args.taus)
  _check_common(args)
  if args.eta != "paper":
    eta_values(args.eta, taus, ())          # a bad constant: before any work
  algorithm = _algorithm(args)
  game, where = _load_game(args)
  etas = eta_values(args.eta, taus, game.num_actions)
  if args.eta == "paper":   # the rule sets the scaled step (Markov: eta (1-gamma))
    etas = [e / float(np.max(game.step_scale)) for e in etas]
  _prepare_out(args.out)
  init = random_policy(jax.random.fold_in(jax.random.key(args.seed), 1),
                              game)
  record_every = args.record_every or max(1, args.iters // 2000)
  print(f"jaxnpg run: {where}; {len(taus)} tau values, {args.iters} iterations, "
        f"{game.dtype}, device {jax.devices()[0].platform}", file=sys.stderr)
  start = time.perf_counter()
  with Progress(args.iters, "iterations", quiet=args.quiet) as progress:
    traj = run_pairs(
        game, taus, etas, args.iters, init=init, record_every=record_every,
        algorithm=algorithm, key=jax.random.key(args.seed + 1), tol=args.tol,
        on_chunk=lambda done: progress.update(
            done, "game-iterations/s",
            done * len(taus) / max(time.perf_counter() - start, 1e-9)))
  qre, ne, ks = traj.qre_gap, traj.ne_gap, traj.iterations
  rows = []
  for i, (tau, eta) in enumerate(zip(taus, etas)):
    hit = int(traj.iterations_to_tol[i])
    rate = float(traj.linear_rate[i])
    rows.append({
        "tau": tau, "eta": eta, "tol": float(traj.tol[i]),
        "final_qre_gap": float(qre[i, -1]), "final_ne_gap": float(ne[i, -1]),
        "iterations_to_tol": hit if hit >= 0 else None,
        "linear_rate": rate if math.isfinite(rate) else None,
        "status": _status_name(int(traj.status[i])),
        "rounding_floor": float(traj.floor[i]),
    })
  sys.stderr.flush()
  _print_summary(rows)

  settings = {
      "game": where, "num_actions": list(game.num_actions), "seed": args.seed,
      "algorithm": args.algorithm, "taus": taus, "eta_rule": args.eta, "etas": etas, "iters": args.iters,
      "record_every": record_every, "tol": args.tol, "dtype": str(game.dtype),
      "device": str(jax.devices()[0]), "jaxnpg": _version.__version__,
      "jax": jax.__version__,
  }
  with open(os.path.join(args.out, "summary.json"), "w") as f:
    json.dump({"settings": settings, "results": rows}, f, indent=2)
  np.savez(os.path.join(args.out, "trajectories.npz"), iterations=ks,
           qre_gap=qre, ne_gap=ne, tau=np.asarray(taus), eta=np.asarray(etas))
  eta_text = ("paper rule 1/(2(tau + 2 sum A_i))" if args.eta == "paper"
              else f"eta {args.eta}")
  caption = (f"{where}; {eta_text}; random initial policy; "
             f"{args.dtype}; jaxnpg {_version.__version__}")
  title = _plots.algorithm_title(
      args.algorithm, args.samples if args.algorithm == "sampled_npg" else None)
  png = _plots.plot_gap_curves(
      ks, {f"tau={t:g}": qre[i] for i, t in enumerate(taus)},
      os.path.join(args.out, "qre_gap.png"), ylabel=game.qre_gap_label,
      title=f"{title}: {game.qre_gap_label} per tau", caption=caption,
      dtype=game.dtype)
  print(f"wrote {png}, summary.json and trajectories.npz in {args.out}")
  return 0


def _status_name(code: int) -> str:
  return STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else f"status {code}"


def _algorithm(args):
  """The algorithm instance named by ``--algorithm`` (and ``--samples``)."""
  if args.algorithm == "sampled_npg":
    if args.samples < 1:
      raise CliError(f"--samples must be >= 1, got {args.samples}.")
    return SampledNPG(num_samples=args.samples)
  return ALGORITHMS[args.algorithm]()


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
  """``(etas, multipliers)`` for sweep from the --etas text."""
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
    value = (float(t[:-1]) * units[t[-1]] if t and t[-1] in units
             else float(t))
    if not 0 < value < math.inf:
      raise ValueError(value)
    return max(1, int(value))
  except (ValueError, OverflowError):
    raise CliError(f"--memory-budget: expected a positive size like '2G' or "
                   f"'500M', got {text!r}.") from None


def _init_distributed(args):
  if args.coordinator or args.num_processes or args.process_id is not None:
    if not (args.coordinator and args.num_processes and args.process_id is not None):
      raise CliError("multi-host needs all of --coordinator, --num-processes and "
                     "--process-id (or --distributed for auto-detection).")
    jax.distributed.initialize(coordinator_address=args.coordinator,
                               num_processes=args.num_processes,
                               process_id=args.process_id)
  elif args.distributed:
    jax.distributed.initialize()


def _path(p):
  return pathlib.Path(p)


def _saved_note(out: str) -> str:
  """``"3 of 8 chunks are saved in OUT"``, from the folder's manifest."""
  try:
    manifest = json.loads((_path(out) / _store.MANIFEST).read_text())
    saved = len(manifest["chunks"])
  except (OSError, ValueError, TypeError, KeyError):
    return f"no chunk is saved in {out} yet"
  try:
    return f"{saved} of {int(manifest['layout']['num_chunks'])} chunks are saved in {out}"
  except (TypeError, ValueError, KeyError):
    return f"{saved} chunk(s) are saved in {out}"


def _resume_command(args) -> str:
  return shlex.join(["jaxnpg", *getattr(args, "argv", [])])


@contextlib.contextmanager
def _interrupt_notice(message: str):
  """Print ``message`` on stderr the moment Ctrl-C arrives.

  Python runs its SIGINT handler (and raises KeyboardInterrupt) only when the
  main thread returns from compiled code, which can take a chunk's time; the C
  level handler writes the signal number to a wakeup fd at once, and a helper
  thread waiting on it tells the user that the interrupt was received.
  """
  try:
    reader, writer = socket.socketpair()
  except OSError:
    yield
    return
  writer.setblocking(False)
  try:
    old = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
  except (ValueError, OSError):   # not the main thread
    reader.close()
    writer.close()
    yield
    return

  def watch():
    while True:
      try:
        data = reader.recv(64)
      except OSError:
        return
      if not data or 0 in data:
        return
      if signal.SIGINT in data:
        with contextlib.suppress(Exception):
          sys.stderr.write(f"\n{message}\n")
          sys.stderr.flush()

  thread = threading.Thread(target=watch, name="jaxnpg-interrupt", daemon=True)
  thread.start()
  try:
    yield
  finally:
    with contextlib.suppress(ValueError, OSError):
      signal.set_wakeup_fd(old)
    with contextlib.suppress(OSError):
      writer.send(b"\0")
    thread.join(1.0)
    reader.close()
    writer.close()


def _cmd_sweep(args) -> int:
  _init_distributed(args)
  _setup_dtype(args.dtype)

  taus = parse_taus(args.taus)
  if args.etas is None:   # the family's default (covariant: eta = beta = 1)
    family = FAMILIES.get(args.family)
    args.etas = (family and family.default_etas) or "paper"
  etas, multipliers = _sweep_etas(args.etas)
  _check_common(args)
  _check_int(args.games, "--games")
  _check_int(args.inits, "--inits")
  _check_int(args.burn_in, "--burn-in", low=0)
  _check_int(args.max_period, "--max-period")
  if args.inits is not None and not args.lyapunov:
    raise CliError("--inits sets the starts of the attractor runs; add "
                   "--lyapunov.")
  _check_int(args.seeds, "--seeds")
  _check_int(args.trajectory, "--trajectory", low=0, note=" (0: none)")
  _check_int(args.chunk_games, "--chunk-games")
  budget = _parse_bytes(args.memory_budget)
  algorithm = _algorithm(args)
  kwargs = dict(taus=taus, etas=etas, eta_multipliers=multipliers,
                num_iters=args.iters, tol=args.tol,
                record_every=args.record_every or None,
                trajectory_points=args.trajectory, method=args.method,
                chunk_games=args.chunk_games, memory_budget=budget,
                out=args.out, quiet=args.quiet, algorithm=algorithm)
  if args.seeds is not None:
    kwargs["num_seeds"] = args.seeds
  if args.lyapunov:
    kwargs.update(lyapunov=True, num_inits=args.inits, burn_in=args.burn_in,
                  max_period=args.max_period)
  if args.game_file:
    game = _load_game_file(args.game_file)
    where = f"game file {args.game_file}"
    game = jax.tree_util.tree_map(lambda x: x[None], game)
    kwargs.update(game=game, init=args.init, seed=args.seed)
  else:
    family, actions, options, where = _family_spec(args)
    where = where.replace(" game,", " games,", 1)
    where += f", {args.games} games, seed {args.seed}"
    kwargs.update(family=family, num_actions=actions, num_games=args.games,
                  seed=args.seed, init=args.init, family_options=options)
    if isinstance(options.get("correlation"), list):
      return _cmd_atlas(args, kwargs, where)
  if args.out:   # a file, or under one: before the header
    _store.check_out_path(_path(args.out))
  print(f"jaxnpg sweep: {args.algorithm} on {where}; {len(taus)} tau x "
        f"{len(multipliers or ([1] if etas == 'paper' else etas))} eta, "
        f"{args.iters} iterations, {args.dtype}, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s); writing to {args.out}",
        file=sys.stderr)
  chunks = []
  resume = _resume_command(args)
  try:
    with _interrupt_notice(
        "jaxnpg sweep: interrupt received; stopping when the computation in "
        "progress returns (finished chunks are saved)..."):
      res = sweep(**kwargs, on_chunk=chunks.append)
  except KeyboardInterrupt:
    close_all()
    print(f"jaxnpg sweep: interrupted; {_saved_note(args.out)}. Resume with: "
          f"{resume}", file=sys.stderr)
    return 130
  except OSError as e:
    close_all()
    # A fault before any work (a bad --out) is one plain line; one during the
    # sweep (a full disk) also says what is saved and how to resume.
    full = e.errno in (errno.ENOSPC, errno.EDQUOT)
    if not (chunks or full):
      raise
    if isinstance(e, _store.SweepStoreError):
      note = ""         # the store's message says what is kept
    else:
      note = ((" (the disk is full: free some space)" if full else "")
              + f"; {_saved_note(args.out)}.")
    raise CliError(f"{_describe_os_error(e)}{note} Resume with: {resume}"
                   ) from None
  _print_sweep_report(res, chunks, args)
  return 0


def _cmd_atlas(args, kwargs, where) -> int:
  """``jaxnpg sweep`` with a list of --correlation values: an atlas."""
  options = dict(kwargs.pop("family_options"))
  values = options.pop("correlation")
  kwargs.pop("on_chunk", None)
  for key in ("lyapunov", "num_inits", "burn_in", "max_period"):
    kwargs.pop(key, None)
  if args.out:
    _store.check_out_path(_path(args.out))
  print(f"jaxnpg sweep: atlas over {len(values)} correlations, {args.algorithm} "
        f"on {where}; {len(kwargs['taus'])} tau, {args.iters} iterations, "
        f"{args.dtype}, {jax.device_count()} {jax.devices()[0].platform} "
        f"device(s); writing to {args.out}", file=sys.stderr)
  res = atlas(
      kwargs.pop("family"), num_actions=kwargs.pop("num_actions"), values=values,
      option="correlation", family_options=options or None,
      lyapunov=args.lyapunov, num_inits=args.inits if args.lyapunov else None,
      burn_in=args.burn_in, max_period=args.max_period, **kwargs)
  _print_atlas_report(res, args)
  return 0


_REGIME_LETTERS = "UMPC?"


def _print_atlas_report(res, args):
  """Dominant regime per (rho, tau) as letters, or the converged fractions."""
  rows = res.values
  if res.sweeps[0].attractor is not None:
    frac = res.regime_fractions()[:, :, 0]                   # (R, T, 5)
    print("dominant regime per (rho, tau) at the first eta, with its fraction "
          "of games")
    print(f"{'rho':>7} " + " ".join(f"{t:>7.3g}" for t in res.tau))
    for r, v in enumerate(rows):
      cells = [f"{_REGIME_LETTERS[int(np.argmax(f))]}{np.max(f):.2f}"
               for f in frac[r]]
      print(f"{v:>7.3g} " + " ".join(f"{c:>7}" for c in cells))
    print("legend: " + ", ".join(f"{l} {n}" for l, n in
                                 zip(_REGIME_LETTERS, res.regime_names)))
  else:
    print("converged fraction per (rho, tau) at the first eta")
    print(f"{'rho':>7} " + " ".join(f"{t:>7.3g}" for t in res.tau))
    for r, v in enumerate(rows):
      frac = res.sweeps[r].converged_fraction()[:, 0]
      print(f"{v:>7.3g} " + " ".join(f"{x:>7.3f}" for x in frac))
  print(f"wrote {args.out} (plot it with: jaxnpg plot {args.out})")


def _print_sweep_report(res, chunks, args):
  a = res.attrs
  skipped = sum(1 for c in chunks if c["skipped"])
  computed = [c["chunk"] for c in chunks if not c["skipped"]]
  damaged = a.get("chunks_damaged", [])
  cells = a["chunk_games"] * math.prod(res.shape[1:])
  plural = "s" if a["num_chunks"] != 1 else ""
  repair = (f" ({len(damaged)} of them found damaged or incomplete on disk and "
            f"recomputed: chunk {', '.join(map(str, damaged[:8]))}"
            f"{', ...' if len(damaged) > 8 else ''})" if damaged else "")
  print(f"chunks: {a['num_chunks']} chunk{plural} of up to {a['chunk_games']} "
        f"games ({cells} cells) each; {len(computed)} computed{repair}, "
        f"{skipped} already done and verified; method {a['method']}",
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
  paper = res.eta_rule == "paper"
  label = lambda e: f"conv@{e:.3g}" + ("x" if paper else "")
  shown = min(6, res.shape[2])
  head = f"{'tau':>10} " + " ".join(f"{label(e):>{width}}" for e in res.eta[:6])
  print(head)
  print("-" * len(head))
  for t, tau in enumerate(res.tau):
    print(f"{tau:>10.4g} " + " ".join(f"{cell(t, e):>{width}}"
                                      for e in range(shown)))
  counts = res.status_counts()
  print(f"status counts: {counts}")
  if res.attractor is not None:
    codes = np.bincount(res.attractor.ravel().astype(np.int64), minlength=4)
    names = ("fixed point", "periodic", "chaotic", "undetermined")
    text = ", ".join(f"{n}: {int(c)}" for n, c in zip(names, codes))
    if res.num_fixed_points is not None:
      text += (f"; cells with >= 2 distinct fixed points: "
               f"{int(np.sum(res.num_fixed_points >= 2))}")
    print(f"attractors (start 0): {text}")
  for line in _sweep_legend(res, paper, shown, counts):
    print(line)
  print(f"wrote {args.out} (plot it with: jaxnpg plot {args.out})")


_STATUS_HELP = {
    "converged": "final QRE-gap <= tol",
    "not converged": "finite and still falling, but above tol at the end (more "
                     "--iters may help)",
    "blew up": "a gap or policy became NaN or infinite (step size too large)",
    "stalled": "above tol, and the gap fell by less than a factor 2 over the "
               "fitted tail: not heading to tol",
    "at the rounding floor": "above tol but at the dtype's rounding floor, "
                             "which lies above tol (use float64 or a larger "
                             "--tol)",
}


def _sweep_legend(res, paper, shown, counts):
  """Lines explaining the table's columns and the statuses that occur."""
  if paper:
    step = "step size m x the 'paper' rule (paper_eta)"
  else:
    step = "the constant step size m"
  more = (f" (first {shown} of {res.shape[2]} shown)"
          if res.shape[2] > shown else "")
  lines = [f"legend: conv@m = fraction of games whose final QRE-gap is <= tol, "
           f"at {step}{more}",
           f"  tol: {_tol_text(res.attrs.get('tol'))}"]
  for name, count in counts.items():
    if count and name in _STATUS_HELP:
      lines.append(f"  {name}: {_STATUS_HELP[name]}")
  return lines


def _tol_text(tol) -> str:
  """What the tolerance is, for a legend: a number, or the library's rule."""
  if isinstance(tol, (int, float)):
    return f"{tol:g} (--tol)"
  try:
    return (f"the default rule {GAP_RTOL:g} x (max|rbar| + tau log A) at each "
            "cell's final iterate, the same in every dtype")
  except ImportError:
    return "the library's default for the dtype"


def _describe_os_error(e: OSError) -> str:
  """One line for an OSError: the cause and the path(s)."""
  reason = _os_reason(e)
  paths = [p for p in (e.filename, getattr(e, "filename2", None)) if p]
  if paths:
    return f"{reason}: " + " -> ".join(repr(os.fsdecode(p)) if not isinstance(
        p, int) else str(p) for p in paths)
  return reason


def _cmd_plot(args) -> int:
  if not os.path.isdir(args.folder):
    raise CliError(f"no such sweep folder {args.folder!r}.")
  if _atlas.is_atlas(args.folder):
    return _plot_atlas(args)
  res = load_sweep(args.folder, allow_partial=args.partial)
  out = args.out or os.path.join(args.folder, "plots")
  taus = parse_floats(args.taus, "--taus") if args.taus else None
  if not 0 <= args.eta_index < res.shape[2]:
    raise CliError(f"--eta-index must be in [0, {res.shape[2]}), got "
                   f"{args.eta_index}.")
  predicted = None
  if args.theory:
    try:
      predicted = theory.predict_for_sweep(res, max_games=args.theory_games)
    except (ValueError, TypeError) as e:
      raise CliError(f"--theory: {e}") from None
  paths = _plots.plot_sweep(res, out, taus=taus, eta_index=args.eta_index,
                            predicted=predicted)
  for name, path in paths.items():
    print(f"wrote {path}")
  if "qre_trajectories" not in paths:
    print("(no trajectory plot: the sweep kept no trajectories; run it with "
          "--trajectory N)", file=sys.stderr)
  return 0


def _plot_atlas(args) -> int:
  res = load_atlas(args.folder)
  out = args.out or os.path.join(args.folder, "plots")
  if not 0 <= args.eta_index < res.eta.size:
    raise CliError(f"--eta-index must be in [0, {res.eta.size}), got "
                   f"{args.eta_index}.")
  if res.sweeps[0].attractor is None:
    raise CliError(f"the atlas in {args.folder!r} recorded no attractors (run "
                   "it with --lyapunov); nothing to map.")
  boundary = None
  if args.theory:
    try:
      boundary = _atlas.predicted_boundary(
          res, max_games=args.theory_games)
    except (ValueError, TypeError) as e:
      raise CliError(f"--theory: {e}") from None
  paths = _plots.plot_atlas(res, out, boundary=boundary,
                            eta_index=args.eta_index)
  for path in paths.values():
    print(f"wrote {path}")
  return 0


def _cmd_reproduce(args) -> int:
  if args.atlas:
    _setup_dtype(args.dtype or "float32")
    out = _reproduce.reproduce_atlas(args.out, quick=args.quick, seed=args.seed,
                                     quiet=args.quiet,
                                     store=not args.pictures_only)
    print(f"wrote {len(out['files'])} files under "
          f"{os.path.join(args.out, 'atlas')} (numbers in atlas.json)")
    return 0
  _setup_dtype(args.dtype or "float64")
  figures = (tuple(_reproduce.FIGURES) if args.figure == "all"
             else tuple(f.strip() for f in args.figure.split(",")))
  out = _reproduce.reproduce(args.out, figures, quick=args.quick,
                             phases=not args.no_phases, seed=args.seed,
                             quiet=args.quiet, store=not args.pictures_only)
  print(f"wrote {len(out['files'])} pictures under {args.out} "
        f"(settings beside each figure as JSON)")
  return 0


def _print_summary(rows):
  """The table of ``jaxnpg run`` and a legend of its columns."""
  head = (f"{'tau':>9} {'eta':>9} {'QRE-gap':>10} {'NE-gap':>10} {'tol':>8} "
          f"{'iters to tol':>12} {'rate':>9}  status")
  print(head)
  print("-" * len(head))
  for r in rows:
    it = "not reached" if r["iterations_to_tol"] is None else r["iterations_to_tol"]
    rate = "-" if r["linear_rate"] is None else f"{r['linear_rate']:.6f}"
    print(f"{r['tau']:>9.4g} {r['eta']:>9.3g} {r['final_qre_gap']:>10.3e} "
          f"{r['final_ne_gap']:>10.3e} {r['tol']:>8.2g} {it:>12} {rate:>9}  "
          f"{r['status']}")
  print("legend: gaps at the last iteration; tol: the QRE-gap tolerance (--tol, "
        "else the library's default);\n  iters to tol: first recorded iteration "
        "with QRE-gap <= tol; rate: fitted linear rate, gap_k ~ C rate^k ('-': "
        "no fit)")
  for name in dict.fromkeys(r["status"] for r in rows):
    if name in _STATUS_HELP:
      print(f"  {name}: {_STATUS_HELP[name]}")


def _add_game_args(p):
  names = ", ".join(sorted(families()))
  g = p.add_argument_group("game")
  g.add_argument("--family", default="random",
                 help=f"game family: {names} (default: random)")
  g.add_argument("--actions", default=None,
                 help="actions per agent, comma separated, or one number for "
                 "every agent with --agents (default: the family's: 3,4,5; "
                 "network_zero_sum 10 each; markov 5,5,5)")
  g.add_argument("--agents", type=int, default=None,
                 help="number of agents; repeats a single --actions A (default: "
                 "from --actions; network_zero_sum 5)")
  g.add_argument("--graph", default=None,
                 help="graph of network families: ring (default; >= 3 agents), "
                 "complete, random-regular[:D], or edges '0-1,1-2,...'")
  g.add_argument("--states", type=int, default=None,
                 help="markov family: number of states (default: 5)")
  g.add_argument("--discount", type=float, default=None,
                 help="markov family: discount factor gamma in [0, 1) "
                 "(default: 0.9)")
  g.add_argument("--correlation", default=None,
                 help="covariant family: correlation rho of the agents' payoffs "
                 "(default: 0); for jaxnpg sweep also a list '-0.5,0,0.5' or a "
                 "LINEAR range 'lo:hi:count' (e.g. -0.9:1:9), which draws an "
                 "atlas over rho (one resumable sweep per value)")
  g.add_argument("--seed", type=int, default=0,
                 help="seed for the game and the initial policy, in [0, 2^32) "
                 "(default: 0)")
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
  parser = _Parser(
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
  a.add_argument("--tol", type=float, default=None,
                 help="QRE-gap tolerance for 'iterations to tol' (default: the "
                 "library's, which follows the dtype)")
  a.add_argument("--record-every", type=int, default=0,
                 help="record the gaps every N iterations (default 0: about 2000 "
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
  p.add_argument("--atlas", action="store_true",
                 help="instead of the paper's figures, the learning-dynamics "
                 "atlas: (rho, tau) regime maps of covariant games for 2, 3 and "
                 "4 agents, into OUT/atlas (float32 unless --dtype)")
  p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
  p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                 help="floating point precision (default: float64; float32 "
                 "with --atlas)")
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
  a.add_argument("--etas", default=None,
                 help="step sizes '0.01,0.02', the rule 'paper', or multipliers "
                 "of it 'paper:0.5,1,2' (default: paper; 1 for the covariant "
                 "family, Galla & Farmer's eta = beta = 1)")
  _add_algorithm_args(a)
  a.add_argument("--seeds", type=int, default=None,
                 help="repetitions of a stochastic algorithm (sampled_npg) with "
                 "independent draws: adds a seed axis; the summary shows mean "
                 "+- std over seeds (default: one draw, no seed axis)")
  a.add_argument("--iters", type=int, default=1000,
                 help="NPG iterations per cell (default: 1000)")
  a.add_argument("--lyapunov", action="store_true",
                 help="also record per cell the largest Lyapunov exponent, the "
                 "attractor type and period (a second run with its tangent)")
  a.add_argument("--inits", type=int, default=None,
                 help="with --lyapunov: K starts per game; records the number of "
                 "distinct fixed points they reach")
  a.add_argument("--burn-in", type=int, default=None,
                 help="with --lyapunov: steps before the exponent is averaged "
                 "(default: --iters)")
  a.add_argument("--max-period", type=int, default=16,
                 help="with --lyapunov: longest period detected (default: 16)")
  a.add_argument("--tol", type=float, default=None,
                 help="QRE-gap tolerance (default: the library's, which follows "
                 "the dtype)")
  a.add_argument("--record-every", type=int, default=0,
                 help="record the gaps every N iterations (default: about 200 "
                 "records)")
  a.add_argument("--trajectory", type=int, default=32,
                 help="keep N points of each cell's gap trajectory (0: none; "
                 "default: 32)")
  a.add_argument("--method", choices=("auto", "dense", "generic"), default="auto",
                 help="dense: the loop with batch axes last, for small dense "
                 "games; generic: plain vmap, any game type (default: auto)")
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
  p.set_defaults(func=_cmd_sweep, structure_ok=True)

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


def _one_line(e: BaseException) -> str:
  text = _describe_os_error(e) if isinstance(e, OSError) else str(e)
  return " ".join(text.split("\n")).strip() or type(e).__name__


# Options whose value may start with '-' and contain ':' or ',' ("-0.9:1:9"),
# which argparse would otherwise read as an unknown option.
_NEGATIVE_VALUE_OPTIONS = ("--correlation",)


def _join_negative_values(argv):
  """``["--correlation", "-0.9:1:9"]`` -> ``["--correlation=-0.9:1:9"]``."""
  out, i = [], 0
  while i < len(argv):
    a = argv[i]
    if (a in _NEGATIVE_VALUE_OPTIONS and i + 1 < len(argv)
        and argv[i + 1].startswith("-") and len(argv[i + 1]) > 1
        and (argv[i + 1][1].isdigit() or argv[i + 1][1] == ".")):
      out.append(f"{a}={argv[i + 1]}")
      i += 2
      continue
    out.append(a)
    i += 1
  return out


def main(argv=None) -> int:
  """Entry point of the ``jaxnpg`` console script.

  Returns the exit status: 0 on success, 2 for any bad argument or file-system
  fault (one line ``jaxnpg COMMAND: error: ...`` on stderr, no traceback), 130 when
  interrupted.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  try:
    args, extra = parser.parse_known_args(argv)
  except _UsageError as e:
    print(e, file=sys.stderr)
    return 2
  if extra:
    print(f"jaxnpg {args.command}: error: unrecognized arguments: "
          f"{' '.join(extra)} (see: jaxnpg {args.command} --help)",
          file=sys.stderr)
    return 2
  args.argv = argv
  try:
    return args.func(args)
  except (CliError, ValueError, OSError, ImportError, OverflowError) as e:
    close_all()
    print(f"jaxnpg {args.command}: error: {_one_line(e)}", file=sys.stderr)
    return _exit_now_if_distributed(2)
  except KeyboardInterrupt:
    close_all()
    print(f"jaxnpg {args.command}: interrupted", file=sys.stderr)
    return _exit_now_if_distributed(130)


def _exit_now_if_distributed(rc: int) -> int:
  """Return ``rc``; in a failed multi-process run, exit the process right away.

  When another process of a ``jax.distributed`` run died, the interpreter's exit
  waits in jax.distributed's shutdown for about 90 s and then aborts; the error
  has been printed, so leave at once with the right status.
  """
  if "jax" in sys.modules and sys.modules["jax"].process_count() > 1:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
  return rc
