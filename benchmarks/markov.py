"""Markov-game NPG throughput on the paper's Fig. 2c sizes (exact evaluation).

Games: 3 agents x 5 actions, 5 states, ``gamma = 0.9``, rewards uniform on [0, 1],
Dirichlet(1) transitions (``jaxnpg.random_markov_game``), random initial policies,
``soft`` convention, ``tau = 0.2``, ``eta_bar * tau = 0.25``. One game-iteration is
one NPG step of one game: the joint policy's exact evaluation (an ``S x S`` linear
solve for all agents), the marginal soft Q-values ``Qbar_i(s, .)`` and the update.

Methods:

* ``numpy-loop``: a Python loop over games, each step with ``np.einsum``
  (contraction paths precomputed) and ``np.linalg.solve``, float64 (the per-game
  reference code the issue asks to compare against);
* ``numpy-batched``: the same formulas on all games at once (leading batch axis,
  batched ``np.linalg.solve``), float64;
* ``jaxnpg.run``: ``jax.jit(jax.vmap(lambda g, lp: jaxnpg.run(g, tau, eta, T,
  init=lp, record_every=T)))`` over the batch (only the first and last iterates'
  gaps are computed);
* ``jaxnpg.run+gaps``: the same with ``record_every=1``: the Markov QRE-gap and
  NE-gap (each agent's best response by policy iteration in its induced MDP) at
  every iteration as well.
* ``plain-vmap``, ``plain-vmap+gaps``: the same two calls on the plain path
  (``jaxnpg.loop.run.run_loop(..., batch_last=False)``: ``vmap`` of the one-game
  loop, one core), i.e. what ``jax.vmap(jaxnpg.run)`` ran before the batch-last
  Markov form (issue 19).

Since issue 19 ``jax.vmap(jaxnpg.run)`` of these games runs their batch-last
loop form (``jaxnpg.games.markov_last.MarkovBatchLast``): state and action axes
first, the batch last, in blocks, split over the CPU cores. The script prints
the issue's two ratios (records at the end, and both gaps every step, against
``numpy-batched``; targets 5x and 2x) and the load average.

JAX methods run in float32 and float64. Every method is warmed up once (compilation
excluded), then timed ``--repeats`` times with ``block_until_ready``, samples of all
methods interleaved; rates at the minimum wall time, at the median, and per CPU
second. Before timing, each method is checked against the NumPy loop on a few games.

Usage:
  python benchmarks/markov.py                    # issue 19's setting: 256 games, float64
  python benchmarks/markov.py --games 4096 --dtype both --repeats 3
"""

from __future__ import annotations

import argparse
import os
import string
import sys

ALL_METHODS = ("numpy-loop", "numpy-batched", "jaxnpg.run", "jaxnpg.run+gaps",
               "plain-vmap", "plain-vmap+gaps")
DEFAULT_METHODS = ("numpy-batched", "jaxnpg.run", "jaxnpg.run+gaps",
                   "plain-vmap", "plain-vmap+gaps")
NUM_ACTIONS = (5, 5, 5)
NUM_STATES = 5
GAMMA = 0.9


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--games", type=int, default=256,
                 help="games in the batch (JAX and numpy-batched; default 256)")
  p.add_argument("--iters", type=int, default=200,
                 help="NPG iterations per JAX call (default 200)")
  p.add_argument("--gap-iters", type=int, default=20,
                 help="iterations per call for jaxnpg.run+gaps (default 20)")
  p.add_argument("--numpy-iters", type=int, default=20,
                 help="iterations for numpy-batched (default 20)")
  p.add_argument("--loop-games", type=int, default=16,
                 help="games for the per-game NumPy loop (default 16)")
  p.add_argument("--loop-iters", type=int, default=25,
                 help="iterations per game for the per-game loop (default 25)")
  p.add_argument("--repeats", type=int, default=5,
                 help="timed repeats after one warm-up call (default 5)")
  p.add_argument("--dtype", choices=("float32", "float64", "both"),
                 default="float64",
                 help="dtype of the JAX methods (NumPy is float64)")
  p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                 help=f"comma-separated subset of {','.join(ALL_METHODS)}")
  p.add_argument("--tau", type=float, default=0.2,
                 help="entropy weight; eta = 0.25 (1 - gamma) / tau")
  p.add_argument("--skip-check", action="store_true",
                 help="skip the agreement check between methods")
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                               "results", "markov.json"))
  args = p.parse_args(argv)
  args.methods = [m for m in args.methods.split(",") if m]
  bad = [m for m in args.methods if m not in ALL_METHODS]
  if bad:
    p.error(f"unknown methods {bad}; choose from {ALL_METHODS}")
  args.dtypes = (["float32", "float64"] if args.dtype == "both" else [args.dtype])
  return args


args = parse_args()

import jax                      # noqa: E402
import jax.numpy as jnp         # noqa: E402
import numpy as np              # noqa: E402

import jaxnpg                   # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common                  # noqa: E402


# --------------------------------------------------------------------- NumPy
class NumpyMarkov:
  """Exact-evaluation soft NPG with einsum paths precomputed, float64.

  ``batch=True`` puts a leading game axis on every array.
  """

  def __init__(self, n, batch):
    letters = string.ascii_lowercase
    acts = letters[:n]                                    # a, b, c
    g = "z" if batch else ""
    s, t, i = "s", "t", "i"
    joint = g + s + acts
    self.n, self.batch = n, batch
    self.joint = ",".join(g + s + a for a in acts) + "->" + joint
    self.p_pi = f"{joint},{g}{s}{acts}{t}->{g}{s}{t}"
    self.r_pi = f"{joint},{g}{i}{s}{acts}->{g}{i}{s}"
    self.q_full = f"{g}{s}{acts}{t},{g}{i}{t}->{g}{i}{s}{acts}"
    self.qbar = []
    for k in range(n):
      others = [a for j, a in enumerate(acts) if j != k]
      self.qbar.append(f"{g}{s}{acts}," + ",".join(g + s + a for a in others)
                       + f"->{g}{s}{acts[k]}")
    self.paths = {}

  def _einsum(self, spec, *ops):
    if spec not in self.paths:
      self.paths[spec] = np.einsum_path(spec, *ops, optimize="optimal")[0]
    return np.einsum(spec, *ops, optimize=self.paths[spec])

  def step(self, R, P, lp, tau, eta_bar):
    n = self.n
    p = [np.exp(x) for x in lp]
    joint = self._einsum(self.joint, *p)
    p_pi = self._einsum(self.p_pi, joint, P)
    r_pi = self._einsum(self.r_pi, joint, R)
    ent = np.stack([-np.sum(pi * x, axis=-1) for pi, x in zip(p, lp)], axis=-2)
    eye = np.eye(p_pi.shape[-1])
    rhs = np.swapaxes(r_pi + tau * ent, -1, -2)           # (..., S, n)
    v = np.swapaxes(np.linalg.solve(eye - GAMMA * p_pi, rhs), -1, -2)
    q = R + GAMMA * self._einsum(self.q_full, P, v)
    out = []
    for k in range(n):
      others = [p[j] for j in range(n) if j != k]
      qk = q[:, k] if self.batch else q[k]     # the agent axis
      qbar = self._einsum(self.qbar[k], qk, *others)
      logits = (1 - eta_bar * tau) * lp[k] + eta_bar * qbar
      m = logits.max(axis=-1, keepdims=True)
      out.append(logits - m - np.log(np.sum(np.exp(logits - m), axis=-1,
                                            keepdims=True)))
    return out


def numpy_loop(R, P, logp, tau, eta_bar, iters):
  """Per-game loop: ``R (G, n, S, A...)``, ``P (G, S, A..., S)``, ``logp[i] (G, S, A_i)``."""
  model = NumpyMarkov(R.shape[1], batch=False)
  out = [np.empty_like(x) for x in logp]
  for g in range(R.shape[0]):
    lp = [x[g].copy() for x in logp]
    for _ in range(iters):
      lp = model.step(R[g], P[g], lp, tau, eta_bar)
    for k in range(len(lp)):
      out[k][g] = lp[k]
  return out


def make_numpy_batched(R, P, logp, tau, eta_bar, iters):
  model = NumpyMarkov(R.shape[1], batch=True)
  model.step(R, P, list(logp), tau, eta_bar)   # precompute paths (not timed)

  def fn():
    lp = [x.copy() for x in logp]
    for _ in range(iters):
      lp = model.step(R, P, lp, tau, eta_bar)
    return lp
  return fn


# ----------------------------------------------------------------------- JAX
def make_jax(method, R, P, logp, tau, eta, iters):
  games = jaxnpg.MarkovGame(R, P, GAMMA, num_agents=R.shape[1])
  record = 1 if method.endswith("+gaps") else iters
  if method.startswith("plain"):
    from jaxnpg.loop.run import run_loop
    f = jax.jit(jax.vmap(lambda g, lp: run_loop(
        g, tau, eta, lp, num_iters=iters, record_every=record,
        batch_last=False)))
  else:
    f = jax.jit(jax.vmap(lambda g, lp: jaxnpg.run(g, tau, eta, iters, init=lp,
                                                  record_every=record)))
  logp = tuple(logp)
  return lambda: jax.block_until_ready(f(games, logp))


# ------------------------------------------------------------------ driver
def make_problem(num_games):
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.key(0), num_games)
    games = jax.jit(jax.vmap(lambda k: jaxnpg.random_markov_game(
        k, NUM_STATES, NUM_ACTIONS, GAMMA, dtype=jnp.float64)))(keys)
    pkeys = jax.random.split(jax.random.key(1), num_games)
    logp = jax.vmap(jaxnpg.random_policy)(pkeys, games)
    return (np.asarray(games.rewards), np.asarray(games.transitions),
            [np.asarray(x) for x in logp])


def check_agreement(R, P, logp, tau, eta, methods, dtypes, games=4, iters=20):
  r, p, lp = R[:games], P[:games], [x[:games] for x in logp]
  eta_bar = eta / (1 - GAMMA)
  ref = numpy_loop(r, p, lp, tau, eta_bar, iters)
  diffs = {}
  for m in methods:
    if m == "numpy-loop" or m.startswith("plain"):
      continue
    for dt in (["float64"] if m == "numpy-batched" else dtypes):
      if m == "numpy-batched":
        out = make_numpy_batched(r, p, lp, tau, eta_bar, iters)()
      else:
        with _common.x64_context(dt):
          res = jax.jit(jax.vmap(lambda g, l: jaxnpg.run(
              g, tau, eta, iters, init=l, record_every=iters).logp))(
                  jaxnpg.MarkovGame(jnp.asarray(r, dt), jnp.asarray(p, dt),
                                    GAMMA, num_agents=r.shape[1]),
                  tuple(jnp.asarray(x, dt) for x in lp))
          out = [np.asarray(x, np.float64) for x in res]
      d = max(float(np.max(np.abs(o - e))) for o, e in zip(out, ref))
      tol = 1e-10 if dt == "float64" else 1e-3
      assert d < tol, f"{m} ({dt}) disagrees with the NumPy loop: {d:.3g}"
      diffs[f"{m}/{dt}"] = d
  return diffs


def main():
  tau = args.tau
  eta = 0.25 * (1 - GAMMA) / tau
  eta_bar = eta / (1 - GAMMA)
  R, P, logp = make_problem(max(args.games, args.loop_games))
  print(f"jaxnpg Markov NPG throughput: {len(NUM_ACTIONS)} agents x "
        f"{NUM_ACTIONS[0]} actions, {NUM_STATES} states, gamma={GAMMA}, "
        f"tau={tau}, eta={eta:.4g} (eta_bar*tau=0.25), soft convention; "
        f"{jax.default_backend()} ({_common.cpu_model()}, {os.cpu_count()} cpus, "
        f"load {_common.LOAD_AT_START}), jax {jax.__version__}")
  diffs = {}
  if not args.skip_check:
    diffs = check_agreement(R, P, logp, tau, eta, args.methods, args.dtypes)
    print("agreement with the NumPy loop after 20 steps (max |dlogp|): " +
          ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))

  cases = {}
  for m in args.methods:
    if m == "numpy-loop":
      g, t = args.loop_games, args.loop_iters
      r, p, lp = R[:g], P[:g], [x[:g] for x in logp]
      cases[(m, "float64", g, t)] = (
          lambda r=r, p=p, lp=lp, t=t: numpy_loop(r, p, lp, tau, eta_bar, t))
    elif m == "numpy-batched":
      g, t = args.games, args.numpy_iters
      cases[(m, "float64", g, t)] = make_numpy_batched(
          R[:g], P[:g], [x[:g] for x in logp], tau, eta_bar, t)
    else:
      g = args.games
      t = args.gap_iters if m.endswith("+gaps") else args.iters
      for dt in args.dtypes:
        with _common.x64_context(dt):
          fn = make_jax(m, jnp.asarray(R[:g], dt), jnp.asarray(P[:g], dt),
                        [jnp.asarray(x[:g], dt) for x in logp], tau, eta, t)
        cases[(m, dt, g, t)] = _common.in_context(fn, dt)
  timings = _common.time_interleaved(cases, args.repeats)

  results = []
  for (method, dtype, games, iters), timing in timings.items():
    s = _common.summarize(timing)
    work = games * iters
    row = dict(method=method, dtype=dtype, games=games, iters=iters, **s,
               game_iters_per_s=work / s["min_s"],
               game_iters_per_s_median=work / s["median_s"],
               game_iters_per_cpu_s=work / s["cpu_s_median"],
               batch_iters_per_s=iters / s["min_s"])
    results.append(row)
    print(f"  {method:16s} {dtype:8s} {games:5d} games x {iters:4d} iters: "
          f"min {s['min_s'] * 1e3:9.1f} ms, median {s['median_s'] * 1e3:9.1f} ms, "
          f"{row['game_iters_per_s']:.3g} game-iters/s")

  def base(method, key):
    for row in results:
      if row["method"] == method and row["dtype"] == "float64":
        return row[key]
    return None

  loop, loop_cpu = base("numpy-loop", "game_iters_per_s"), base(
      "numpy-loop", "game_iters_per_cpu_s")
  batched = base("numpy-batched", "game_iters_per_s")
  ratio = lambda v, b: f"{v / b:.3g}x" if b else "-"
  headers = ["method", "dtype", "games x iters", "game-iters/s (min)",
             "game-iters/s (median)", "game-iters/CPU-s",
             "batch iters/s", "vs numpy-loop", "vs numpy-batched",
             "CPU-s vs numpy-loop"]
  rows = []
  for row in results:
    v, c = row["game_iters_per_s"], row["game_iters_per_cpu_s"]
    row["vs_numpy_loop"] = v / loop if loop else None
    row["vs_numpy_batched"] = v / batched if batched else None
    row["cpu_vs_numpy_loop"] = c / loop_cpu if loop_cpu else None
    rows.append([row["method"], row["dtype"], f"{row['games']} x {row['iters']}",
                 f"{v:.3g}", f"{row['game_iters_per_s_median']:.3g}", f"{c:.3g}",
                 f"{row['batch_iters_per_s']:.3g}", ratio(v, loop),
                 ratio(v, batched), ratio(c, loop_cpu)])
  print()
  print(_common.format_table(headers, rows))
  targets = {}
  for m, goal in (("jaxnpg.run", 5.0), ("jaxnpg.run+gaps", 2.0)):
    for row in results:
      if row["method"] == m and row["dtype"] == "float64" and batched:
        targets[m] = row["game_iters_per_s"] / batched
        print(f"issue 19 target: {m} (float64) = {targets[m]:.3g}x numpy-batched "
              f"(target >= {goal:g}x)")
  plain = {r["method"]: r["game_iters_per_s"] for r in results
           if r["dtype"] == "float64"}
  for fast, slow in (("jaxnpg.run", "plain-vmap"),
                     ("jaxnpg.run+gaps", "plain-vmap+gaps")):
    if fast in plain and slow in plain:
      print(f"{fast} vs {slow} (float64): {plain[fast] / plain[slow]:.3g}x")
  print(f"load average (1 min): {_common.LOAD_AT_START} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end")
  payload = dict(
      benchmark="markov", **_common.run_header(), machine=_common.machine_info(),
      config=dict(num_actions=NUM_ACTIONS, num_states=NUM_STATES, discount=GAMMA,
                  convention="soft", tau=tau, eta=eta, games=args.games,
                  iters=args.iters, gap_iters=args.gap_iters,
                  numpy_iters=args.numpy_iters, loop_games=args.loop_games,
                  loop_iters=args.loop_iters, repeats=args.repeats,
                  dtypes=args.dtypes,
                  timing="wall clock, 1 warm-up call, min and median of "
                         "interleaved repeats"),
      agreement_max_abs_dlogp=diffs, results=results,
      ratios_vs_numpy_batched_float64=targets)
  _common.write_json(args.out, payload)


if __name__ == "__main__":
  main()
