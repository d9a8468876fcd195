"""Writes tests/data/gambit_structured.json: Gambit 17's logit QREs on the structured
games of tests/structured_games.py, for machines without pygambit.

Run from the repository root (needs pygambit >= 17):

    python tests/data/make_structured_fixtures.py

Per game: the rewards, the lambdas asked for (``structured_games.LAMS``) and reached,
Gambit's profile at each (``probs[i][l]``: player ``i`` at lambda ``l``), and the
number of bifurcation events Gambit's tracer reported (``LogitBifurcationEvent``).
Gambit's solver: ``pygambit.qre.logit_solve_lambda(game, lams)`` with its default
steps.
"""

import datetime
import json
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))          # tests/
import gambit_compat  # noqa: E402
import structured_games  # noqa: E402

OUT = os.path.join(HERE, "gambit_structured.json")


def solve(gbt, rewards, lams):
  """Gambit on one game: (lams reached, probs per player (L, A_i), bifurcations)."""
  g = gambit_compat.strategic_game(gbt, *rewards)
  events = []
  lam, probs = gambit_compat.logit_lambda(
      gbt, g, lams, event_callback=lambda e: events.append(type(e).__name__))
  return lam, probs, events.count("LogitBifurcationEvent")


def main():
  import pygambit as gbt
  cases = {}
  for name, r in structured_games.games().items():
    lam, probs, bifs = solve(gbt, r, structured_games.LAMS)
    cases[name] = {"rewards": r.tolist(), "lam_requested": list(structured_games.LAMS),
                   "lam": lam.tolist(), "probs": [p.tolist() for p in probs],
                   "bifurcations": bifs}
  payload = {"provenance": {
      "command": "python tests/data/make_structured_fixtures.py",
      "pygambit": gbt.__version__, "python": platform.python_version(),
      "date": datetime.date.today().isoformat()}, "cases": cases}
  with open(OUT, "w") as f:
    json.dump(payload, f, indent=1)
  print(f"wrote {OUT}")


if __name__ == "__main__":
  main()
