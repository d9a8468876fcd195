"""The CLI's own syntax, and the options that ``run`` and ``sweep`` share.

The parsers read what only the command line writes: lists ``0,0.1,1``, log-spaced
ranges ``lo:hi:count`` (``--taus``), linear ranges (``--correlation``), counts
``3,4,5``, sizes ``2G`` and the step-size rule ``paper:0.5,1,2``. They check the
syntax only; every value is then checked by the library object it goes into.
Each parser is also a ``click.ParamType`` (:class:`Syntax`), so a malformed value
is refused while the command line is parsed (``jaxnpg.cli.parse`` refuses it too)
and the command gets the values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import click
import numpy as np

from jaxnpg.cli.base import CliError, option
from jaxnpg.core.tolerance import GAP_RTOL
from jaxnpg.games.families import FAMILIES, families
from jaxnpg.loop.algorithms import ALGORITHMS
from jaxnpg.sweeps.config import MAX_AXIS


def _numbers(text: str, *, linear: bool = False) -> list[float]:
  """``"0,0.1,1"``, or a range ``"lo:hi:count"`` (log-spaced; ``linear``:
  evenly spaced, so it may hold negative values). Raises ValueError."""
  text = text.strip()
  if ":" in text:
    try:
      lo_text, hi_text, count_text = text.split(":")
      lo, hi, count = float(lo_text), float(hi_text), int(count_text)
    except ValueError:
      raise ValueError(f"expected a value, a list '0,0.1,1' or a range "
                       f"'lo:hi:count', got {text!r}.") from None
    if count > MAX_AXIS:   # refused before a list of that size is made
      raise ValueError(f"the range {text!r} holds {count} values, more than the "
                       f"{MAX_AXIS} (2**20) an axis may hold; use fewer.")
    if linear:
      if not (math.isfinite(lo) and math.isfinite(hi)) or count < 1:
        raise ValueError(f"a range lo:hi:count needs finite lo, hi and count "
                         f">= 1, got {text!r}.")
      return [float(v) for v in np.linspace(lo, hi, count)]
    if not (0 < lo < math.inf and 0 < hi < math.inf) or count < 1:
      raise ValueError(f"a range lo:hi:count needs lo, hi > 0 and count >= 1, "
                       f"got {text!r}.")
    return [float(v) for v in np.geomspace(lo, hi, count)]
  try:
    values = [float(v) for v in text.split(",") if v.strip()]
  except ValueError:
    raise ValueError(f"expected numbers like '0,0.1,1' or a range "
                     f"'lo:hi:count', got {text!r}.") from None
  if not values:
    raise ValueError("the list is empty.")
  return values


def parse_floats(text: str, name: str) -> list[float]:
  """Parse ``"0,0.1,1"`` or a log-spaced range ``"1e-3:1e2:64"`` (lo:hi:count).

  Raises:
    CliError: not numbers, an empty list, or a range with ``lo`` or ``hi`` not
      in ``(0, inf)`` or ``count < 1`` (the message starts with ``name``).
  """
  try:
    return _numbers(text)
  except ValueError as e:
    raise CliError(f"{name}: {e}") from None


def parse_linear(text: str, name: str) -> list[float]:
  """Parse ``"0.5"``, ``"-0.5,0,0.5"`` or a LINEAR range ``"-0.9:1:9"`` (lo:hi:count).

  Unlike :func:`parse_floats` (log-spaced ranges, for ``--taus``), the range is
  ``numpy.linspace(lo, hi, count)``, so it may hold negative values.

  Raises:
    CliError: as :func:`parse_floats`, naming ``name``.
  """
  try:
    return _numbers(text, linear=True)
  except ValueError as e:
    raise CliError(f"{name}: {e}") from None


def parse_bytes(text: str) -> int:
  """``"2G"``, ``"500M"``, ``"64k"`` or a number of bytes, as bytes (>= 1).

  Raises:
    CliError: not a positive finite size.
  """
  units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
  t = text.strip().lower().rstrip("b")
  try:
    value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    if not 0 < value < math.inf:
      raise ValueError(value)
    return max(1, int(value))
  except (ValueError, OverflowError):
    raise CliError(f"--memory-budget: expected a positive size like '2G' or "
                   f"'500M', got {text!r}.") from None


def parse_sweep_etas(text: str) -> tuple[str | list[float], list[float] | None]:
  """``(etas, multipliers)`` of sweep's ``--etas``: step sizes ``"0.01,0.02"``,
  the rule ``"paper"``, or multipliers of it ``"paper:0.5,1,2"`` (also a range
  ``"paper:0.25:4:5"``).

  Raises:
    CliError: the text is none of these.
  """
  text = text.strip()
  if text == "paper":
    return "paper", None
  if text.startswith("paper:"):
    return "paper", parse_floats(text[len("paper:"):], "--etas multipliers")
  try:
    return _numbers(text), None
  except ValueError:
    raise CliError(f"--etas: expected step sizes '0.01,0.02', the rule 'paper' "
                   f"or multipliers of it 'paper:0.5,1,2', got {text!r}."
                   ) from None


def parse_eta(text: str) -> str | float:
  """``run --eta``: the rule ``"paper"`` or one number.

  Raises:
    CliError: neither.
  """
  text = text.strip()
  if text == "paper":
    return text
  try:
    return float(text)
  except ValueError:
    raise CliError(f"--eta: expected 'paper' or a positive number, got "
                   f"{text!r}.") from None


def parse_counts(text: str, name: str) -> tuple[int, ...]:
  """Parse ``"3,4,5"`` into a tuple of integers (their values are the game's to
  check).

  Raises:
    CliError: not a list of integers.
  """
  try:
    values = tuple(int(v) for v in text.split(",") if v.strip())
  except ValueError:
    raise CliError(f"{name}: expected integers like '3,4,5', got {text!r}."
                   ) from None
  if not values:
    raise CliError(f"{name}: the list is empty.")
  return values


class Syntax(click.ParamType):
  """A click type reading an option's text with one of the parsers above, so a
  malformed value is refused while the command line is parsed."""

  def __init__(self, name: str, parse: Callable[[str], Any]):
    self.name, self._parse = name, parse

  def convert(self, value: Any, param: click.Parameter | None,
              ctx: click.Context | None) -> Any:
    if not isinstance(value, str):
      return value
    try:
      return self._parse(value)
    except CliError as e:
      flag = f"{param.opts[0]}: " if param is not None and param.opts else ""
      self.fail(str(e).removeprefix(flag), param, ctx)


TAUS = Syntax("list", lambda t: parse_floats(t, "--taus"))
LINEAR = Syntax("list", lambda t: parse_linear(t, "--correlation"))
COUNTS = Syntax("list", lambda t: parse_counts(t, "--actions"))
SIZE = Syntax("size", parse_bytes)
SWEEP_ETAS = Syntax("etas", parse_sweep_etas)
ETA = Syntax("eta", parse_eta)

DTYPES = click.Choice(("float32", "float64"))


def _complete_family(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[str]:
  return [name for name in sorted(FAMILIES) if name.startswith(incomplete)]


def apply(decorators: Sequence[Callable]) -> Callable:
  """One decorator applying ``decorators`` (listed top to bottom, as in help)."""
  def wrap(f):
    for d in reversed(decorators):
      f = d(f)
    return f
  return wrap


def game_options(correlation_help: str) -> Callable:
  """The options that pick the game (``run``, ``sweep``)."""
  names = ", ".join(sorted(families()))
  section = "Game"
  return apply([
      option("--family", section=section, default="random", metavar="NAME",
             shell_complete=_complete_family,
             help=f"game family: {names} (default: random)"),
      option("--actions", section=section, type=COUNTS, default=None,
             help="actions per agent, comma separated, or one number for every "
             "agent with --agents (default: the family's: 3,4,5; "
             "network_zero_sum 10 each; markov 5,5,5)"),
      option("--agents", section=section, type=click.IntRange(min=1),
             default=None,
             help="number of agents; repeats a single --actions A (default: "
             "from --actions; network_zero_sum 5)"),
      option("--graph", section=section, default=None, metavar="GRAPH",
             help="graph of network families: ring (default; >= 3 agents), "
             "complete, random-regular[:D], or edges '0-1,1-2,...'"),
      option("--states", section=section, type=int, default=None,
             help="markov family: number of states (default: 5)"),
      option("--discount", section=section, type=float, default=None,
             help="markov family: discount factor gamma in [0, 1) "
             "(default: 0.9)"),
      option("--correlation", section=section, type=LINEAR, default=None,
             help=correlation_help),
      option("--seed", section=section, type=int, default=0,
             help="seed for the game and the initial policy, in [0, 2^32) "
             "(default: 0)"),
      option("--game-file", section=section, default=None, metavar="FILE",
             type=click.Path(),
             help="read the game from a Gambit .nfg file instead"),
  ])


def algorithm_options() -> Callable:
  """``--algorithm`` and ``--samples``."""
  return apply([
      option("--algorithm", section="Algorithm", default="npg",
             type=click.Choice(tuple(ALGORITHMS)),
             help="npg: exact NPG (default); sampled_npg: NPG from sampled "
             "rewards; pg: softmax policy gradient; optimistic_npg: "
             "predictive NPG"),
      option("--samples", section="Algorithm", type=int, default=64,
             help="joint actions sampled per iteration by sampled_npg "
             "(default: 64)"),
  ])


def tol_help(what: str = "QRE-gap tolerance") -> str:
  """``--tol``'s help: ``what``, and the library's default rule."""
  return (f"{what}, one for every agent (default: each agent's own, the "
          f"library's rule {GAP_RTOL:g} x (max|rbar_i| + tau log A_i) at the "
          "final iterate, the same in every dtype)")


def dtype_option(default: str | None, help: str) -> Callable:
  """``--dtype float32|float64``."""
  return option("--dtype", section="Algorithm", type=DTYPES, default=default,
                help=help)


def output_options(default_out: str, quiet_help: str = "no progress bar"
                   ) -> Callable:
  """``--out`` and ``--quiet``."""
  return apply([
      option("--out", section="Output", default=default_out, metavar="FOLDER",
             type=click.Path(),
             help=f"output folder (default: {default_out})"),
      option("--quiet", section="Output", is_flag=True, help=quiet_help),
  ])


def check_finite_in(values: Sequence[float], dtype: str, flag: str) -> None:
  """Refuse numbers beyond the range of ``dtype`` (they would become inf there).

  Raises:
    CliError: naming ``flag``, the value and the dtype's largest number.
  """
  largest = float(np.finfo(dtype).max)
  bad = [v for v in values if math.isfinite(v) and abs(v) > largest]
  if bad:
    raise CliError(f"{flag}: {bad[0]:g} is not finite in {dtype} (its largest "
                   f"number is {largest:.4g}); use a smaller value or "
                   "--dtype float64.")
