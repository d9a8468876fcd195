"""What the commands print: the tables of ``run``, ``sweep`` and an atlas, and
their legends.

Status names and descriptions come from :class:`jaxnpg.Status`, attractor names
from :data:`jaxnpg.ATTRACTOR_NAMES` and the default tolerance's rule from
:mod:`jaxnpg.core.tolerance`, so a table says what the library means.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence

import numpy as np

from jaxnpg.core.tolerance import GAP_RTOL
from jaxnpg.dynamics.attractors import ATTRACTOR_NAMES
from jaxnpg.loop.status import Status
from jaxnpg.sweeps.atlas import AtlasResult
from jaxnpg.sweeps.results import SweepResult

_BY_LABEL = {s.label: s for s in Status}
_REGIME_LETTERS = "UMPC?"


def status_label(code: int) -> str:
  """The label of a :class:`jaxnpg.Status` code (``"converged"``)."""
  try:
    return Status(code).label
  except ValueError:
    return f"status {code}"


def status_legend(labels: Iterable[str]) -> list[str]:
  """``"  LABEL: what it means"`` for each status label (once, in order)."""
  return [f"  {label}: {_BY_LABEL[label].description}"
          for label in dict.fromkeys(labels) if label in _BY_LABEL]


def tol_text(tol: float | None) -> str:
  """What the tolerance is, for a legend: a number, or the library's rule."""
  if isinstance(tol, (int, float)):
    return f"{tol:g} (--tol)"
  return (f"each agent's own, the default rule {GAP_RTOL:g} x (max|rbar_i| + "
          "tau log A_i) at each cell's final iterate, the same in every dtype")


def print_run_summary(rows: Sequence[dict]) -> None:
  """The table of ``jaxnpg run`` and a legend of its columns."""
  head = (f"{'tau':>9} {'eta':>9} {'QRE-gap':>10} {'NE-gap':>10} {'tol':>8} "
          f"{'iters to tol':>12} {'rate':>9}  status")
  print(head)
  print("-" * len(head))
  for r in rows:
    it = ("not reached" if r["iterations_to_tol"] is None
          else r["iterations_to_tol"])
    rate = "-" if r["linear_rate"] is None else f"{r['linear_rate']:.6f}"
    print(f"{r['tau']:>9.4g} {r['eta']:>9.3g} {r['final_qre_gap']:>10.3e} "
          f"{r['final_ne_gap']:>10.3e} {max(r['tol']):>8.2g} {it:>12} "
          f"{rate:>9}  {r['status']}")
  print("legend: gaps at the last iteration; tol: the QRE-gap tolerance (--tol, "
        "else each agent's own by the library's rule; the largest shown);\n"
        "  iters to tol: first recorded iteration at which every agent's QRE-gap "
        "is <= its tol; rate: fitted linear rate, gap_k ~ C rate^k ('-': no fit)")
  for line in status_legend(r["status"] for r in rows):
    print(line)


def print_sweep_report(res: SweepResult, chunks: Sequence[dict], out: str
                       ) -> None:
  """The chunking and speed (stderr), the converged fractions per ``(tau,
  eta)``, the status counts, attractors and a legend (stdout)."""
  _print_chunks(res, chunks)
  frac = res.converged_fraction()
  if res.seed is not None:   # mean +- std over seeds
    spread = res.summary()["converged_fraction_std"]
    cell = lambda t, e: f"{frac[t, e]:.3f}+-{spread[t, e]:.3f}"
    width = 15
    print(f"converged fraction, mean +- std over {res.num_seeds} seeds")
  else:
    cell = lambda t, e: f"{frac[t, e]:.3f}"
    width = 11
  paper = res.eta_rule == "paper"
  label = lambda e: f"conv@{e:.3g}" + ("x" if paper else "")
  shown = min(6, res.shape[2])
  head = f"{'tau':>10} " + " ".join(f"{label(e):>{width}}" for e in res.eta[:6])
  print(head)
  print("-" * len(head))
  for t, tau in enumerate(res.tau):
    print(f"{tau:>10.4g} " + " ".join(f"{cell(t, e):>{width}}"
                                      for e in range(shown)))
  counts = res.status_counts()
  print(f"status counts: {counts}")
  if res.attractor is not None:
    codes = np.bincount(res.attractor.ravel().astype(np.int64),
                        minlength=len(ATTRACTOR_NAMES))
    text = ", ".join(f"{n}: {int(c)}" for n, c in zip(ATTRACTOR_NAMES, codes))
    if res.num_fixed_points is not None:
      text += (f"; cells with >= 2 distinct fixed points: "
               f"{int(np.sum(res.num_fixed_points >= 2))}")
    print(f"attractors (start 0): {text}")
  step = ("step size m x the 'paper' rule (paper_eta)" if paper
          else "the constant step size m")
  more = (f" (first {shown} of {res.shape[2]} shown)"
          if res.shape[2] > shown else "")
  print(f"legend: conv@m = fraction of games whose final QRE-gap is <= tol, "
        f"at {step}{more}")
  print(f"  tol: {tol_text(res.attrs.get('tol'))}")
  for line in status_legend(name for name, n in counts.items() if n):
    print(line)
  print(f"wrote {out} (plot it with: jaxnpg plot {out})")


def _print_chunks(res: SweepResult, chunks: Sequence[dict]) -> None:
  a = res.attrs
  skipped = sum(1 for c in chunks if c["skipped"])
  computed = [c["chunk"] for c in chunks if not c["skipped"]]
  damaged = a.get("chunks_damaged", [])
  cells = a["chunk_games"] * math.prod(res.shape[1:])
  plural = "s" if a["num_chunks"] != 1 else ""
  repair = (f" ({len(damaged)} of them found damaged or incomplete on disk and "
            f"recomputed: chunk {', '.join(map(str, damaged[:8]))}"
            f"{', ...' if len(damaged) > 8 else ''})" if damaged else "")
  print(f"chunks: {a['num_chunks']} chunk{plural} of up to {a['chunk_games']} "
        f"games ({cells} cells) each; {len(computed)} computed{repair}, "
        f"{skipped} already done and verified; method {a['method']}",
        file=sys.stderr)
  if a.get("game_iterations_per_second"):
    print(f"speed: {a['game_iterations_per_second']:.3g} game-iterations/s "
          f"(compile {a.get('compile_seconds', 0):.1f}s)", file=sys.stderr)


def print_atlas_report(res: AtlasResult, out: str) -> None:
  """Dominant regime per ``(rho, tau)`` as letters, or the converged fractions."""
  print(("dominant regime per (rho, tau) at the first eta, with its fraction of "
         "games") if res.sweeps[0].attractor is not None else
        "converged fraction per (rho, tau) at the first eta")
  print(f"{'rho':>7} " + " ".join(f"{t:>7.3g}" for t in res.tau))
  if res.sweeps[0].attractor is not None:
    frac = res.regime_fractions()[:, :, 0]                   # (R, T, 5)
    for r, v in enumerate(res.values):
      cells = [f"{_REGIME_LETTERS[int(np.argmax(f))]}{np.max(f):.2f}"
               for f in frac[r]]
      print(f"{v:>7.3g} " + " ".join(f"{c:>7}" for c in cells))
    print("legend: " + ", ".join(f"{letter} {name}" for letter, name in
                                 zip(_REGIME_LETTERS, res.regime_names)))
  else:
    for r, v in enumerate(res.values):
      fractions = res.sweeps[r].converged_fraction()[:, 0]
      print(f"{v:>7.3g} " + " ".join(f"{x:>7.3f}" for x in fractions))
  print(f"wrote {out} (plot it with: jaxnpg plot {out})")
