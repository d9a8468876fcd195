"""What every command of the ``jaxnpg`` CLI shares.

* :class:`CliError`, the error a command raises for a bad argument;
* :class:`Command`, a ``click.Command`` whose help lists its options in sections
  (game, algorithm, output, ...) and whose errors are one line
  ``jaxnpg COMMAND: error: ...`` with exit status 2 (130 when interrupted);
* :func:`in_cli_terms`, which names the library's fields by the options that set
  them (a ``SweepConfig``'s ```num_iters``` is ``--iters`` here);
* the set-up every computing command makes first: the dtype and JAX's backend.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any, cast

import click
import jax

from jaxnpg.sweeps.progress import close_all


class CliError(Exception):
  """A user-facing error: printed as one line, exit status 2."""


class Interrupted(Exception):
  """Ctrl-C, with a note on what was kept: one line, exit status 130."""


# The option that sets each library field (SweepConfig fields, family options,
# argument names of run and the layout), for messages in the user's terms.
FLAGS: Mapping[str, str] = {
    "tau": "--taus", "taus": "--taus", "eta": "--eta", "etas": "--etas",
    "eta_multipliers": "--etas multipliers", "num_iters": "--iters", "num_games": "--games",
    "seed": "--seed", "tol": "--tol", "record_every": "--record-every",
    "trajectory_points": "--trajectory", "method": "--method",
    "algorithm": "--algorithm", "num_samples": "--samples",
    "num_seeds": "--seeds", "lyapunov": "--lyapunov", "num_inits": "--inits",
    "burn_in": "--burn-in", "max_period": "--max-period", "dtype": "--dtype",
    "family": "--family", "num_actions": "--actions", "init": "--init",
    "chunk_games": "--chunk-games", "memory_budget": "--memory-budget",
    "num_states": "--states", "discount": "--discount",
    "correlation": "--correlation", "graph": "--graph",
}


def in_cli_terms(error: BaseException) -> str:
  """The message of ``error`` with the library's field names as options.

  ```num_iters` must be >= 1`` becomes ``--iters must be >= 1``; an error with a
  ``field`` (a :class:`jaxnpg.sweeps.config.ConfigError`) whose message does not
  name its option gets the option in front.
  """
  text = re.sub(r"`(\w+)`", lambda m: FLAGS.get(m.group(1), m.group(0)),
                one_line(error))
  flag = FLAGS.get(getattr(error, "field", None) or "")
  if flag and flag not in text:
    text = f"{flag}: {text}"
  return text


def one_line(error: BaseException) -> str:
  """``error`` as one line of text (an OSError: its cause and path)."""
  text = describe_os_error(error) if isinstance(error, OSError) else str(error)
  return " ".join(text.split()) or type(error).__name__


def os_reason(error: OSError) -> str:
  """The cause of an OSError in words (``"Permission denied"``)."""
  return error.strerror or str(error) or type(error).__name__


def describe_os_error(error: OSError) -> str:
  """One line for an OSError: the cause and the path(s)."""
  paths = [p for p in (error.filename, getattr(error, "filename2", None)) if p]
  if not paths:
    return os_reason(error)
  return f"{os_reason(error)}: " + " -> ".join(
      str(p) if isinstance(p, int) else repr(os.fsdecode(p)) for p in paths)


def exit_now_if_distributed(rc: int) -> int:
  """Return ``rc``; in a failed multi-process run, exit the process right away.

  When another process of a ``jax.distributed`` run died, the interpreter's exit
  waits in jax.distributed's shutdown for about 90 s and then aborts; the error
  has been printed, so leave at once with the right status.
  """
  if jax.distributed.is_initialized() and jax.process_count() > 1:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
  return rc


class Invocation:
  """What ``main`` hands every command (``click.Context.obj``).

  Attributes:
    argv: the arguments after ``jaxnpg`` (for the resume command).
    parse_only: return the parsed parameters instead of running the command.
  """

  def __init__(self, argv: list[str], parse_only: bool = False):
    self.argv, self.parse_only = argv, parse_only


class Option(click.Option):
  """A ``click.Option`` listed under a section (``"Game"``) of the help."""

  def __init__(self, *args: Any, section: str = "Options", **kwargs: Any):
    super().__init__(*args, **kwargs)
    self.section = section


def option(*decls: str, section: str, **kwargs: Any) -> Callable:
  """``click.option`` under ``section`` of the help (the help text says the
  default itself)."""
  return click.option(*decls, cls=Option, section=section, **kwargs)


def _show_warning(command: str, message: Warning | str, *args: Any,
                  **kwargs: Any) -> None:
  """``warnings.showwarning`` of a command: ``jaxnpg COMMAND: warning: ...``."""
  click.echo(f"jaxnpg {command}: warning: {' '.join(str(message).split())}",
             err=True)


class Command(click.Command):
  """A ``jaxnpg`` command: sectioned help, one-line errors, exit codes.

  The callback takes one argument, the parsed options as attributes (and
  ``argv``), and returns the exit status. The library's warnings (a step size
  that overshoots, ...) are shown as one line ``jaxnpg COMMAND: warning: ...``.
  """

  def format_options(self, ctx: click.Context,
                     formatter: click.HelpFormatter) -> None:
    sections: dict[str, list[tuple[str, str]]] = {}
    for param in self.get_params(ctx):
      record = param.get_help_record(ctx)
      if record is not None:
        sections.setdefault(getattr(param, "section", "Options"),
                            []).append(record)
    for name, rows in sections.items():
      with formatter.section(name):
        formatter.write_dl(rows)

  def invoke(self, ctx: click.Context) -> Any:
    run = ctx.find_object(Invocation) or Invocation(sys.argv[1:])
    if run.parse_only:
      return self.name, dict(ctx.params)
    args = types.SimpleNamespace(**ctx.params, argv=run.argv)
    try:
      with warnings.catch_warnings():   # the library's warnings, one line each
        warnings.simplefilter("default", UserWarning)
        warnings.showwarning = functools.partial(_show_warning, str(self.name))
        return ctx.invoke(cast(Callable, self.callback), args)
    except (CliError, ValueError, OSError, ImportError, OverflowError) as e:
      close_all()
      click.echo(f"jaxnpg {self.name}: error: {in_cli_terms(e)}", err=True)
      return exit_now_if_distributed(2)
    except (KeyboardInterrupt, Interrupted) as e:
      close_all()
      note = f"; {e}" if isinstance(e, Interrupted) else ""
      click.echo(f"jaxnpg {self.name}: interrupted{note}", err=True)
      return exit_now_if_distributed(130)


def setup_dtype(dtype: str) -> None:
  """Turn JAX's 64-bit mode on for ``float64``, off for ``float32``."""
  jax.config.update("jax_enable_x64", dtype == "float64")


def start_backend() -> str:
  """Start JAX's backend; return its platform (``"cpu"``, ``"gpu"``, ...).

  Raises:
    CliError: the backend cannot start (``JAX_PLATFORMS`` names a platform this
      machine lacks, a broken plugin), in one line naming ``JAX_PLATFORMS``.
  """
  try:
    return jax.devices()[0].platform
  except (RuntimeError, AssertionError) as e:   # jax raises both
    wanted = os.environ.get("JAX_PLATFORMS")
    setting = (f"JAX_PLATFORMS={wanted!r}" if wanted is not None
               else "JAX_PLATFORMS is not set")
    raise CliError(
        f"JAX could not start its backend ({setting}): {one_line(e)}. Set "
        "JAX_PLATFORMS to a platform this machine has (e.g. JAX_PLATFORMS=cpu), "
        "or unset it to let JAX choose.") from None
