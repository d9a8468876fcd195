"""Hand-built structured games for the QRE solver's tests (tests/theory/test_qre_structured.py).

Each is ``name -> rewards`` (agent axis first, float64), the games a researcher
studies and on which the logit branch is not generic: symmetric games (branch
points), zero-sum games with a fixed uniform QRE, duplicated strategies, the
McKelvey-McLennan 2x2x2 game (9 Nash equilibria, 2 totally mixed; Gambit's
``contrib/games/2x2x2.nfg``) and 3-player games with symmetric equilibria.

``ARM`` says which of ``jaxnpg.qre``'s ``branch`` rules gives Gambit 17's answer
after a branch point: ``"gambit"`` (the default), ``"continue"`` (Gambit switched
its perturbation on but stayed on the symmetric curve), or ``None`` (Gambit's own
arm, chosen by its rounding: on the 4x4 coordination game it picks strategy 3).
"""

import numpy as np


def _two(a, b):
  return np.stack([np.asarray(a, float), np.asarray(b, float)])


def mckelvey_mclennan():
  """The 2x2x2 game of McKelvey and McLennan (1997), as in Gambit's 2x2x2.nfg."""
  r = np.zeros((3, 2, 2, 2))
  pay = {(0, 0, 0): (9, 8, 12), (1, 1, 0): (9, 8, 2), (1, 0, 1): (3, 4, 6),
         (0, 1, 1): (3, 4, 6)}
  for a, v in pay.items():
    r[(slice(None),) + a] = v
  return r


def majority():
  """3 players, 2 actions, 1 point for each other player who matches you."""
  r = np.zeros((3, 2, 2, 2))
  for a in np.ndindex(2, 2, 2):
    for i in range(3):
      r[(i,) + a] = sum(a[i] == a[j] for j in range(3) if j != i)
  return r


def unanimity():
  """3 players, 3 actions, everyone gets 1 when all three choose the same."""
  r = np.zeros((3, 3, 3, 3))
  for a in np.ndindex(3, 3, 3):
    r[(slice(None),) + a] = float(len(set(a)) == 1)
  return r


BOS = ([[3, 0], [0, 2]], [[2, 0], [0, 3]])
RPS = [[0, -1, 1], [1, 0, -1], [-1, 1, 0]]


def games():
  """``name -> rewards``."""
  eye2, eye4 = np.eye(2), np.eye(4)
  rps = np.asarray(RPS, float)
  return {
      "coordination 2x2": _two(eye2, eye2),
      "coordination 4x4": _two(eye4, eye4),
      "coordination 4x4 unequal": _two(np.diag([1, 2, 3, 4.0]),
                                       np.diag([1, 2, 3, 4.0])),
      "battle of the sexes": _two(*BOS),
      "battle of the sexes relabelled": _two(np.asarray(BOS[0])[::-1, ::-1],
                                             np.asarray(BOS[1])[::-1, ::-1]),
      "matching pennies": _two([[1, -1], [-1, 1]], [[-1, 1], [1, -1]]),
      "asymmetric matching pennies": _two([[9, 0], [0, 1]], [[0, 1], [1, 0]]),
      "rock paper scissors": _two(rps, -rps),
      "stag hunt": _two([[4, 0], [3, 3]], [[4, 3], [0, 3]]),
      "chicken": _two([[0, -1], [1, -10]], [[0, 1], [-1, -10]]),
      "duplicated strategy bos": _two([[3, 0, 3], [0, 2, 0]], [[2, 0, 2], [0, 3, 0]]),
      "duplicated strategy rps": _two(np.concatenate([rps, rps[:, :1]], 1),
                                      np.concatenate([-rps, -rps[:, :1]], 1)),
      "mckelvey-mclennan 2x2x2": mckelvey_mclennan(),
      "3-player majority": majority(),
      "3-player unanimity": unanimity(),
  }


# Away from the branch points at lambda = 1 (majority), 2 (coordination 2x2) and 4.
LAMS = (0.5, 1.5, 3.0, 5.0, 10.0)

ARM = {"chicken": "continue", "coordination 4x4": None}
