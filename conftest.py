"""Suite-wide hooks for the doctests (``jaxnpg/``) and the tests (``tests/``).

A worker's program caches are emptied at a file boundary once its memory
passes :data:`MAX_RSS_BYTES`. A pytest worker runs hundreds of files in one
process; without this, the compiled programs of every earlier file stay loaded
(about 6 GB per worker by the end of the suite), and jaxlib 0.10's CPU compiler
was seen to crash (SIGSEGV in ``backend_compile_and_load``) when it compiled a
new program late in such a process, although the same file passes alone or
after any half of the files before it. A crashed xdist worker under
``--dist loadfile`` then leaves the run hanging. Emptying them at every file
boundary instead would recompile, in each file, the small programs every file
uses (JAX's eager operations, the random draws): most of a test's time is XLA
compiling.
"""

import gc
import os
import sys

import jax

# A worker's resident memory above which its caches are emptied (emptied at
# every file instead, the two workers peaked at 2.2 and 1.8 GB; without it they
# reached 5.8 GB and one crashed).
MAX_RSS_BYTES = 3 << 30


def _rss_bytes() -> int:
  """This process's resident memory (Linux ``/proc``; 0 where unknown)."""
  try:
    with open("/proc/self/statm") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
  except (OSError, ValueError, IndexError):
    return 0


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
  """Clear jaxnpg's and JAX's caches after a file's last test, when the worker
  has grown past :data:`MAX_RSS_BYTES` (where ``/proc`` is missing: always)."""
  if nextitem is not None and nextitem.path == item.path:
    return
  rss = _rss_bytes()
  if rss == 0 or rss > MAX_RSS_BYTES:
    _clear_jaxnpg_caches()
    jax.clear_caches()
    gc.collect()
