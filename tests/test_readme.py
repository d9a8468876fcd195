"""The README's quickstart runs as written."""

import pathlib
import re


def test_readme_quickstart_runs():
  text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
  blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
  assert blocks, "README has no python block"
  namespace = {}
  exec(compile(blocks[0], "README.md quickstart", "exec"), namespace)
  assert bool(namespace["sol"].converged)
  assert namespace["runs"].qre_gap.shape == (64, 2001)
  assert namespace["sols"].converged.shape == (1024,)
