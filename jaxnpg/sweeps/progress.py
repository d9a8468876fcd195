"""The progress bar shared by the command line and ``sweep``: a thin layer on tqdm.

``tqdm.auto`` draws a text bar on a terminal and a widget in a notebook, and gives
the elapsed time, rate and ETA. :class:`Progress` keeps the small interface the rest
of the package uses (absolute counts, an optional second rate such as
game-iterations per second), so callers do not depend on tqdm's API.
"""

from __future__ import annotations

import sys
import time
import weakref

_OPEN: weakref.WeakSet[Progress] = weakref.WeakSet()


class Progress:
  """A progress bar on stderr (or a notebook widget) for work of ``total`` units.

  Args:
    total: units of work in all (e.g. chunks or iterations).
    unit: name of a unit (``"chunks"``); shown in the bar.
    quiet: show nothing at all.
    delay: seconds before the bar first appears (short work stays silent).

  ``update(done, rate_label, rate)`` sets the count of finished units to ``done``
  and shows ``rate`` (e.g. game-iterations per second) after the bar; the bar
  closes itself when ``done`` reaches ``total``. It is also a context manager and
  has :meth:`close`, for work that stops early.
  """

  def __init__(self, total: int, unit: str, *, quiet: bool = False,
               delay: float = 2.0):
    self.total, self.unit, self.quiet, self.delay = total, unit, quiet, delay
    self.start = time.perf_counter()
    self.shown = False
    self._bar = None
    if not quiet:
      from tqdm.auto import tqdm
      self._bar = tqdm(total=total, unit=f" {unit}", delay=delay,
                       file=sys.stderr, dynamic_ncols=True, leave=True)
      _OPEN.add(self)

  def update(self, done: int, rate_label: str = "", rate: float = 0.0):
    """Set the number of finished units to ``done`` (absolute, not an increment)."""
    bar = self._bar
    if bar is None:
      return
    if rate_label:
      bar.set_postfix_str(f"{rate:.3g} {rate_label}", refresh=False)
    bar.update(max(0, done - bar.n))
    self.shown = self.shown or time.perf_counter() - self.start >= self.delay
    if done >= self.total:
      self.close()

  def close(self):
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
