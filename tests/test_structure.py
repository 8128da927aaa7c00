"""The package's rooms point one way: no module imports one that imports it back.

Lazy (function-level) imports count too: a cycle hidden in a function is
still a cycle for whoever reads the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "nbboard"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """nbboard modules that ``path`` imports.

    A package only counts when it is imported by name (``from . import registry``): every submodule loads its
    parents, and ``from .tunnels import manager`` imports ``manager``, not what ``tunnels/__init__`` re-exports.
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    packages = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            named = [f"{base}.{a.name}" for a in node.names]
            targets = ([] if base in packages else [base]) + named
        else:
            continue
        found |= {t for t in targets if t in modules}
    return found - {"nbboard", name}


def _graph() -> dict[str, set[str]]:
    files = [p for p in PACKAGE.rglob("*.py") if "static" not in p.parts]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt in path:
                cycle = path[path.index(nxt) :] + [nxt]
                if min(cycle[:-1]) == cycle[0]:  # report each cycle once, from its smallest member
                    cycles.append(cycle)
            else:
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    return cycles


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
    assert graph["nbboard.api"], "the import graph came out empty: the test is not reading the package"
    assert "nbboard.registry" in graph["nbboard.api"]
    assert _cycles(graph) == []


def test_the_widget_holds_state_only_and_records_know_nothing_of_tunnels_or_liveness() -> None:
    graph = _graph()
    # links: pure URL checks; boardview: the state and names; frontend: finding the shipped JS
    assert graph["nbboard.widget"] <= {"nbboard.instance", "nbboard.links", "nbboard.boardview", "nbboard.frontend"}
    registry = {m for m in graph if m == "nbboard.registry" or m.startswith("nbboard.registry.")}
    assert len(registry) > 1, "the registry package was not read"
    for module in registry:
        assert graph[module] <= registry | {"nbboard.config", "nbboard.errors"}, module
    assert not any(m.startswith("nbboard.launcher") for m in graph["nbboard.tunnels.manager"])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
