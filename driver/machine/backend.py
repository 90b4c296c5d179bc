"""The node's backend port: what ``Node`` needs of the thing that runs a node, in two parts.

``NodeProcess`` is the process and its writable layer (spawn, adopt, is it running, reap,
kill, why it ended); ``NodeControl`` is control of a running node (pause, resume, power off,
and the QEMU monitor where there is one). A VM node is ``QemuProcess`` (process.py) with
``VmControl`` (QMP); a container node is ``NspawnProcess`` (container.py) with
``ContainerControl`` (its cgroup's freezer). The Node and everything above it is the same
for both kinds."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from driver.config.spec import NodeSpec
from driver.errors import TestFailure
from driver.machine.accel import Accel
from driver.machine.argv import Paths
from driver.machine.qmp import QmpClient
from driver.wait import wait_until

# How long an attach waits for a node a killed run left loading a saved state.
LOAD_TIMEOUT_SECONDS = 120.0


class NotOnContainer(TestFailure):
    """A method that needs a kernel of the node's own or QEMU, called on a container."""

    def __init__(self, node: str, what: str, why: str) -> None:
        super().__init__(f"{node}: {what} needs a VM node; {node} is a container node ({why})")


class NodeProcess(Protocol):
    """The process that runs one node, and its writable layer."""

    program: str  # what runs the node, named in messages (QEMU, systemd-nspawn)
    spec: NodeSpec
    paths: Paths
    host_ports: list[int]
    accel: Accel | None
    pid: int | None
    exit_status: int | None
    started_wall: float | None
    started_monotonic: float
    allow_reboot: bool
    serial_socket: Path | None  # the serial console's socket (None: none)

    @property
    def overlays(self) -> list[Path]:
        """The node's writable layer (qcow2 overlays, a container's upper directory)."""

    def create_overlays(self) -> None:
        """A fresh writable layer."""

    def overlays_over(self, saved: list[Path | None]) -> None:
        """Fresh overlays over saved disk images."""

    def choose_accel(self) -> Accel:
        """What the node runs with (KVM, TCG, the host's kernel)."""

    def start(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Spawn the node's process; returns at once."""

    def last_words(self, limit: int = 400) -> str:
        """The last line the process wrote to its log."""

    def adopt(self, pid: int) -> bool:
        """Take over a running process; False when it is not running."""

    def is_running(self) -> bool:
        """Whether the process runs."""

    def reap(self) -> int | None:
        """Collect its exit status (and end what it leaves behind)."""

    def kill(self) -> None:
        """Kill it at once; returns when it is gone."""

    def control(self, alive: Callable[[], None]) -> NodeControl:
        """Control of the running node (``alive`` raises when the node is gone)."""


class NodeControl(Protocol):
    """Control of a running node."""

    def pause(self) -> None:
        """Stop the node (its CPUs, or every process of a container)."""

    def resume(self) -> None:
        """Let a paused node run again."""

    def resume_if_left_paused(self) -> str:
        """Resume a node a killed run left paused; what it was left as, or ""."""

    def power_off(self) -> None:
        """End the node at once, without a guest shutdown (a power loss)."""

    def qmp(self, command: str, arguments: dict[str, object]) -> object:
        """A QMP command's ``return`` value."""

    def next_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event within ``wait`` s, or None."""

    def set_link(self, index: int, up: bool) -> None:
        """Put VLAN NIC ``index`` (0: eth1) link up or down, as a cable (un)plugged."""

    def close(self) -> None:
        """Drop the control connection (the node keeps running)."""


class VmControl:
    """A VM's control: QMP."""

    def __init__(self, client: QmpClient) -> None:
        self._client = client

    def pause(self) -> None:
        """QMP ``stop``."""
        self._client.command("stop")

    def resume(self) -> None:
        """QMP ``cont``."""
        self._client.command("cont")

    def resume_if_left_paused(self) -> str:
        """``cont`` when QEMU is paused or prelaunch (a killed snapshot or restore), once it
        has loaded a saved state it was left loading."""

        def status_now() -> object:
            status = self._client.command("query-status")
            loading = isinstance(status, dict) and status.get("status") == "inmigrate"
            return None if loading else status

        status = wait_until(status_now, LOAD_TIMEOUT_SECONDS, 0.05)
        if isinstance(status, dict) and status.get("status") in ("paused", "prelaunch"):
            self._client.command("cont")
            return str(status["status"])
        return ""

    def power_off(self) -> None:
        """QMP ``quit``: QEMU ends with its disks closed, the guest never told."""
        with contextlib.suppress(Exception):  # QEMU may close the monitor before replying
            self._client.command("quit")

    def qmp(self, command: str, arguments: dict[str, object]) -> object:
        """Send ``command``; its ``return`` value."""
        return self._client.command(command, **arguments)

    def next_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event."""
        return self._client.next_event(wait)

    def set_link(self, index: int, up: bool) -> None:
        """QMP ``set_link`` on the NIC's device (the guest sees its carrier go)."""
        self._client.command("set_link", name=f"nic{index}", up=up)

    def close(self) -> None:
        """Close the QMP connection."""
        self._client.close()


class ContainerProcess(Protocol):
    """What a container's control uses of its process."""

    def freeze(self) -> None:
        """Freeze it."""

    def thaw(self) -> None:
        """Thaw it."""

    def kill(self) -> None:
        """Kill it."""

    def set_link(self, index: int, up: bool) -> None:
        """Put a NIC's link up or down."""


class ContainerControl:
    """A container's control: its cgroup's freezer; no QEMU monitor."""

    def __init__(self, node: str, process: ContainerProcess) -> None:
        self._node = node
        self._process = process

    def pause(self) -> None:
        """Freeze every process of the container."""
        self._process.freeze()

    def resume(self) -> None:
        """Thaw them."""
        self._process.thaw()

    def resume_if_left_paused(self) -> str:
        """Thaw the container (a no-op when it runs)."""
        self._process.thaw()
        return ""

    def power_off(self) -> None:
        """SIGKILL every process of the container (its power loss)."""
        self._process.kill()

    def qmp(self, command: str, arguments: dict[str, object]) -> object:
        """No QEMU monitor: one line naming the node and the command."""
        raise NotOnContainer(self._node, f"QMP command {command!r}", "no QEMU monitor")

    def next_event(self, wait: float) -> dict[str, Any] | None:
        """No QEMU events."""
        raise NotOnContainer(self._node, "a QMP event", "no QEMU monitor")

    def set_link(self, index: int, up: bool) -> None:
        """The tap's link in the container's network namespace."""
        self._process.set_link(index, up)

    def close(self) -> None:
        """Nothing to close."""
