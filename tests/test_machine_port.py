"""Machine over a fake NodePort (issue 20): the DSL's own logic (NixOS texts, parsing,
the lifecycle it asks the port for) without a guest. Pure logic only; everything that
touches a VM is tested on real guests elsewhere."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from driver.config.spec import Forward, NodeSpec
from driver.errors import CommandTimeout, MachineDied, TestFailure
from driver.log import Logger
from driver.machine import Machine
from driver.machine.accel import Accel
from driver.machine.lifecycle import Lifecycle, NodeState
from driver.machine.port import NodePort
from driver.machine.shell import CommandResult


class FakePort:
    """A node that answers every command with the next canned (status, stdout, stderr)."""

    def __init__(self, replies: list[tuple[int, str, str]] | None = None) -> None:
        self.name = "node01"
        self.spec = NodeSpec(
            name="node01",
            kernel="/k",
            initrd="/i",
            cmdline="",
            forwards=(Forward(22, "tcp", name="ssh"), Forward(53, "udp", name="dns")),
        )
        self.boot_seconds: float | None = None
        self.lifecycle = Lifecycle(self.name)
        self.replies = list(replies or [])
        self.commands: list[str] = []
        self.qmp_sent: list[str] = []
        self.calls: list[str] = []
        self.expected_failed_units: set[str] = set()
        self.running = False

    @property
    def state(self) -> NodeState:
        return self.lifecycle.state

    @property
    def pid(self) -> int | None:
        return 4242 if self.running else None

    @property
    def accel(self) -> Accel | None:
        return Accel("tcg", "fake")

    @property
    def exit_status(self) -> int | None:
        return None if self.running else 0

    @property
    def state_dir(self) -> Path:
        return Path("/nonexistent/node01")

    @property
    def serial_socket(self) -> Path:
        return Path("/nonexistent/serial")

    def forwards(self) -> list[tuple[Forward, int]]:
        return list(zip(self.spec.forwards, [2222, 5353], strict=True))

    def is_running(self) -> bool:
        return self.running

    def start(self, allow_reboot: bool = False, fresh_disks: bool = False) -> None:
        if not self.running:
            self.calls.append("start")
            self.running = True
            self.lifecycle.enter(NodeState.STARTING)

    def connect(self, timeout: float) -> None:
        if self.state is NodeState.UP:
            return
        self.start()
        self.calls.append("connect")
        self.lifecycle.enter(NodeState.UP)
        self.boot_seconds = 1.5

    def crash(self, timeout: float) -> None:
        self.calls.append("crash")
        self.kill()

    def kill(self) -> None:
        self.calls.append("kill")
        self.running = False
        self.lifecycle.enter(NodeState.STOPPED)

    def wait_exit(self, timeout: float) -> None:
        self.calls.append("wait_exit")
        if self.running:
            raise TimeoutError

    def check_alive(self) -> None:
        if not self.running:
            raise MachineDied("node01: QEMU exited", node="node01", quotes_console=True)

    def run_logged(self, command: str, timeout: float | None) -> CommandResult:
        self.connect(300.0)
        self.commands.append(command)
        status, out, err = self.replies.pop(0)
        return CommandResult(status, out.encode(), err.encode(), 0.01, timed_out=status == 124)

    def qmp(self, command: str, /, **arguments: object) -> object:
        self.check_alive()
        self.qmp_sent.append(command)
        return {}

    def set_link(self, index: int, up: bool) -> None:
        self.qmp_sent.append(f"set_link nic{index} {up}")

    def hmp(self, command: str) -> str:
        self.qmp_sent.append(f"hmp {command}")
        return ""

    def next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        return None

    def console_text(self) -> str:
        return "[    1.0] booted\n"

    def console_tail(self, lines: int = 20) -> str:
        return "[    1.0] booted"

    def wait_for_console_text(self, regex: str | re.Pattern[str], timeout: float | None) -> str:
        match = re.search(regex, self.console_text())
        if match is None:
            raise TimeoutError(f"console text {regex!r} did not appear within {timeout}s")
        return match.group(0)


def machine(replies: list[tuple[int, str, str]] | None = None) -> tuple[Machine, FakePort]:
    port = FakePort(replies)
    checked: NodePort = port  # the fake satisfies the protocol (mypy checks this line)
    return Machine(checked, Logger(io.StringIO(), colour=False), Path("/nonexistent")), port


def test_first_command_starts_and_waits_for_the_shell() -> None:
    node, port = machine([(0, "hello\n", "")])
    assert not node.booted and not node.connected
    assert node.succeed("echo hello") == "hello\n"
    assert port.calls == ["start", "connect"] and node.booted and node.boot_seconds == 1.5
    assert port.commands[0].startswith("set -euo pipefail\n") and "echo hello" in port.commands[0]


def test_failure_texts_are_the_nixos_drivers() -> None:
    node, _ = machine([(3, "", "boom\n"), (0, "", ""), (124, "", "")])
    with pytest.raises(TestFailure, match=r"command `false` failed \(exit code 3\)"):
        node.succeed("false")
    with pytest.raises(TestFailure, match="unexpectedly succeeded"):
        node.fail("true")
    with pytest.raises(CommandTimeout, match="exit 124"):
        node.succeed("sleep 99", timeout=1)


def test_syntax_error_returns_2_as_on_nixos() -> None:
    node, _ = machine([(2, "", "bash: -c: line 2: syntax error near unexpected token `)'\n")] * 2)
    assert node.execute("echo )") == (2, "")
    with pytest.raises(AssertionError, match=r"failed \(exit code 2\)"):
        node.succeed("echo )")


def test_host_port_comes_from_the_ports_forwards() -> None:
    node, _ = machine()
    assert node.host_port(22) == 2222 and node.host_port(53, "udp") == 5353
    with pytest.raises(TestFailure, match="no host forward for guest tcp port 80"):
        node.host_port(80)


def test_lifecycle_steps_are_the_nodes() -> None:
    """crash, release and a monitor command are asked of the node (its Node does them)."""
    node, port = machine([(0, "", "")])
    node.succeed("true")
    assert node.send_monitor_command("info status") == "(qemu) "
    assert port.qmp_sent == ["hmp info status"]
    node.crash(timeout=0.01)
    assert port.calls[-2:] == ["crash", "kill"] and not node.booted and not node.is_running()


def test_console_through_the_port() -> None:
    node, _ = machine()
    assert node.get_console_log() == "[    1.0] booted\n"
    assert node.wait_for_console_text("boo+ted", timeout=1) == "booted"
    with pytest.raises(TestFailure, match="action timed out"):
        node.wait_for_console_text("never", timeout=0.1)


def test_lifecycle_table_refuses_what_it_does_not_have() -> None:
    life = Lifecycle("node01")
    life.enter(NodeState.STARTING)
    life.enter(NodeState.UP)
    life.enter(NodeState.UP)  # staying put is fine
    life.enter(NodeState.DETACHED)
    with pytest.raises(Exception, match="no transition from detached to starting"):
        life.enter(NodeState.STARTING)
