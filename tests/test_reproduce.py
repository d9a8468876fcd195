"""`jaxnpg reproduce --quick` writes every figure, and each figure's data supports
the paper's claim it illustrates (checked numerically, not by eye)."""

import json
import os

import jax
import numpy as np
import pytest

import jaxnpg
from jaxnpg import _reproduce
from jaxnpg.cli import main


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
  out = tmp_path_factory.mktemp("paper")
  with jax.enable_x64(True):
    result = _reproduce.reproduce(str(out), ("1", "2a", "2b", "2c"), quick=True,
                                  quiet=True, log=lambda s: None)
  return str(out), result


def test_every_figure_and_phase_diagram_is_written(quick):
  out, result = quick
  for name in ("1", "2a", "2b", "2c"):
    png = os.path.join(out, f"figure_{name}.png")
    assert os.path.getsize(png) > 10_000
    with open(os.path.join(out, f"figure_{name}.json")) as f:
      settings = json.load(f)["settings"]
    for key in ("seed", "taus", "eta_rule", "iters", "dtype", "device"):
      assert key in settings, (name, key)
  for phase in ("random", "network", "markov"):
    plots = os.path.join(out, f"phase_{phase}", "plots")
    for plot in ("converged_fraction", "linear_rate", "ne_gap",
                 "qre_trajectories"):
      assert os.path.getsize(os.path.join(plots, f"{plot}.png")) > 10_000
  assert all(os.path.exists(p) for p in result["files"])


def test_figure_1_claims(quick):
  _, result = quick
  k, gaps = result["figures"]["1"]
  # tau = 0 does not converge: the gap stays far from zero over the whole tail.
  assert np.min(gaps[0.0][len(k) // 2:]) > 1e-3
  # tau ~ 0.1 suffices on the random game: the gap falls by orders of
  # magnitude (to 1e-17 in the full-size figure; quick mode runs 4000 steps).
  assert gaps[0.1][-1] < 1e-4 * gaps[0.1][0]
  # Larger tau converges faster.
  rates = [float(jaxnpg.linear_rate(gaps[t], k)) for t in (0.1, 0.5, 1.0)]
  assert rates[0] > rates[1] > rates[2]


def test_figure_2ab_claims(quick):
  _, result = quick
  k, qre, ne = result["figures"]["2a"]
  # Moderate and large tau converge; the NE-gap at convergence grows with tau.
  for t in (1.0, 5.0):
    assert qre[t][-1] < 1e-6
  assert qre[0.5][-1] < 1e-3 * qre[0.5][0]
  assert ne[5.0][-1] > ne[1.0][-1] > ne[0.5][-1]


def test_figure_2c_claims(quick):
  _, result = quick
  k, gaps = result["figures"]["2c"]
  # The Markov game behaves like the static one: linear convergence for
  # moderate tau, faster for larger tau.
  rates = [float(jaxnpg.linear_rate(gaps[t], k)) for t in (0.2, 0.5, 1.0)]
  assert all(r < 1 for r in rates)
  assert gaps[1.0][-1] < 1e-6 * gaps[1.0][0]
  assert rates[0] > rates[1] > rates[2]


def test_phase_diagram_random_claims(quick):
  _, result = quick
  res = result["phases"]["random"]
  frac = res.converged_fraction()          # (tau, eta)
  assert frac[-1].min() == 1.0             # large tau: every game converges
  assert frac[0].max() < 0.5               # tiny tau: most do not


def test_cli_rejects_unknown_figure(capsys):
  assert main(["reproduce", "--figure", "3", "--out", "/nonexistent"]) == 2
  err = capsys.readouterr().err
  assert "Unknown figure" in err and "\n" == err[-1] and err.count("\n") == 1
