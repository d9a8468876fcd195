"""Multi-process sweeps on localhost: ``jaxnpg sweep --coordinator 127.0.0.1:PORT
--num-processes 2 --process-id I``.

Two CLI processes (one CPU device each, ``JAX_PLATFORMS=cpu``) form one JAX
cluster through ``jax.distributed``; the sweep shards each chunk's games over both
devices, gathers the results (``_sweep._to_host``) and process 0 writes them. The
tests check that

* the folder two processes write loads (``jaxnpg.load_sweep``) to the same arrays,
  bit for bit, as a one-process sweep of the same parameters;
* killing process 1 (SIGKILL) after the first chunk is on disk leaves a partial
  folder that a rerun (two processes again, or one) completes to the same arrays.

Every subprocess runs under a hard deadline and is killed (by its pid) when the
test ends, however it ends, so a hung collective cannot hang the test run.
"""

import dataclasses
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import jaxnpg
from conftest import scaled, REPO


# 6 chunks of 4 games x 2 tau: small enough to compile and run in seconds, with
# enough chunks that killing a process after the first one lands mid-sweep.
SWEEP = ["sweep", "--family", "random", "--actions", "2,3", "--games", "24",
         "--taus", "0.1,1", "--iters", "400", "--chunk-games", "4",
         "--trajectory", "8", "--quiet"]
NUM_CHUNKS = 6
DEADLINE_S = scaled(40)  # any one group of processes (start, compile, run, exit)


def _free_port() -> int:
  """A TCP port free right now (bound to port 0, then released)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(cache_dir) -> dict:
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  # One persistent compilation cache for the module: a rerun loads the chunk
  # program its first run compiled instead of compiling it again (seconds each).
  env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
  env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
  env.pop("XLA_FLAGS", None)   # one CPU device per process, whatever CI sets
  env["PYTHONPATH"] = os.pathsep.join(
      [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  return env


class _Procs:
  """The subprocesses a test started; all killed (by pid) at teardown."""

  def __init__(self, tmp_path, cache_dir):
    self.tmp_path = tmp_path
    self.cache_dir = cache_dir
    self.started: list[tuple[subprocess.Popen, pathlib.Path]] = []

  def start(self, out, *, process_id=None, port=None, num_processes=2):
    argv = [sys.executable, "-m", "jaxnpg", *SWEEP, "--out", str(out)]
    name = "single"
    if process_id is not None:
      argv += ["--coordinator", f"127.0.0.1:{port}",
               "--num-processes", str(num_processes),
               "--process-id", str(process_id)]
      name = f"p{process_id}"
    log = self.tmp_path / f"{out.name}-{name}-{len(self.started)}.log"
    with open(log, "wb") as fh:
      proc = subprocess.Popen(argv, env=_env(self.cache_dir), cwd=self.tmp_path, stdout=fh,
                              stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    self.started.append((proc, log))
    return proc

  def start_group(self, out, num_processes=2):
    port = _free_port()
    return [self.start(out, process_id=i, port=port,
                       num_processes=num_processes)
            for i in range(num_processes)]

  def logs(self) -> str:
    return "\n".join(f"--- {log.name} (rc {p.returncode}):\n"
                     f"{log.read_text(errors='replace')[-3000:]}"
                     for p, log in self.started)

  def wait(self, procs, timeout=DEADLINE_S) -> list[int]:
    """Exit codes of ``procs``; kills them all and fails past ``timeout``."""
    deadline = time.monotonic() + timeout
    try:
      return [p.wait(timeout=max(0.0, deadline - time.monotonic()))
              for p in procs]
    except subprocess.TimeoutExpired:
      self.kill(procs)
      pytest.fail(f"sweep processes still running after {timeout}s; logs:\n"
                  f"{self.logs()}")

  @staticmethod
  def kill(procs):
    for p in procs:
      if p.poll() is None:
        p.kill()
    for p in procs:
      try:
        p.wait(timeout=scaled(10))
      except subprocess.TimeoutExpired:
        pass

  def close(self):
    self.kill([p for p, _ in self.started])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture
def procs(tmp_path, cache_dir):
  started = _Procs(tmp_path, cache_dir)
  try:
    yield started
  finally:
    started.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache_dir):
  """The one-process sweep (a subprocess, as the others)."""
  tmp = tmp_path_factory.mktemp("one-process")
  started = _Procs(tmp, cache_dir)
  try:
    out = tmp / "sweep"
    rc = started.wait([started.start(out)])
    assert rc == [0], started.logs()
  finally:
    started.close()
  return jaxnpg.load_sweep(out)


def _assert_same(res, ref):
  """Every array field of two SweepResults equal bit for bit (NaN == NaN)."""
  compared = []
  for field in dataclasses.fields(ref):
    a, b = getattr(res, field.name), getattr(ref, field.name)
    if not isinstance(b, np.ndarray):
      assert not isinstance(a, np.ndarray), field.name
      continue
    assert isinstance(a, np.ndarray), field.name
    assert a.dtype == b.dtype and a.shape == b.shape, field.name
    # Bit for bit: compare the raw bytes (NaNs with the same payload match).
    assert a.tobytes() == b.tobytes(), (
        f"{field.name} differs: max |diff| "
        f"{np.nanmax(np.abs(a.astype(float) - b.astype(float)))}")
    compared.append(field.name)
  assert {"qre_gap", "ne_gap", "status", "linear_rate", "iterations_to_tol",
          "monotone", "qre_gap_trajectory", "ne_gap_trajectory"} <= set(compared)


def _chunks_on_disk(out) -> int:
  return len(list((out / "chunks").glob("chunk-*.npz")))


def test_two_processes_equal_one_bit_for_bit(procs, reference, tmp_path):
  out = tmp_path / "two"
  group = procs.start_group(out)
  assert procs.wait(group) == [0, 0], procs.logs()
  res = jaxnpg.load_sweep(out)
  assert res.attrs["num_chunks"] == NUM_CHUNKS
  log0 = procs.logs()
  assert "2 cpu device(s)" in log0, log0    # one cluster of two devices
  _assert_same(res, reference)


@pytest.mark.parametrize("rerun_processes", [
    2,                                          # the same command again
    pytest.param(1, marks=pytest.mark.slow),    # one process finishes it
])
def test_killed_process_then_rerun_resumes(procs, reference, tmp_path,
                                           rerun_processes):
  out = tmp_path / "killed"
  p0, p1 = procs.start_group(out)
  deadline = time.monotonic() + DEADLINE_S
  while _chunks_on_disk(out) == 0:
    if time.monotonic() > deadline or p0.poll() is not None:
      procs.kill([p0, p1])
      pytest.fail(f"no chunk written before the deadline; logs:\n{procs.logs()}")
    time.sleep(0.002)
  p1.kill()                                # SIGKILL, mid-sweep
  p1.wait(timeout=scaled(10))
  # Process 0 cannot finish a chunk without its peer: its all-gather fails
  # ("Gloo AllGather failed: ... Connection reset by peer") and then it hangs at
  # exit in jax.distributed's shutdown. Give it a moment, then kill it too.
  try:
    p0.wait(timeout=3)
  except subprocess.TimeoutExpired:
    p0.kill()
    p0.wait(timeout=scaled(10))
  assert p0.returncode != 0, procs.logs()
  done = _chunks_on_disk(out)
  assert 1 <= done < NUM_CHUNKS, (done, procs.logs())
  with pytest.raises(ValueError):
    jaxnpg.load_sweep(out)                 # unfinished: refused ...
  partial = jaxnpg.load_sweep(out, allow_partial=True)
  assert partial.attrs["complete"] is False

  if rerun_processes == 2:
    group = procs.start_group(out)
  else:
    group = [procs.start(out)]
  assert procs.wait(group) == [0] * rerun_processes, procs.logs()
  text = procs.started[-rerun_processes][1].read_text()   # process 0's log
  skipped = re.search(r"(\d+) already done and verified", text)
  assert skipped and 1 <= int(skipped.group(1)) < NUM_CHUNKS, text
  _assert_same(jaxnpg.load_sweep(out), reference)
