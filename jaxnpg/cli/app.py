"""The ``jaxnpg`` command group, :func:`main` and :func:`parse`.

The commands live one per module (``run``, ``sweep``, ``plot``, ``reproduce``)
on click. Whatever goes wrong is one line on stderr, ``jaxnpg COMMAND: error:
...``, with exit status 2: a usage error (an unknown option, a bad number, a
missing value) here, a bad value or a file-system fault in the command
(:class:`jaxnpg.cli.base.Command`); Ctrl-C exits with 130.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from jaxnpg.cli import plot, reproduce, run, sweep
from jaxnpg.cli.base import Invocation

_HELP = """\b
Entropy-regularized independent natural policy gradient (NPG) in games.

\b
Each agent updates  log pi_i <- (1 - eta*tau) log pi_i + eta * rbar_i  (normalized),
where rbar_i is its expected reward against the others' current policies and tau
the entropy weight. For large enough tau the iteration converges linearly to the
quantal response equilibrium (QRE); the QRE-gap measures the distance to it.

See 'jaxnpg COMMAND --help' for each command's options and examples.

\b
Shell completion (bash; zsh_source or fish_source for zsh and fish):
  eval "$(_JAXNPG_COMPLETE=bash_source jaxnpg)"    # e.g. in ~/.bashrc
"""


class _Group(click.Group):
  """The commands in the order they were added (run, sweep, plot, reproduce)."""

  def list_commands(self, ctx: click.Context) -> list[str]:
    return list(self.commands)


@click.group("jaxnpg", cls=_Group, help=_HELP, no_args_is_help=False,
             context_settings={"help_option_names": ["-h", "--help"]})
def group() -> None:
  """The ``jaxnpg`` command (its commands do the work)."""


for _module in (run, sweep, plot, reproduce):
  group.add_command(_module.command)


def _command_name(error: click.ClickException, argv: Sequence[str]) -> str:
  """``"jaxnpg run"``: the command an error belongs to (from its context, else
  the first word of ``argv`` that names a command)."""
  ctx = getattr(error, "ctx", None)
  if ctx is not None:
    return ctx.command_path
  name = next((a for a in argv if a in group.commands), None)
  return "jaxnpg" if name is None else f"jaxnpg {name}"


def _invoke(argv: list[str], parse_only: bool) -> Any:
  return group.main(args=argv, prog_name="jaxnpg", standalone_mode=False,
                    obj=Invocation(argv, parse_only=parse_only))


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of the ``jaxnpg`` console script (and ``python -m jaxnpg``).

  Args:
    argv: the arguments after ``jaxnpg`` (default: ``sys.argv[1:]``).

  Returns:
    The exit status: 0 on success (and for ``--help``), 2 for any bad argument
    or file-system fault (one line ``jaxnpg COMMAND: error: ...`` on stderr, no
    traceback), 130 when interrupted.
  """
  args = list(sys.argv[1:] if argv is None else argv)
  try:
    rc = _invoke(args, parse_only=False)
  except click.ClickException as e:
    name = _command_name(e, args)
    message = " ".join(e.format_message().split())
    click.echo(f"{name}: error: {message} (see: {name} --help)", err=True)
    return 2
  except click.Abort:   # Ctrl-C while parsing
    click.echo("jaxnpg: interrupted", err=True)
    return 130
  return rc if isinstance(rc, int) else 0


def console() -> None:
  """The ``jaxnpg`` console script: :func:`main`, then exit with its status.

  After Ctrl-C (status 130) the process ends at once (``os._exit``, streams
  flushed): XLA's threads may still be inside the computation the interrupt
  cut short, and tearing the interpreter down under them was seen to crash
  (SIGSEGV after the message, in an interrupted atlas). Everything worth
  keeping is already on disk (chunks are written whole) and the folder locks
  are released (:func:`jaxnpg.cli.base.close_all`).
  """
  rc = main()
  if rc == 130:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
  sys.exit(rc)


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
  """The command ``jaxnpg ARGV`` would run and its parameters, without running it.

  Each option's syntax is checked (lists, ranges, sizes, choices, numbers);
  values are checked by the library when the command runs.

  Args:
    argv: the arguments after ``jaxnpg``.

  Returns:
    ``(command, params)``, e.g. ``("run", {"taus": [0.0, 0.1], "iters": 20000,
    ...})``; for an ARGV with ``--help`` (the help is printed)
    ``(command, {"help": True})`` (command ``""`` for ``jaxnpg --help``).

  Raises:
    click.UsageError: ARGV does not parse (an unknown command or option, a
      malformed value, a missing one).

  Example:
    >>> from jaxnpg import cli
    >>> command, params = cli.parse(["run", "--taus", "0.1,1", "--iters", "50"])
    >>> command, params["taus"], params["iters"], params["out"]
    ('run', [0.1, 1.0], 50, 'runs/run')
  """
  args = list(argv)
  result = _invoke(args, parse_only=True)
  if isinstance(result, tuple):
    return result
  name = next((a for a in args if a in group.commands), "")
  return name, {"help": True}
