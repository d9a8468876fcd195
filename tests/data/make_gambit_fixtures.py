"""Writes tests/data/gambit_qre.json: Gambit's logit QREs for a few fixed games.

Run from the repository root (needs pygambit, any of 16.x or >= 17):

    python tests/data/make_gambit_fixtures.py

The tests compare ``jaxnpg.qre`` (and NPG's limit) with these stored answers on every
run, with or without pygambit (tests/theory/test_core_gambit.py), and, where pygambit is
installed, recompute them live and check that Gambit still gives the same answers.

Each case stores the games' payoffs (float64, written exactly), the lambdas asked
for, the lambdas Gambit reached (it stops ~1e-8 off), and Gambit's profile at each:
``probs[i][g][l]`` is player ``i``'s mixed strategy in game ``g`` at lambda ``l``.
jaxnpg's ``tau`` is Gambit's ``1 / lambda``. Gambit's solver:
``pygambit.qre.logit_solve_lambda(game, lams)`` with its default steps
(``first_step=0.03, max_accel=1.1``), on the game built from the payoff arrays.
"""

import datetime
import json
import os
import platform
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))          # tests/: gambit_compat
import gambit_compat  # pylint: disable=g-import-not-at-top,wrong-import-position

OUT = os.path.join(HERE, "gambit_qre.json")
COMMAND = "python tests/data/make_gambit_fixtures.py"


def _ring_game():
  """jaxnpg's 4-agent zero-sum ring, 3 actions, rewards in [-2, 2] (dense)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jaxnpg  # pylint: disable=g-import-not-at-top
  with jax.enable_x64(True):
    game = jaxnpg.network_zero_sum_game(jax.random.key(3), "ring", (3,) * 4)
    return np.asarray(game.to_dense().rewards, dtype=np.float64)


def case_specs():
  """``name -> (description, rewards (G, n, A_1, ..., A_n), lambdas)``."""
  return {
      "random_345_npg": (
          "3 random (3, 4, 5) games, uniform [0, 1] rewards "
          "(numpy default_rng(0)), tau = 1, 0.5, 0.2, 0.1: NPG converges to "
          "these QREs (tests/theory/test_core_gambit.py)",
          np.random.default_rng(0).uniform(size=(3, 3, 3, 4, 5)),
          [1.0, 2.0, 5.0, 10.0]),
      "random_345_branch": (
          "10 random (3, 4, 5) games (numpy default_rng(18)), lambda up to 50; "
          "four branches fold before lambda = 50 (the batch of tests/theory/test_qre.py)",
          np.random.default_rng(18).uniform(size=(10, 3, 3, 4, 5)),
          [1.0, 5.0, 10.0, 20.0, 35.0, 50.0]),
      "ring_4x3": (
          "jaxnpg.network_zero_sum_game(jax.random.key(3), 'ring', (3,) * 4) as a "
          "dense game (rewards in [-2, 2])",
          _ring_game()[None],
          [2.0, 10.0]),
  }


def compute_case(gbt, rewards, lams):
  """Gambit's answers for a batch of games: ``(lam (G, L), probs [i] (G, L, A_i))``."""
  lam_all, probs_all = [], []
  for r in rewards:
    g = gambit_compat.strategic_game(gbt, *r)
    lam, probs = gambit_compat.logit_lambda(gbt, g, lams)
    lam_all.append(lam)
    probs_all.append(probs)
  n = rewards.shape[1]
  return (np.stack(lam_all),
          [np.stack([p[i] for p in probs_all]) for i in range(n)])


def build():
  """The whole fixture as a JSON-ready dict."""
  import pygambit as gbt  # pylint: disable=g-import-not-at-top
  cases = {}
  for name, (description, rewards, lams) in case_specs().items():
    lam, probs = compute_case(gbt, rewards, lams)
    cases[name] = {
        "description": description,
        "rewards": rewards.tolist(),
        "lam_requested": list(lams),
        "lam": lam.tolist(),
        "probs": [p.tolist() for p in probs],
    }
  return {
      "provenance": {
          "generator": COMMAND,
          "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
              timespec="seconds"),
          "pygambit": gbt.__version__,
          "solver": "pygambit.qre.logit_solve_lambda(game, lams), default steps",
          "python": platform.python_version(),
          "numpy": np.__version__,
      },
      "cases": cases,
  }


def _dumps(obj, indent=0):
  """JSON with dicts one key a line and each array on one line (diffable)."""
  if not isinstance(obj, dict):
    return json.dumps(obj)
  pad = " " * (indent + 1)
  items = [f"{pad}{json.dumps(k)}: {_dumps(v, indent + 1)}" for k, v in obj.items()]
  return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


def main():
  data = build()
  with open(OUT, "w") as f:
    f.write(_dumps(data) + "\n")
  print(f"wrote {OUT} (pygambit {data['provenance']['pygambit']})")


if __name__ == "__main__":
  main()
