"""One node object (issue 31), read from the source: the Driver holds each node once, as a
``Node`` (node.py) whose ``machine`` is the script's view, with no second collection and no
tuple of node parts; the driver's own work (snapshots, settled state, health, the cluster
record, reruns, faults, triage) goes through ``Node`` and never through a method that only
the script's ``Machine`` offers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from driver.machine.machine import Machine
from driver.machine.node import Node
from driver.run.driver import Driver

REPO = Path(__file__).resolve().parent.parent
DRIVER_SIDE = [
    *(
        REPO / "driver" / "run" / f"{name}.py"
        for name in ("driver", "snapshots", "health", "faults")
    ),
    *(REPO / "driver" / "state" / f"{name}.py" for name in ("settled", "cluster")),
    REPO / "driver" / "scriptrun" / "rerun.py",
    *(REPO / "driver" / "triage").glob("*.py"),
]
# What a node is called in the driver's code: a node variable, or the script view of one.
NODE_NAMES = {"node", "n", "control", "c", "machine", "m", "nodes"}


def script_only_methods() -> set[str]:
    """Public methods a Machine has and its Node has not: the script's face alone."""
    machine = {n for n in dir(Machine) if not n.startswith("_") and callable(getattr(Machine, n))}
    return machine - set(dir(Node))


def script_calls_in(source: str, name: str) -> list[str]:
    """``name:line: call`` for every call of a script-only method on a node in ``source``."""
    only = script_only_methods()
    found = []
    for call in ast.walk(ast.parse(source)):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
            continue
        owner = call.func.value
        on_node = (isinstance(owner, ast.Name) and owner.id in NODE_NAMES) or (
            isinstance(owner, ast.Attribute) and owner.attr in ("machine", "machines")
        )
        if on_node and call.func.attr in only:
            found.append(f"{name}:{call.lineno}: {ast.unparse(call.func)}")
    return found


def node_tuples_in(source: str, name: str) -> list[str]:
    """``name:line: annotation`` for every tuple type holding a Machine or a Node."""
    found = []
    for sub in ast.walk(ast.parse(source)):
        if isinstance(sub, ast.Subscript) and ast.unparse(sub.value) in ("tuple", "Tuple"):
            words = set(re.findall(r"\w+", ast.unparse(sub.slice)))
            if words & {"Machine", "Node", "NodeControl"}:
                found.append(f"{name}:{sub.lineno}: {ast.unparse(sub)}")
    return found


def test_driver_side_calls_no_script_only_method() -> None:
    found = [
        hit
        for path in DRIVER_SIDE
        for hit in script_calls_in(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert found == [], "\n".join(found)


def test_the_check_sees_a_script_call() -> None:
    text = (
        "def f(node, driver):\n"
        "    node.machine.succeed('true')\n"
        "    node.check('true')\n"
        "    for m in driver.machines:\n"
        "        m.send_qmp_command('stop')\n"
    )
    assert script_calls_in(text, "probe.py") == [
        "probe.py:2: node.machine.succeed",
        "probe.py:5: m.send_qmp_command",
    ]
    assert {"succeed", "send_qmp_command", "human_monitor_command", "wait_for_unit"} <= (
        script_only_methods()
    )


def test_no_tuple_of_node_parts_anywhere() -> None:
    found = [
        hit
        for path in (REPO / "driver").rglob("*.py")
        for hit in node_tuples_in(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert found == [], "\n".join(found)
    assert node_tuples_in("Pair = tuple[Machine, Node]\n", "probe.py") == [
        "probe.py:1: tuple[Machine, Node]"
    ]


def test_driver_holds_each_node_once() -> None:
    """The Driver's one collection of nodes is ``nodes`` (name -> Node); ``machines`` is a
    view computed from it, not a second list."""
    tree = ast.parse((REPO / "driver" / "run" / "driver.py").read_text())
    cls = next(c for c in tree.body if isinstance(c, ast.ClassDef) and c.name == "Driver")
    holders = [
        f"{ast.unparse(s.target)}: {ast.unparse(s.annotation)}"
        for s in ast.walk(cls)
        if isinstance(s, ast.AnnAssign)
        and {"Machine", "Node", "NodeControl"} & set(re.findall(r"\w+", ast.unparse(s.annotation)))
    ]
    assert holders == ["nodes: dict[str, Node]", "self.nodes: dict[str, Node]"]
    assert isinstance(Driver.machines, property)
    assert "machine" in Node.__init__.__code__.co_names  # the Node creates its own Machine
