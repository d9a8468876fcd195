"""Suite-wide hooks for the doctests (``jaxnpg/``) and the tests (``tests/``).

Every test file starts with empty program caches. A pytest worker runs hundreds
of files in one process; without this, the compiled programs of every earlier
file stay loaded (about 6 GB per worker by the end of the suite), and jaxlib
0.10's CPU compiler was seen to crash (SIGSEGV in ``backend_compile_and_load``)
when it compiled a new program late in such a process, although the same file
passes alone or after any half of the files before it. A crashed xdist worker
under ``--dist loadfile`` then leaves the run hanging. Freeing the programs at
each file boundary keeps a worker's memory near that of one file.
"""

import gc
import sys

import jax


def _clear_jaxnpg_caches():
  """Every ``functools`` cache at the top level of a loaded jaxnpg module.

  jaxnpg keeps compiled executables in such caches (``jax.clear_caches`` does
  not reach them); found by their ``cache_clear``, so a new one is covered.
  """
  for name, module in list(sys.modules.items()):
    if name == "jaxnpg" or name.startswith("jaxnpg."):
      for value in vars(module).values():
        if callable(getattr(value, "cache_clear", None)):
          value.cache_clear()


def pytest_runtest_teardown(item, nextitem):
  """Clear jaxnpg's and JAX's caches after the last test of each file."""
  if nextitem is None or nextitem.path != item.path:
    _clear_jaxnpg_caches()
    jax.clear_caches()
    gc.collect()
