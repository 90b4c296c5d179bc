"""The package's import graph (issue 20): no cycles between its subpackages; config below
images, machine below scripting and runner; keys, metrics and durations as leaf modules.
Read from the source (every ``import driver.X`` / ``from driver.X import``, including the
ones inside functions), so a new cycle fails here before it fails at run time."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "driver"
LEAVES = {
    *("keys", "metrics", "duration", "errors", "atomic", "wait"),
    *("safe_files", "file_modes"),
}


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Subpackage (or top-level module) -> the ones it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        here = parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "driver" and len(pieces) > 1 and pieces[1] != here:
                    graph[here].add(pieces[1])
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (empty when there is none)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_cycles_between_subpackages() -> None:
    assert cycle(import_graph()) == []


def test_layers() -> None:
    graph = import_graph()
    assert "images" not in graph["config"], "config must not import images"
    assert not graph["machine"] & {"scripting", "runner", "cli"}, graph["machine"]
    assert not graph["runner"] & {"scripting", "cli"}, graph["runner"]
    assert not graph["suite"] & {"scripting", "cli", "machine"}, graph["suite"]
    for leaf in LEAVES:
        assert graph.get(leaf, set()) <= {"errors", "hosttools", "safe_files"}, (
            leaf,
            graph.get(leaf),
        )


def test_the_check_catches_a_cycle(tmp_path: Path) -> None:
    for package, imports in (("config", "images"), ("images", "config")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "m.py").write_text(f"from driver.{imports}.m import x\n")
    assert cycle(import_graph(tmp_path)) in (
        ["config", "images", "config"],
        ["images", "config", "images"],
    )


def test_public_entry_points() -> None:
    from driver.machine import Machine
    from driver.runner import Driver

    assert Machine.__name__ == "Machine" and Driver.__name__ == "Driver"
