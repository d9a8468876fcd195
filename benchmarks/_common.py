"""Shared helpers for the benchmark scripts: timing, machine info, JSON output."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import jax

# 1-minute load average when the benchmark started (other users' work included).
LOAD_AT_START = os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def cpu_model() -> str:
  """The CPU's model name (``lscpu``), or ``platform.processor()`` as a fallback."""
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True,
                         timeout=10).stdout
    for line in out.splitlines():
      if line.startswith("Model name:"):
        return line.split(":", 1)[1].strip()
  except (OSError, subprocess.SubprocessError):
    pass
  return platform.processor() or "unknown"


def machine_info() -> dict:
  """Platform, CPU, core count, library versions and JAX device for the record."""
  import numpy as np
  import jaxnpg
  dev = jax.devices()[0]
  return {
      "platform": platform.platform(),
      "python": platform.python_version(),
      "cpu_model": cpu_model(),
      "cpu_count": os.cpu_count(),
      "affinity_cpus": (len(os.sched_getaffinity(0))
                        if hasattr(os, "sched_getaffinity") else None),
      "load_average_1m_start": LOAD_AT_START,
      "load_average_1m_end": (os.getloadavg()[0] if hasattr(os, "getloadavg")
                              else None),
      "jax": jax.__version__,
      "numpy": np.__version__,
      "jaxnpg": jaxnpg.__version__,
      "backend": jax.default_backend(),
      "device": f"{dev.platform}:{dev.device_kind}",
      "num_devices": jax.device_count(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "malloc_env": {k: v for k, v in os.environ.items()
                     if k.startswith("MALLOC_")},
  }


def _git(*argv) -> str | None:
  try:
    return subprocess.run(
        ["git", *argv], capture_output=True, text=True, check=True, timeout=10,
        cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def run_header() -> dict:
  """Command line, UTC date, and the git commit (plus whether the tree is dirty)."""
  status = _git("status", "--porcelain", "--", ":/jaxnpg")
  return {
      "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
      "git_commit": _git("rev-parse", "HEAD"),
      "jaxnpg_sources_modified": bool(status) if status is not None else None,
  }


def time_call(fn, repeats: int, *, warmup: int = 1, number: int = 1):
  """Time ``fn()``: ``repeats`` samples of ``number`` calls each, after ``warmup``.

  ``fn`` must block until its work is done (call ``jax.block_until_ready``).
  Returns ``(wall, cpu, faults)``: per-call wall-clock seconds, process CPU seconds
  (all threads, user + system) and minor page faults of each sample. On a shared
  machine the wall time grows with other people's load; the CPU time much less so.
  Page faults show freshly mapped memory (large XLA temporaries that the allocator
  returns to the OS after every call).
  """
  for _ in range(warmup):
    fn()
  wall, cpu, faults = [], [], []
  for _ in range(repeats):
    f0 = _minor_faults()
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(number):
      fn()
    wall.append((time.perf_counter() - t0) / number)
    cpu.append((time.process_time() - c0) / number)
    faults.append((_minor_faults() - f0) / number)
  return wall, cpu, faults


def _minor_faults() -> int:
  """Minor page faults of this process so far (0 where unsupported)."""
  try:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  except (ImportError, OSError):
    return 0


def time_interleaved(fns: dict, repeats: int, *, warmup: int = 1,
                     number: int = 1) -> dict:
  """Like :func:`time_call` for several callables, taking their samples in turn.

  Round ``r`` takes one sample of every callable before round ``r + 1`` starts, so
  a burst of load from other users hits all of them alike instead of whichever
  happened to be running. Returns ``{name: (wall, cpu, faults)}``.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  out = {name: ([], [], []) for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      for acc, sample in zip(out[name], time_call(fn, 1, warmup=0,
                                                  number=number)):
        acc.extend(sample)
  return out


def summarize(timing) -> dict:
  """min and median of the wall times, CPU times, and page faults per call."""
  wall, cpu, faults = timing
  best = min(range(len(wall)), key=wall.__getitem__)
  return {"min_s": wall[best], "median_s": statistics.median(wall),
          "cpu_s_of_min": cpu[best], "cpu_s_median": statistics.median(cpu),
          "minor_faults_per_call": statistics.median(faults),
          "times_s": wall}


def rates(timing: dict, work: dict) -> dict:
  """:func:`summarize` each method's timing and add its rates.

  ``work[name]`` is the number of game-iterations one call of ``name`` does; the
  result adds ``game_iterations``, ``rate_best``, ``rate_median`` and
  ``rate_per_cpu_s`` (per second of wall time of the best and median call, and per
  CPU-second of the best call).
  """
  out = {}
  for name, t in timing.items():
    s = summarize(t)
    out[name] = dict(s, game_iterations=work[name],
                     rate_best=work[name] / s["min_s"],
                     rate_median=work[name] / s["median_s"],
                     rate_per_cpu_s=work[name] / s["cpu_s_of_min"])
  return out


def write_json(path: str, payload: dict) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(payload, f, indent=2)
    f.write("\n")
  print(f"wrote {path}")


def format_table(headers: list[str], rows: list[list[str]]) -> str:
  """A GitHub-markdown table with columns padded for the terminal."""
  widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
  def line(cells):
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
  sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
  return "\n".join([line(headers), sep] + [line(r) for r in rows])


def x64_context(dtype):
  """``jax.enable_x64`` for a dtype name (``"float32"`` or ``"float64"``)."""
  return jax.enable_x64(dtype == "float64")


def in_context(fn, dtype):
  """``fn`` called inside the x64 setting it was built (and compiled) under."""
  def wrapped():
    with x64_context(dtype):
      return fn()
  return wrapped
