"""``python -m jaxnpg``: the same as the ``jaxnpg`` console script."""

from jaxnpg.cli.app import console

if __name__ == "__main__":
  console()
