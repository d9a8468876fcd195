"""The installed package's version (``jaxnpg.__version__``).

Example:
  >>> import jaxnpg
  >>> isinstance(jaxnpg.__version__, str)
  True
"""

from importlib import metadata as _metadata

try:
  __version__ = _metadata.version("jaxnpg")
  """The installed version (PEP 440), from the package metadata."""
except _metadata.PackageNotFoundError:  # running from a source tree
  __version__ = "0.0.0+unknown"
