"""The notebooks run top to bottom (at reduced size, JAXNPG_QUICK=1)."""

import os
import pathlib

import pytest
from conftest import scaled

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted(
    (pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


# The quickstart runs by default; the others (20-50 s each at reduced size, the
# suite's largest single costs after the paper's figures) are `slow`:
# `pytest -m slow tests/test_notebooks.py` runs all five.
DEFAULT_NOTEBOOKS = ("quickstart.ipynb",)


@pytest.mark.parametrize("path", [
    p if p.name in DEFAULT_NOTEBOOKS else pytest.param(p, marks=pytest.mark.slow)
    for p in NOTEBOOKS], ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
  monkeypatch.setenv("JAXNPG_QUICK", "1")
  monkeypatch.setenv("JAXNPG_OUT", str(tmp_path))
  nb = nbformat.read(path, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=scaled(600), kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors


def test_notebooks_are_stripped():
  for path in NOTEBOOKS:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
      if cell.cell_type == "code":
        assert not cell.get("outputs") and cell.get("execution_count") is None, (
            f"{path.name} carries outputs; strip them before committing.")
