"""Gambit's own API, the same for pygambit 16.x and >= 17 (for the tests and the
fixture generator ``tests/data/make_gambit_fixtures.py``).

pygambit 17 renamed the game classes (``Game.from_arrays`` -> ``StrategicGame.from_arrays``)
and addresses players, strategies and profiles by their labels; 16.x uses objects
(``game[profile][player]``, ``profile[strategy]``). Everything here goes through
Gambit itself, never through jaxnpg, so the tests stay an independent check.
"""

import itertools

import numpy as np


def is_17(gbt) -> bool:
  """Whether this pygambit has the 17.x API (``StrategicGame``, labels)."""
  return hasattr(gbt, "StrategicGame")


def strategic_game(gbt, *arrays, title=None):
  """``pygambit`` game from per-player payoff arrays (Gambit's ``from_arrays``)."""
  cls = gbt.StrategicGame if is_17(gbt) else gbt.Game
  arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
  if title is None:
    return cls.from_arrays(*arrays)
  return cls.from_arrays(*arrays, title=title)


def _labels_api() -> bool:
  """Whether the installed pygambit addresses things by label (>= 17)."""
  import pygambit  # pylint: disable=g-import-not-at-top
  return is_17(pygambit)


def _players_and_strategies(g):
  players = list(g.players)
  if _labels_api():                         # 17.x: labels
    return players, [list(g.get_strategies(p)) for p in players]
  return players, [list(p.strategies) for p in players]


def num_strategies(g) -> tuple:
  """Each player's number of (pure, reduced) strategies."""
  return tuple(len(s) for s in _players_and_strategies(g)[1])


def payoff_tables(g) -> np.ndarray:
  """``(n, A_1, ..., A_n)`` from Gambit's own per-profile payoff lookup."""
  players, strategies = _players_and_strategies(g)
  sizes = [len(s) for s in strategies]
  out = np.zeros((len(players),) + tuple(sizes))
  for joint in itertools.product(*[range(s) for s in sizes]):
    if _labels_api():
      payoffs = g.get_payoffs({p: s[j] for p, s, j in zip(players, strategies, joint)})
    else:
      payoffs = g[list(joint)]
    for i, p in enumerate(players):
      out[(i,) + joint] = float(payoffs[p])
  return out


def profile_probs(g, profile) -> list:
  """A mixed strategy profile as one probability vector per player."""
  players, strategies = _players_and_strategies(g)
  if _labels_api():
    return [np.array([float(profile[p][s]) for s in strats])
            for p, strats in zip(players, strategies)]
  return [np.array([float(profile[s]) for s in strats]) for strats in strategies]


def logit_lambda(gbt, g, lams, **kwargs):
  """Gambit's principal-branch logit QREs at ``lams`` (``pygambit.qre.logit_solve_lambda``).

  Returns:
    ``(lam, probs)``: the lambdas Gambit reached (it stops ~1e-8 off the one asked
    for), shape ``(L,)``, and per player the probabilities, shape ``(L, A_i)``.
  """
  lams = [float(x) for x in lams]
  if lams != sorted(lams):   # Gambit traces on past a lambda it has passed
    raise ValueError(f"Gambit needs increasing lambdas, got {lams}.")
  res = gbt.qre.logit_solve_lambda(g, lams, **kwargs)
  lam = np.array([float(q.lam) for q in res])
  per_point = [profile_probs(g, q.profile) for q in res]
  probs = [np.stack([pt[i] for pt in per_point]) for i in range(len(per_point[0]))]
  return lam, probs


def logit_branch_lambdas(gbt, g, **kwargs) -> np.ndarray:
  """The lambdas of Gambit's traced principal branch (``logit_solve_branch``)."""
  return np.array([float(q.lam) for q in gbt.qre.logit_solve_branch(g, **kwargs)])
