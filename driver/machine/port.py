"""NodePort: the one narrow interface a script's Machine is built on. ``NodeControl``
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
    def serial_socket(self) -> Path:
        """The serial console's UNIX socket."""

    def forwards(self) -> list[tuple[Forward, int]]:
        """The host forwards with their host ports."""

    def is_running(self) -> bool:
        """Whether QEMU runs."""

    def spawn(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Start QEMU."""

    def wait_ready(self, timeout: float) -> bool:
        """Wait for the shell; True when this call saw the node become ready."""

    def kill(self) -> None:
        """Kill QEMU at once."""

    def wait_exit(self, timeout: float) -> None:
        """Wait until QEMU has exited (TimeoutError after ``timeout``)."""

    def check_alive(self) -> None:
        """Raise MachineDied when QEMU is gone."""

    def run(self, command: str, timeout: float | None) -> CommandResult:
        """Run ``command`` in the guest shell."""

    def qmp(self, command: str, /, **arguments: object) -> object:
        """Send a QMP command."""

    def next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event within ``wait`` s."""

    def console_text(self) -> str:
        """The console text of this boot."""

    def console_tail(self, lines: int = 20) -> str:
        """The last console lines of this boot."""

    def wait_for_console_text(self, regex: str | re.Pattern[str], timeout: float | None) -> str:
        """Wait for console text matching ``regex``."""
