"""Every public path side by side, gaps recorded every iteration (issue 12's table).

One process, one problem: ``G`` random (3, 4, 5) games (the family's games,
``jaxnpg.family_game("random", 0, g, (3, 4, 5))``, and their random initial
policies), ``tau = 0.1``, ``eta = jaxnpg.paper_eta(tau)``, ``T`` NPG iterations,
float64, the QRE- and NE-gaps of every iterate recorded (``T + 1`` records per
game, as ``jaxnpg.run(..., record_every=1)``). Methods:

* ``numpy-batched``: all games at once, ``np.einsum`` over a leading batch axis
  (contraction paths precomputed), a hand-written logsumexp, the two gaps from the
  same marginals every iteration; float64; runs ``--numpy-iters`` iterations;
* ``numpy-loop``: the same per game, a Python loop over ``--loop-games`` games and
  ``--loop-iters`` iterations (reported per game-iteration);
* ``jit(vmap(run))``: ``jax.jit(jax.vmap(lambda g, lp: jaxnpg.run(g, tau, eta, T,
  init=lp, record_every=1)))``, what the README teaches;
* ``jit(vmap(run)), 1 core``: the same loop kept inside the caller's program
  (``jaxnpg.loop.run.run_loop(..., threads=False)``), which XLA:CPU runs on one core;
  by default a batch this large runs in one part per core on host threads;
* ``sweep(record_every=1)``: ``jaxnpg.sweep("random", num_games=G, taus=[tau],
  etas="paper", num_iters=T, record_every=1)``;
* ``sweep(default)``: the same with the default records (every ``T // 200``).

Each method is checked against the per-game NumPy loop first (QRE- and NE-gap
records of a few games), warmed up (compilation excluded), then timed
``--repeats`` times, interleaved. The table gives game-iterations per second (one
NPG step of one game) at the best and the median wall time, per CPU-second, and
the ratio to batched NumPy; then the fraction of the CPU's FMA peak
(``cores x clock x FMA/cycle``, clock from ``/proc/cpuinfo``) each JAX path
reaches with ``FMA_PER_GAME_ITERATION`` multiply-adds per game-iteration.
Writes ``benchmarks/results/paths.json``.

    python benchmarks/paths.py                  # ~3 minutes on 2 busy cores
    python benchmarks/paths.py --games 256 --iters 200 --repeats 2
    python benchmarks/paths.py --host-devices 2 # the sweep on 2 XLA CPU devices
"""

from __future__ import annotations

import argparse
import os
import re
import sys


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--games", type=int, default=1024)
  p.add_argument("--iters", type=int, default=1000)
  p.add_argument("--tau", type=float, default=0.1)
  p.add_argument("--numpy-iters", type=int, default=100,
                 help="iterations of numpy-batched (default 100)")
  p.add_argument("--loop-games", type=int, default=8)
  p.add_argument("--loop-iters", type=int, default=100)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--host-devices", type=int, default=1,
                 help="XLA CPU devices (--xla_force_host_platform_device_count)")
  p.add_argument("--fma-per-cycle", type=int, default=16,
                 help="float64 FMAs per cycle per core (default 16: two 512-bit "
                      "FMA pipes, AVX-512)")
  p.add_argument("--out", default=os.path.join(
      os.path.dirname(os.path.abspath(__file__)), "results", "paths.json"))
  return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.host_devices > 1:   # before jax is imported
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_force_host_platform_device_count="
                             f"{ARGS.host_devices}")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import jaxnpg  # noqa: E402
from jaxnpg.loop import run as _solve  # noqa: E402

SIZES = (3, 4, 5)
# One game's marginals (i: agent; contract the last other agent first), batch first.
SPECS = ("gabc,gc,gb->ga", "gabc,gc,ga->gb", "gabc,gb,ga->gc")
CELL_SPECS = ("abc,c,b->a", "abc,c,a->b", "abc,b,a->c")
# Multiply-adds of one NPG step of one (3, 4, 5) game, counted by hand: the
# marginals (agent 0: 60 + 12, agent 1: 60 + 12, agent 2: 60 + 20 = 224) and the
# update's (1 - eta tau) log p + eta q (2 per action, 24). Not counted: the 12
# exponentials and 3 logarithms of the update, the maxima, and the gaps (about 36
# more multiply-adds and as many exponentials again per recorded iteration).
FMA_PER_GAME_ITERATION = 224 + 24


# ------------------------------------------------------------------- NumPy
def _lse(x):
  m = np.max(x, axis=-1, keepdims=True)
  return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def _np_gaps(lp, p, q, tau):
  """``(qre, ne)`` over the leading axes, as ``jaxnpg.qre_gap``/``ne_gap``."""
  qre = ne = None
  for x, pi, qi in zip(lp, p, q):
    ne_i = np.maximum(np.max(qi, -1) - np.sum(pi * qi, -1), 0.0)
    z = qi / tau
    kl = np.sum(pi * (x - (z - _lse(z))), -1)
    qre_i = np.maximum(tau * kl, 0.0)
    qre = qre_i if qre is None else np.maximum(qre, qre_i)
    ne = ne_i if ne is None else np.maximum(ne, ne_i)
  return qre, ne


def numpy_loop(R, logp, tau, eta, iters, games):
  """Per-game loop; returns ``(qre, ne)`` records ``(games, iters + 1)``."""
  coef = 1.0 - eta * tau
  qre = np.empty((games, iters + 1))
  ne = np.empty((games, iters + 1))
  for g in range(games):
    lp = [x[g].copy() for x in logp]
    for k in range(iters + 1):
      p = [np.exp(x) for x in lp]
      q = [np.einsum(CELL_SPECS[i], R[g, i], *(p[j] for j in (2, 1, 0) if j != i))
           for i in range(3)]
      qre[g, k], ne[g, k] = _np_gaps(lp, p, q, tau)
      if k < iters:
        logits = [coef * x + eta * qi for x, qi in zip(lp, q)]
        lp = [s - _lse(s) for s in logits]
  return qre, ne


def make_numpy_batched(R, logp, tau, eta, iters):
  """All games at once, einsum paths precomputed; returns records ``(G, T+1)``."""
  coef = 1.0 - eta * tau
  slices = [np.ascontiguousarray(R[:, i]) for i in range(3)]
  p0 = [np.exp(x) for x in logp]
  paths = [np.einsum_path(SPECS[i], slices[i],
                          *(p0[j] for j in (2, 1, 0) if j != i),
                          optimize="optimal")[0] for i in range(3)]

  def fn():
    G = slices[0].shape[0]
    qre = np.empty((G, iters + 1))
    ne = np.empty((G, iters + 1))
    lp = [x.copy() for x in logp]
    for k in range(iters + 1):
      p = [np.exp(x) for x in lp]
      q = [np.einsum(SPECS[i], slices[i], *(p[j] for j in (2, 1, 0) if j != i),
                     optimize=paths[i]) for i in range(3)]
      qre[:, k], ne[:, k] = _np_gaps(lp, p, q, tau)
      if k < iters:
        logits = [coef * x + eta * qi for x, qi in zip(lp, q)]
        lp = [s - _lse(s) for s in logits]
    return qre, ne
  return fn


# --------------------------------------------------------------------- JAX
def make_vmap_run(games, init, tau, eta, iters):
  def one(g, lp):
    return jaxnpg.run(g, tau, eta, iters, init=lp, record_every=1)
  f = jax.jit(jax.vmap(one))
  return lambda: jax.block_until_ready(f(games, init))


def make_vmap_run_one_core(games, init, tau, eta, iters):
  """``jit(vmap(run))`` kept in the caller's program (no host threads): the
  batch-last loop on one core (``jaxnpg.loop.run.run_loop(..., threads=False)``)."""
  def one(g, lp):
    return _solve.run_loop(g, tau, eta, lp, num_iters=iters, record_every=1,
                       threads=False)
  f = jax.jit(jax.vmap(one))
  return lambda: jax.block_until_ready(f(games, init))


def make_sweep(G, tau, iters, record_every):
  def fn():
    return jaxnpg.sweep("random", num_actions=SIZES, num_games=G, taus=[tau],
                        etas="paper", num_iters=iters, record_every=record_every,
                        trajectory_points=0, quiet=True)
  return fn


# ------------------------------------------------------------ CPU peak
def cpu_clock_hz() -> tuple[float, str]:
  """The CPU clock: ``lscpu``'s max MHz where it has one, else ``/proc/cpuinfo``."""
  import subprocess
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True,
                         timeout=10).stdout
    m = re.search(r"^CPU max MHz:\s*([\d.]+)", out, re.M)
    if m and float(m.group(1)) > 0:
      return float(m.group(1)) * 1e6, "lscpu 'CPU max MHz'"
  except (OSError, subprocess.SubprocessError):
    pass
  try:
    with open("/proc/cpuinfo") as f:
      mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", f.read(),
                                          re.M)]
    if mhz:
      return max(mhz) * 1e6, "/proc/cpuinfo 'cpu MHz'"
  except OSError:
    pass
  return float("nan"), "unknown"


def main():
  args = ARGS
  G, T, tau = args.games, args.iters, args.tau
  with jax.enable_x64(True):   # in float64, as the sweep computes it
    eta = float(jaxnpg.paper_eta(tau, SIZES))
  info = _common.machine_info()
  cores = info["affinity_cpus"] or info["cpu_count"]
  clock, clock_src = cpu_clock_hz()
  peak = cores * clock * args.fma_per_cycle
  print(f"# jaxnpg paths: random {SIZES}, {G} games x {T} iterations, tau={tau}, "
        f"eta={eta:.6g}, float64, gaps every iteration; {info['cpu_model']}, "
        f"{cores} cores at {clock / 1e9:.3f} GHz ({clock_src}), "
        f"{jax.device_count()} XLA CPU device(s), load "
        f"{info['load_average_1m_start']:.2f}; jax {jax.__version__}", flush=True)

  with jax.enable_x64(True):
    games, init = jax.vmap(lambda i: jaxnpg.family_game("random", 0, i, SIZES))(
        jnp.arange(G))
    R = np.asarray(games.rewards, np.float64)
    logp = [np.asarray(x, np.float64) for x in init]

    # Agreement: the gap records of a few games, every path against the loop.
    k, n = min(4, G), 50
    ref_q, ref_n = numpy_loop(R, logp, tau, eta, n, k)
    bq, bn = make_numpy_batched(R[:k], [x[:k] for x in logp], tau, eta, n)()
    sub = jax.tree_util.tree_map(lambda x: x[:k], (games, init))
    rr = make_vmap_run(*sub, tau, eta, n)()
    sw = jaxnpg.sweep("random", num_actions=SIZES, num_games=k, taus=[tau],
                      etas="paper", num_iters=n, record_every=1,
                      trajectory_points=n + 1, quiet=True)
    diffs = {
        "numpy-batched": max(np.abs(bq - ref_q).max(), np.abs(bn - ref_n).max()),
        "jit(vmap(run))": max(np.abs(np.asarray(rr.qre_gap) - ref_q).max(),
                              np.abs(np.asarray(rr.ne_gap) - ref_n).max()),
        "sweep": max(np.abs(sw.qre_gap_trajectory[:, 0, 0] - ref_q).max(),
                     np.abs(sw.ne_gap_trajectory[:, 0, 0] - ref_n).max()),
    }
    diffs = {m: float(d) for m, d in diffs.items()}
    print("agreement with the per-game NumPy loop (max |gap difference| over "
          f"{k} games x {n + 1} records): " +
          ", ".join(f"{m} {d:.1e}" for m, d in diffs.items()), flush=True)
    assert all(d < 1e-10 for d in diffs.values()), diffs

    loop_games = min(args.loop_games, G)
    fns = {
        "numpy-batched": make_numpy_batched(R, logp, tau, eta, args.numpy_iters),
        "numpy-loop": (lambda: numpy_loop(R, logp, tau, eta, args.loop_iters,
                                          loop_games)),
        "jit(vmap(run))": make_vmap_run(games, init, tau, eta, T),
        "jit(vmap(run)), 1 core": make_vmap_run_one_core(games, init, tau, eta,
                                                         T),
        "sweep(record_every=1)": make_sweep(G, tau, T, 1),
        "sweep(default)": make_sweep(G, tau, T, None),
    }
    work = {"numpy-batched": G * args.numpy_iters,
            "numpy-loop": loop_games * args.loop_iters,
            "jit(vmap(run))": G * T, "jit(vmap(run)), 1 core": G * T,
            "sweep(record_every=1)": G * T,
            "sweep(default)": G * T}
    attrs = {name: fns[name]().attrs for name in fns if name.startswith("sweep")}
    timing = _common.time_interleaved(fns, args.repeats, warmup=1)

  results = _common.rates(timing, work)
  base = results["numpy-batched"]
  rows = []
  for name, r in results.items():
    r["vs_numpy_batched"] = r["rate_best"] / base["rate_best"]
    r["vs_numpy_batched_median"] = r["rate_median"] / base["rate_median"]
    jax_path = not name.startswith("numpy")
    r["fma_fraction_of_peak"] = (r["rate_best"] * FMA_PER_GAME_ITERATION / peak
                                 if jax_path else None)
    rows.append([name, f"{work[name]}", f"{r['rate_best']:.3g}",
                 f"{r['rate_median']:.3g}", f"{r['rate_per_cpu_s']:.3g}",
                 f"{r['vs_numpy_batched']:.2f}x",
                 f"{r['vs_numpy_batched_median']:.2f}x",
                 (f"{100 * r['fma_fraction_of_peak']:.1f}%" if jax_path
                  else "-")])
  print(_common.format_table(
      ["method", "game-its timed", "game-it/s (best)", "(median)", "per CPU-s",
       "vs batched NumPy", "(median)", "of FMA peak"], rows))
  for name, a in attrs.items():
    print(f"{name}: record_every {a['record_every']}, {a['num_chunks']} chunk(s) "
          f"x {a['chunk_games']} games, {a['threads']} thread(s), blocks of "
          f"{a['block_games']}, {a['num_devices']} device(s), method "
          f"{a['method']}")
  print(f"FMA peak: {cores} cores x {clock / 1e9:.3f} GHz x {args.fma_per_cycle} "
        f"FMA/cycle = {peak:.3g} FMA/s; counted {FMA_PER_GAME_ITERATION} FMA per "
        "game-iteration")
  _common.write_json(args.out, {
      "header": _common.run_header(), "machine": info,
      "problem": {"family": "random", "num_actions": SIZES, "games": G,
                  "iters": T, "tau": tau, "eta": eta, "dtype": "float64",
                  "numpy_iters": args.numpy_iters, "loop_games": loop_games,
                  "loop_iters": args.loop_iters, "repeats": args.repeats},
      "agreement_max_abs_gap_diff": diffs,
      "peak": {"cores": cores, "clock_hz": clock, "clock_source": clock_src,
               "fma_per_cycle": args.fma_per_cycle, "fma_per_s": peak,
               "fma_per_game_iteration": FMA_PER_GAME_ITERATION},
      "sweep_attrs": {n: {k: v for k, v in a.items() if k != "taus"}
                      for n, a in attrs.items()},
      "results": results})


if __name__ == "__main__":
  main()
