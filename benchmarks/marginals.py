"""Shared partial contractions in ``dense_marginals`` versus naive per-agent einsums.

For every agent ``i`` the marginal ``rbar_i(a_i) = sum_{a_-i} prod_{j != i}
pi_j(a_j) r_i(a)`` contracts agent ``i``'s reward slice with the other ``n - 1``
probability vectors. This script times, jitted and vmapped over a batch of games,
in float32 and float64:

General games (``rewards`` of shape ``(n, A_0, ..., A_{n-1})``):

* ``jaxnpg``: ``jaxnpg.games.dense.dense_marginals`` (suffix chain, shared partial
  contractions, ``tensordot``/``@``);
* ``naive``: one independent ``jnp.einsum`` of ``rewards[i]`` with the other
  ``n - 1`` vectors per agent (written here, in ``_alt.naive_marginals``);
* ``alt-noslice``: ``dense_marginals`` with one line changed,
  ``(suffix @ p)[:k-1]`` instead of ``suffix[:k-1] @ p`` (no strided copy of the
  tensor before the first dot; ``_alt.noslice_marginals``);
* ``alt-unrolled``, ``alt-bcast``: the library's suffix chain with each contraction
  written as an unrolled sum of slices, or as broadcast-multiply + ``jnp.sum``
  (benchmark-only, ``_alt.py``). ``alt-bcast`` is not run by default: with jax
  0.10.2 on CPU its rank-7 float32 reductions (6 agents plus the batch axis) are
  offloaded to YNNPACK and segfault, e.g.
  ``jnp.sum(jnp.ones((9, 2, 3, 4, 5, 6, 7)) * jnp.ones((9, 2, 1, 1, 1, 1, 1)),
  axis=1)`` under ``jax.jit``. Ask for it with ``--methods`` together with
  ``--xla-flags=--xla_cpu_experimental_ynn_fusion_type=`` (YNN fusions off).

Identical interest (one tensor ``R`` of shape ``(A_0, ..., A_{n-1})`` for all
agents), where sharing can actually save passes over memory:

* ``ii-naive``: one ``jnp.einsum`` per agent on ``R`` (``n`` passes over ``R``);
* ``ii-shared``: the suffix chain on the single tensor (about 2 passes);
* ``ii-jaxnpg``: ``dense_marginals(jnp.broadcast_to(R, (n,) + R.shape), probs)``,
  i.e. what a user gets by stacking ``R`` ``n`` times.

Before timing, every method is checked against ``naive`` (``ii-naive``) with
``np.testing.assert_allclose``. Each timing sample is ``--number`` calls; the
methods of one case take their samples in turn (so load from other users hits them
alike); the table shows the minimum and the median over ``--repeats`` samples (the
JSON also has the process CPU time). "GB/s" is the reward tensor's size divided by the time per call:
every method must read the whole tensor at least once, so it is the effective
bandwidth if the tensor is read exactly once. "GFLOP/s" counts ``2 n prod(A)``
flops per game (one multiply-add per reward entry), the minimum for general games.
"CPU ms" is the median process CPU time per call (all threads, user + system) and
"faults/call" the minor page faults per call: large XLA temporaries that glibc
returns to the OS after each call are faulted in again on the next, which can
cost more than the arithmetic. Run with
``MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296`` in the
environment to keep them mapped (see RESULTS.md).

Usage:
  python benchmarks/marginals.py               # defaults: 2 to 3 minutes, 2 cores
  python benchmarks/marginals.py --sizes 6,6,6,6,6,6 --dtype float32
  python benchmarks/marginals.py --xla-flags=--xla_cpu_experimental_ynn_fusion_type=
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys

GENERAL = ("jaxnpg", "naive", "alt-noslice", "alt-unrolled", "alt-bcast")
IDENTICAL = ("ii-naive", "ii-shared", "ii-jaxnpg")
DEFAULT_METHODS = tuple(m for m in GENERAL + IDENTICAL if m != "alt-bcast")


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", default="6,6,6,6,6,6;2,3,4,5,6,7;7,6,5,4,3,2",
                 help="semicolon-separated action-size tuples (default: 6 agents "
                      "x 6 actions, and mixed sizes in both orders)")
  p.add_argument("--elements", default="1048576,8388608",
                 help="comma-separated targets for reward entries per batch; the "
                      "number of games is chosen to match (default 2^20 = 4 MiB "
                      "in float32, cache-resident, and 2^23 = 32 MiB, past L3)")
  p.add_argument("--games", type=int, default=None,
                 help="fixed batch size instead of --elements")
  p.add_argument("--repeats", type=int, default=7, help="timing samples")
  p.add_argument("--number", type=int, default=3, help="calls per sample")
  p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both")
  p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                 help=f"comma-separated subset of {','.join(GENERAL + IDENTICAL)} "
                      f"(default: all but alt-bcast, see above)")
  p.add_argument("--xla-flags", default=None,
                 help="set XLA_FLAGS before JAX is imported")
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                               "results", "marginals.json"))
  args = p.parse_args(argv)
  args.sizes = [tuple(int(a) for a in s.split(",")) for s in args.sizes.split(";")
                if s]
  args.elements = [int(e) for e in args.elements.split(",") if e]
  args.methods = [m for m in args.methods.split(",") if m]
  bad = [m for m in args.methods if m not in GENERAL + IDENTICAL]
  if bad:
    p.error(f"unknown methods {bad}")
  args.dtypes = (["float32", "float64"] if args.dtype == "both" else [args.dtype])
  return args


args = parse_args()
if args.xla_flags is not None:
  os.environ["XLA_FLAGS"] = args.xla_flags

import jax                      # noqa: E402  (after XLA_FLAGS is set)
import jax.numpy as jnp         # noqa: E402
import numpy as np              # noqa: E402

from jaxnpg.games.dense import dense_marginals  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _alt                     # noqa: E402
import _common                  # noqa: E402


def ii_jaxnpg(reward, probs):
  n = len(probs)
  return dense_marginals(jnp.broadcast_to(reward, (n,) + reward.shape), probs)


FUNCS = {
    "jaxnpg": dense_marginals,
    "naive": _alt.naive_marginals,
    "alt-noslice": _alt.noslice_marginals,
    "alt-unrolled": _alt.unrolled_marginals,
    "alt-bcast": _alt.bcast_marginals,
    "ii-naive": _alt.naive_marginals_common,
    "ii-shared": _alt.shared_marginals_common,
    "ii-jaxnpg": ii_jaxnpg,
}


def hlo_counts(compiled_text: str) -> dict:
  """Rough op census of the optimized HLO (inside fusions too)."""
  count = lambda pat: len(re.findall(pat, compiled_text))
  return {"dot": count(r"\bdot\("), "transpose": count(r"\btranspose\("),
          "copy": count(r"\bcopy\("), "reduce": count(r"\breduce\("),
          "ynn_fusion": count(r"kind=kCustom, calls=[^,]*, backend_config="
                              r"\{\"fusion_config\":\{\"kind\":\"__ynn_fusion"),
          "fusion": count(r"\bfusion\(")}


def make_inputs(sizes, games, dtype, seed=0):
  n = len(sizes)
  rng = np.random.default_rng(seed)
  rewards = rng.random((games, n) + sizes)
  probs = tuple(rng.dirichlet(np.ones(a), size=games) for a in sizes)
  return rewards.astype(dtype), tuple(p.astype(dtype) for p in probs)


def main():
  print(f"dense marginals: {jax.default_backend()} ({_common.cpu_model()}, "
        f"{os.cpu_count()} cpus, load {_common.LOAD_AT_START}), "
        f"jax {jax.__version__}, timing = min of "
        f"{args.repeats} samples x {args.number} calls")
  if os.environ.get("XLA_FLAGS"):
    print(f"XLA_FLAGS={os.environ['XLA_FLAGS']}")
  results = []
  for sizes in args.sizes:
    n = len(sizes)
    per_game = n * math.prod(sizes)
    batches = ([args.games] if args.games else
               sorted({max(1, round(e / per_game)) for e in args.elements}))
    for games in batches:
      for dt in args.dtypes:
        with jax.enable_x64(dt == "float64"):
          rewards_np, probs_np = make_inputs(sizes, games, dt)
          rewards = jnp.asarray(rewards_np)
          common = rewards[:, 0]          # identical interest: agent 0's tensor
          probs = tuple(jnp.asarray(p) for p in probs_np)
          fns, outs = {}, {}
          refs = ["naive"] if any(m in GENERAL for m in args.methods) else []
          refs += ["ii-naive"] if any(m in IDENTICAL for m in args.methods) else []
          for m in dict.fromkeys(refs + args.methods):
            fns[m] = jax.jit(jax.vmap(FUNCS[m]))
            x = common if m.startswith("ii-") else rewards
            outs[m] = [np.asarray(o) for o in fns[m](x, probs)]
          # Same numbers: every method against its naive reference.
          rtol, atol = (1e-4, 1e-5) if dt == "float32" else (1e-10, 1e-12)
          max_rel = {}
          for m in args.methods:
            ref_name = "ii-naive" if m.startswith("ii-") else "naive"
            for o, r in zip(outs[m], outs[ref_name]):
              np.testing.assert_allclose(o, r, rtol=rtol, atol=atol,
                                         err_msg=f"{m} vs {ref_name} {sizes} {dt}")
            max_rel[m] = max(float(np.max(np.abs(o - r) / np.abs(r)))
                             for o, r in zip(outs[m], outs[ref_name]))
          inputs = {m: common if m.startswith("ii-") else rewards
                    for m in args.methods}
          calls = {m: (lambda f=fns[m], x=inputs[m]:
                       jax.block_until_ready(f(x, probs)))
                   for m in args.methods}
          timings = _common.time_interleaved(calls, args.repeats,
                                             number=args.number)
          for m in args.methods:
            x, f = inputs[m], fns[m]
            nbytes = x.nbytes
            s = _common.summarize(timings[m])
            flops = 2 * math.prod(sizes) * games * (1 if m.startswith("ii-")
                                                    else n)
            counts = hlo_counts(f.lower(x, probs).compile().as_text())
            row = dict(sizes=list(sizes), games=games, dtype=dt, method=m,
                       tensor_bytes=nbytes, **s,
                       us_per_game=s["min_s"] / games * 1e6,
                       gb_per_s=nbytes / s["min_s"] / 1e9,
                       gflop_per_s=flops / s["min_s"] / 1e9,
                       max_rel_diff_vs_ref=max_rel[m], hlo=counts)
            results.append(row)
            print(f"  {str(sizes):20s} B={games:4d} {dt:8s} {m:13s} "
                  f"{s['min_s'] * 1e3:8.3f} ms (median {s['median_s'] * 1e3:8.3f},"
                  f" cpu {s['cpu_s_of_min'] * 1e3:8.3f}) {row['gb_per_s']:6.2f} GB/s"
                  f"  dots {counts['dot']} transposes {counts['transpose']} "
                  f"copies {counts['copy']} ynn {counts['ynn_fusion']}")

  # Speedups: general methods vs naive, identical-interest vs ii-naive.
  def find(sizes, games, dt, m):
    for r in results:
      if (tuple(r["sizes"]), r["games"], r["dtype"], r["method"]) == (
          tuple(sizes), games, dt, m):
        return r
    return None

  headers = ["sizes", "games", "MiB", "dtype", "method", "ms/call (min)",
             "ms (median)", "CPU ms", "faults/call", "us/game", "GB/s", "GFLOP/s",
             "speedup vs naive", "dot/transpose/copy/ynn"]
  rows = []
  for r in results:
    ref = find(r["sizes"], r["games"], r["dtype"],
               "ii-naive" if r["method"].startswith("ii-") else "naive")
    r["speedup_vs_naive"] = ref["min_s"] / r["min_s"] if ref else None
    h = r["hlo"]
    rows.append([
        "x".join(map(str, r["sizes"])), str(r["games"]),
        f"{r['tensor_bytes'] / 2**20:.1f}", r["dtype"], r["method"],
        f"{r['min_s'] * 1e3:.3f}", f"{r['median_s'] * 1e3:.3f}",
        f"{r['cpu_s_median'] * 1e3:.3f}", f"{r['minor_faults_per_call']:.0f}",
        f"{r['us_per_game']:.2f}", f"{r['gb_per_s']:.2f}",
        f"{r['gflop_per_s']:.2f}",
        f"{r['speedup_vs_naive']:.2f}x" if r["speedup_vs_naive"] else "-",
        f"{h['dot']}/{h['transpose']}/{h['copy']}/{h['ynn_fusion']}"])
  print()
  print(_common.format_table(headers, rows))
  payload = dict(
      benchmark="marginals", **_common.run_header(),
      machine=_common.machine_info(),
      config=dict(sizes=[list(s) for s in args.sizes], elements=args.elements,
                  games=args.games, repeats=args.repeats, number=args.number,
                  dtypes=args.dtypes, timing="wall clock per call, 1 warm-up, "
                  "min and median of repeats (each the mean of `number` calls)"),
      results=results)
  _common.write_json(args.out, payload)


if __name__ == "__main__":
  main()
