"""Named, seeded game families: what ``--family`` and ``sweep(family=...)`` accept.

Each family maker has the signature ``make(key, num_actions, **options) -> Game`` and
is a pure function of ``key``, so ``jax.vmap(lambda k: make(k, sizes))(keys)`` builds
a batch of games inside a compiled call, with no host-side loop over games.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax

from jaxnpg.core.validation import check_fits, describe_actions, is_concrete
from jaxnpg.games import covariant as _covariant
from jaxnpg.games import generators as _generators
from jaxnpg.games import markov as _markov
from jaxnpg.games import polymatrix as _polymatrix
from jaxnpg.games.dense import random_game


class Family(NamedTuple):
  """A registered game family.

  Attributes:
    name: the name users pass (``--family NAME``).
    make: ``make(key, num_actions, *, dtype=None, **options) -> Game``,
      vmappable over ``key``.
    description: one line for help texts.
    options: names of the keyword options ``make`` accepts (e.g. ``("graph",)``).
    default_actions: ``num_actions`` the command line uses when none are given
      (None: ``(3, 4, 5)``, the paper's Fig. 1 sizes).
    defaults: values of some options that ``make`` uses when they are not given
      (the command line passes and prints them), e.g. ``{"graph": "ring"}``.
    default_etas: ``jaxnpg sweep --etas`` when none is given (None: ``paper``,
      the paper's rule).
  """
  name: str
  make: Callable
  description: str
  options: tuple[str, ...] = ()
  default_actions: tuple[int, ...] | None = None
  defaults: dict | None = None
  default_etas: str | None = None


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
  """Add ``family`` to the registry (its name must be new)."""
  if family.name in FAMILIES:
    raise ValueError(f"A family named {family.name!r} is already registered.")
  FAMILIES[family.name] = family
  return family


register_family(Family(
    "random", random_game,
    "i.i.d. uniform rewards on [0, 1] per agent (the paper's Fig. 1 game)"))

# Structured families (jaxnpg/games/generators.py, jaxnpg/games/polymatrix.py).
register_family(Family(
    "cooperative", _generators.cooperative_game,
    "identical interest: one i.i.d. uniform [0, 1] reward tensor shared by all",
    ("low", "high")))
register_family(Family(
    "potential", _generators.potential_game,
    "exact potential game r_i = (phi + h_i(a_-i)) / 2, rewards in [0, 1]",
    ("low", "high")))
register_family(Family(
    "zero_sum", _generators.zero_sum_game,
    "two-player zero-sum, r_1 uniform on [-1, 1], r_2 = -r_1",
    ("low", "high")))
register_family(Family(
    "bimatrix", _generators.bimatrix_game,
    "two players, independent uniform [0, 1] payoff matrices",
    ("low", "high")))
register_family(Family(
    "network_zero_sum", _polymatrix._network_family,
    "zero-sum polymatrix game on a graph (--graph ring|complete|random-regular[:D]|"
    "0-1,1-2,...), B_ij uniform on [-1, 1], B_ji = -B_ij^T (the paper's Fig. 2); "
    "equal action counts",
    ("graph", "degree", "graph_seed", "low", "high"),
    default_actions=(10,) * 5, defaults={"graph": "ring"}))

# Covariant games (jaxnpg/games/covariant.py).
register_family(Family(
    "covariant", _covariant.covariant_game,
    "Gaussian payoffs, unit variance, pairwise correlation rho in [-1/(n-1), 1] "
    "between agents (GAMUT; --correlation, default 0; Gamma = (n-1) rho)",
    ("correlation",), default_etas="1"))   # Galla & Farmer's eta = beta = 1

# Markov games (jaxnpg/games/markov.py).

def _markov_family(key, num_actions, num_states=5, discount=0.9,
                   convention="soft", dtype=None):
  return _markov.random_markov_game(key, num_states, num_actions, discount,
                                    convention=convention, dtype=dtype)


register_family(Family(
    "markov", _markov_family,
    "random Markov game: uniform [0, 1] rewards, Dirichlet(1) transitions, "
    "uniform start (the paper's Fig. 2c); defaults num_states=5, discount=0.9, "
    "convention=soft",
    ("num_states", "discount", "convention"),
    default_actions=(5, 5, 5), defaults={"num_states": 5, "discount": 0.9}))


def make_game(family: str, key, num_actions, *, dtype=None, **options):
  """Build one game of a named family.

  Args:
    family: a name in :data:`FAMILIES` (``jaxnpg.families()`` lists them).
    key: a ``jax.random`` key (vmap over keys for a batch).
    num_actions: ``(A_1, ..., A_n)``.
    dtype: floating dtype the game is drawn in (default: JAX's default float).
      Every family maker takes it.
    **options: family-specific options (see ``FAMILIES[name].options``).

  Raises:
    ValueError: unknown family or option.

  Example:
    >>> import jax, jaxnpg
    >>> game = jaxnpg.make_game("zero_sum", jax.random.key(0), (2, 3))
    >>> type(game).__name__, game.num_actions
    ('NormalFormGame', (2, 3))
    >>> ring = jaxnpg.make_game("network_zero_sum", jax.random.key(0), (4, 4, 4),
    ...                         graph="ring")
    >>> type(ring).__name__, ring.num_agents
    ('PolymatrixGame', 3)
  """
  if family not in FAMILIES:
    raise ValueError(
        f"Unknown game family {family!r}; choose one of {sorted(FAMILIES)}.")
  spec = FAMILIES[family]
  unknown = sorted(set(options) - set(spec.options))
  if unknown:
    raise ValueError(
        f"Family {family!r} takes the options {list(spec.options)}, got "
        f"{unknown}.")
  make = functools.partial(spec.make, num_actions=tuple(num_actions),
                           dtype=dtype, **options)
  if is_concrete(key):   # the game's size, before anything is drawn
    shapes = jax.eval_shape(make, key)
    check_fits(sum(math.prod(x.shape) * x.dtype.itemsize
                   for x in jax.tree_util.tree_leaves(shapes)),
               f"A {family!r} game of {describe_actions(num_actions)}",
               "use fewer agents or actions")
  return make(key)


def families() -> dict[str, str]:
  """Names of the registered game families and a one-line description of each.

  Example:
    >>> import jaxnpg
    >>> fams = jaxnpg.families()
    >>> "random" in fams, "markov" in fams, fams["zero_sum"].startswith("two-player")
    (True, True, True)
  """
  return {name: f.description for name, f in FAMILIES.items()}
