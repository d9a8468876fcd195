"""Smoke tests of the benchmark scripts that must run on a machine we may not have.

``benchmarks/gpu.py`` is meant for a GPU (4096 games x 64 tau x 1000 iterations);
here it runs at a tiny size on the CPU, in a subprocess with a hard timeout, and
must print its table and write its JSON. ``pytest -m gpu`` runs it on a GPU at a
moderate size (skipped where JAX sees none).
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest
from conftest import scaled

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu.py"


def _run(argv, tmp_path, *, platform, timeout):
  out = tmp_path / "gpu.json"
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  if platform is not None:
    env["JAX_PLATFORMS"] = platform
  env["PYTHONPATH"] = os.pathsep.join(
      [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  proc = subprocess.run([sys.executable, str(SCRIPT), *argv, "--out", str(out)],
                        env=env, cwd=tmp_path, capture_output=True, text=True,
                        timeout=timeout)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  return proc.stdout, json.loads(out.read_text())


def _check(stdout, data, games, taus, iters):
  assert "| jaxnpg.sweep" in stdout and "| jax-plain" in stdout
  assert "jaxnpg.sweep / jax-plain =" in stdout
  assert data["problem"]["games"] == games
  assert data["problem"]["taus"] == taus
  assert data["problem"]["iters"] == iters
  assert data["peak"]["measured_fma_per_s"] > 0
  assert data["check_max_rel_qre_gap_diff"] < 1e-3   # the same work
  for name in ("jaxnpg.sweep", "jax-plain"):
    r = data["results"][name]
    assert r["rate"] > 0 and r["game_iterations"] == games * taus * iters
    assert 0 < r["fraction_of_measured_fma_rate"]


@pytest.mark.slow   # ~10 s of compiling; the GPU run is the gpu-marked test
def test_gpu_benchmark_runs_on_cpu_at_a_tiny_size(tmp_path):
  stdout, data = _run(["--games", "4", "--taus", "2", "--iters", "10",
                       "--fma-elements", "1024", "--check-cells", "8"],
                      tmp_path, platform="cpu", timeout=scaled(120))
  assert "no GPU: reduced size" in stdout
  _check(stdout, data, 4, 2, 10)
  assert data["machine"]["backend"] == "cpu"


def _has_gpu():
  try:
    return bool(jax.devices("gpu"))
  except RuntimeError:
    return False


@pytest.mark.gpu
def test_gpu_benchmark_on_a_gpu(tmp_path):
  if not _has_gpu():
    pytest.skip(f"JAX sees no GPU (backend {jax.default_backend()!r})")
  stdout, data = _run(["--games", "1024", "--taus", "16", "--iters", "200"],
                      tmp_path, platform=None, timeout=scaled(300))
  _check(stdout, data, 1024, 16, 200)
  assert data["machine"]["backend"] == "gpu"
  # The FMA chain and the matmul both measure something near the device's peak.
  assert data["peak"]["measured_fma_per_s"] > 1e12
