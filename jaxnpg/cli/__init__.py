"""The ``jaxnpg`` command line (also ``python -m jaxnpg``), on click.

One module per command: :mod:`~jaxnpg.cli.run`, :mod:`~jaxnpg.cli.sweep`,
:mod:`~jaxnpg.cli.plot`, :mod:`~jaxnpg.cli.reproduce`; :mod:`~jaxnpg.cli.app`
holds the group, :func:`main` and :func:`parse`; :mod:`~jaxnpg.cli.options` the
CLI's own syntax (lists, ranges, sizes), :mod:`~jaxnpg.cli.games` the game
options, :mod:`~jaxnpg.cli.report` the tables, :mod:`~jaxnpg.cli.interrupt` what
Ctrl-C says, :mod:`~jaxnpg.cli.base` what the commands share. The values are
checked by the library objects the options build (``jaxnpg.SweepConfig``,
``jaxnpg.run``'s rules), and every error is one line with exit status 2.
"""

from __future__ import annotations

from jaxnpg.cli.app import main, parse
from jaxnpg.cli.options import parse_floats, parse_linear

__all__ = ["main", "parse", "parse_floats", "parse_linear"]
