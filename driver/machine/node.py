"""Node: the one object the driver holds for each node of a run. It owns the node's parts
(the QEMU process, the QMP client, the console log, the guest shell), its lifecycle state
and its script-facing view (``node.machine``, the DSL a script calls ``node01``), and
offers the driver's own operations: the logged command, monitor and QMP commands, pause and
resume, start, attach, detach, kill and crash, save and load state, overlays, the
accelerator and what the cluster record keeps. The Machine reaches the node only through
the narrow ``NodePort`` (port.py) this class implements. Nothing outside
``driver/machine/`` touches the parts themselves."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driver.config.spec import Forward, NodeSpec
from driver.errors import BootTimeout, MachineDied
from driver.events import EventKind
from driver.keys import authorize_client_key
from driver.log import Logger
from driver.machine.accel import Accel
from driver.machine.backend import NodeProcess
from driver.machine.base import BOOT_TIMEOUT
from driver.machine.command_log import CommandLog
from driver.machine.console import ConsoleLog
from driver.machine.disks import NodeDisks
from driver.machine.lifecycle import Lifecycle, NodeState
from driver.machine.machine import Machine
from driver.machine.process import cpu_seconds
from driver.machine.shell import CommandResult, GuestShell
from driver.wait import wait_until


class Node:
    """A node's process (a QEMU VM or an nspawn container: backend.py), channels,
    lifecycle state (lifecycle.py) and script view (``machine``)."""

    def __init__(self, process: NodeProcess, logger: Logger, out_dir: Path) -> None:
        self._process = process
        self.spec: NodeSpec = process.spec
        self.name = process.spec.name
        self.state_dir = process.paths.state  # console log, overlays, keys
        self.serial_socket = process.serial_socket  # the guest's ttyS0 (None: a container)
        self.logger = logger
        self._commands = CommandLog(self.name, logger, out_dir)
        self.lifecycle = Lifecycle(self.name)
        self._console = ConsoleLog(process.paths.console_log, self.name, logger)
        self._shell = GuestShell(str(process.paths.backdoor), self.check_alive)
        self._control = process.control(self.check_alive)
        self.lock = threading.RLock()  # one command or lifecycle step at a time
        self.boot_seconds: float | None = None
        self.ready_wall: float | None = None  # time.time() when the shell answered
        # Units the script waited to see failed: the health gate does not report them.
        self.expected_failed_units: set[str] = set()
        # Run before a power loss (``crash``): the Driver keeps the journal that dies with it.
        self.power_loss_hooks: list[Callable[[], object]] = []
        self.disks = NodeDisks(process, self.spawn, self.qmp)
        self.machine = Machine(self, logger, out_dir)

    def __repr__(self) -> str:
        return f"<Node {self.name} {self.state.value}>"

    @property
    def state(self) -> NodeState:
        """Where the node is in its lifecycle."""
        return self.lifecycle.state

    @property
    def pid(self) -> int | None:
        """The QEMU process id (None before the first start)."""
        return self._process.pid

    @property
    def accel(self) -> Accel | None:
        """The accelerator QEMU runs with (None before it was chosen: ``choose_accel``)."""
        return self._process.accel

    def choose_accel(self) -> Accel:
        """The accelerator QEMU will use (KVM probed once per host boot)."""
        return self._process.choose_accel()

    @property
    def exit_status(self) -> int | None:
        """Exit status of the last QEMU started here, once it has exited."""
        return self._process.exit_status

    @property
    def started_wall(self) -> float | None:
        """time.time() when QEMU was spawned."""
        return self._process.started_wall

    def forwards(self) -> list[tuple[Forward, int]]:
        """The spec's host forwards with their host ports."""
        return list(zip(self.spec.forwards, self._process.host_ports, strict=True))

    # --- lifecycle -------------------------------------------------------------------

    def is_running(self) -> bool:
        """Whether this node's process (QEMU, nspawn) exists."""
        return self._process.is_running()

    def is_up(self) -> bool:
        """Whether the node runs and its backdoor shell has answered in this boot."""
        return self.state is NodeState.UP and self._process.is_running()

    def start(self, allow_reboot: bool = False, fresh_disks: bool = False) -> None:
        """Start the node if it is not running (``spawn``); returns at once."""
        if not self._process.is_running():
            self.spawn(fresh_disks, allow_reboot)

    def connect(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Start the node if needed and wait until its backdoor shell is ready; then authorise
        the driver's SSH key where the spec asks (``provision_ssh_key``)."""
        if self.state is NodeState.UP:
            return
        self.start()
        with self.logger.nested("waiting for the backdoor shell", node=self.name):
            if not self.wait_ready(timeout):
                return
            self.logger.log(f"ready after {self.boot_seconds or 0.0:.1f}s", node=self.name)
        if self.spec.meta.get("provision_ssh_key"):
            self.check(authorize_client_key(self.state_dir.parent), timeout=30.0)

    def crash(self, timeout: float = 5.0) -> None:
        """A power loss: ``power_loss_hooks``, then ``quit``. A stopped node is left alone."""
        if not self._process.is_running():
            return
        for hook in self.power_loss_hooks:
            hook()
        self.logger.log("crashing", node=self.name)
        self.quit(timeout)

    def spawn(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Start the node's process (QEMU: ``extra_args`` appended) and connect to its shell
        socket; the guest is then booting (STARTING) until ``wait_ready``."""
        with self.lock:
            self._console.begin()
            self._process.start(fresh_disks, allow_reboot, extra_args)
            self.lifecycle.enter(NodeState.STARTING)
            pid, accel = self._process.pid, self._process.accel
            self.logger.event(EventKind.SPAWN, node=self.name, restore=bool(extra_args), pid=pid)
            what = "loading a saved state" if extra_args else f"starting {self._process.program}"
            self.logger.log(
                f"{what} ({accel.name}: {accel.reason})" if accel else what, node=self.name
            )
            self._control.close()
            self._shell.connect(timeout=30.0)
            self._console.start_streaming()

    def quit(self, timeout: float = 10.0) -> None:
        """End the node at once, without a guest shutdown (a VM's disks closed cleanly: QMP
        ``quit``; a container's processes killed); killed after ``timeout`` s."""
        self._stop_watching()
        self._control.power_off()
        try:
            wait_until(lambda: not self._process.is_running(), timeout, 0.02)
        except TimeoutError:
            self.logger.warning("the power-off did not end the node; killing it", node=self.name)
            self._process.kill()
        self.after_exit()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the backdoor shell announces itself; True when this call saw the node
        become ready (False: it already was). BootTimeout, with the console, after ``timeout``."""
        with self.lock:
            if self.state is NodeState.UP:
                return False
            try:
                self._shell.wait_ready(timeout)
            except TimeoutError:
                raise BootTimeout(
                    f"{self.name}: no backdoor shell within {timeout}s — console:\n"
                    + self.console_tail(),
                    self.name,
                ) from None
            self.mark_restored(time.monotonic() - self._process.started_monotonic)
            return True

    def mark_restored(self, boot_seconds: float | None) -> None:
        """The node is up: booted (``wait_ready``) or running again from a saved state
        after ``boot_seconds`` (its shell is live, no boot to wait for)."""
        self.lifecycle.enter(NodeState.UP)
        self.boot_seconds = boot_seconds
        self.ready_wall = time.time()
        self.logger.event(EventKind.READY, node=self.name, boot_seconds=boot_seconds)

    def attach(self, pid: int, boot_seconds: float | None = None, accel: str = "") -> None:
        """Adopt an already running QEMU (a detached cluster node) without restarting it."""
        with self.lock:
            if not self._process.adopt(pid):
                raise MachineDied(
                    f"{self.name}: {self._process.program} (pid {pid}) is not running",
                    node=self.name,
                )
            if accel:
                self._process.accel = Accel(accel, "recorded when the cluster started")
            resume_left_stopped(self)
            self._console.begin()
            self._shell.connect(timeout=5.0)
            self.lifecycle.enter(NodeState.UP)
            self.boot_seconds = boot_seconds

    def _stop_watching(self) -> None:
        """Stop streaming the console; put the CPU time QEMU has used in the event log."""
        self._console.stop_streaming()
        if self._process.pid is not None and self._process.is_running():
            used = cpu_seconds(self._process.pid)
            self.logger.event(EventKind.CPU, node=self.name, seconds=used, pid=self._process.pid)

    def detach(self) -> None:
        """Disconnect from the node, leaving its QEMU running."""
        self._stop_watching()
        self._shell.close()
        self._control.close()
        if self.state is not NodeState.STOPPED:
            self.lifecycle.enter(NodeState.DETACHED)

    def kill(self) -> None:
        """Terminate QEMU at once (no guest shutdown); returns when it is gone."""
        self._stop_watching()
        self._process.kill()
        self.after_exit()

    def after_exit(self) -> None:
        """QEMU has exited: close the channels and collect its status."""
        self._shell.close()
        self._control.close()
        self._process.reap()
        if self.state is not NodeState.STOPPED:
            self.logger.event(EventKind.EXIT, node=self.name, status=self._process.exit_status)
        self.lifecycle.enter(NodeState.STOPPED)

    def check_alive(self) -> None:
        """Raise MachineDied, quoting the console, if QEMU has exited."""
        if self._process.is_running():
            return
        status = self._process.reap()
        self.lifecycle.enter(NodeState.STOPPED)
        said = self._process.last_words()
        raise MachineDied(
            f"{self.name}: {self._process.program} exited (status {status})"
            + self._console.first_problem()
            + (f"; {self._process.program} said: {said}" if said else "")
            + " — last console lines:\n"
            + self.console_tail(),
            node=self.name,
            quotes_console=True,
        )

    # --- commands, QMP -----------------------------------------------------------------

    def run_logged(self, command: str, timeout: float | None) -> CommandResult:
        """Run ``command`` in the guest shell once the node is up (``connect`` first), and
        record it (its event, its stderr, a long output kept whole: ``command_log.py``).
        After ``timeout`` s the guest kills the command (status 124); CommandTimeout when
        the guest does not answer at all."""
        self.connect()
        with self.lock:
            return self._commands.run(command, timeout, self._shell.run)

    def check(self, command: str, timeout: float | None = 30.0) -> str:
        """``run_logged`` for the driver's own commands: the stdout, or TestFailure naming
        the node, the command, its status and its stderr."""
        return self._commands.stdout_of(command, self.run_logged(command, timeout))

    def hmp(self, command: str) -> str:
        """The output of a human-monitor (HMP) command as QMP returns it (no prompt)."""
        return str(self.qmp("human-monitor-command", **{"command-line": command}))

    def qmp(self, command: str, /, **arguments: object) -> object:
        """Send a QMP command; returns its ``return`` value (raises on a QMP error)."""
        self.check_alive()
        return self._control.qmp(command, arguments)

    def next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event within ``wait`` s, or None."""
        self.check_alive()
        return self._control.next_event(wait)

    def pause(self) -> None:
        """Stop the node: a VM's CPUs (QMP ``stop``), a container's every process."""
        self.check_alive()
        self._control.pause()

    def resume(self) -> None:
        """Let a paused node run again."""
        self.check_alive()
        self._control.resume()

    def set_link(self, index: int, up: bool) -> None:
        """Put VLAN NIC ``index`` (0: eth1) link up or down."""
        self.check_alive()
        self._control.set_link(index, up)

    def left_paused(self) -> str:
        """Resume the node if a killed run left it paused; what it was left as, or ""."""
        return self._control.resume_if_left_paused()

    def wait_exit(self, timeout: float) -> None:
        """Wait until QEMU has exited (TimeoutError after ``timeout`` s), then tidy up."""
        wait_until(lambda: not self._process.is_running(), timeout, 0.02)
        self.after_exit()

    # --- the console -----------------------------------------------------------------

    def console_text(self) -> str:
        """The console text of this boot."""
        return self._console.read()

    def console_tail(self, lines: int = 20) -> str:
        """The last ``lines`` console lines of this boot."""
        return self._console.tail(lines)

    def console_lines_from(self, offset: int) -> tuple[str, int]:
        """Complete console lines of this boot from byte ``offset``, and the next offset."""
        return self._console.read_lines_from(offset)

    def wait_for_console_text(self, regex: str | re.Pattern[str], timeout: float | None) -> str:
        """Wait until ``regex`` matches console text not consumed by an earlier wait."""
        pattern = regex.pattern if isinstance(regex, re.Pattern) else regex
        return self._console.wait_for_text(pattern, timeout, self.check_alive)

    def stream_console(self, on: bool) -> None:
        """Copy console lines into the run log (on) or only into vm.log (off)."""
        self._console.show_in_log(on)


def resume_left_stopped(node: Node) -> None:
    """Let a node a killed run left stopped run again: paused (killed between a snapshot's
    stop and cont), or loading its saved state or loaded and not started (killed in a
    restore)."""
    left = node.left_paused()
    if left:
        node.logger.log(f"{node.name} was left {left} (by a killed run?): resumed")
