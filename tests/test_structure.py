"""The package's import graph: no cycles, and no module imports upward
(models and decoding never import the study, the page, the pipeline or the
benchmarks)."""

import ast
import pathlib

from conftest import ROOT

PACKAGE = pathlib.Path(ROOT) / "maskgit_edit"
# What the layers below the editor may not import.
_ABOVE_DECODING = tuple(
    f"maskgit_edit.{name}"
    for name in ("study", "app", "edit", "pipeline", "benchmarking", "trainers")
)
# Lower layers and what they may not import.
FORBIDDEN = {
    "maskgit_edit.models": ("maskgit_edit.decoding", *_ABOVE_DECODING),
    "maskgit_edit.decoding": _ABOVE_DECODING,
    "maskgit_edit.study": ("maskgit_edit.app", "maskgit_edit.pipeline"),
}


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
  """module -> the package modules it imports (at any depth of its code)."""
  modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
  graph = {}
  for name, path in modules.items():
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        imported |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module:
        # `from package import module` depends on the module alone.
        for alias in node.names:
          full = f"{node.module}.{alias.name}"
          imported.add(full if full in modules else node.module)
    graph[name] = {m for m in imported if m in modules and m != name}
  return graph


def test_no_import_cycles():
  graph = import_graph()
  state = {}

  def visit(module, stack):
    state[module] = "open"
    for target in sorted(graph[module]):
      if state.get(target) == "open":
        cycle = stack[stack.index(target) :] + [target]
        raise AssertionError("import cycle: " + " -> ".join(cycle))
      if target not in state:
        visit(target, stack + [target])
    state[module] = "done"

  for module in sorted(graph):
    if module not in state:
      visit(module, [module])


def test_lower_layers_never_import_upward():
  graph = import_graph()
  upward = [
      f"{module} imports {target}"
      for module, targets in graph.items()
      for layer, forbidden in FORBIDDEN.items()
      if module == layer or module.startswith(layer + ".")
      for target in targets
      if target.startswith(forbidden)
  ]
  assert not upward, upward
