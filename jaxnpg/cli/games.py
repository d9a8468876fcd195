"""The game options of ``run`` and ``sweep``: a family with its sizes and
options, or a Gambit file.

The CLI's syntax is resolved here: ``--agents N`` repeats one ``--actions A``;
``--graph``, ``--states``, ``--discount`` and ``--correlation`` become the family's
options (and are refused for families that take none); the network and Markov
families default to the paper's Fig. 2 games. The values themselves (action
counts, discount, number of states, correlation, graph) are checked by the
library when it builds the games.
"""

from __future__ import annotations

import types
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxnpg.cli.base import CliError, one_line
from jaxnpg.core.protocol import Game
from jaxnpg.games.families import FAMILIES, Family, make_game
from jaxnpg.games.interop import from_gambit

# The option that sets each family option.
_FLAGS = {"graph": "--graph", "num_states": "--states", "discount": "--discount",
          "correlation": "--correlation"}
_PAPER_ACTIONS = (3, 4, 5)   # Fig. 1's sizes, the default of most families


class FamilySpec(NamedTuple):
  """A family's games as the options name them.

  Attributes:
    family: the family name (an unknown one is refused by the library).
    num_actions: ``(A_1, ..., A_n)``.
    options: the family's keyword options (its defaults included).
    description: one line for the header (``"markov game, actions (5, 5, 5),
      5 states, discount 0.9"``).
  """
  family: str
  num_actions: tuple[int, ...]
  options: dict[str, Any]
  description: str


def family_spec(args: types.SimpleNamespace, command: str) -> FamilySpec:
  """The family, sizes and options named by ``args`` (the game options).

  ``command`` is ``"sweep"`` (whose ``--correlation`` may list values, an atlas)
  or ``"run"`` (one value).

  Raises:
    CliError: an option the family does not take, ``--agents`` that disagrees
      with ``--actions``, a ring of fewer than 3 agents, or a game of one agent.
  """
  spec = FAMILIES.get(args.family)
  correlation = args.correlation
  if correlation is not None:
    if len(correlation) == 1:
      correlation = correlation[0]
    elif command != "sweep":
      raise CliError(f"--correlation: {command} takes one value, got "
                     f"{len(correlation)}; jaxnpg sweep takes a list (an atlas).")
  given = {"graph": args.graph, "num_states": args.states,
           "discount": args.discount, "correlation": correlation}
  given = {k: v for k, v in given.items() if v is not None}
  if spec is not None:
    for key in given:
      if key not in spec.options:
        takes = [_FLAGS[k] for k in spec.options if k in _FLAGS]
        raise CliError(f"{_FLAGS[key]} does not apply to the {spec.name!r} "
                       "family" + (f" (it takes {', '.join(takes)})."
                                   if takes else "."))
  actions = _actions(args, spec)
  options = {**((spec and spec.defaults) or {}), **given}
  if options.get("graph") == "ring" and len(actions) < 3:
    raise CliError(
        f"a ring needs at least 3 agents, got {len(actions)} (--agents N, or "
        f"--actions with one entry per agent).")
  if len(actions) < 2:
    a = actions[0] if actions else 2
    raise CliError(
        f"a game needs at least 2 agents, got {len(actions)} (--actions "
        f"{','.join(map(str, actions))}): give one number of actions per agent "
        f"(e.g. --actions {a},{a}), or --agents N with a single --actions.")
  return FamilySpec(args.family, actions, options,
                    _describe(args.family, actions, options))


def _actions(args: types.SimpleNamespace, spec: Family | None
             ) -> tuple[int, ...]:
  """``--actions`` and ``--agents`` (with the family's default sizes)."""
  family_default = spec.default_actions if spec is not None else None
  default = tuple(family_default or _PAPER_ACTIONS)
  if args.actions is not None:
    actions = tuple(args.actions)
  elif args.agents is not None and len(set(default)) != 1:
    raise CliError(
        f"--agents {args.agents}: also give the actions per agent (--actions A); "
        f"the {args.family!r} family's default {default} is not one size.")
  else:
    actions = default[:1] if args.agents is not None else default
  agents = args.agents
  if (agents is None and args.actions is not None and len(actions) == 1
      and family_default and len(set(family_default)) == 1):
    agents = len(family_default)   # '--actions 10': 10 each, default agents
  if agents is None:
    return actions
  if len(actions) == 1:
    return actions * agents
  if len(actions) != agents:
    raise CliError(
        f"--agents {agents} but --actions lists {len(actions)} agents "
        f"({','.join(map(str, actions))}); give one number of actions per agent, "
        "or one for all.")
  return actions


def _describe(name: str, actions: tuple[int, ...], options: dict) -> str:
  parts = [f"{name} game"]
  if options.get("graph") is not None:
    parts.append(f"{options['graph']} graph of {len(actions)} agents")
  parts.append(f"actions {actions}")
  if "num_states" in options:
    parts.append(f"{options['num_states']} states")
  if "discount" in options:
    parts.append(f"discount {options['discount']:g}")
  if "correlation" in options:
    rho = np.atleast_1d(options["correlation"])
    parts.append(f"correlation {rho[0]:g}" if rho.size == 1 else
                 f"correlation {rho.size} values {rho[0]:g}..{rho[-1]:g}")
  return ", ".join(parts)


def load_game_file(path: str) -> Game:
  """The game in a Gambit file (:func:`jaxnpg.from_gambit` checks the path and
  the payoffs).

  Raises:
    CliError: the library's error (no such file, a folder, not readable, not a
      game, a payoff out of range, pygambit missing), naming ``--game-file``.
  """
  try:
    return from_gambit(path)
  except (OSError, ValueError, OverflowError, ImportError) as e:
    raise CliError(f"--game-file: {one_line(e)}") from None


def load_game(args: types.SimpleNamespace) -> tuple[Game, str]:
  """``(game, description)`` of ``run``'s game options: the family's game with
  ``key(seed)``, or the game file."""
  if args.game_file:
    return load_game_file(args.game_file), f"game file {args.game_file}"
  spec = family_spec(args, "run")
  game = make_game(spec.family, jax.random.key(args.seed), spec.num_actions,
                   **spec.options)
  return game, f"{spec.description}, seed {args.seed}"
