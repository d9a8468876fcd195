"""Phase-sweep throughput: the random (3, 4, 5) family over games x tau.

Game-iterations per second (one NPG step of one (game, tau) cell = one
game-iteration) of

* ``numpy-loop``: a Python loop over cells, ``np.einsum`` marginals and a
  hand-written logsumexp (float64); run on a few cells and fewer iterations;
* ``numpy-batched``: all cells at once, ``np.einsum`` over leading (game, tau)
  axes with precomputed contraction paths (float64); run for fewer iterations;
* ``jax-plain``: ``jit(vmap(vmap(scan)))`` of ``npg_update(game.payoffs(...))``,
  the one-game step vmapped over games and tau, no gap records;
* ``jaxnpg.sweep``: the library call (the batch-last loop, one part per core),
  with its gap records (every
  ``num_iters // 200`` steps), per-cell summaries and the copy to the host.

Default sizes: on CPU 1024 games x 16 tau x 1000 iterations in float64; on a GPU
4096 games x 64 tau x 1000 iterations in float32 (``--gpu-sizes`` forces them).
Every method is warmed up (compilation excluded) and timed ``--repeats`` times,
interleaved; the table shows the rate at the best wall time and per second of
process CPU time (all threads). ``--host-devices N`` splits the CPU into N XLA
devices (``--xla_force_host_platform_device_count``) and the sweep shards over them.
Writes ``benchmarks/results/sweep-<platform>.json``.

    python benchmarks/sweep.py                 # CPU defaults
    python benchmarks/sweep.py --host-devices 2
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--games", type=int, default=None)
  p.add_argument("--taus", type=int, default=None)
  p.add_argument("--iters", type=int, default=1000)
  p.add_argument("--dtype", choices=("float32", "float64"), default=None)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--host-devices", type=int, default=1)
  p.add_argument("--gpu-sizes", action="store_true")
  p.add_argument("--loop-cells", type=int, default=8,
                 help="cells the per-game NumPy loop runs (default: 8)")
  p.add_argument("--loop-iters", type=int, default=200)
  p.add_argument("--batched-iters", type=int, default=50)
  p.add_argument("--skip-plain", action="store_true")
  p.add_argument("--out", default=None)
  return p.parse_args(argv)


ARGS = parse_args()
if ARGS.host_devices > 1:  # must happen before jax is imported
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             f" --xla_force_host_platform_device_count="
                             f"{ARGS.host_devices}")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import jaxnpg  # noqa: E402
from jaxnpg.core.step import npg_update  # noqa: E402

SIZES = (3, 4, 5)
SPECS = ("gpb,gpc,gabc->gpa", "gpa,gpc,gabc->gpb", "gpa,gpb,gabc->gpc")
CELL_SPECS = ("b,c,abc->a", "a,c,abc->b", "a,b,abc->c")


def _lse(x):
  m = np.max(x, axis=-1, keepdims=True)
  return m + np.log(np.sum(np.exp(x - m), axis=-1, keepdims=True))


def numpy_loop(R, logp, taus, etas, iters, cells):
  """Per-cell loop over the first ``cells`` (game, tau) cells; float64."""
  out = []
  for c in range(cells):
    g, t = divmod(c, len(taus))
    coef, eta = 1.0 - etas[t] * taus[t], etas[t]
    lp = [x[g].copy() for x in logp]
    for _ in range(iters):
      p = [np.exp(x) for x in lp]
      q = [np.einsum(CELL_SPECS[i], *(p[j] for j in range(3) if j != i), R[g, i])
           for i in range(3)]
      logits = [coef * x + eta * qi for x, qi in zip(lp, q)]
      lp = [s - _lse(s) for s in logits]
    out.append(lp)
  return out


def make_numpy_batched(R, logp, taus, etas, iters):
  """All (game, tau) cells at once; einsum paths precomputed (float64)."""
  G, P = R.shape[0], len(taus)
  lp0 = [np.broadcast_to(x[:, None, :], (G, P, x.shape[1])).copy() for x in logp]
  coef = (1.0 - etas * taus)[None, :, None]
  eta = etas[None, :, None]
  slices = [np.ascontiguousarray(R[:, i]) for i in range(3)]
  p0 = [np.exp(x) for x in lp0]
  paths = [np.einsum_path(SPECS[i], *(p0[j] for j in range(3) if j != i),
                          slices[i], optimize="optimal")[0] for i in range(3)]

  def fn():
    lp = [x.copy() for x in lp0]
    for _ in range(iters):
      p = [np.exp(x) for x in lp]
      q = [np.einsum(SPECS[i], *(p[j] for j in range(3) if j != i), slices[i],
                     optimize=paths[i]) for i in range(3)]
      logits = [coef * x + eta * qi for x, qi in zip(lp, q)]
      lp = [s - _lse(s) for s in logits]
    return lp
  return fn


def make_plain(games, init, taus, etas, iters):
  def cell(game, lp, tau, eta):
    def body(lp, _):
      return npg_update(lp, game.payoffs(lp), tau, eta), None
    return lax.scan(body, lp, None, length=iters)[0]
  f = jax.jit(jax.vmap(jax.vmap(cell, (None, None, 0, 0)), (0, 0, None, None)))
  return lambda: jax.block_until_ready(f(games, init, taus, etas))


def main():
  gpu = jax.default_backend() != "cpu" or ARGS.gpu_sizes
  G = ARGS.games or (4096 if gpu else 1024)
  P = ARGS.taus or (64 if gpu else 16)
  dtype = ARGS.dtype or ("float32" if gpu else "float64")
  iters = ARGS.iters
  info = _common.machine_info()
  print(f"# jaxnpg sweep benchmark: random {SIZES} family, {G} games x {P} tau x "
        f"{iters} iterations, {dtype}, {jax.device_count()} "
        f"{jax.default_backend()} device(s): {info['cpu_model']}", flush=True)
  taus64 = np.geomspace(1e-2, 1e1, P)
  etas64 = np.asarray(jaxnpg.paper_eta(taus64, SIZES), dtype=np.float64)
  rows, results = [], {}
  with jax.enable_x64(dtype == "float64"):
    keys = np.arange(G)
    games, init = jax.vmap(lambda i: jaxnpg.family_game("random", 0, i, SIZES))(
        jnp.asarray(keys))
    R = np.asarray(games.rewards, dtype=np.float64)
    logp = [np.asarray(x, dtype=np.float64) for x in init]

    def sweep():
      return jaxnpg.sweep("random", num_actions=SIZES, num_games=G, taus=taus64,
                          etas="paper", num_iters=iters, quiet=True)
    t_first = _common.time_call(sweep, 1, warmup=0)[0][0]
    res = sweep()
    print(f"sweep: first call {t_first:.1f}s incl. compile "
          f"{res.attrs['compile_seconds']:.1f}s; chunks {res.attrs['num_chunks']}"
          f" x {res.attrs['chunk_games']} games, blocks of "
          f"{res.attrs['block_games']}, {res.attrs['num_devices']} device(s)",
          flush=True)
    fns = {"jaxnpg.sweep": sweep}
    if not ARGS.skip_plain:
      fns["jax-plain"] = make_plain(games, init, jnp.asarray(taus64, dtype),
                                    jnp.asarray(etas64, dtype), iters)
      fns["jax-plain"]()   # compile outside the timing
    batched = make_numpy_batched(R, logp, taus64, etas64, ARGS.batched_iters)
    fns["numpy-batched"] = batched
    loop_cells = min(ARGS.loop_cells, G * P)
    fns["numpy-loop"] = lambda: numpy_loop(R, logp, taus64, etas64,
                                           ARGS.loop_iters, loop_cells)
    timing = _common.time_interleaved(fns, ARGS.repeats, warmup=0)
  work = {"jaxnpg.sweep": G * P * iters, "jax-plain": G * P * iters,
          "numpy-batched": G * P * ARGS.batched_iters,
          "numpy-loop": loop_cells * ARGS.loop_iters}
  results.update(_common.rates(timing, work))
  base_loop = results["numpy-loop"]["rate_best"]
  base_batched = results["numpy-batched"]["rate_best"]
  for name, r in results.items():
    rows.append([name, f"{r['rate_best']:.3g}", f"{r['rate_median']:.3g}",
                 f"{r['rate_per_cpu_s']:.3g}",
                 f"{r['rate_best'] / base_loop:.0f}x",
                 f"{r['rate_best'] / base_batched:.1f}x"])
  print(_common.format_table(
      ["method", "game-it/s (best)", "(median)", "per CPU-s", "vs loop",
       "vs batched"], rows))
  out = ARGS.out or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "results", f"sweep-{jax.default_backend()}.json")
  _common.write_json(out, {
      "header": _common.run_header(), "machine": info,
      "problem": {"family": "random", "num_actions": SIZES, "games": G, "taus": P,
                  "iters": iters, "dtype": dtype,
                  "sweep_attrs": {k: v for k, v in res.attrs.items()
                                  if k not in ("taus",)}},
      "results": results})


if __name__ == "__main__":
  main()
