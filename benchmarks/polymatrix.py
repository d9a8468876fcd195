"""Polymatrix games: dense vs native on the 5-agent ring, and a 1000-agent ring.

Three measurements, all batched over tau with ``jax.jit(jax.vmap(lambda t:
jaxnpg.run(game, t, eta, T, init=init, record_every=R)))`` (the call behind
``jaxnpg run`` and the paper figures), every agent with 10 actions, paper step size
``eta = 1/(2 (tau + 2 sum A_i))`` per tau on the 5-agent ring (a constant 0.05 on
the large ring, where the paper rule would be ~2.5e-5):

1. ``ring5``: the paper's Fig. 2 game (5 agents on a ring) as a
   :class:`jaxnpg.PolymatrixGame` and as its dense ``to_dense()`` form
   (``5 * 10**5`` numbers), 7 tau values. Iterations per second and compile time of
   each, interleaved, and the largest difference between their gap trajectories.
2. ``ring1000``: a 1000-agent ring (2000 directed edges; a dense tensor would hold
   ``1000 * 10**1000`` numbers), 8 tau values: compile time and iterations/s.
3. ``compile``: compile time of the same call against the number of agents, with
   the library's agent stacking (``jaxnpg.core.stacking``) and with it switched off
   (``MIN_AGENTS`` raised), which is how ``npg_update`` and the gaps ran before:
   one set of XLA kernels per agent.

Usage:
  python benchmarks/polymatrix.py                 # about 2 to 4 minutes on 2 cores
  python benchmarks/polymatrix.py --agents 1000 --taus 8 --iters 2000
  python benchmarks/polymatrix.py --compile-agents 10,50,100,200 --no-stack-max 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402
import jaxnpg  # noqa: E402
from jaxnpg.core import stacking as _stacking  # noqa: E402

FIG2_TAUS = (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--actions", type=int, default=10)
  p.add_argument("--iters", type=int, default=2000,
                 help="NPG iterations per timed call (default 2000)")
  p.add_argument("--record-every", type=int, default=10)
  p.add_argument("--agents", type=int, default=1000,
                 help="agents of the large ring (default 1000)")
  p.add_argument("--taus", type=int, default=8,
                 help="tau values for the large ring (default 8)")
  p.add_argument("--large-iters", type=int, default=500,
                 help="NPG iterations per timed call on the large ring")
  p.add_argument("--large-eta", type=float, default=0.05,
                 help="constant step size on the large ring (the paper rule "
                 "1/(2(tau + 2 sum A_i)) is ~2.5e-5 at 1000 agents)")
  p.add_argument("--compile-agents", default="10,100,1000",
                 help="agent counts for the compile-time table")
  p.add_argument("--no-stack-max", type=int, default=100,
                 help="largest agent count compiled with stacking off (it grows "
                 "fast: ~7 minutes at 1000 agents on 2 busy cores)")
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
  p.add_argument("--out", default="benchmarks/results/polymatrix.json")
  return p.parse_args(argv)


def batched_run(game, taus, iters, record_every, eta=None):
  """``jit(vmap(run))`` over tau, the init shared; returns (fn, args).

  ``eta``: a constant step size, or None for the paper rule per tau.
  """
  init = jaxnpg.random_policy(jax.random.key(1), game)
  taus = jnp.asarray(taus, game.dtype)
  if eta is None:
    etas = jaxnpg.paper_eta(taus, game.num_actions).astype(game.dtype)
  else:
    etas = jnp.full_like(taus, eta)
  fn = jax.jit(jax.vmap(
      lambda t, e, lp: jaxnpg.run(game, t, e, iters, init=lp,
                                  record_every=record_every),
      in_axes=(0, 0, None)))
  return fn, (taus, etas, init)


def compile_seconds(fn, args):
  """Trace + lower + compile time of ``fn(*args)`` (seconds)."""
  t0 = time.perf_counter()
  fn.lower(*args).compile()
  return time.perf_counter() - t0


def ring(n, a, dtype):
  return jaxnpg.network_zero_sum_game(jax.random.key(0), "ring", (a,) * n,
                                      dtype=dtype)


def bench_ring5(args, dtype):
  poly = ring(5, args.actions, dtype)
  dense = poly.to_dense()
  out, fns = {}, {}
  for name, game in (("polymatrix", poly), ("dense", dense)):
    fn, fargs = batched_run(game, FIG2_TAUS, args.iters, args.record_every)
    out[name] = {"compile_s": compile_seconds(fn, fargs),
                 "numbers_stored": int(np.prod(jax.tree_util.tree_leaves(
                     game)[0].shape))}
    fns[name] = (lambda fn=fn, fargs=fargs: jax.block_until_ready(fn(*fargs)))
  res_p, res_d = fns["polymatrix"](), fns["dense"]()
  out["max_abs_diff_qre_gap"] = float(jnp.max(jnp.abs(res_p.qre_gap
                                                      - res_d.qre_gap)))
  timing = _common.time_interleaved(fns, args.repeats)
  cells = len(FIG2_TAUS) * args.iters
  for name, t in timing.items():
    out[name].update(_common.summarize(t))
    out[name]["iterations_per_s"] = args.iters / out[name]["min_s"]
    out[name]["tau_iterations_per_s"] = cells / out[name]["min_s"]
  out["speedup_polymatrix_vs_dense"] = (out["dense"]["min_s"]
                                        / out["polymatrix"]["min_s"])
  return out


def bench_large(args, dtype):
  n = args.agents
  t0 = time.perf_counter()
  game = ring(n, args.actions, dtype)
  build = time.perf_counter() - t0
  taus = np.geomspace(0.05, 5.0, args.taus)
  fn, fargs = batched_run(game, taus, args.large_iters, args.record_every,
                          eta=args.large_eta)
  compile_s = compile_seconds(fn, fargs)
  call = lambda: jax.block_until_ready(fn(*fargs))
  res = call()
  t = _common.time_call(call, args.repeats, warmup=0)
  s = _common.summarize(t)
  return {"agents": n, "edges": game.num_edges, "taus": taus.tolist(),
          "iters": args.large_iters, "build_game_s": build,
          "compile_s": compile_s, **s,
          "iterations_per_s": args.large_iters / s["min_s"],
          "tau_iterations_per_s": len(taus) * args.large_iters / s["min_s"],
          "agent_tau_iterations_per_s":
              n * len(taus) * args.large_iters / s["min_s"],
          "eta": args.large_eta,
          "first_qre_gap": np.asarray(res.qre_gap[:, 0]).tolist(),
          "final_qre_gap": np.asarray(res.qre_gap[:, -1]).tolist()}


def bench_compile(args, dtype):
  rows = []
  for n in [int(x) for x in args.compile_agents.split(",")]:
    game = ring(n, args.actions, dtype)
    fn, fargs = batched_run(game, FIG2_TAUS, 100, 10)
    row = {"agents": n, "stacked_s": compile_seconds(fn, fargs)}
    if n <= args.no_stack_max:
      old = _stacking.MIN_AGENTS
      _stacking.MIN_AGENTS = 10 ** 9
      try:
        jax.clear_caches()
        fn, fargs = batched_run(game, FIG2_TAUS, 100, 10)
        row["per_agent_s"] = compile_seconds(fn, fargs)
      finally:
        _stacking.MIN_AGENTS = old
        jax.clear_caches()
    rows.append(row)
    print(f"  compile, {n} agents: {row}", flush=True)
  return rows


def main(argv=None):
  args = parse_args(argv)
  with jax.enable_x64(args.dtype == "float64"):
    dtype = jnp.dtype(args.dtype)
    payload = {**_common.run_header(), "machine": _common.machine_info(),
               "args": vars(args)}
    print("ring5: dense vs polymatrix ...", flush=True)
    payload["ring5"] = r5 = bench_ring5(args, dtype)
    print(f"ring{args.agents} ...", flush=True)
    payload["large_ring"] = big = bench_large(args, dtype)
    print("compile time vs agents ...", flush=True)
    payload["compile"] = comp = bench_compile(args, dtype)

  print()
  print(f"5-agent ring, {args.actions} actions, {len(FIG2_TAUS)} tau, "
        f"{args.iters} iterations per call, {args.dtype}:")
  rows = [[name, f"{r5[name]['numbers_stored']:,}",
           f"{r5[name]['compile_s']:.2f}",
           f"{r5[name]['iterations_per_s']:.4g}",
           f"{r5[name]['tau_iterations_per_s']:.4g}"]
          for name in ("polymatrix", "dense")]
  print(_common.format_table(
      ["form", "numbers stored", "compile s", "iterations/s",
       "tau-iterations/s"], rows))
  print(f"polymatrix / dense speed: {r5['speedup_polymatrix_vs_dense']:.2f}x; "
        f"max |QRE-gap difference| {r5['max_abs_diff_qre_gap']:.2e}")
  print()
  print(f"{big['agents']}-agent ring ({big['edges']} directed edges), "
        f"{len(big['taus'])} tau batched, {big['iters']} iterations per call: "
        f"compile {big['compile_s']:.1f} s, {big['iterations_per_s']:.4g} "
        f"iterations/s ({big['tau_iterations_per_s']:.4g} tau-iterations/s, "
        f"{big['agent_tau_iterations_per_s']:.3g} agent-tau-iterations/s)")
  print(f"  eta = {big['eta']}; QRE-gap per tau " + ", ".join(
      f"{t:.3g}: {a:.2g} -> {b:.2g}" for t, a, b in
      zip(big["taus"], big["first_qre_gap"], big["final_qre_gap"])))
  print()
  print("compile time (trace + lower + XLA), 7 tau batched, 100 iterations:")
  print(_common.format_table(
      ["agents", "stacked s", "per-agent s"],
      [[str(r["agents"]), f"{r['stacked_s']:.2f}",
        f"{r['per_agent_s']:.2f}" if "per_agent_s" in r else "-"]
       for r in comp]))
  _common.write_json(args.out, payload)


if __name__ == "__main__":
  main()
