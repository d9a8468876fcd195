"""Verdict codes shared by ``run``, ``solve`` and ``sweep`` (public as ``jaxnpg.Status``).

One notion of convergence everywhere: a result is ``CONVERGED`` only when the user's
tolerance was met by a finite value. A non-finite gap or policy is ``BLEW_UP``
(never a gap of 0). When the dtype's rounding floor for the cell lies above the
tolerance and the measure reached that floor, the verdict is ``AT_FLOOR``: neither
converged (the tolerance was not met) nor not converged (nothing more can be gained
in this dtype). Each code's name and meaning are written here once; the command
line, plots and tables read them from :class:`Status`.

Example:
  >>> import jaxnpg
  >>> jaxnpg.STATUS_NAMES[jaxnpg.Status.AT_FLOOR]
  'at the rounding floor'
  >>> len(jaxnpg.STATUS_NAMES) == len(jaxnpg.Status)
  True
"""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
  """Verdict of one run, solve or sweep cell (stored as ``int8``).

  Attributes:
    CONVERGED: the measure (QRE-gap, or the fixed-point residual for ``solve``)
      fell to ``tol`` or below, and every value was finite.
    NOT_CONVERGED: finite, above ``tol`` at the end, and either still falling
      (``iterations_needed`` estimates how long it would take at its rate) or
      irregular without repeating (``iterations_needed`` NaN): more iterations
      may help.
    BLEW_UP: a policy or gap became NaN or infinite (the gaps are then NaN).
    STALLED: above ``tol``, the tail of the recorded gaps stopped falling and
      repeats itself (a plateau or a cycle): more iterations will not help.
      An irregular tail that does not repeat is ``NOT_CONVERGED``.
    AT_FLOOR: above ``tol`` but at or below the dtype's rounding floor for the
      cell, which lies above ``tol``: this dtype cannot resolve ``tol`` here
      (use float64 or a larger ``tol``).
    INVALID_INPUT: a value the eager checks refuse reached the compiled
      program (under ``jit``/``vmap`` nothing is checked before): a ``tau < 0``,
      an ``eta <= 0``, a ``tol`` that is not finite and ``> 0``, a discount
      outside ``[0, 1)``, transitions that are not stochastic, a policy off the
      simplex, rewards that are not finite. The gaps are then NaN; the other
      lanes of a batch are unaffected.

  Example:
    >>> import jaxnpg
    >>> s = jaxnpg.Status(4)
    >>> s.name, s.label
    ('AT_FLOOR', 'at the rounding floor')
    >>> s.description.startswith("above tol")
    True
  """

  CONVERGED = 0
  NOT_CONVERGED = 1
  BLEW_UP = 2
  STALLED = 3
  AT_FLOOR = 4
  INVALID_INPUT = 5

  @property
  def label(self) -> str:
    """The human-readable name (``STATUS_NAMES[code]``)."""
    return _TEXTS[self][0]

  @property
  def description(self) -> str:
    """What the code means, in one line (tables, legends, help texts)."""
    return _TEXTS[self][1]


_TEXTS = {
    Status.CONVERGED: ("converged", "final QRE-gap <= tol"),
    Status.NOT_CONVERGED: (
        "not converged", "finite and above tol at the end, still falling or "
        "irregular without repeating (more iterations may help)"),
    Status.BLEW_UP: (
        "blew up", "a gap or policy became NaN or infinite (step size too "
        "large)"),
    Status.STALLED: (
        "stalled", "above tol, and the tail of the recorded gaps stopped "
        "falling and repeats itself (a plateau or a cycle): more iterations "
        "will not help"),
    Status.AT_FLOOR: (
        "at the rounding floor", "above tol but at the dtype's rounding floor, "
        "which lies above tol (use float64 or a larger tol)"),
    Status.INVALID_INPUT: (
        "invalid input", "an input the eager checks refuse reached the compiled "
        "program (tau < 0, eta <= 0, a bad tol or discount, non-stochastic "
        "transitions, a policy off the simplex): gaps NaN"),
}

STATUS_NAMES = tuple(s.label for s in Status)
"""The human-readable label of every :class:`Status` code, indexed by the code."""
