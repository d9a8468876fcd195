"""GPU throughput: ``jaxnpg.sweep`` against a plain ``jit(vmap(scan))`` NPG loop.

One command for a GPU machine (issue 12, "ready for the GPU"):

    python benchmarks/gpu.py               # on a GPU: 4096 games x 64 tau x 1000 it
    python benchmarks/gpu.py --cpu-size    # the reduced size, e.g. to smoke-test

It runs the random (3, 4, 5) family, the paper's step rule
(``eta = jaxnpg.paper_eta(tau)``), float32, ``G`` games x ``P`` entropy weights
(``tau`` log-spaced over [1e-2, 10]) x ``T`` iterations, in one process, through

* ``jaxnpg.sweep``: the library call with its defaults (gap records every
  ``T // 200`` steps, per-cell summaries, the copy of the results to the host);
* ``jax-plain``: an NPG loop written here in plain JAX (``einsum`` marginals,
  ``logsumexp`` update, ``lax.scan`` over the iterations), ``jax.jit`` of a
  ``jax.vmap`` over games of a ``jax.vmap`` over tau, on the same games and initial
  policies; it records nothing and returns the final log-policies.

and prints game-iterations per second (one NPG step of one (game, tau) cell) of
both, their ratio, and each as a fraction of the device's FP32 FMA rate measured
here, the higher of two kernels (the table says which):

* an FMA chain: ``CHAINS`` independent arrays each updated ``x <- x * a + b``
  ``DEPTH`` times inside one jitted, fused elementwise kernel (one read and one
  write per element, so it is compute bound; one update counts as one FMA, which
  is what the compiler emits when it contracts the multiply-add). On a GPU the
  threads hide the FMA latency; on a CPU XLA runs each chain as one dependent
  sequence per vector, so it is latency bound and far below peak;
* a float32 matmul at ``precision=HIGHEST`` (no TF32): ``n**3`` FMAs.

The fraction uses ``FMA_PER_GAME_ITERATION`` (see below): the multiply-adds one NPG
step of one (3, 4, 5) game needs, counted by hand.

On a GPU each method runs once after compiling (``jax-plain`` is compiled ahead of
time; the sweep reports its own time excluding compilation; ``--repeats`` for
more), so the whole script stays within about 3 minutes even at plain JAX's ~3e9
game-iterations/s (about 85 s for the plain loop alone); elsewhere each runs 3
times and the best counts. Without a GPU, or with ``--cpu-size``, it runs a
reduced size (256 games x 8 tau x 200 iterations) so that it can be smoke-tested.
Writes ``benchmarks/results/gpu-<platform>.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import jaxnpg  # noqa: E402

SIZES = (3, 4, 5)
FULL = {"games": 4096, "taus": 64, "iters": 1000}
REDUCED = {"games": 256, "taus": 8, "iters": 200}

# Multiply-adds of one NPG step of one (3, 4, 5) game, counted by hand:
#   marginals, contracting the last remaining agent first:
#     agent 0: 60 (sum over c) + 12 (over b) = 72; agent 1: 60 + 12 = 72;
#     agent 2: 60 (over a) + 20 (over b) = 80                            -> 224
#   update: (1 - eta tau) log p + eta q per action (a mul and an FMA)    ->  24
# Exponentials, logarithms, maxima and the gap records are not counted (with an
# exp at ~10 FMA-slots the 24 exps and 3 logs per step would add ~270 slots).
FMA_PER_GAME_ITERATION = 224 + 24

CHAINS = 8      # independent FMA chains per element (instruction-level parallelism)
DEPTH = 256     # FMAs per chain per kernel call


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--games", type=int, default=None,
                 help=f"games (default {FULL['games']} on a GPU, "
                      f"{REDUCED['games']} otherwise)")
  p.add_argument("--taus", type=int, default=None,
                 help=f"tau values (default {FULL['taus']} on a GPU, "
                      f"{REDUCED['taus']} otherwise)")
  p.add_argument("--iters", type=int, default=None,
                 help=f"iterations (default {FULL['iters']} on a GPU, "
                      f"{REDUCED['iters']} otherwise)")
  p.add_argument("--cpu-size", action="store_true",
                 help="the reduced size even on a GPU (automatic without one)")
  p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
  p.add_argument("--fma-elements", type=int, default=None,
                 help="elements per chain of the FMA kernel (default 2**22 on a "
                      "GPU, 2**14 otherwise)")
  p.add_argument("--repeats", type=int, default=None,
                 help="timed calls per method, best kept (default 1 on a GPU: "
                      "the full size takes a minute or more per call; 3 otherwise)")
  p.add_argument("--skip-matmul", action="store_true",
                 help="skip the reference float32 matmul")
  p.add_argument("--check-cells", type=int, default=64,
                 help="cells whose final QRE-gap the two methods must agree on")
  p.add_argument("--out", default=None)
  return p.parse_args(argv)


# ------------------------------------------------------------------ plain JAX
def _logsumexp(x):
  m = jnp.max(x)
  return m + jnp.log(jnp.sum(jnp.exp(x - m)))


def plain_npg(rewards, logp, tau, eta, *, iters):
  """``iters`` NPG steps of one (3, 4, 5) game at one (tau, eta); plain JAX.

  ``rewards``: ``(3, 3, 4, 5)``; ``logp``: three log-policies. Returns the final
  log-policies.
  """
  coef = 1 - eta * tau

  def step(lp, _):
    p0, p1, p2 = (jnp.exp(x) for x in lp)
    q = (jnp.einsum("abc,b,c->a", rewards[0], p1, p2),
         jnp.einsum("abc,a,c->b", rewards[1], p0, p2),
         jnp.einsum("abc,a,b->c", rewards[2], p0, p1))
    logits = tuple(coef * x + eta * qi for x, qi in zip(lp, q))
    return tuple(x - _logsumexp(x) for x in logits), None

  return lax.scan(step, tuple(logp), None, length=iters)[0]


def make_plain(games, init, taus, etas, iters):
  """``jit(vmap_games(vmap_tau(scan)))``, compiled ahead of time."""
  cell = lambda r, lp, t, e: plain_npg(r, lp, t, e, iters=iters)
  f = jax.jit(jax.vmap(jax.vmap(cell, (None, None, 0, 0)), (0, 0, None, None)))
  args = (games.rewards, tuple(init), taus, etas)
  t0 = time.perf_counter()
  compiled = f.lower(*args).compile()
  return (lambda: jax.block_until_ready(compiled(*args))), time.perf_counter() - t0


# ---------------------------------------------------------------- peak rates
def measure_fma_rate(elements, dtype):
  """FMAs per second of a fused elementwise FMA-chain kernel (best of 5)."""
  def kernel(xs):
    out = []
    for c, x in enumerate(xs):
      a = jnp.asarray(1.0 - 2.0 ** -(10 + c), dtype)   # |a| < 1: stays finite
      b = jnp.asarray(2.0 ** -(12 + c), dtype)
      for _ in range(DEPTH):
        x = x * a + b
      out.append(x)
    return tuple(out)
  f = jax.jit(kernel)
  xs = tuple(jnp.full((elements,), 0.5 + 0.01 * c, dtype) for c in range(CHAINS))
  compiled = f.lower(xs).compile()
  jax.block_until_ready(compiled(xs))
  best = math.inf
  for _ in range(5):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(xs))
    best = min(best, time.perf_counter() - t0)
  return elements * CHAINS * DEPTH / best, best


def measure_matmul_rate(n, dtype):
  """FMAs per second of an ``n x n`` matmul at ``precision=HIGHEST`` (best of 5)."""
  key = jax.random.key(0)
  a = jax.random.normal(key, (n, n), dtype)
  b = jax.random.normal(jax.random.fold_in(key, 1), (n, n), dtype)
  f = jax.jit(lambda a, b: jnp.matmul(a, b, precision=lax.Precision.HIGHEST))
  compiled = f.lower(a, b).compile()
  jax.block_until_ready(compiled(a, b))
  best = math.inf
  for _ in range(5):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(a, b))
    best = min(best, time.perf_counter() - t0)
  return n ** 3 / best, best


# ---------------------------------------------------------------------- main
def main(argv=None):
  args = parse_args(argv)
  gpu = jax.default_backend() == "gpu"
  size = FULL if gpu and not args.cpu_size else REDUCED
  G = args.games or size["games"]
  P = args.taus or size["taus"]
  T = args.iters or size["iters"]
  dtype = args.dtype
  repeats = args.repeats or (1 if gpu else 3)
  fma_elements = args.fma_elements or (1 << 22 if gpu else 1 << 14)
  info = _common.machine_info()
  dev = jax.devices()[0]
  print(f"# jaxnpg GPU benchmark: random {SIZES} family, {G} games x {P} tau x "
        f"{T} iterations, {dtype}, paper step rule; {jax.device_count()} "
        f"{jax.default_backend()} device(s): {dev.device_kind}; host "
        f"{info['cpu_model']} ({info['cpu_count']} CPUs); jax {jax.__version__}",
        flush=True)
  if not gpu:
    print("# no GPU: reduced size (a smoke test, not a GPU measurement)",
          flush=True)
  taus64 = np.geomspace(1e-2, 1e1, P)
  with jax.enable_x64(True):   # in float64, as the sweep computes them
    etas64 = np.asarray(jaxnpg.paper_eta(taus64, SIZES), dtype=np.float64)
  work = G * P * T
  results = {}
  t_start = time.perf_counter()
  with _common.x64_context(dtype):
    # The FP32 (or FP64) FMA rate of this device.
    fma_rate, fma_s = measure_fma_rate(fma_elements, dtype)
    print(f"fma-chain kernel: {fma_rate:.3g} FMA/s ({CHAINS} chains x {DEPTH} "
          f"FMAs x {fma_elements} elements in {fma_s * 1e3:.2f} ms)", flush=True)
    matmul_rate = None
    if not args.skip_matmul:
      n = 8192 if gpu else 512
      matmul_rate, mm_s = measure_matmul_rate(n, dtype)
      print(f"matmul {n}^3 (precision HIGHEST): {matmul_rate:.3g} FMA/s "
            f"({mm_s * 1e3:.1f} ms)", flush=True)

    # jaxnpg.sweep; its rate excludes compilation (the first call compiles,
    # later ones reuse the compiled chunk).
    sweep_rate, first_wall = 0.0, None
    for _ in range(repeats):
      t0 = time.perf_counter()
      res = jaxnpg.sweep("random", num_actions=SIZES, num_games=G, taus=taus64,
                         etas="paper", num_iters=T, quiet=True)
      wall = time.perf_counter() - t0
      if first_wall is None:
        first_wall, a = wall, res.attrs
      sweep_rate = max(sweep_rate, res.attrs["game_iterations_per_second"])
    wall = first_wall
    results["jaxnpg.sweep"] = {
        "rate": sweep_rate, "seconds_excl_compile": work / sweep_rate,
        "compile_seconds": a["compile_seconds"], "wall_seconds_incl_compile": wall,
        "num_chunks": a["num_chunks"], "chunk_games": a["chunk_games"],
        "block_games": a["block_games"], "num_devices": a["num_devices"],
        "record_every": a["record_every"], "method": a["method"]}
    print(f"jaxnpg.sweep: {wall:.1f}s wall incl. compile {a['compile_seconds']:.1f}s;"
          f" {a['num_chunks']} chunk(s) of {a['chunk_games']} games, method "
          f"{a['method']}, gaps every {a['record_every']} iterations", flush=True)

    # The plain loop on the same games and starts, once after compiling.
    games, init = jax.vmap(lambda i: jaxnpg.family_game("random", 0, i, SIZES))(
        jnp.arange(G))
    run_plain, plain_compile = make_plain(
        games, init, jnp.asarray(taus64, dtype), jnp.asarray(etas64, dtype), T)
    plain_s = float("inf")
    for _ in range(repeats):
      t0 = time.perf_counter()
      final = run_plain()
      plain_s = min(plain_s, time.perf_counter() - t0)
    plain_rate = work / plain_s
    results["jax-plain"] = {"rate": plain_rate, "seconds": plain_s,
                            "compile_seconds": plain_compile}

    # Same work: the plain loop's final QRE-gap matches the sweep's on a few cells.
    cells = min(args.check_cells, G * P)
    gi, ti = np.divmod(np.arange(cells), P)
    pick = lambda x: x[gi, ti]
    lp_c = tuple(pick(x) for x in final)
    games_c = jax.tree_util.tree_map(lambda x: x[gi], games)
    gap_plain = np.asarray(jax.vmap(jaxnpg.qre_gap)(
        games_c, lp_c, jnp.asarray(taus64[ti], dtype)))
    gap_sweep = np.asarray(res.qre_gap)[gi, ti, 0]
    scale = 1.0 + np.abs(gap_sweep)
    check = float(np.max(np.abs(gap_plain - gap_sweep) / scale))
  total = time.perf_counter() - t_start

  peak_rate, peak_kind = fma_rate, "fma-chain"
  if matmul_rate and matmul_rate > fma_rate:
    peak_rate, peak_kind = matmul_rate, "matmul"
  rows = []
  for name, r in results.items():
    rate = r["rate"]
    r["game_iterations"] = work
    r["fma_per_s"] = rate * FMA_PER_GAME_ITERATION
    r["fraction_of_fma_chain_rate"] = r["fma_per_s"] / fma_rate
    r["fraction_of_matmul_rate"] = (r["fma_per_s"] / matmul_rate
                                    if matmul_rate else None)
    r["fraction_of_measured_fma_rate"] = r["fma_per_s"] / peak_rate
    r["vs_plain"] = rate / plain_rate
    rows.append([name, f"{rate:.3g}", f"{rate / plain_rate:.2f}x",
                 f"{r['fma_per_s']:.3g}",
                 f"{100 * r['fraction_of_measured_fma_rate']:.2f}%"])
  print(_common.format_table(
      ["method", "game-it/s", "vs jax-plain", "FMA/s",
       f"of measured {dtype} FMA rate ({peak_kind}, {peak_rate:.3g}/s)"], rows))
  print(f"jaxnpg.sweep / jax-plain = {sweep_rate / plain_rate:.2f}; "
        f"FMA per game-iteration counted: {FMA_PER_GAME_ITERATION}; "
        f"final QRE-gap agreement on {cells} cells: max |diff|/(1+|gap|) = "
        f"{check:.2g}{'' if check < 1e-3 else '  (MISMATCH)'}; total {total:.1f}s")
  out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "results", f"gpu-{jax.default_backend()}.json")
  _common.write_json(out, {
      "header": _common.run_header(), "machine": info,
      "problem": {"family": "random", "num_actions": SIZES, "games": G, "taus": P,
                  "iters": T, "dtype": dtype, "eta_rule": "paper", "repeats": repeats,
                  "reduced_size": size is REDUCED and not (
                      args.games or args.taus or args.iters)},
      "peak": {"fma_chain_fma_per_s": fma_rate, "fma_chain_chains": CHAINS,
               "fma_chain_depth": DEPTH, "fma_chain_elements": fma_elements,
               "matmul_highest_fma_per_s": matmul_rate,
               "measured_fma_per_s": peak_rate, "measured_by": peak_kind},
      "fma_per_game_iteration": FMA_PER_GAME_ITERATION,
      "check_max_rel_qre_gap_diff": check, "total_seconds": total,
      "results": results})
  return 0 if check < 1e-3 else 1


if __name__ == "__main__":
  sys.exit(main())
