"""``python -m jaxnpg``: the same as the ``jaxnpg`` console script."""

import sys

from jaxnpg.cli import main

if __name__ == "__main__":
  sys.exit(main())
