"""The layout stays a pipeline: no import cycles between modules or between packages, the judge
never imports the rewards (the rewards build on the judge), and the pipeline (``refine_rft``) never
imports the workshop (``refine_rft_workshop``: toy data, tiny models, the demo, the test harness),
which builds on it. Both packages are checked. Imports inside functions count: a deferred import is
still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "src" / "refine_rft"
WORKSHOP = ROOT / "workshop" / "refine_rft_workshop"
PACKAGES = (PIPELINE, WORKSHOP)


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(package: Path) -> dict[str, Path]:
    """Every module of ``package`` except the copies of code stored inside model folders."""
    return {module_name(p, package): p for p in package.rglob("*.py") if "tiny_instruct" not in p.parts}


def imported_names(path: Path, modules) -> set[str]:
    """Absolute imports of a file (``from a.b import c`` counts as ``a.b.c`` when that is one of
    ``modules``, else ``a.b``)."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                targets.add(full if full in modules else node.module)
    return targets


def import_graph(package: Path = PIPELINE) -> dict[str, set[str]]:
    """module -> the modules of ``package`` it imports."""
    modules = modules_of(package)
    return {name: {t for t in imported_names(path, modules) if t in modules and t != name}
            for name, path in modules.items()}


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


def subpackage_graph(package: Path) -> dict[str, set[str]]:
    # A package's __init__ re-exports its own modules; that is no loop between packages.
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph(package).items():
        if module == package.name:
            continue
        packages.setdefault(package_of(module), set()).update(
            package_of(t) for t in targets if t != package.name and package_of(t) != package_of(module))
    return packages


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_no_module_imports_itself_through_others(package):
    assert find_cycle(import_graph(package)) is None


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_packages_form_a_pipeline_without_loops(package):
    assert find_cycle(subpackage_graph(package)) is None


def test_the_judge_does_not_import_the_rewards():
    assert "rewards" not in subpackage_graph(PIPELINE)["judge"], "the judge must not import the rewards"


def test_the_pipeline_never_imports_the_workshop():
    """Nothing in ``refine_rft`` imports ``refine_rft_workshop`` (or names it in an import), so the
    pipeline installs and runs without it; the workshop builds on the pipeline."""
    offenders = sorted(
        f"{module_name(path, PIPELINE)} imports {target}"
        for path in PIPELINE.rglob("*.py")
        for target in imported_names(path, {})
        if target.split(".")[0] == WORKSHOP.name)
    assert offenders == []
    assert any(t.split(".")[0] == PIPELINE.name for p in WORKSHOP.rglob("*.py") for t in imported_names(p, {})), \
        "the check reads real imports: the workshop's imports of the pipeline are seen"


def test_the_pipeline_says_nothing_of_the_toy_world():
    """No synthetic birds, tiny-model names or toy data makers in the pipeline's code: the words
    come from the workshop's own vocabulary, so a new toy word is checked as soon as it exists."""
    from refine_rft_workshop import toy_words

    words = toy_words()
    assert {"tiny:instruct", "tiny:qwen2_vl", "synthetic_questions", "The bird has"} <= set(words)
    found = [f"{path.relative_to(ROOT)}: {word}" for path in PIPELINE.rglob("*.py")
             for word in words if word in path.read_text(encoding="utf-8")]
    assert found == []
