"""The package's boundaries (issue 20), read from the source: outside ``driver/machine/``
no module touches a part of a Machine (its QEMU process, console, shell, QMP client or
port) or any underscore member of something that is not its own ``self``/``cls``; the
driver drives nodes through ``Node``'s public methods. A static check, so a new
reach-through fails here before it becomes a second, invisible API."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKED = ("driver", "bench", "testscripts")
INSIDE = REPO / "driver" / "machine"
PARTS = {"qemu", "console", "_shell", "_qmp", "_port", "_qemu", "_console"}


def violations(path: Path) -> list[str]:
    """``file:line: expr.attr`` for every forbidden attribute access in ``path``."""
    return violations_in(path.read_text(), str(path.relative_to(REPO)))


def violations_in(source: str, name: str) -> list[str]:
    """``name:line: expr.attr`` for every forbidden attribute access in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
        # A node spec's ``qemu`` is the emulator's path (configuration), not a part.
        spec = ast.unparse(owner).split(".")[-1] == "spec"
        private = node.attr.startswith("_") and not node.attr.startswith("__")
        if (node.attr in PARTS and not own and not spec) or (private and not own):
            found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return found


def checked_files() -> list[Path]:
    files = [p for top in CHECKED for p in (REPO / top).rglob("*.py")]
    return [p for p in files if INSIDE not in p.parents]


def test_no_module_outside_machine_reaches_into_a_node() -> None:
    found = [v for path in checked_files() for v in violations(path)]
    assert found == [], "\n".join(found)


def test_the_check_sees_a_reach_through() -> None:
    text = "def f(machine, driver):\n    machine._kill()\n    return machine.qemu.pid\n"
    found = violations_in(text, "driver/run/probe.py")
    assert found == [
        "driver/run/probe.py:2: machine._kill",
        "driver/run/probe.py:3: machine.qemu",
    ]
