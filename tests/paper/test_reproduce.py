"""`jaxnpg reproduce --quick` writes every figure, and each figure's data supports
the paper's claim it illustrates (checked numerically, not by eye).

The committed figures (notebooks/figures/figure_*.json, whose numbers the README
quotes) are regenerated here at their full settings and compared, so they cannot
drift from the code: after a change to the numerics, regenerate them with
``jaxnpg reproduce --pictures-only --out notebooks/figures``.
"""

import json
import os
import pathlib

import jax
import numpy as np
import pytest

import jaxnpg
from jaxnpg.paper import reproduce as _reproduce
from jaxnpg.cli import main
from conftest import REPO


# The default run checks the main job's figure (Fig. 1, quick, no phase
# diagram: ~20 s); every figure, the phase diagrams and the committed numbers at
# full settings are `slow` (about 10 minutes on 2 cores): `pytest -m slow
# tests/paper/test_reproduce.py`.


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
  out = tmp_path_factory.mktemp("paper")
  with jax.enable_x64(True):
    result = _reproduce.reproduce(str(out), ("1", "2a", "2b", "2c"), quick=True,
                                  quiet=True, log=lambda s: None)
  return str(out), result


@pytest.fixture(scope="module")
def quick_figure_1(tmp_path_factory):
  out = tmp_path_factory.mktemp("paper1")
  with jax.enable_x64(True):
    result = _reproduce.reproduce(str(out), ("1",), quick=True, phases=False,
                                  quiet=True, log=lambda s: None)
  return str(out), result


@pytest.mark.slow   # every figure / full settings: minutes; see above
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


def test_figure_1_claims(quick_figure_1):
  _, result = quick_figure_1
  k, gaps = result["figures"]["1"]
  # tau = 0 does not converge: the gap stays far from zero over the whole tail.
  assert np.min(gaps[0.0][len(k) // 2:]) > 1e-3
  # tau ~ 0.1 suffices on the random game: the gap falls by orders of
  # magnitude (to 1e-17 in the full-size figure; quick mode runs 4000 steps).
  assert gaps[0.1][-1] < 1e-4 * gaps[0.1][0]
  # Larger tau converges faster.
  rates = [float(jaxnpg.linear_rate(gaps[t], k)) for t in (0.1, 0.5, 1.0)]
  assert rates[0] > rates[1] > rates[2]


@pytest.mark.slow   # every figure / full settings: minutes; see above
def test_figure_2ab_claims(quick):
  _, result = quick
  k, qre, ne = result["figures"]["2a"]
  # Moderate and large tau converge; the NE-gap at convergence grows with tau.
  for t in (1.0, 5.0):
    assert qre[t][-1] < 1e-6
  assert qre[0.5][-1] < 1e-3 * qre[0.5][0]
  assert ne[5.0][-1] > ne[1.0][-1] > ne[0.5][-1]


@pytest.mark.slow   # every figure / full settings: minutes; see above
def test_figure_2c_claims(quick):
  _, result = quick
  k, gaps = result["figures"]["2c"]
  # The Markov game behaves like the static one: linear convergence for
  # moderate tau, faster for larger tau.
  rates = [float(jaxnpg.linear_rate(gaps[t], k)) for t in (0.2, 0.5, 1.0)]
  assert all(r < 1 for r in rates)
  assert gaps[1.0][-1] < 1e-6 * gaps[1.0][0]
  assert rates[0] > rates[1] > rates[2]


@pytest.mark.slow   # every figure / full settings: minutes; see above
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


# --- the committed figures are what the code computes ---------------------------

COMMITTED = REPO / "notebooks" / "figures"
FIGURE_FILES = ("figure_1", "figure_2a", "figure_2b", "figure_2c")
# Settings that name the machine, not the experiment.
MACHINE_KEYS = ("device", "jax", "jaxnpg")
REGENERATE = "jaxnpg reproduce --pictures-only --out notebooks/figures"


def _read(folder, name):
  with open(os.path.join(folder, f"{name}.json")) as f:
    return json.load(f)


def _experiment(settings):
  return {k: v for k, v in settings.items() if k not in MACHINE_KEYS}


def _assert_curves_match(new, old, where):
  """Equal up to rounding: relative 1e-6, or both below the dtype's rounding
  floor of the curve (gaps fall to ~1e-17, where only rounding is left)."""
  assert sorted(new) == sorted(old), where
  for label in old:
    a, b = np.asarray(new[label], float), np.asarray(old[label], float)
    assert a.shape == b.shape, (where, label)
    floor = 1e3 * np.finfo(np.float64).eps * np.nanmax(np.abs(b))
    np.testing.assert_allclose(
        a, b, rtol=1e-6, atol=floor,
        err_msg=f"{where} {label}: the committed numbers are stale; regenerate "
        f"them with `{REGENERATE}`")


@pytest.fixture(scope="module")
def full_figures(tmp_path_factory):
  """The paper's figures at the committed (full) settings, no phase diagrams
  (what `jaxnpg reproduce --pictures-only` writes beside the phases)."""
  out = tmp_path_factory.mktemp("full")
  with jax.enable_x64(True):
    _reproduce.reproduce(str(out), ("1", "2a", "2b", "2c"), quick=False,
                         phases=False, quiet=True, log=lambda s: None)
  return str(out)


@pytest.mark.slow   # every figure / full settings: minutes; see above
@pytest.mark.parametrize("name", FIGURE_FILES)
def test_committed_figure_numbers_are_reproduced(full_figures, name):
  committed, new = _read(COMMITTED, name), _read(full_figures, name)
  assert _experiment(new["settings"]) == _experiment(committed["settings"]), (
      f"{name}: settings changed; regenerate with `{REGENERATE}`")
  assert new["iterations"] == committed["iterations"], name
  _assert_curves_match(new["curves"], committed["curves"], name)


def _assert_quick_run_starts_the_committed_figure(out, name):
  """`--quick` runs the same experiment, only shorter: its records at the
  committed figure's iterations equal the committed numbers."""
  committed, short = _read(COMMITTED, name), _read(out, name)
  same = {k: v for k, v in _experiment(short["settings"]).items()
          if k not in ("iters", "chunks")}
  assert same == {k: v for k, v in _experiment(committed["settings"]).items()
                  if k not in ("iters", "chunks")}, name
  k_short, k_full = short["iterations"], committed["iterations"]
  common = sorted(set(k_short) & set(k_full))
  assert len(common) >= 6 and common[0] == 0, (name, common[:3])
  pick_short = [k_short.index(k) for k in common]
  pick_full = [k_full.index(k) for k in common]
  _assert_curves_match(
      {t: np.asarray(c)[pick_short] for t, c in short["curves"].items()},
      {t: np.asarray(c)[pick_full] for t, c in committed["curves"].items()},
      f"{name} (quick run)")


def test_quick_run_is_the_start_of_the_committed_figure(quick_figure_1):
  _assert_quick_run_starts_the_committed_figure(quick_figure_1[0], "figure_1")


@pytest.mark.slow   # every figure quick: minutes
@pytest.mark.parametrize("name", FIGURE_FILES)
def test_quick_runs_of_every_figure_start_the_committed_ones(quick, name):
  _assert_quick_run_starts_the_committed_figure(quick[0], name)
