"""The package's import graph (issues 20 and 31): no cycles between its subpackages and
none between the modules of one subpackage; config below images, machine below run, state,
scriptrun and scripting; run below state and scriptrun; keys, metrics and durations as leaf
modules. Read from the source (every ``import driver.X`` / ``from driver.X import``,
including the ones inside functions; not those only for type checking), so a new cycle
fails here before it fails at run time."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "driver"
LEAVES = {
    *("keys", "metrics", "duration", "errors", "atomic", "wait"),
    *("safe_files", "file_modes"),
}


def imported(tree: ast.Module) -> list[str]:
    """The ``driver.*`` names a module imports at run time (``from driver.a import b``
    gives ``driver.a`` and ``driver.a.b``: b may be a module)."""
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n.split(".")[0] == "driver"]


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Subpackage (or top-level module) -> the ones it imports."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in root.rglob("*.py"):
        here = path.relative_to(root).with_suffix("").parts[0]
        for name in imported(ast.parse(path.read_text())):
            pieces = name.split(".")
            if len(pieces) > 1 and pieces[1] != here:
                graph[here].add(pieces[1])
    return graph


def module_graphs(root: Path = PACKAGE) -> dict[str, dict[str, set[str]]]:
    """Subpackage -> its modules -> the modules of the same subpackage each imports."""
    graphs: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if len(parts) != 2:
            continue
        package, module = parts
        for name in imported(ast.parse(path.read_text())):
            pieces = name.split(".")
            if len(pieces) > 2 and pieces[1] == package and pieces[2] != module:
                target = pieces[2]
                if (root / package / f"{target}.py").exists():
                    graphs[package][module].add(target)
    return graphs


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


def test_no_cycles_inside_a_subpackage() -> None:
    found = {package: cycle(graph) for package, graph in module_graphs().items()}
    assert {package: c for package, c in found.items() if c} == {}


def test_layers() -> None:
    graph = import_graph()
    assert "images" not in graph["config"], "config must not import images"
    running = {"run", "state", "scriptrun", "reports"}
    assert not graph["machine"] & {"scripting", "cli", *running}, graph["machine"]
    assert not graph["run"] & {"scripting", "cli", "state", "scriptrun"}, graph["run"]
    assert not graph["reports"] & {"scripting", "cli", "run", "state", "scriptrun"}
    assert not graph["state"] & {"scripting", "cli", "scriptrun"}, graph["state"]
    assert not graph["scriptrun"] & {"scripting", "cli", "state"}, graph["scriptrun"]
    assert "cli" not in graph["session"], "the session must not import the command line"
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


def test_the_check_catches_a_cycle_inside_a_package(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "a.py").write_text("def f():\n    from driver.run.b import g\n")
    (tmp_path / "run" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nfrom driver.run import a\n"
        "if TYPE_CHECKING:\n    from driver.run.c import x\n"
    )
    (tmp_path / "run" / "c.py").write_text("from driver.run.b import y\n")
    graph = module_graphs(tmp_path)["run"]
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"b"}}
    assert cycle(graph) == ["a", "b", "a"]


def test_public_entry_points() -> None:
    from driver.machine import Machine
    from driver.run import Driver

    assert Machine.__name__ == "Machine" and Driver.__name__ == "Driver"
