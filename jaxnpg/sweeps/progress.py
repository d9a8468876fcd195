"""The progress bar shared by the command line and ``sweep``: a thin layer on tqdm.

``tqdm.auto`` draws a text bar on a terminal and a widget in a notebook, and gives
the elapsed time, rate and ETA. :class:`Progress` keeps the small interface the rest
of the package uses (absolute counts, an optional second rate such as
game-iterations per second), so callers do not depend on tqdm's API.

Work whose first updates include compiling (``jaxnpg run``'s first chunks) passes
``waiting="compiling..."``: the bar then shows that text at once, and its rate and
ETA count only work measured without compilation, so they are never absurd.
"""

from __future__ import annotations

import sys
import time
import weakref

# No {rate} or {remaining}: with `waiting`, Progress writes its own into the postfix.
_MEASURED_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"

_OPEN: weakref.WeakSet[Progress] = weakref.WeakSet()


def _clock(seconds: float) -> str:
  """``"01:05"`` or ``"1:02:05"``."""
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return (f"{hours}:{minutes:02d}:{secs:02d}" if hours
          else f"{minutes:02d}:{secs:02d}")


class _Pace:
  """Units per second of work whose first chunks may include compiling.

  The first update ends the wait (its chunk compiled); the speed then counts the
  work since the last chunk that was more than ``SLOWER`` times slower per unit
  than the one after it (another compilation, e.g. a second compiled function),
  and is known once two chunks after the first have run.
  """
  SLOWER = 3.0

  def __init__(self) -> None:
    self.origin: tuple[float, int] = (0.0, 0)      # (time, done) measured from
    self.last: tuple[float, int] | None = None
    self.pace: float | None = None                  # seconds per unit, last chunk
    self.chunks = 0                                 # chunks after the first

  def step(self, now: float, done: int) -> float | None:
    """Record an update; return the measured units per second, or None."""
    if self.last is None:
      self.origin = self.last = (now, done)
      return None
    t, n = self.last
    pace = (now - t) / max(done - n, 1)
    if self.pace is not None and self.pace > self.SLOWER * pace:
      self.origin = self.last            # the chunk before was compiling
    self.last, self.pace = (now, done), pace
    self.chunks += 1
    t0, n0 = self.origin
    if self.chunks < 2 or done <= n0 or now <= t0:
      return None
    return (done - n0) / (now - t0)


class Progress:
  """A progress bar on stderr (or a notebook widget) for work of ``total`` units.

  Args:
    total: units of work in all (e.g. chunks or iterations).
    unit: name of a unit (``"chunks"``); shown in the bar.
    quiet: show nothing at all.
    delay: seconds before the bar first appears (short work stays silent).
    waiting: text shown until the first update (e.g. ``"compiling..."``); the
      bar then appears at once, and shows a rate and an ETA only once work
      without compilation has been measured (see :class:`_Pace`).

  ``update(done, rate_label, rate)`` sets the count of finished units to ``done``
  and shows ``rate`` (e.g. game-iterations per second) after the bar; the bar
  closes itself when ``done`` reaches ``total``. It is also a context manager and
  has :meth:`close`, for work that stops early.
  """

  def __init__(self, total: int, unit: str, *, quiet: bool = False,
               delay: float = 2.0, waiting: str | None = None):
    self.total, self.unit, self.quiet, self.delay = total, unit, quiet, delay
    self.start = time.perf_counter()
    self.shown = False
    self.waiting = waiting
    self._pace = _Pace()
    self._bar = None
    if not quiet:
      from tqdm.auto import tqdm
      self._bar = tqdm(total=total, unit=f" {unit}",
                       delay=0 if waiting else delay, file=sys.stderr,
                       dynamic_ncols=True, leave=True,
                       bar_format=_MEASURED_FORMAT if waiting else None,
                       postfix=waiting)
      _OPEN.add(self)

  def update(self, done: int, rate_label: str = "", rate: float = 0.0, *,
             per_unit: float | None = None) -> None:
    """Set the number of finished units to ``done`` (absolute, not an increment).

    Args:
      done: units finished so far.
      rate_label: what ``rate`` counts (``"game-iterations/s"``).
      rate: shown after the bar with ``rate_label``.
      per_unit: instead of ``rate``, show units per second times ``per_unit``
        (with ``waiting``: as measured for the ETA).
    """
    bar = self._bar
    if bar is None:
      return
    now = time.perf_counter()
    if self.waiting:
      speed = self._pace.step(now, done)
      bar.set_postfix_str(self._measured(speed, done, rate_label, rate,
                                         per_unit), refresh=False)
    elif rate_label:
      if per_unit is not None:
        rate = per_unit * done / max(now - self.start, 1e-9)
      bar.set_postfix_str(f"{rate:.3g} {rate_label}", refresh=False)
    bar.update(max(0, done - bar.n))
    self.shown = self.shown or now - self.start >= self.delay
    if done >= self.total:
      self.close()

  def _measured(self, speed, done, rate_label, rate, per_unit) -> str:
    """The postfix with ``waiting``: the rate and ETA at ``speed`` units/s
    (nothing while it is unknown)."""
    if speed is None:
      return ""
    parts = []
    if rate_label:
      shown = rate if per_unit is None else per_unit * speed
      parts.append(f"{shown:.3g} {rate_label}")
    parts.append(f"ETA {_clock(max(0, self.total - done) / speed)}")
    return ", ".join(parts)

  def close(self) -> None:
    """Finish the bar (idempotent)."""
    if self._bar is not None:
      self._bar.close()
      self._bar = None
    _OPEN.discard(self)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
    return False


def close_all() -> None:
  """Close every bar still open (after an interrupt or error), so that messages
  printed next are not drawn over by a bar finishing later."""
  for progress in list(_OPEN):
    progress.close()
