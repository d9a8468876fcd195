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
      "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
      "jax": jax.__version__,
      "numpy": np.__version__,
      "jaxnpg": jaxnpg.__version__,
      "backend": jax.default_backend(),
      "device": f"{dev.platform}:{dev.device_kind}",
      "num_devices": jax.device_count(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
  }


def run_header() -> dict:
  """Command line and UTC date of this run."""
  return {
      "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"),
  }


def time_call(fn, repeats: int, *, warmup: int = 1) -> list[float]:
  """Wall-clock seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` calls.

  ``fn`` must block until its work is done (call ``jax.block_until_ready``).
  """
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return times


def summarize(times: list[float]) -> dict:
  return {"min_s": min(times), "median_s": statistics.median(times),
          "times_s": times}


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
