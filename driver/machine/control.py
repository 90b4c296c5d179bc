"""NodeControl: one node as the driver sees it. It owns the node's parts (the QEMU process,
the QMP client, the console log, the guest shell) and its lifecycle state, and offers two
faces: the narrow ``NodePort`` a script's ``Machine`` is built on, and the driver's own
operations (spawn, attach, detach, kill, pause and resume, save and load state, overlays,
the accelerator, what the cluster record keeps). Nothing outside ``driver/machine/``
touches the parts themselves."""

from __future__ import annotations

import contextlib
import re
import shlex
import threading
import time
from pathlib import Path
from typing import Any

from driver.config.spec import Forward, NodeSpec
from driver.errors import BootTimeout, MachineDied
from driver.log import Logger
from driver.machine.accel import Accel
from driver.machine.console import KERNEL_PROBLEMS, ConsoleLog
from driver.machine.lifecycle import Lifecycle, NodeState
from driver.machine.process import QemuProcess, cpu_seconds
from driver.machine.qmp import QmpClient
from driver.machine.shell import CommandResult, GuestShell
from driver.wait import wait_until

# How long an attach waits for a node a killed run left loading a saved state.
LOAD_TIMEOUT_SECONDS = 120.0


class NodeControl:
    """A node's QEMU and channels, with one lifecycle state (see ``lifecycle.py``)."""

    def __init__(self, qemu: QemuProcess, logger: Logger) -> None:
        self._qemu = qemu
        self.spec: NodeSpec = qemu.spec
        self.name = qemu.spec.name
        self.logger = logger
        self.lifecycle = Lifecycle(self.name)
        self._console = ConsoleLog(qemu.paths.console_log, self.name, logger)
        self._shell = GuestShell(str(qemu.paths.backdoor), self.check_alive)
        self._qmp = QmpClient(qemu.paths.qmp, self.check_alive)
        self.lock = threading.RLock()  # one command or lifecycle step at a time
        self.boot_seconds: float | None = None
        self.ready_wall: float | None = None  # time.time() when the shell answered

    def __repr__(self) -> str:
        return f"<NodeControl {self.name} {self.state.value}>"

    # --- state and facts -----------------------------------------------------------

    @property
    def state(self) -> NodeState:
        """Where the node is in its lifecycle."""
        return self.lifecycle.state

    @property
    def pid(self) -> int | None:
        """The QEMU process id (None before the first start)."""
        return self._qemu.pid

    @property
    def accel(self) -> Accel | None:
        """The accelerator QEMU runs (or will run) with."""
        return self._qemu.accel

    @accel.setter
    def accel(self, accel: Accel) -> None:
        self._qemu.accel = accel

    def choose_accel(self) -> Accel:
        """The accelerator this node's QEMU will use (KVM probed once per host boot)."""
        return self._qemu.choose_accel()

    @property
    def exit_status(self) -> int | None:
        """Exit status of the last QEMU started here, once it has exited."""
        return self._qemu.exit_status

    @property
    def started_wall(self) -> float | None:
        """time.time() when QEMU was spawned."""
        return self._qemu.started_wall

    @property
    def host_ports(self) -> list[int]:
        """The host port of each of the spec's forwards, in order."""
        return list(self._qemu.host_ports)

    def forwards(self) -> list[tuple[Forward, int]]:
        """The spec's host forwards with their host ports."""
        return list(zip(self.spec.forwards, self._qemu.host_ports, strict=True))

    @property
    def state_dir(self) -> Path:
        """The node's state directory (console log, overlays, keys)."""
        return self._qemu.paths.state

    @property
    def serial_socket(self) -> Path:
        """The UNIX socket of the guest's serial console (ttyS0)."""
        return self._qemu.paths.serial

    # --- disks -----------------------------------------------------------------------

    @property
    def overlays(self) -> list[Path]:
        """The files QEMU opens for the spec's disks (qcow2 overlays or the disks)."""
        return self._qemu.overlays

    def create_overlays(self) -> None:
        """Fresh copy-on-write overlays over the base disks (blank disks where none)."""
        self._qemu.create_overlays()

    def overlays_over(self, saved: list[Path | None]) -> None:
        """Fresh overlays over saved qcow2 disk images (None: the spec's own disk)."""
        self._qemu.overlays_over(saved)

    # --- lifecycle -------------------------------------------------------------------

    def is_running(self) -> bool:
        """Whether this node's QEMU process exists."""
        return self._qemu.is_running()

    def spawn(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Start QEMU (``extra_args`` appended) and connect to its shell socket; the guest
        is then booting (STARTING) until ``wait_ready``."""
        with self.lock:
            self._console.begin()
            self._qemu.start(fresh_disks, allow_reboot, extra_args)
            self.lifecycle.enter(NodeState.STARTING)
            self.logger.event("spawn", node=self.name, restore=bool(extra_args), pid=self._qemu.pid)
            accel = self._qemu.accel
            what = "loading a saved state" if extra_args else "starting QEMU"
            self.logger.log(
                f"{what} ({accel.name}: {accel.reason})" if accel else what, node=self.name
            )
            self._qmp.close()
            self._shell.connect(timeout=30.0)
            self._console.start_streaming()

    def start_from_saved_state(self, state_file: Path, disks: list[Path | None]) -> None:
        """Start QEMU paused on fresh overlays over ``disks`` (None: the spec's own disk),
        loading RAM and device state from ``state_file`` (a QEMU migration stream); then
        wait for ``saved_state_loaded``, resume with QMP ``cont`` and ``mark_restored``."""
        with self.lock:
            self._qemu.overlays_over(disks)
            self.spawn(extra_args=("-S", "-incoming", "exec:cat " + shlex.quote(str(state_file))))

    def start_from_snapshot(self, name: str) -> None:
        """Start QEMU paused on this node's disks as they are, loading their internal
        snapshot ``name`` (``-loadvm``); then, as after ``start_from_saved_state``, wait
        for ``saved_state_loaded``, ``resume`` and ``mark_restored``. A fresh QEMU starts
        the guest's clocks where the snapshot froze them (a running QEMU's ``loadvm``
        keeps the guest TSC where it was, and the restored guest sees time jump by all the
        time since the snapshot)."""
        self.spawn(allow_reboot=self._qemu.allow_reboot, extra_args=("-S", "-loadvm", name))

    def quit(self, timeout: float = 10.0) -> None:
        """End QEMU at once, without a guest shutdown but with its disks closed cleanly
        (QMP ``quit``; killed after ``timeout`` s); returns when it is gone."""
        self._console.stop_streaming()
        self.record_cpu()
        with contextlib.suppress(Exception):  # QEMU may close the monitor before replying
            self._qmp.command("quit")
        try:
            wait_until(lambda: not self._qemu.is_running(), timeout, 0.02)
        except TimeoutError:
            self._qemu.kill()
        self.after_exit()

    def saved_state_loaded(self) -> bool:
        """Whether QEMU has loaded the saved state (it is then paused); MachineDied if QEMU
        rejected the state and exited."""
        reply = self.qmp("query-status")
        return isinstance(reply, dict) and reply.get("status") != "inmigrate"

    def mark_restored(self, seconds: float) -> None:
        """The node runs again from a saved state: its shell is live, no boot to wait for."""
        self._became_up(seconds)

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the backdoor shell announces itself; True when this call saw the node
        become ready (False when it already was). InfraError with the console after
        ``timeout`` s."""
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
            self._became_up(time.monotonic() - self._qemu.started_monotonic)
            return True

    def _became_up(self, boot_seconds: float | None) -> None:
        self.lifecycle.enter(NodeState.UP)
        self.boot_seconds = boot_seconds
        self.ready_wall = time.time()
        self.logger.event("ready", node=self.name, boot_seconds=boot_seconds)

    def attach(self, pid: int, boot_seconds: float | None = None, accel: str = "") -> None:
        """Adopt an already running QEMU (a detached cluster node) without restarting it."""
        with self.lock:
            if not self._qemu.adopt(pid):
                raise MachineDied(f"{self.name}: QEMU (pid {pid}) is not running", node=self.name)
            if accel:
                self._qemu.accel = Accel(accel, "recorded when the cluster started")
            resume_left_stopped(self)
            self._console.begin()
            self._shell.connect(timeout=5.0)
            self.lifecycle.enter(NodeState.UP)
            self.boot_seconds = boot_seconds

    def record_cpu(self) -> None:
        """Put the CPU time QEMU has used so far in the event log (``cpu``)."""
        if self._qemu.pid is not None and self._qemu.is_running():
            used = cpu_seconds(self._qemu.pid)
            self.logger.event("cpu", node=self.name, seconds=used, pid=self._qemu.pid)

    def detach(self) -> None:
        """Disconnect from the node, leaving its QEMU running."""
        self._console.stop_streaming()
        self.record_cpu()
        self._shell.close()
        self._qmp.close()
        if self.state is not NodeState.STOPPED:
            self.lifecycle.enter(NodeState.DETACHED)

    def kill(self) -> None:
        """Terminate QEMU at once (no guest shutdown); returns when it is gone."""
        self._console.stop_streaming()
        self.record_cpu()
        self._qemu.kill()
        self.after_exit()

    def after_exit(self) -> None:
        """QEMU has exited: close the channels and collect its status."""
        self._shell.close()
        self._qmp.close()
        self._qemu.reap()
        if self.state is not NodeState.STOPPED:
            self.logger.event("exit", node=self.name, status=self._qemu.exit_status)
        self.lifecycle.enter(NodeState.STOPPED)

    def check_alive(self) -> None:
        """Raise MachineDied, quoting the console, if QEMU has exited."""
        if self._qemu.is_running():
            return
        status = self._qemu.reap()
        self.lifecycle.enter(NodeState.STOPPED)
        panic = [
            ln.strip() for ln in self._console.read().splitlines() if KERNEL_PROBLEMS.search(ln)
        ]
        said = self._qemu.last_words()
        raise MachineDied(
            f"{self.name}: QEMU exited (status {status})"
            + (f": {panic[0]}" if panic else "")
            + (f"; QEMU said: {said}" if said else "")
            + " — last console lines:\n"
            + self.console_tail(),
            node=self.name,
            quotes_console=True,
        )

    # --- commands, QMP -----------------------------------------------------------------

    def run(self, command: str, timeout: float | None) -> CommandResult:
        """Run ``command`` in the guest shell (TimeoutError when the guest never answers)."""
        with self.lock:
            return self._shell.run(command, timeout)

    def qmp(self, command: str, /, **arguments: object) -> object:
        """Send a QMP command; returns its ``return`` value (raises on a QMP error)."""
        self.check_alive()
        return self._qmp.command(command, **arguments)

    def next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event within ``wait`` s, or None."""
        self.check_alive()
        return self._qmp.next_event(wait)

    def pause(self) -> None:
        """Stop the guest's CPUs (QMP ``stop``)."""
        self.qmp("stop")

    def resume(self) -> None:
        """Resume the guest's CPUs (QMP ``cont``)."""
        self.qmp("cont")

    def wait_exit(self, timeout: float) -> None:
        """Wait until QEMU has exited (TimeoutError after ``timeout`` s), then tidy up."""
        wait_until(lambda: not self._qemu.is_running(), timeout, 0.02)
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


def resume_left_stopped(control: NodeControl) -> None:
    """Start the guest CPUs of a node a killed run left stopped: paused (killed between a
    snapshot's stop and cont), or loading its saved state or loaded and not started (killed
    in a restore)."""
    wait_until(control.saved_state_loaded, LOAD_TIMEOUT_SECONDS, 0.05)
    status = control.qmp("query-status")
    if isinstance(status, dict) and status.get("status") in ("paused", "prelaunch"):
        control.qmp("cont")
        control.logger.log(
            f"{control.name} was left {status['status']} (by a killed run?): resumed"
        )
