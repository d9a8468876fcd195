"""Griffe extension: jaxnpg's docstring habits, rendered by mkdocstrings.

The docstrings are Google style with a few reST habits that griffe's Markdown
rendering does not know:

* Sphinx roles (``:func:`jaxnpg.run```, ``:class:`~x.Y```) become code spans of
  the name (``~`` keeps the last component, as in Sphinx);
* ``Example:`` becomes ``Examples:``, the section whose ``>>>`` lines render as
  code (griffe reads ``Example:`` as an admonition in Markdown, where a doctest's
  output such as ``[[0.5, 0.5]]`` reads as a link);
* an ``Args`` entry naming several parameters (``low, high: the range``) becomes
  one entry per name, so each is checked against the signature;
* ``.. math::`` is announced as LaTeX.

(A function taking ``**kwargs`` that documents the keywords it forwards, such as
``sweep``'s fields, gets ``warn_unknown_params: false`` on its API page, from
``docs/hooks/api.py``: mkdocstrings re-applies the global parser options to the
object it renders, so that cannot be set here.)
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:func|mod|class|meth|attr|data|obj|exc|const):`(~?)([^`]+)`")
_MATH = re.compile(r"^(\s*)\.\. math::\s*$", re.M)
_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
_MULTI = re.compile(r"^(\s+)(\w+(?:, \w+)+): (.*)$")
_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Attributes|Returns|Raises|"
                      r"Examples?|Yields|Note|Notes|References|Warning)s?:\s*$")


def _role(match: re.Match) -> str:
  tilde, target = match.groups()
  return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _split_multi(text: str) -> str:
  out, in_args = [], False
  for line in text.splitlines():
    section = _SECTION.match(line)
    if section:
      in_args = section.group(1) in ("Args", "Arguments", "Parameters")
    m = _MULTI.match(line) if in_args else None
    if m:
      indent, names, desc = m.groups()
      first, *rest = names.split(", ")
      out.append(f"{indent}{first}: {desc}")
      out.extend(f"{indent}{name}: (as `{first}`) {desc}" for name in rest)
    else:
      out.append(line)
  return "\n".join(out)


def clean(text: str) -> str:
  text = _ROLE.sub(_role, text)
  text = _EXAMPLE.sub(lambda m: f"{m.group(1)}Examples:", text)
  text = _MATH.sub(lambda m: f"{m.group(1)}In LaTeX:", text)
  return _split_multi(text)


class JaxnpgDocstrings(griffe.Extension):
  def on_instance(self, *, obj, **kwargs):
    if obj.docstring is None:
      return
    obj.docstring.value = clean(obj.docstring.value)
