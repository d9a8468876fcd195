"""The ``jaxnpg`` command line (also ``python -m jaxnpg``)."""

from jaxnpg.cli.main import *  # noqa: F401,F403  (temporary, during the move)
from jaxnpg.cli.main import main
