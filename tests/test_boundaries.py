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


SHELL_ONLY = ("commands", "systemd", "files")  # helper groups that only run commands


def test_shell_helpers_get_the_shell_alone() -> None:
    """The helper groups that only run commands are built on ShellBase, which has no port:
    mypy refuses them any use of the node beyond its shell; the groups that need the node
    (network, monitor, ssh, NixOS compatibility) are built on NodeBase."""
    from driver.machine.base import NodeBase, ShellBase
    from driver.machine.commands import CommandsMixin
    from driver.machine.files import FilesMixin
    from driver.machine.monitor import MonitorMixin
    from driver.machine.network import NetworkMixin
    from driver.machine.nixos_compat import NixosCompatMixin
    from driver.machine.ssh import SshMixin
    from driver.machine.systemd import SystemdMixin

    for shell_only in (CommandsMixin, SystemdMixin, FilesMixin):
        assert issubclass(shell_only, ShellBase) and not issubclass(shell_only, NodeBase)
    for needs_node in (NetworkMixin, MonitorMixin, NixosCompatMixin, SshMixin):
        assert issubclass(needs_node, NodeBase)
    assert "_port" not in ShellBase.__annotations__ and "_port" in NodeBase.__annotations__
    for name in SHELL_ONLY:
        tree = ast.parse((INSIDE / f"{name}.py").read_text())
        reached = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name)
            and n.value.id == "self"
        }
        assert not reached & {"_port", "send_qmp_command", "spec", "callbacks"}, name
