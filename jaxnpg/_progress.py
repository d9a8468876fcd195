"""A one-line progress indicator, shared by the command line and ``sweep``."""

from __future__ import annotations

import sys
import time


class Progress:
  """A one-line progress indicator on stderr for work longer than a few seconds."""

  def __init__(self, total: int, unit: str, *, quiet: bool = False,
               delay: float = 2.0):
    self.total, self.unit, self.quiet, self.delay = total, unit, quiet, delay
    self.start = time.perf_counter()
    self.shown = False

  def update(self, done: int, rate_label: str = "", rate: float = 0.0):
    elapsed = time.perf_counter() - self.start
    if self.quiet or (elapsed < self.delay and done < self.total):
      return
    if done < self.total or self.shown:
      frac = done / max(self.total, 1)
      left = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
      bar = "#" * int(30 * frac)
      extra = f", {rate:.3g} {rate_label}" if rate_label else ""
      end = "\n" if done >= self.total else ""
      sys.stderr.write(f"\r[{bar:<30}] {done}/{self.total} {self.unit}{extra}, "
                       f"{elapsed:.1f}s elapsed, ~{left:.0f}s left{end}")
      sys.stderr.flush()
      self.shown = True
