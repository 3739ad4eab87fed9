"""The library's modules import each other in one direction: no loop, counting imports inside functions.

A loop means a reader cannot take the package a floor at a time (each module readable from the ones below
it), and an import inside a function is the usual way a loop hides. The example scripts' support code
(``prefix_models/scripts/``) sits on top and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "prefix_models"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the package's modules it imports (``from . import x`` names module ``x``; the package root,
    which only hands names on, is not a module here)."""
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py") if "scripts" not in path.parts}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package[: len(package) - node.level + 1] + [node.module or ""]).strip(".")
                base = base if node.level else node.module or ""
                for alias in node.names:
                    target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base
                    targets.add(target)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in files and t not in (name, "prefix_models")}
    return graph


def _loop_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """An import path from ``start`` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        module, path = stack.pop()
        for target in sorted(graph[module]):
            if target == start:
                return [*path, start]
            if target not in seen:
                seen.add(target)
                stack.append((target, [*path, target]))
    return None


def test_the_graph_is_read():
    # The check below means something only if it sees the imports it should.
    graph = _imports()
    assert "prefix_models.configuration" in graph["prefix_models.attachment"]
    assert "prefix_models.methods.prefix_tuning.injection" in graph["prefix_models.methods.base"]  # TYPE_CHECKING
    assert "prefix_models.auto" in graph["prefix_models.checkpoints.remote_code"]


def test_no_import_loops():
    graph = _imports()
    loops = [loop for module in sorted(graph) if (loop := _loop_through(graph, module))]
    assert not loops, "modules that import each other in a loop:\n" + "\n".join(" -> ".join(loop) for loop in loops)
