"""What the atlas fields cost: a sweep with Lyapunov exponents vs the plain sweep.

Both sweeps run the same 4096 cells (256 covariant (10, 10) games x 16 taus,
eta = 1, 1000 iterations, float32): the plain one records the gap fields; the atlas
one also runs every cell's attractor classification (``lyapunov=True``: a second
trajectory of ``burn_in + num_iters + 2 * max_period`` steps with its tangent) and,
with ``--inits K``, K starts per game. Times are of warm calls (compilation is
reported apart) and taken in turn (``_common.time_interleaved``).

    python benchmarks/atlas.py [--games 256] [--taus 16] [--iters 1000] [--inits 1,4]

Writes ``benchmarks/results/atlas-<platform>.json``.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

import jaxnpg

import _common


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--games", type=int, default=256)
  p.add_argument("--taus", type=int, default=16)
  p.add_argument("--iters", type=int, default=1000)
  p.add_argument("--burn-in", type=int, default=None,
                 help="attractor burn-in (default: --iters)")
  p.add_argument("--inits", default="1,4",
                 help="numbers of starts per game to time (default: 1,4)")
  p.add_argument("--actions", default="10,10")
  p.add_argument("--correlation", type=float, default=-0.5)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--out", default=None)
  return p.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  sizes = tuple(int(a) for a in args.actions.split(","))
  inits = [int(k) for k in args.inits.split(",")]
  G, T = args.games, args.taus
  info = _common.machine_info()
  print(f"# jaxnpg atlas benchmark: covariant {sizes} rho={args.correlation}, "
        f"{G} games x {T} tau = {G * T} cells, {args.iters} iterations, eta=1, "
        f"float32, {jax.device_count()} {jax.default_backend()} device(s): "
        f"{info['cpu_model']}", flush=True)
  common = dict(num_actions=sizes, num_games=G, taus=np.geomspace(1e-2, 1, T),
                etas=[1.0], num_iters=args.iters,
                family_options={"correlation": args.correlation}, quiet=True)
  fns, compile_s = {}, {}
  with jax.enable_x64(False):
    variants = {"plain sweep": {}}
    for k in inits:
      variants[f"lyapunov, {k} start{'s' if k > 1 else ''}"] = dict(
          lyapunov=True, num_inits=None if k == 1 else k, burn_in=args.burn_in)
    for name, extra in variants.items():
      fn = (lambda extra=extra: jaxnpg.sweep("covariant", **common, **extra))
      res = fn()                                    # compile outside the timing
      compile_s[name] = res.attrs["compile_seconds"]
      fns[name] = fn
    timing = _common.time_interleaved(fns, args.repeats, warmup=0)
  results, rows = {}, []
  base = _common.summarize(timing["plain sweep"])["min_s"]
  for name, t in timing.items():
    s = _common.summarize(t)
    results[name] = dict(s, compile_s=compile_s[name], cells=G * T,
                         ratio_to_plain=s["min_s"] / base)
    rows.append([name, f"{s['min_s']:.2f}", f"{s['median_s']:.2f}",
                 f"{compile_s[name]:.1f}", f"{s['min_s'] / base:.2f}x",
                 f"{1e6 * s['min_s'] / (G * T):.0f}"])
  print(_common.format_table(
      ["variant", "best s", "median s", "compile s", "vs plain", "us/cell"],
      rows))
  out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                 "results", f"atlas-{jax.default_backend()}.json")
  _common.write_json(out, {
      "header": _common.run_header(), "machine": info,
      "problem": {"family": "covariant", "num_actions": list(sizes),
                  "correlation": args.correlation, "games": G, "taus": T,
                  "iters": args.iters, "burn_in": args.burn_in or args.iters,
                  "eta": 1.0, "dtype": "float32"},
      "results": results})


if __name__ == "__main__":
  main()
