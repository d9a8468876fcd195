"""Reproduce the paper's Fig. 2a (QRE-gap) and 2b (NE-gap): network zero-sum game.

    python examples/figure_2ab.py --out figures        # 20000 iterations
    python examples/figure_2ab.py --out figures --quick

Writes figure_2a.png / figure_2b.png and their settings and data as JSON, and
prints each tau's final gaps.
"""

import argparse

from jaxnpg import _paper


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default="figures", help="output folder")
  parser.add_argument("--quick", action="store_true", help="2000 iterations")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  _, qre, ne = _paper.figure_2ab(args.out, quick=args.quick, seed=args.seed)
  print(f"{'tau':>6} {'final QRE-gap':>14} {'final NE-gap':>13}")
  for tau in qre:
    print(f"{tau:>6g} {qre[tau][-1]:>14.3e} {ne[tau][-1]:>13.4f}")
  print(f"wrote figure_2a.png and figure_2b.png in {args.out}")


if __name__ == "__main__":
  main()
