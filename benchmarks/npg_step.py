"""NPG step throughput on the paper's random (3, 4, 5) game family.

Measures game-iterations per second (one NPG step of one game = one game-iteration)
for:

* ``numpy-loop``: a Python loop over games, each iterated with ``np.einsum``
  marginals and a hand-written logsumexp, float64 (the "obvious" reference code);
* ``numpy-batched``: all games at once, ``np.einsum`` over a leading batch axis
  (contraction paths precomputed with ``np.einsum_path``);
* ``jaxnpg.run``: ``jax.jit(jax.vmap(lambda g, lp: jaxnpg.run(g, tau, eta, T,
  init=lp, record_every=T)))`` over a batch of games;
* ``jaxnpg.npg_step``: ``jax.jit(jax.vmap(...))`` of a ``lax.scan`` of
  ``jaxnpg.npg_step`` (no gap records at all);
* ``alt-*`` (benchmark-only formulations in ``_alt.py``, not library code): the
  same scan with ``jaxnpg.games.dense.dense_marginals`` replaced by itself with one line
  changed (``alt-noslice``: ``(suffix @ p)[:k-1]`` instead of
  ``suffix[:k-1] @ p``, which under ``vmap`` copies the tensor before the dot),
  or by the same suffix chain with every contraction written as an unrolled sum
  of slices (``alt-unrolled``: elementwise fusions only, no dot), or as
  broadcast-multiply-and-``jnp.sum``
  (``alt-bcast``), or by one independent ``jnp.einsum`` per agent
  (``alt-einsum``); these reuse ``jaxnpg.core.step.npg_update``. ``alt-unrolled-lse``
  also unrolls the update's logsumexp over actions, so the step has no dot and no
  reduce op. They show what another formulation would buy.

JAX methods run in float32 and float64 (``jax.enable_x64(True)`` context). Every
method is warmed up once (compilation excluded), then timed ``--repeats`` times with
``block_until_ready``; the table reports the rate at the best (minimum) wall time,
at the median wall time, and per second of process CPU time (all threads; on a
shared machine it moves much less with other people's load than the wall time).
The per-game loop is slow, so it runs fewer games and iterations and is reported
per game-iteration. Before timing, every method is checked against the NumPy loop
on a few games (max |difference| of the log-policies after 50 steps).

Usage:
  python benchmarks/npg_step.py                # defaults: 1 to 2 minutes, 2 cores
  python benchmarks/npg_step.py --games 4096 --iters 2000 --dtype float32
  python benchmarks/npg_step.py --scaling 1,16,64,256,1024,4096
  python benchmarks/npg_step.py --xla-flags=--xla_cpu_experimental_ynn_fusion_type=
"""

from __future__ import annotations

import argparse
import os
import sys

ALL_METHODS = ("numpy-loop", "numpy-batched", "jaxnpg.run", "jaxnpg.npg_step",
               "alt-noslice", "alt-unrolled", "alt-unrolled-lse", "alt-bcast",
               "alt-einsum")
NUM_ACTIONS = (3, 4, 5)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--games", type=int, default=1024,
                 help="games in the JAX batch (default 1024)")
  p.add_argument("--iters", type=int, default=1000,
                 help="NPG iterations per JAX call (default 1000)")
  p.add_argument("--numpy-games", type=int, default=1024,
                 help="games for numpy-batched (default 1024)")
  p.add_argument("--numpy-iters", type=int, default=100,
                 help="iterations for numpy-batched (default 100)")
  p.add_argument("--loop-games", type=int, default=8,
                 help="games for the per-game NumPy loop (default 8)")
  p.add_argument("--loop-iters", type=int, default=250,
                 help="iterations per game for the per-game loop (default 250)")
  p.add_argument("--repeats", type=int, default=5,
                 help="timed repeats after one warm-up call (default 5)")
  p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                 help="dtype of the JAX methods (NumPy loop is float64; "
                      "numpy-batched follows this too)")
  p.add_argument("--methods", default=",".join(ALL_METHODS),
                 help=f"comma-separated subset of {','.join(ALL_METHODS)}")
  p.add_argument("--tau", type=float, default=0.1,
                 help="entropy weight (eta = jaxnpg.paper_eta(tau)); timing does "
                      "not depend on it")
  p.add_argument("--scaling", default="",
                 help="comma-separated batch sizes: also time jaxnpg.run (float32) "
                      "at each, to separate fixed per-step cost from per-game cost")
  p.add_argument("--xla-flags", default=None,
                 help="set XLA_FLAGS before JAX is imported (e.g. "
                      "--xla_cpu_experimental_ynn_fusion_type=)")
  p.add_argument("--skip-check", action="store_true",
                 help="skip the agreement check between methods")
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                               "results", "npg_step.json"))
  args = p.parse_args(argv)
  args.methods = [m for m in args.methods.split(",") if m]
  bad = [m for m in args.methods if m not in ALL_METHODS]
  if bad:
    p.error(f"unknown methods {bad}; choose from {ALL_METHODS}")
  args.dtypes = (["float32", "float64"] if args.dtype == "both" else [args.dtype])
  args.scaling = [int(b) for b in args.scaling.split(",") if b]
  return args


args = parse_args()
if args.xla_flags is not None:
  os.environ["XLA_FLAGS"] = args.xla_flags

import jax                      # noqa: E402  (after XLA_FLAGS is set)
import jax.numpy as jnp         # noqa: E402
import numpy as np              # noqa: E402
from jax import lax             # noqa: E402

import jaxnpg                   # noqa: E402
from jaxnpg.core.step import npg_update  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _alt                     # noqa: E402
import _common                  # noqa: E402


# --------------------------------------------------------------------- NumPy
def _np_logsumexp(x):
  m = np.max(x, axis=-1, keepdims=True)
  return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def numpy_loop(rewards, logp, tau, eta, iters):
  """Per-game loop; ``rewards (G, n, A...)``, ``logp[i] (G, A_i)``; float64."""
  num_games, n = rewards.shape[:2]
  specs = _alt.agent_specs(n, batch=False)
  coef = 1.0 - eta * tau
  out = [np.empty_like(lp) for lp in logp]
  for g in range(num_games):
    r = rewards[g]
    lp = [x[g].copy() for x in logp]
    for _ in range(iters):
      p = [np.exp(x) for x in lp]
      rbar = [np.einsum(specs[i], r[i], *(p[j] for j in range(n) if j != i))
              for i in range(n)]
      logits = [coef * x + eta * q for x, q in zip(lp, rbar)]
      lp = [s - _np_logsumexp(s) for s in logits]
    for i in range(n):
      out[i][g] = lp[i]
  return out


def make_numpy_batched(rewards, logp, tau, eta, iters):
  """All games at once; einsum paths precomputed once (outside the timing)."""
  n = rewards.shape[1]
  specs = _alt.agent_specs(n, batch=True)
  p0 = [np.exp(x) for x in logp]
  paths = [np.einsum_path(specs[i], rewards[:, i],
                          *(p0[j] for j in range(n) if j != i),
                          optimize="optimal")[0] for i in range(n)]
  slices = [np.ascontiguousarray(rewards[:, i]) for i in range(n)]
  coef = 1.0 - eta * tau

  def fn():
    lp = [x.copy() for x in logp]
    for _ in range(iters):
      p = [np.exp(x) for x in lp]
      rbar = [np.einsum(specs[i], slices[i], *(p[j] for j in range(n) if j != i),
                        optimize=paths[i]) for i in range(n)]
      logits = [coef * x + eta * q for x, q in zip(lp, rbar)]
      lp = [s - _np_logsumexp(s) for s in logits]
    return lp
  return fn


# ----------------------------------------------------------------------- JAX
def make_jax(method, rewards, logp, tau, eta, iters):
  """A zero-argument callable running ``iters`` steps on the batch, blocking."""
  n = rewards.shape[1]
  games = jaxnpg.NormalFormGame(rewards, num_agents=n)
  logp = tuple(logp)
  if method == "jaxnpg.run":
    def one(g, lp):
      return jaxnpg.run(g, tau, eta, iters, init=lp, record_every=iters).logp
  elif method == "jaxnpg.npg_step":
    def one(g, lp):
      body = lambda l, _: (jaxnpg.npg_step(g, l, tau, eta), None)
      return lax.scan(body, lp, None, length=iters)[0]
  else:
    marg = {"alt-noslice": _alt.noslice_marginals,
            "alt-unrolled": _alt.unrolled_marginals,
            "alt-unrolled-lse": _alt.unrolled_marginals,
            "alt-bcast": _alt.bcast_marginals,
            "alt-einsum": _alt.naive_marginals}[method]
    update = (_alt.unrolled_update if method == "alt-unrolled-lse"
              else npg_update)
    def one(g, lp):
      def body(l, _):
        probs = tuple(jnp.exp(x) for x in l)
        return update(l, marg(g.rewards, probs), tau, eta), None
      return lax.scan(body, lp, None, length=iters)[0]
  f = jax.jit(jax.vmap(one))
  return lambda: jax.block_until_ready(f(games, logp))


# ------------------------------------------------------------------ driver
def make_problem(num_games):
  """Random (3, 4, 5) games and random initial policies, float64 NumPy."""
  with jax.enable_x64(True):
    keys = jax.random.split(jax.random.key(0), num_games)
    games = jax.vmap(lambda k: jaxnpg.random_game(k, NUM_ACTIONS,
                                                  dtype=jnp.float64))(keys)
    pkeys = jax.random.split(jax.random.key(1), num_games)
    logp = jax.vmap(jaxnpg.random_policy)(pkeys, games)
    return np.asarray(games.rewards), [np.asarray(x) for x in logp]


def check_agreement(rewards, logp, tau, eta, methods, dtypes, games=4, iters=50):
  """Max |logp difference| of each method vs the NumPy loop (asserted small)."""
  r, lp = rewards[:games], [x[:games] for x in logp]
  ref = numpy_loop(r, lp, tau, eta, iters)
  diffs = {}
  for m in methods:
    if m == "numpy-loop":
      continue
    for dt in dtypes:
      if m == "numpy-batched":
        out = make_numpy_batched(r.astype(dt), [x.astype(dt) for x in lp], tau,
                                 eta, iters)()
      else:
        with _common.x64_context(dt):
          out = make_jax(m, jnp.asarray(r, dt), [jnp.asarray(x, dt) for x in lp],
                         tau, eta, iters)()
      d = max(float(np.max(np.abs(np.asarray(o, np.float64) - e)))
              for o, e in zip(out, ref))
      tol = 1e-10 if dt == "float64" else 1e-4
      assert d < tol, f"{m} ({dt}) disagrees with the NumPy loop: {d:.3g}"
      diffs[f"{m}/{dt}"] = d
  return diffs


def main():
  tau = args.tau
  eta = float(jaxnpg.paper_eta(tau, NUM_ACTIONS))
  num_needed = max(args.games, args.numpy_games, args.loop_games,
                   *(args.scaling or [0]))
  rewards, logp = make_problem(num_needed)
  print(f"jaxnpg NPG step throughput: games {NUM_ACTIONS}, tau={tau}, "
        f"eta={eta:.6g}; {jax.default_backend()} ({_common.cpu_model()}, "
        f"{os.cpu_count()} cpus, load {_common.LOAD_AT_START}), "
        f"jax {jax.__version__}")
  if os.environ.get("XLA_FLAGS"):
    print(f"XLA_FLAGS={os.environ['XLA_FLAGS']}")

  diffs = {}
  if not args.skip_check:
    diffs = check_agreement(rewards, logp, tau, eta, args.methods, args.dtypes)
    print("agreement with the NumPy loop after 50 steps (max |dlogp|): " +
          ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))

  # Build every case, then time them interleaved (one sample of each per round).
  cases = {}
  for m in args.methods:
    if m == "numpy-loop":
      g, t = args.loop_games, args.loop_iters
      r, lp = rewards[:g], [x[:g] for x in logp]
      cases[(m, "float64", g, t)] = (
          lambda r=r, lp=lp, t=t: numpy_loop(r, lp, tau, eta, t))
    elif m == "numpy-batched":
      g, t = args.numpy_games, args.numpy_iters
      for dt in args.dtypes:
        cases[(m, dt, g, t)] = make_numpy_batched(
            rewards[:g].astype(dt), [x[:g].astype(dt) for x in logp], tau, eta, t)
    else:
      g, t = args.games, args.iters
      for dt in args.dtypes:
        with _common.x64_context(dt):
          fn = make_jax(m, jnp.asarray(rewards[:g], dt),
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
               game_iters_per_cpu_s=work / s["cpu_s_median"])
    results.append(row)
    print(f"  {method:16s} {dtype:8s} {games:5d} games x {iters:5d} iters: "
          f"min {s['min_s'] * 1e3:8.1f} ms (cpu {s['cpu_s_of_min'] * 1e3:8.1f} ms), "
          f"median {s['median_s'] * 1e3:8.1f} ms, "
          f"{row['game_iters_per_s']:.3g} game-iters/s")

  scaling, scale_fns = [], {}
  for b in args.scaling:
    with _common.x64_context("float32"):
      scale_fns[b] = _common.in_context(
          make_jax("jaxnpg.run", jnp.asarray(rewards[:b], "float32"),
                   [jnp.asarray(x[:b], "float32") for x in logp], tau, eta,
                   args.iters), "float32")
  for b, timing in _common.time_interleaved(scale_fns, args.repeats).items():
    s = _common.summarize(timing)
    row = dict(games=b, iters=args.iters, **s,
               us_per_step=s["min_s"] / args.iters * 1e6,
               game_iters_per_s=b * args.iters / s["min_s"])
    scaling.append(row)
    print(f"  scaling jaxnpg.run float32 B={b:5d}: {row['us_per_step']:8.2f} us "
          f"per step, {row['game_iters_per_s']:.3g} game-iters/s")

  def baseline(method, key):
    for row in results:
      if row["method"] == method and row["dtype"] == "float64":
        return row[key]
    return None

  def ratio(v, base):
    return f"{v / base:.3g}x" if base else "-"

  loop = baseline("numpy-loop", "game_iters_per_s")
  batched = baseline("numpy-batched", "game_iters_per_s")
  loop_cpu = baseline("numpy-loop", "game_iters_per_cpu_s")
  batched_cpu = baseline("numpy-batched", "game_iters_per_cpu_s")
  headers = ["method", "dtype", "games x iters", "game-iters/s (min)",
             "game-iters/s (median)", "game-iters/CPU-s", "vs numpy-loop f64",
             "vs numpy-batched f64", "CPU-s ratio vs loop / batched"]
  rows = []
  for row in results:
    v, c = row["game_iters_per_s"], row["game_iters_per_cpu_s"]
    row["vs_numpy_loop"] = v / loop if loop else None
    row["vs_numpy_batched_f64"] = v / batched if batched else None
    row["cpu_vs_numpy_loop"] = c / loop_cpu if loop_cpu else None
    row["cpu_vs_numpy_batched_f64"] = c / batched_cpu if batched_cpu else None
    rows.append([
        row["method"], row["dtype"], f"{row['games']} x {row['iters']}",
        f"{v:.3g}", f"{row['game_iters_per_s_median']:.3g}", f"{c:.3g}",
        ratio(v, loop), ratio(v, batched),
        f"{ratio(c, loop_cpu)} / {ratio(c, batched_cpu)}"])
  print()
  print(_common.format_table(headers, rows))
  if scaling:
    print()
    print(_common.format_table(
        ["batch (games)", "us per step", "game-iters/s"],
        [[str(r["games"]), f"{r['us_per_step']:.2f}",
          f"{r['game_iters_per_s']:.3g}"] for r in scaling]))

  payload = dict(
      benchmark="npg_step", **_common.run_header(), machine=_common.machine_info(),
      config=dict(num_actions=NUM_ACTIONS, tau=tau, eta=eta,
                  games=args.games, iters=args.iters,
                  numpy_games=args.numpy_games, numpy_iters=args.numpy_iters,
                  loop_games=args.loop_games, loop_iters=args.loop_iters,
                  repeats=args.repeats, dtypes=args.dtypes, timing="wall clock, "
                  "1 warm-up call, min and median of repeats"),
      agreement_max_abs_dlogp=diffs, results=results, scaling=scaling)
  _common.write_json(args.out, payload)


if __name__ == "__main__":
  main()
