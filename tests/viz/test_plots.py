"""The pictures: footers that fit, log axes with a visible floor, 1 - rate on a log
axis with the cells without a rate marked, a contrast-safe palette, Wilson error
bars, the predicted boundary on the heatmap, titles and footers that say what is
drawn, and distinct names for the theory versions. Built on small synthetic
results (no sweep runs), so each test takes well under a second."""

import itertools

import matplotlib
import numpy as np
import pytest

from jaxnpg import viz as _plots
from jaxnpg.viz import style
from jaxnpg.loop.status import STATUS_NAMES, Status
from jaxnpg.sweeps.results import SweepResult
from jaxnpg.theory import PredictedRates

matplotlib.use("Agg")


@pytest.fixture
def figures(monkeypatch):
  """Keep every figure a plot function draws (instead of closing it)."""
  import matplotlib.pyplot as plt
  kept = []
  monkeypatch.setattr(style, "close", kept.append)
  yield kept
  for fig in kept:
    plt.close(fig)


def _result(*, algorithm="npg", options=None, eta_rule="paper", etas=(1.0, 4.0),
            trajectories=True):
  """A 6-game x 4-tau SweepResult with known rates, gaps and statuses."""
  G, taus = 6, np.array([0.01, 0.1, 1.0, 10.0])
  E = len(etas)
  rng = np.random.default_rng(0)
  rate = np.empty((G, taus.size, E))
  rate[:] = (1 - np.array([1e-3, 1e-2, 1e-1, 0.5]))[None, :, None]
  rate *= 1 + 1e-4 * rng.standard_normal(rate.shape)
  rate[:3, 3, :] = np.nan                     # converged too fast to fit a rate
  status = np.zeros((G, taus.size, E), np.int8)
  status[:, 0, :] = Status.NOT_CONVERGED
  status[:2, 1, :] = Status.AT_FLOOR
  status[2:, 1, :] = Status.STALLED
  ne = np.full((G, taus.size, E), 1e-2)
  ne[0] = 0.0                                 # exact zeros: drawn at the floor
  K = 5
  traj = np.geomspace(1.0, 1e-20, K)[None, None, None, :] * np.ones((G, 4, E, 1))
  traj[..., -1] = 0.0
  return SweepResult(
      game=np.arange(G), tau=taus, eta=np.asarray(etas, float), eta_rule=eta_rule,
      step_size=np.outer(1 / (2 * (taus + 24)), etas), iteration=np.arange(K) * 10,
      qre_gap=np.where(status == 0, 1e-12, 1e-3), ne_gap=ne,
      iterations_to_tol=np.where(status == 0, 10, -1), linear_rate=rate,
      monotone=np.ones((G, taus.size, E), bool), status=status,
      qre_gap_trajectory=traj if trajectories else None,
      ne_gap_trajectory=traj if trajectories else None,
      attrs={"family": "random", "num_actions": [3, 4, 5], "num_iters": 40,
             "tol": 1e-10, "init": "random", "dtype": "float64",
             "jaxnpg": "0.1.0", "algorithm": algorithm,
             "algorithm_options": options or {}, "seed": 0})


def _predicted(res):
  """PredictedRates where game g's QRE attracts from tau index g % 3 on."""
  G, T, E = res.shape
  att = np.zeros((G, T, E), bool)
  for g in range(G):
    att[g, g % 3:] = True
  rho = np.where(att, 0.9, 1.1)
  return PredictedRates(taus=res.tau, etas=res.step_size, rho=rho, attracting=att,
                        max_real=np.zeros((G, T)), eta_max=np.zeros((G, T)),
                        qre_status=np.zeros((G, T), np.int8),
                        num_turning_points=np.zeros((G, T), np.int32),
                        qre_logp=())


def _assert_inside(fig):
  """The footer, the legends and every axes (with its labels) lie inside the
  figure after drawing."""
  fig.canvas.draw()
  renderer = fig.canvas.get_renderer()
  box = fig.bbox
  parts = [(t.get_text()[:60], t.get_window_extent(renderer)) for t in fig.texts]
  parts += [("legend", leg.get_window_extent(renderer)) for leg in fig.legends]
  parts += [(f"axes {i}", ax.get_tightbbox(renderer))
            for i, ax in enumerate(fig.axes)]
  for what, ext in parts:
    assert ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5, what
    assert ext.y0 >= box.y0 - 0.5 and ext.y1 <= box.y1 + 0.5, what


def _footer_text(fig):
  return " ".join(t.get_text() for t in fig.texts).replace("\n", " ")


def test_wilson_interval_matches_hand_computation():
  # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416 = 0.71675, half-width
  # 1.96 sqrt(0.016 + 0.009604) / 1.38416 = 0.22658.
  lo, hi = _plots.wilson_interval(8, 10, z=1.96)
  assert lo == pytest.approx(0.49017, abs=1e-4)
  assert hi == pytest.approx(0.94333, abs=1e-4)
  # 0 of n: [0, z^2 / (n + z^2)], not the empty interval of the normal rule.
  lo, hi = _plots.wilson_interval(0, 32, z=1.96)
  assert lo == 0.0 and hi == pytest.approx(1.96**2 / (32 + 1.96**2))
  lo, hi = _plots.wilson_interval(np.array([0, 5]), np.array([0, 5]))
  assert lo.tolist() == [0.0, pytest.approx(0.5655, abs=1e-4)] and hi[0] == 1.0


def test_palette_has_contrast_against_white():
  assert _plots.contrast_ratio("black") == pytest.approx(21.0)
  assert _plots.contrast_ratio("#F0E442") < 3          # Okabe-Ito yellow: left out
  for color in _plots.PALETTE:
    assert _plots.contrast_ratio(color) >= 3, color
  assert len(set(_plots.PALETTE)) == len(_plots.PALETTE) >= 7
  # ... and every two lines tell apart: CIELAB Delta E >= 40 (the old darkened
  # orange / sky blue pairs with vermillion / blue were 29 and 12).
  lab = {c: _cielab(c) for c in _plots.PALETTE}
  for a, b in itertools.combinations(_plots.PALETTE, 2):
    assert np.linalg.norm(lab[a] - lab[b]) >= 40, (a, b)


def _cielab(color):
  """sRGB (D65) to CIELAB, written out."""
  from matplotlib.colors import to_rgb
  rgb = np.array(to_rgb(color))
  lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
  m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                [0.0193, 0.1192, 0.9505]])
  xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
  f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
  return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_long_footer_is_wrapped_inside_the_figure(tmp_path, figures):
  caption = "; ".join(f"setting_{i}=value_{i}" for i in range(40))
  _plots.plot_gap_curves(np.arange(5), {"tau=1": np.geomspace(1, 1e-3, 5)},
                         tmp_path / "g.png", caption=caption)
  (fig,) = figures
  assert fig.texts[0].get_wrap()   # matplotlib wraps it to the figure width
  _assert_inside(fig)
  # The axes stay above the footer.
  fig.canvas.draw()
  foot = fig.texts[0].get_window_extent()
  for ax in fig.axes:
    assert ax.get_tightbbox().y0 >= foot.y1 - 1


def test_gap_curves_clip_zeros_to_a_visible_floor(tmp_path, figures):
  gap = np.array([1.0, 1e-5, 1e-12, 0.0, 0.0])
  _plots.plot_gap_curves(np.arange(5), {"tau=0.5": gap, "tau=1": gap + 1},
                         tmp_path / "g.png", caption="x")
  (fig,) = figures
  ax = fig.axes[0]
  assert ax.get_yscale() == "log"
  (line,) = [ln for ln in ax.get_lines() if ln.get_label() == "tau=0.5"]
  assert np.asarray(line.get_ydata()).tolist() == [1.0, 1e-5, 1e-12, 1e-17, 1e-17]
  assert "drawn at 1e-17" in _footer_text(fig)
  # The legend sits outside the axes: it covers no curve.
  (legend,) = fig.legends
  fig.canvas.draw()
  assert legend.get_window_extent().x0 >= ax.get_window_extent().x1
  # float32 gaps get the float32 floor.
  _plots.plot_gap_curves(np.arange(5), {"a": gap.astype(np.float32)},
                         tmp_path / "h.png")
  line = figures[-1].axes[0].get_lines()[0]
  assert np.min(line.get_ydata()) == pytest.approx(1e-8)
  assert _plots.display_floor(np.float64) == 1e-17


def test_paper_figures_2ab_use_a_log_axis():
  import inspect
  from jaxnpg.paper import figures as _paper
  assert "log=False" not in inspect.getsource(_paper.figure_2ab)


def test_rate_panel_draws_one_minus_rate_on_a_log_axis(tmp_path, figures):
  res = _result()
  _plots.plot_linear_rate(res, tmp_path / "r.png", caption="c")
  (fig,) = figures
  top, low = fig.axes[:2]
  assert top.get_yscale() == "log"
  (med,) = [ln for ln in top.get_lines()
            if ln.get_label() == "eta=1 x paper rule (median)"]
  expected = 1 - np.nanmedian(res.linear_rate[:, :, 0], axis=0)
  np.testing.assert_allclose(med.get_ydata(), expected, rtol=1e-9)
  assert np.ptp(np.log10(med.get_ydata())) > 2   # 0.999 and 0.99 a decade apart
  # Cells without a fitted rate are counted per tau.
  (miss,) = [ln for ln in low.get_lines()
             if ln.get_label() == "eta=1 x paper rule: no fitted rate"]
  np.testing.assert_allclose(miss.get_ydata(), [0, 0, 0, 0.5])
  labels = top.get_legend_handles_labels()[1] + [
      t.get_text() for t in top.get_legend().get_texts()]
  assert "band: interquartile range over games" in labels
  _assert_inside(fig)


def test_ne_gap_panel_bands_legend_and_floor(tmp_path, figures):
  _plots.plot_ne_gap(_result(), tmp_path / "n.png", caption="c")
  (fig,) = figures
  ax = fig.axes[0]
  texts = [t.get_text() for t in ax.get_legend().get_texts()]
  assert "band: interquartile range over games" in texts
  for line in ax.get_lines():
    if line.get_label().endswith("(median)"):
      assert _plots.contrast_ratio(line.get_color()) >= 3
  fills = [c for c in ax.collections if hasattr(c, "get_alpha")]
  assert fills and all(c.get_alpha() is None or c.get_alpha() <= 0.15
                       for c in fills)
  # One game of six at exactly 0: below the band, so no floor line pulling the
  # axis down to 1e-17 (and no floor note).
  assert "drawn at 1e-17" not in _footer_text(fig)
  assert ax.get_ylim()[0] > 1e-6
  _assert_inside(fig)
  # Half the games at 0: the lower quartile reaches the floor, which is drawn.
  res = _result()
  res.ne_gap[:3] = 0.0
  _plots.plot_ne_gap(res, tmp_path / "n2.png", caption="c")
  assert "drawn at 1e-17" in _footer_text(figures[-1])


def test_converged_fraction_has_wilson_bars_and_at_floor(tmp_path, figures):
  res = _result()
  _plots.plot_converged_fraction(res, tmp_path / "c.png", caption="c")
  (fig,) = figures
  ax = fig.axes[0]
  # Error bars: one vertical segment per tau and eta, the Wilson interval.
  bars = [c for c in ax.collections
          if isinstance(c, matplotlib.collections.LineCollection)]
  segs = np.concatenate([b.get_segments() for b in bars])
  lo, hi = _plots.wilson_interval(np.array([0, 0, 6, 6]), 6)
  assert sorted(np.round(segs[:4, :, 1].min(axis=1), 6)) == sorted(np.round(lo, 6))
  assert sorted(np.round(segs[:4, :, 1].max(axis=1), 6)) == sorted(np.round(hi, 6))
  labels = [t.get_text() for t in ax.get_legend().get_texts()]
  floor_label = f"eta=1 x paper rule: {Status.AT_FLOOR.label}"
  assert floor_label in labels and STATUS_NAMES[4] in floor_label
  (line,) = [ln for ln in ax.get_lines() if ln.get_label() == floor_label]
  np.testing.assert_allclose(line.get_ydata(), [0, 2 / 6, 0, 0])
  assert "Wilson 95% interval over 6 games" in _footer_text(fig)
  _assert_inside(fig)


def test_boundary_from_rates():
  res = _result()
  tau_b = _plots.boundary_from_rates(_predicted(res))
  np.testing.assert_array_equal(tau_b[:, 0], [0.01, 0.1, 1.0, 0.01, 0.1, 1.0])
  att = np.array([[True, False, True], [False, False, False]])[..., None]
  pr = _predicted(res)._replace(taus=np.array([1.0, 2.0, 3.0]), attracting=att)
  np.testing.assert_array_equal(_plots.boundary_from_rates(pr)[:, 0], [3.0, np.nan])


def test_heatmap_draws_the_predicted_boundary_and_says_what_eta_is(tmp_path,
                                                                    figures):
  res = _result()
  _plots.plot_converged_heatmap(res, tmp_path / "h.png", caption=
                                _plots.sweep_caption(res),
                                predicted=_predicted(res))
  (fig,) = figures
  ax = fig.axes[0]
  footer = _footer_text(fig)
  assert "eta = m x paper rule" in footer and "m in {1, 4}" in footer
  assert "eta rule paper" not in footer
  assert [t.get_text() for t in ax.get_yticklabels()] == ["1x", "4x"]
  # Boundary bars: per eta row a vertical white line at the median position;
  # the median game attracts from tau index 1 on: the left edge of cell 1.
  bars = [ln for ln in ax.get_lines() if np.ptp(ln.get_xdata()) == 0]
  assert len(bars) == 2 and all(ln.get_xdata()[0] == 1.0 for ln in bars)
  assert "predicted boundary" in footer
  _assert_inside(fig)


def test_titles_name_the_algorithm(tmp_path, figures):
  res = _result(algorithm="sampled_npg", options={"num_samples": 32})
  _plots.plot_converged_fraction(res, tmp_path / "c.png")
  _plots.plot_ne_gap(res, tmp_path / "n.png")
  for fig in figures:
    title = fig.axes[0].get_title()
    assert title.startswith("Sampled NPG (32 samples)"), title
    assert "Independent" not in title
  assert _plots.result_title(_result()) == "Independent NPG"


def test_constant_eta_footer():
  res = _result(eta_rule="constant", etas=(0.01, 0.02))
  assert "constant eta in {0.01, 0.02}" in _plots.sweep_caption(res)


def test_theory_versions_get_their_own_names(tmp_path, figures):
  res = _result()
  plain = _plots.plot_sweep(res, tmp_path / "plain")
  assert set(plain) == set(_plots.SWEEP_PLOTS)
  both = _plots.plot_sweep(res, tmp_path / "theory", predicted=_predicted(res))
  assert set(both) == set(_plots.SWEEP_PLOTS) | {
      f"{n}_theory" for n in _plots.THEORY_PLOTS}
  paths = list(both.values())
  assert len(set(paths)) == len(paths)
  for name in _plots.THEORY_PLOTS:
    assert both[f"{name}_theory"].endswith(f"{name}_theory.png")
    assert both[name].endswith(f"{name}.png")
  files = {p.name for p in (tmp_path / "theory").iterdir()}
  assert files == {f"{n}.png" for n in both}
  # Every picture keeps its footer, legends and labels inside the figure.
  assert len(figures) == 2 * len(_plots.SWEEP_PLOTS) + len(_plots.THEORY_PLOTS)
  for fig in figures:
    _assert_inside(fig)


def test_atlas_legend_says_which_regime_no_game_reached():
  from jaxnpg.viz import atlas_plots
  names = ("unique fixed point", "multiple fixed points", "periodic", "chaotic",
           "undetermined")
  frac = np.zeros((2, 3, 1, 5))
  frac[..., 0] = 0.75
  frac[0, 0, 0, 3] = 0.25
  frac[1:, :, 0, 4] = 0.25
  labels = [h.get_label() for h in atlas_plots._regime_handles(names, [frac])]
  assert labels == ["unique fixed point", "multiple fixed points (in no cell)",
                    "periodic (in no cell)", "chaotic", "undetermined"]
  # Over several atlases a regime counts as reached if any atlas reached it.
  other = np.zeros_like(frac)
  other[..., 2] = 1.0
  labels = [h.get_label() for h in
            atlas_plots._regime_handles(names, [frac, other])]
  assert labels[2] == "periodic"
