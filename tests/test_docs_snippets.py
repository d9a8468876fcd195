"""The documentation pages' code runs as written.

Every ``jaxnpg`` command in a ```bash block of ``docs/**/*.md`` is parsed by the
real command line (``jaxnpg.cli.parse``), as the README's are
(``tests/test_readme.py``). Every ```python block is executed (marked ``slow``:
together they run sweeps for a few minutes), page by page: the blocks of one page
in order, in one temporary working directory (a later block may read what an
earlier one wrote), each in a fresh namespace; blocks whose first line is
``# Not executed`` (code for an API that is announced, not yet public) are skipped.
"""

import contextlib
import io
import pathlib
import re

import click
import pytest
from test_readme import _shell_commands

from jaxnpg import cli

DOCS = pathlib.Path(__file__).parent.parent / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "notebooks" not in p.parts)


def _blocks(lang):
  out = []
  for page in PAGES:
    text = page.read_text()
    for block in re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S):
      line = text[:text.index(block)].count("\n") + 1
      out.append((f"{page.relative_to(DOCS)}:{line}", block))
  return out


PYTHON = [(w, b) for w, b in _blocks("python") if not b.startswith("# Not executed")]
BY_PAGE = {}
for _where, _block in PYTHON:
  BY_PAGE.setdefault(_where.rsplit(":", 1)[0], []).append((_where, _block))
COMMANDS = [(f"{where}: {' '.join(words)}", words[1:])
            for where, block in _blocks("bash")
            for words in _shell_commands(block)
            if len(words) >= 2 and words[0] == "jaxnpg"]


def test_pages_have_code():
  assert len(PYTHON) >= 10 and len(COMMANDS) >= 15


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_docs_command_parses(where, argv):
  with contextlib.redirect_stdout(io.StringIO()):
    try:
      command, _ = cli.parse(argv)
    except click.UsageError as e:
      raise AssertionError(f"{where}: the CLI rejects it: {e.format_message()}"
                           ) from None
  assert command == argv[0], where


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(BY_PAGE))
def test_docs_python_runs(page, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  for where, block in BY_PAGE[page]:
    namespace = {"__name__": "__docs__"}
    with contextlib.redirect_stdout(io.StringIO()):
      exec(compile(block, where, "exec"), namespace)
