"""The README runs as written.

Every ```python block is executed, in order, in a fresh namespace each and in a
temporary working directory (blocks that write ``runs/...`` write there). Every
``jaxnpg`` command the README shows, in ```bash blocks and in inline code, is parsed
by the real command line (``jaxnpg.cli.parse``) without being run, so an option
that the README uses and the CLI lacks, or a value it cannot read, fails here; and
every command's ``--help`` prints.
"""

import contextlib
import io
import pathlib
import re
import shlex

import click
import pytest

import jaxnpg
from jaxnpg import cli
from jaxnpg.cli.app import group

README = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
BASH_BLOCKS = re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def _line_of(block):
  return README[:README.index(block)].count("\n") + 1


def test_readme_has_snippets():
  assert len(PYTHON_BLOCKS) >= 2 and BASH_BLOCKS


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)),
                         ids=[f"line{_line_of(b)}" for b in PYTHON_BLOCKS])
def test_python_snippet_runs(index, tmp_path, monkeypatch):
  block = PYTHON_BLOCKS[index]
  monkeypatch.chdir(tmp_path)
  namespace = {"__name__": "__readme__"}
  exec(compile(block, f"README.md line {_line_of(block)}", "exec"), namespace)
  # What the blocks promise, where they name it.
  if "runs" in namespace:                                    # quickstart
    # float32: converged, or stopped at float32's rounding floor above tol.
    assert int(namespace["res"].status) in (jaxnpg.Status.CONVERGED,
                                            jaxnpg.Status.AT_FLOOR)
    assert namespace["runs"].qre_gap.shape == (64, 2001)
  if "res" in namespace and hasattr(namespace["res"], "converged_fraction"):
    assert (tmp_path / "runs" / "r345" / "manifest.json").is_file()  # the sweep's out=
    assert len(namespace["table"]) == 64 * 8 * 2               # one row per cell


def _shell_commands(text):
  """Simple commands of a shell text (split at ``&&``, ``;``, ``|``, newlines;
  comments dropped), each as a list of words."""
  commands = []
  for line in text.replace("\\\n", " ").splitlines():
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    words = []
    for token in lex:
      if token in ("&&", ";", "|", "||", "&"):
        commands.append(words)
        words = []
      else:
        words.append(token)
    commands.append(words)
  return [c for c in commands if c]


def _commands():
  """``(where, argv)`` of each ``jaxnpg`` command in the README."""
  found = []
  for block in BASH_BLOCKS:
    for words in _shell_commands(block):
      found.append((f"README.md line {_line_of(block)}: {' '.join(words)}", words))
  for span in re.findall(r"`([^`\n]*\bjaxnpg [a-z][^`\n]*)`", README):
    for words in _shell_commands(span):
      found.append((f"README.md inline `{span}`", words))
  out = []
  for where, words in found:
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
      words = words[1:]                                      # VAR=value prefixes
    if words[:3] == ["python", "-m", "jaxnpg"]:
      words = ["jaxnpg"] + words[3:]
    if len(words) < 2 or words[0] != "jaxnpg":
      continue
    out.append((where, [w for w in words[1:] if w != "..."]))  # "..." elides
  return out


COMMANDS = _commands()


def test_readme_shows_every_subcommand():
  shown = {argv[0] for _, argv in COMMANDS}
  assert shown >= {"run", "sweep", "plot", "reproduce"}, shown
  assert len(COMMANDS) >= 8


@pytest.mark.parametrize("where,argv", COMMANDS, ids=[w for w, _ in COMMANDS])
def test_readme_command_parses(where, argv):
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    try:
      command, params = cli.parse(argv)
    except click.UsageError as e:
      raise AssertionError(f"{where}: the CLI rejects it: {e.format_message()}"
                           ) from None
  assert command == argv[0], where
  if "--help" in argv or "-h" in argv:
    assert params == {"help": True} and out.getvalue().startswith("Usage:")
  else:
    assert "out" in params or command == "plot", where


def test_parse_refuses_what_main_refuses():
  """``parse`` is the real parser: a bad value or option fails there too."""
  for argv in (["run", "--iters", "x"], ["run", "--taus", "1:2"],
               ["sweep", "--no-such-option"], ["fly"]):
    with pytest.raises(click.UsageError):
      cli.parse(argv)


@pytest.mark.parametrize("command", [None, *group.commands])
def test_help_prints(command, capsys):
  argv = ["--help"] if command is None else [command, "--help"]
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert out.startswith("Usage: jaxnpg") and len(out) > 100
  if command is not None:
    assert "examples:" in out
