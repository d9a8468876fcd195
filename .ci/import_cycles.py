"""Fail if jaxnpg's modules import each other in a cycle (top-level imports).

    python .ci/import_cycles.py        # prints the cycle, exit 1; or "no import cycles"
"""
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "jaxnpg"


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path, modules: set) -> set:
  found = set()
  for node in ast.parse(path.read_text()).body:   # top level only
    names = []
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      subs = [f"{node.module}.{a.name}" for a in node.names]
      # ``from pkg import submodule`` imports the submodule; anything else
      # (a function, a class) comes from ``pkg`` itself.
      names = subs if all(n in modules for n in subs) else [node.module] + subs
    for name in names:
      while name and name not in modules:
        name = name.rpartition(".")[0]
      if name.startswith("jaxnpg"):
        found.add(name)
  return found


def main() -> int:
  paths = {module_name(p): p for p in ROOT.rglob("*.py")}
  graph = {m: imports(p, set(paths)) - {m} for m, p in paths.items()}
  # (Importing ``jaxnpg.a.b`` runs ``jaxnpg/a/__init__.py`` first; that edge is
  # implied and not listed, so only the modules named in an import count.)
  state, stack = {}, []

  def visit(m):
    state[m] = 1
    stack.append(m)
    for d in sorted(graph[m]):
      if state.get(d) == 1:
        print("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
        return True
      if d not in state and visit(d):
        return True
    stack.pop()
    state[m] = 2
    return False

  for m in sorted(graph):
    if m not in state and visit(m):
      return 1
  print(f"no import cycles among {len(graph)} modules")
  return 0


if __name__ == "__main__":
  sys.exit(main())
