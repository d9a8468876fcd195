"""Games from other tools: Gambit (``pygambit``) and OpenSpiel (``pyspiel``).

Both packages are optional and imported only inside these functions; without them
the functions raise ``ImportError`` naming what to install. Parsing is left to the
tools themselves (``pygambit.read_nfg``, pyspiel's payoff tables), never redone here.

Order conventions: Gambit's players and strategies, and OpenSpiel's players and
actions, map to jaxnpg's agents and actions in their own order, so
``rewards[i, s_1, ..., s_n]`` is player ``i + 1``'s payoff when player ``k`` plays
its strategy ``s_k + 1`` (Gambit numbers from 1; jaxnpg from 0).
"""

from __future__ import annotations

import math
import os

import jax.numpy as jnp
import numpy as np

from jaxnpg.core.protocol import Game
from jaxnpg.games.dense import NormalFormGame

GAMBIT_EXTRA = "pip install 'jaxnpg[gambit]'"
OPENSPIEL_EXTRA = "pip install open_spiel"  # or: pip install 'jaxnpg[openspiel]'


def _import_pygambit():
  try:
    import pygambit
  except ImportError as e:
    raise ImportError(
        f"Reading and writing Gambit games needs pygambit: {GAMBIT_EXTRA}."
    ) from e
  return pygambit


def _import_pyspiel():
  try:
    import pyspiel
  except ImportError as e:
    raise ImportError(
        f"Converting OpenSpiel games needs pyspiel: {OPENSPIEL_EXTRA} (or "
        "pip install 'jaxnpg[openspiel]').") from e
  return pyspiel


def _to_game(tables, dtype, source: str) -> NormalFormGame:
  rewards = np.asarray(tables, dtype=np.float64)
  if rewards.ndim != rewards.shape[0] + 1:
    raise ValueError(
        f"{source} gave payoff tables of shape {rewards.shape}, not (n, A_1, ..., "
        "A_n).")
  dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
  if not np.isfinite(rewards).all():
    raise ValueError(f"{source} has payoffs that are not finite numbers.")
  biggest = float(np.max(np.abs(rewards))) if rewards.size else 0.0
  if biggest > float(jnp.finfo(dtype).max):
    raise ValueError(
        f"{source} has payoffs beyond the range of {dtype} (largest |payoff| "
        f"{biggest:.3g}); use float64 or rescale the payoffs.")
  return NormalFormGame(jnp.asarray(rewards, dtype=dtype))


def _payoff_tables(game, source: str) -> np.ndarray:
  """Every player's payoff table as float64, ``(n, A_1, ..., A_n)``.

  A payoff beyond the float range (e.g. ``1e400`` in a ``.nfg`` file, an exact
  number in Gambit) is a ``ValueError`` naming the file, player and profile.
  """
  try:
    tables = np.stack([np.asarray(t, dtype=np.float64)
                       for t in game.to_arrays(dtype=float)])
  except OverflowError:
    tables = None
  if tables is not None and np.isfinite(tables).all():
    return tables
  for i, table in enumerate(game.to_arrays()):   # exact payoffs: name the first bad one
    table = np.asarray(table, dtype=object)
    for index in np.ndindex(table.shape):
      try:
        ok = math.isfinite(float(table[index]))
      except (OverflowError, ValueError, TypeError):
        ok = False
      if not ok:
        profile = ",".join(str(s + 1) for s in index)
        raise ValueError(
            f"{source}: the payoff of player {i + 1} at strategy profile "
            f"({profile}) is {_magnitude(table[index])}, not a finite float; "
            "payoffs must be finite numbers below about 1.8e308.")
  raise ValueError(f"{source} has payoffs that are not finite floats.")


def _magnitude(value) -> str:
  """A short text for a huge exact number (``~1e400``), else ``str(value)``."""
  text = str(value)
  if len(text) <= 24:
    return text
  try:
    num, den = abs(int(value.numerator)), int(value.denominator)
    exponent = len(str(num)) - len(str(den))
    return f"{'-' if value < 0 else ''}~1e{exponent}"
  except (AttributeError, TypeError, ValueError):
    return text[:21] + "..."


def from_gambit(game_or_path, *, dtype=None) -> NormalFormGame:
  """A Gambit game (a ``pygambit.Game`` or a file) as a :class:`~jaxnpg.NormalFormGame`.

  Files are read by pygambit: ``.nfg`` (strategic), ``.efg`` (extensive; its
  strategic form is used), ``.gbt`` (a Gambit workbook); other suffixes are read as
  ``.nfg``. Payoffs (Gambit's exact decimals or rationals) become floats.

  Args:
    game_or_path: a ``pygambit.Game``, or a path (``str`` or ``os.PathLike``).
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame`` with ``rewards[i, s_1, ..., s_n]`` player ``i``'s payoff
    (players and strategies in Gambit's order, numbered from 0).

  Raises:
    ImportError: pygambit is not installed (``pip install 'jaxnpg[gambit]'``).
    ValueError: the path is not a readable regular file, the file is not a valid
      game (pygambit's message), or the payoffs are not finite.
    FileNotFoundError: no such file.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> pd = jnp.array([[[3., 0.], [5., 1.]], [[3., 5.], [0., 1.]]])
    >>> g = jaxnpg.to_gambit(jaxnpg.NormalFormGame(pd))   # a pygambit game
    >>> jaxnpg.from_gambit(g).rewards[:, 1, 0].tolist()   # row 2, column 1
    [5.0, 0.0]
  """
  gbt = _import_pygambit()
  if isinstance(game_or_path, (str, os.PathLike)):
    path = os.fspath(game_or_path)
    if not os.path.exists(path):
      raise FileNotFoundError(f"No such Gambit file: {path!r}.")
    if not os.path.isfile(path):
      raise ValueError(f"{path!r} is not a Gambit file (it is "
                       f"{'a folder' if os.path.isdir(path) else 'not a regular file'}"
                       "); pass the path of a .nfg, .efg or .gbt file.")
    if not os.access(path, os.R_OK):
      raise ValueError(f"The Gambit file {path!r} is not readable (permission "
                       "denied).")
    suffix = os.path.splitext(path)[1].lower()
    reader = {".efg": gbt.read_efg, ".gbt": gbt.read_gbt}.get(suffix, gbt.read_nfg)
    try:
      game = reader(path)
    except (ValueError, RuntimeError) as e:
      raise ValueError(f"pygambit could not read {path!r}: {e}") from e
    source = f"Gambit file {path!r}"
  elif isinstance(game_or_path, gbt.Game):
    game, source = game_or_path, "The Gambit game"
  else:
    raise TypeError(
        "from_gambit takes a pygambit.Game or a path to a Gambit file, got "
        f"{type(game_or_path).__name__}.")
  return _to_game(_payoff_tables(game, source), dtype, source)


def to_gambit(game, *, title: str = "jaxnpg game"):
  """A game as a ``pygambit.Game`` (strategic form), for Gambit's solvers and files.

  Write it to a file with ``to_gambit(game).to_nfg(path)``. Any game with a
  dense form (``game.has_dense_form``, e.g. a :class:`~jaxnpg.PolymatrixGame`) is
  converted through ``game.to_dense()`` first.

  Args:
    game: one ``NormalFormGame`` or (small) ``PolymatrixGame``, no batch axes.
    title: the Gambit game's title.

  Returns:
    A ``pygambit.Game`` with players ``"1", ..., "n"`` and strategies
    ``"1", ..., "A_i"`` in jaxnpg's order; payoffs are the float64 rewards.

  Raises:
    ImportError: pygambit is not installed.
    TypeError: not a game with a dense form (e.g. a Markov game).
    ValueError: a batched game.

  Example:
    >>> import jax.numpy as jnp, jaxnpg
    >>> game = jaxnpg.NormalFormGame(jnp.array([[[1., 0.]], [[0., 1.]]]))
    >>> g = jaxnpg.to_gambit(game)
    >>> [t.shape for t in g.to_arrays(dtype=float)]   # 1 and 2 strategies
    [(1, 2), (1, 2)]
  """
  gbt = _import_pygambit()
  # isinstance validates the caller's argument: only a Game declares abilities.
  if not (isinstance(game, Game) and game.has_dense_form):
    raise TypeError(
        f"to_gambit takes a game with a dense form (NormalFormGame, "
        f"PolymatrixGame), got {type(game).__name__}.")
  game = game.to_dense()
  if game.batch_shape:
    raise ValueError(
        f"to_gambit takes one game, got a batch of shape {game.batch_shape}.")
  rewards = np.asarray(game.rewards, dtype=np.float64)
  return _strategic_game_class(gbt).from_arrays(*rewards, title=title)


def _strategic_game_class(gbt):
  """``pygambit.StrategicGame`` (pygambit >= 17), else ``pygambit.Game`` (16.x),
  whichever carries ``from_arrays``."""
  return getattr(gbt, "StrategicGame", gbt.Game)


def from_openspiel(pyspiel_game, *, dtype=None) -> NormalFormGame:
  """An OpenSpiel normal-form game as a :class:`~jaxnpg.NormalFormGame`.

  Accepts ``pyspiel.MatrixGame`` (``row_utilities`` / ``col_utilities``),
  ``pyspiel.TensorGame`` (``player_utilities(p)``), any other one-shot game that
  ``pyspiel.extensive_to_tensor_game`` can convert (e.g. a loaded ``.nfg`` or a
  simultaneous-move game; this enumerates every joint action), or a game name
  string for ``pyspiel.load_game`` (e.g. ``"matrix_rps"``). This mirrors
  ``open_spiel.python.egt.utils.game_payoffs_array``.

  Args:
    pyspiel_game: a pyspiel game or a game string.
    dtype: floating dtype (default: JAX's default float).

  Returns:
    A ``NormalFormGame``; ``rewards[i, a_1, ..., a_n]`` is player ``i``'s utility,
    players and actions in OpenSpiel's order.

  Raises:
    ImportError: pyspiel is not installed (``pip install open_spiel``).
    ValueError: OpenSpiel cannot give the game as a payoff table.

  Example:
    >>> import jaxnpg
    >>> rps = jaxnpg.from_openspiel("matrix_rps")    # needs jaxnpg[openspiel]
    >>> rps.num_actions, rps.rewards[0, 0].tolist()   # rock against r, p, s
    ((3, 3), [0.0, -1.0, 1.0])
  """
  pyspiel = _import_pyspiel()
  game = pyspiel_game
  if isinstance(game, str):
    try:
      game = pyspiel.load_game(game)
    except Exception as e:  # pyspiel raises its own SpielError
      raise ValueError(f"pyspiel could not load the game {pyspiel_game!r}: {e}"
                       ) from e
  name = _openspiel_name(game)
  if isinstance(game, pyspiel.MatrixGame):
    tables = [np.asarray(game.row_utilities(), np.float64),
              np.asarray(game.col_utilities(), np.float64)]
  else:
    if not isinstance(game, pyspiel.TensorGame):
      try:
        game = pyspiel.extensive_to_tensor_game(game)
      except Exception as e:  # SpielError and friends
        raise ValueError(
            f"OpenSpiel cannot write the game {name} as a payoff table (only "
            f"normal-form, matrix and tensor games convert): {e}") from e
    tables = [np.asarray(game.player_utilities(p), np.float64)
              for p in range(game.num_players())]
  return _to_game(np.stack(tables), dtype, f"OpenSpiel game {name}")


def _openspiel_name(game) -> str:
  try:
    return repr(game.get_type().short_name)
  except Exception:  # a stand-in object without get_type
    return type(game).__name__
