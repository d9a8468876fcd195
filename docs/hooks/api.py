"""mkdocs hook: the API reference pages, generated from ``jaxnpg.__all__``.

One page per subpackage (``core``, ``games``, ``loop``, ...), holding one
``::: jaxnpg.<name>`` block (rendered by mkdocstrings) for every public name that
subpackage defines, in the order of ``__all__``; ``jaxnpg.theory``'s own public
names get the theory page. A name added to ``__all__`` therefore appears without
editing any page, and ``tests/test_api_docs.py`` checks that every name is listed.
The pages are generated files (``File.generated``), never written to ``docs/``.
"""

from __future__ import annotations

import ast
import importlib
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Subpackage -> (page title, one line on what it holds). Order = nav order.
GROUPS = {
    "package": ("Package", "The package itself."),
    "core": ("Core: policies, the step, gaps",
             "The game protocol, policies, the NPG step, gaps, step-size rules."),
    "games": ("Games", "Dense, batched, polymatrix and Markov games; families; interop."),
    "loop": ("Loop: run, solve, algorithms, verdicts",
             "The one NPG loop, its algorithms and its verdicts."),
    "dynamics": ("Dynamics: Lyapunov exponents, attractors",
                 "What a run settles into."),
    "sweeps": ("Sweeps and the atlas", "Phase sweeps, their store, the atlas."),
    "theory": ("Theory and the QRE solver",
               "Theorem 3.3, local rates, predicted boundaries, the logit QRE."),
    "viz": ("Plots", "Figures of finished results."),
    "paper": ("The paper's figures", "Reproducing section IV."),
}


def defining_modules() -> dict[str, str]:
  """``name -> module`` for every ``from X import name`` in ``jaxnpg/__init__.py``."""
  tree = ast.parse((ROOT / "jaxnpg" / "__init__.py").read_text())
  out = {}
  for node in tree.body:
    if isinstance(node, ast.ImportFrom) and node.module:
      for alias in node.names:
        out[alias.asname or alias.name] = node.module
    elif isinstance(node, ast.Import):
      for alias in node.names:
        out[alias.asname or alias.name] = alias.name
  return out


def group_of(name: str, modules: dict[str, str]) -> str:
  """The subpackage whose page lists ``jaxnpg.<name>``: where a class or
  function is defined, else where the value is imported from."""
  obj = getattr(importlib.import_module("jaxnpg"), name, None)
  module = modules.get(name, "jaxnpg")
  if isinstance(obj, type) or callable(obj) and hasattr(obj, "__module__"):
    module = getattr(obj, "__module__", None) or module
  if name == "theory":
    return "theory"
  parts = module.split(".")
  if len(parts) >= 2 and parts[1] in GROUPS:
    return parts[1]
  if len(parts) >= 2 and parts[0] == "jaxnpg" and parts[1] == name:
    return parts[1] if parts[1] in GROUPS else "package"
  return "package"


def _takes_var_keywords(ident: str) -> bool:
  import inspect

  module, _, name = ident.rpartition(".")
  obj = getattr(importlib.import_module(module), name)
  if not callable(obj) or isinstance(obj, type):
    return False
  try:
    params = inspect.signature(obj).parameters.values()
  except (TypeError, ValueError):
    return False
  return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def pages() -> dict[str, str]:
  """``{"api/<group>.md": markdown}``, plus ``api/index.md``."""
  jaxnpg = importlib.import_module("jaxnpg")
  modules = defining_modules()
  members: dict[str, list[str]] = {g: [] for g in GROUPS}
  for name in jaxnpg.__all__:
    members[group_of(name, modules)].append(f"jaxnpg.{name}")
  theory = importlib.import_module("jaxnpg.theory")
  for name in getattr(theory, "__all__", ()):
    ident = f"jaxnpg.theory.{name}"
    if f"jaxnpg.{name}" not in members["theory"]:
      members["theory"].append(ident)
  # Each page opens with its overview: the package's docstring, the theory
  # module's docstring.
  members["theory"].sort(key=lambda ident: ident != "jaxnpg.theory")
  out = {}
  index = ["# API reference", "",
           "Every public name of `jaxnpg` (its `__all__`), one page per subpackage. "
           "These pages are generated from the docstrings by `docs/hooks/api.py`; "
           "every example in them runs as a doctest (`pytest --doctest-modules`).",
           "", "| page | what | names |", "| --- | --- | --- |"]
  for group, idents in members.items():
    if not idents:
      continue
    title, blurb = GROUPS[group]
    body = [f"# {title}", "", blurb, ""]
    if group == "package":
      body += ["::: jaxnpg", "    options:", "      members: false",
               "      show_root_heading: false", ""]
    for ident in idents:
      if ident == "jaxnpg.theory":
        # The module's docstring only; its members follow, one block each.
        body += [f"::: {ident}", "    options:", "      members: false", ""]
      elif _takes_var_keywords(ident):
        # It documents the keywords it forwards (sweep's fields).
        body += [f"::: {ident}", "    options:", "      docstring_options:",
                 "        warn_unknown_params: false",
                 "        warn_missing_types: false", ""]
      else:
        body += [f"::: {ident}", ""]
    out[f"api/{group}.md"] = "\n".join(body)
    names = ", ".join(f"`{i.removeprefix('jaxnpg.')}`" for i in idents)
    index.append(f"| [{title}]({group}.md) | {blurb} | {names} |")
  out["api/index.md"] = "\n".join(index) + "\n"
  return out


def on_config(config, **kwargs):
  """Replace the nav's ``API reference`` entry by the generated pages."""
  nav = config.get("nav") or []
  generated = [k for k in pages() if k != "api/index.md"]
  for i, entry in enumerate(nav):
    if isinstance(entry, dict) and "API reference" in entry:
      nav[i] = {"API reference": ["api/index.md", *generated]}
  return config


def on_files(files, config, **kwargs):
  from mkdocs.structure.files import File

  for path, content in pages().items():
    files.append(File.generated(config, path, content=content))
  return files


def status_table() -> str:
  """The ``jaxnpg.Status`` codes as a Markdown table (``<!-- jaxnpg:status-table -->``)."""
  from jaxnpg import Status

  rows = ["| code | name | label | meaning |", "| --- | --- | --- | --- |"]
  rows += [f"| {int(s)} | `{s.name}` | {s.label} | {s.description} |" for s in Status]
  return "\n".join(rows)


def on_page_markdown(markdown, page, config, files, **kwargs):
  return markdown.replace("<!-- jaxnpg:status-table -->", status_table())
