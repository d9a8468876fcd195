"""Status codes of the QRE solver (public as ``jaxnpg.QREStatus``).

One code per ``(game, tau)`` problem of :func:`jaxnpg.qre`. Each code's name and
meaning are written here once; docstrings, tables and tests read them from
:class:`QREStatus`.
"""

from __future__ import annotations

import enum


class QREStatus(enum.IntEnum):
  """Verdict of :func:`jaxnpg.qre` for one requested ``tau`` (stored as ``int32``).

  The first three are *converged*: the returned point solves the logit fixed point
  at ``lambda = 1/tau`` to the stated tolerance (``QREResult.converged``). They
  differ in what the traced branch met on the way from ``lambda = 0``.

  Attributes:
    CONVERGED: no turning point and no branch point before this ``lambda``: the
      returned QRE is the unique continuation of the uniform profile (the answer
      of Gambit's ``logit_solve_lambda``).
    TURNING_POINT: the branch folded back in ``lambda`` before reaching it
      (``dlambda/ds`` changed sign), so several QREs exist here; this is the
      branch's first crossing, as Gambit's.
    BIFURCATION: the branch met a branch point (the determinant of the
      augmented Jacobian ``[J; t^T]`` changed sign) before this ``lambda``: at
      least two solution curves cross there, and which one is followed is a
      convention (``qre(..., branch=...)``); another solver may return a QRE of
      the other arm. Takes precedence over ``TURNING_POINT``.
    MAX_STEPS: the continuation ran out of step attempts before this ``lambda``.
    STEP_FAILED: the step size collapsed (the corrector kept failing).
    NOT_CONVERGED: the Newton polish at the requested ``lambda`` did not reach
      ``tol``; the point is not a verified QRE.
    INVALID_INPUT: a value the eager checks refuse reached the compiled solver
      under ``jit`` or ``vmap`` (``tau <= 0`` or not finite, a bad ``tol``, a game
      that fails :meth:`jaxnpg.Game.valid`); the results are NaN.

  Example:
    >>> import jaxnpg
    >>> s = jaxnpg.QREStatus(2)
    >>> s.name, s.converged
    ('BIFURCATION', True)
    >>> jaxnpg.QREStatus.MAX_STEPS.description
    'the continuation ran out of steps before reaching lambda'
  """

  CONVERGED = 0
  TURNING_POINT = 1
  BIFURCATION = 2
  MAX_STEPS = 3
  STEP_FAILED = 4
  NOT_CONVERGED = 5
  INVALID_INPUT = 6

  @property
  def description(self) -> str:
    """What the code means, in one line."""
    return _TEXTS[self]

  @property
  def converged(self) -> bool:
    """Whether the returned point is a verified QRE at the requested lambda."""
    return self <= QREStatus.BIFURCATION


_TEXTS = {
    QREStatus.CONVERGED:
        "converged; no turning point and no branch point before this lambda",
    QREStatus.TURNING_POINT: (
        "converged; the branch folded back in lambda before reaching it, so "
        "several QREs exist here and this is the branch's first crossing"),
    QREStatus.BIFURCATION: (
        "converged; the branch passed a branch point before this lambda, so "
        "another arm (another solver's answer) exists"),
    QREStatus.MAX_STEPS:
        "the continuation ran out of steps before reaching lambda",
    QREStatus.STEP_FAILED:
        "the continuation step size collapsed (the corrector kept failing)",
    QREStatus.NOT_CONVERGED:
        "the Newton polish at the requested lambda did not reach tol",
    QREStatus.INVALID_INPUT: (
        "invalid input under jit/vmap (tau, tol or the game fails the eager "
        "checks); the results are NaN"),
}

STATUS_MESSAGES = {int(s): s.description for s in QREStatus}
