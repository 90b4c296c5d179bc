"""NodePort: the one narrow interface a script's Machine is built on. ``Node`` (node.py)
implements it for a real QEMU node; a unit test can implement it with canned replies to
test the DSL's own logic (messages, parsing, retries) without a guest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

from driver.config.spec import Forward, NodeSpec
from driver.machine.accel import Accel
from driver.machine.lifecycle import NodeState
from driver.machine.shell import CommandResult


class NodePort(Protocol):
    """What the DSL may use of a node: run a command, QMP, the console, host forwards,
    and the lifecycle steps a script can ask for (start, wait for the shell, kill)."""

    name: str
    spec: NodeSpec
    boot_seconds: float | None
    expected_failed_units: set[str]

    @property
    def state(self) -> NodeState:
        """Where the node is in its lifecycle."""

    @property
    def pid(self) -> int | None:
        """The QEMU process id."""

    @property
    def accel(self) -> Accel | None:
        """The accelerator QEMU runs with."""

    @property
    def exit_status(self) -> int | None:
        """Exit status of the last QEMU, once it exited."""

    @property
    def state_dir(self) -> Path:
        """The node's state directory."""

    @property
    def serial_socket(self) -> Path | None:
        """The serial console's UNIX socket (None: a container node has none)."""

    def forwards(self) -> list[tuple[Forward, int]]:
        """The host forwards with their host ports."""

    def is_running(self) -> bool:
        """Whether QEMU runs."""

    def start(self, allow_reboot: bool = False, fresh_disks: bool = False) -> None:
        """Start QEMU if it is not running."""

    def connect(self, timeout: float) -> None:
        """Start the node if needed and wait for its shell."""

    def crash(self, timeout: float) -> None:
        """A power loss (QMP quit, then a kill after ``timeout``)."""

    def kill(self) -> None:
        """Kill QEMU at once."""

    def wait_exit(self, timeout: float) -> None:
        """Wait until QEMU has exited (TimeoutError after ``timeout``)."""

    def check_alive(self) -> None:
        """Raise MachineDied when QEMU is gone."""

    def run_logged(self, command: str, timeout: float | None) -> CommandResult:
        """Run ``command`` in the guest shell once the node is up, recorded in the log."""

    def qmp(self, command: str, /, **arguments: object) -> object:
        """Send a QMP command."""

    def set_link(self, index: int, up: bool) -> None:
        """Put VLAN NIC ``index`` link up or down."""

    def hmp(self, command: str) -> str:
        """The output of a human-monitor command."""

    def next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event within ``wait`` s."""

    def console_text(self) -> str:
        """The console text of this boot."""

    def console_tail(self, lines: int = 20) -> str:
        """The last console lines of this boot."""

    def wait_for_console_text(self, regex: str | re.Pattern[str], timeout: float | None) -> str:
        """Wait for console text matching ``regex``."""
