"""Suite-wide hooks for the doctests (``jaxnpg/``) and the tests (``tests/``).

Every test file starts with empty JAX caches. A pytest worker runs hundreds of
files in one process; without this, the compiled programs of every earlier file
stay loaded (about 6 GB per worker by the end of the suite), and jaxlib 0.10's
CPU compiler was seen to crash (SIGSEGV in ``backend_compile_and_load``) when it
compiled a new program late in such a process, although the same file passes
alone or after any half of the files before it. A crashed xdist worker under
``--dist loadfile`` then leaves the run hanging. Freeing the programs at each
file boundary keeps a worker's memory near that of one file.
"""

import gc

import jax

from jaxnpg.loop import batch_last
from jaxnpg.sweeps import compile as sweep_compile
from jaxnpg.sweeps import layout

# jaxnpg's own caches of compiled or jitted programs (JAX's caches do not see
# the executables these hold).
PROGRAM_CACHES = (batch_last._part_program, batch_last.loop_fn,
                  sweep_compile._chunk_fn, layout._step_bytes)


def pytest_runtest_teardown(item, nextitem):
  """Clear jaxnpg's and JAX's caches after the last test of each file."""
  if nextitem is None or nextitem.path != item.path:
    for cache in PROGRAM_CACHES:
      cache.cache_clear()
    jax.clear_caches()
    gc.collect()
