"""The layout stays a pipeline: no import cycles between modules or between packages, and the
judge never imports the rewards (the rewards build on the judge). Imports inside functions count:
a deferred import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "refine_rft"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the refine_rft modules it imports (``from refine_rft.x import y`` counts as
    ``refine_rft.x.y`` when that is a module, else ``refine_rft.x``)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def package_of(module: str) -> str:
    """``refine_rft.judge.cli`` -> ``judge``; top-level modules are their own package."""
    return module.split(".")[1] if "." in module else module


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or ``None``.

    >>> find_cycle({"a": {"b"}, "b": {"a"}})
    ['a', 'b', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


def test_no_module_imports_itself_through_others():
    assert find_cycle(import_graph()) is None


def test_packages_form_a_pipeline_without_loops():
    # A package's __init__ re-exports its own modules; that is no loop between packages.
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        if module == "refine_rft":
            continue
        packages.setdefault(package_of(module), set()).update(
            package_of(t) for t in targets if t != "refine_rft" and package_of(t) != package_of(module))
    assert find_cycle(packages) is None
    assert "rewards" not in packages["judge"], "the judge must not import the rewards"
    assert all("testing" not in deps for deps in packages.values()), "the pipeline must not import the test harness"
