"""Machine: one node as test scripts see it (``node01``). A front over parts with one job
each: the QEMU process (``process.QemuProcess``), the QMP client (``qmp.QmpClient``), the
console log (``console.ConsoleLog``) and the guest shell (``shell.GuestShell``). Lifecycle
and ``run`` live here; every other DSL method is in a helper module that uses only ``run``,
the in-guest poll and the logger.

Method names follow the NixOS test driver where the meaning is the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driver.duration import Duration, optional_seconds, seconds
from driver.errors import CommandTimeout, InfraError, MachineDied
from driver.log import Logger
from driver.machine.accel import Accel
from driver.machine.base import DEFAULT_TIMEOUT
from driver.machine.commands import CommandsMixin
from driver.machine.console import KERNEL_PROBLEMS, ConsoleLog
from driver.machine.files import FilesMixin
from driver.machine.monitor import MonitorMixin
from driver.machine.network import NetworkMixin
from driver.machine.nixos_compat import NixosCompatMixin
from driver.machine.process import QemuProcess
from driver.machine.qmp import QmpClient
from driver.machine.shell import CommandResult, GuestShell
from driver.machine.ssh import SshMixin
from driver.machine.systemd import SystemdMixin
from driver.wait import wait_until

BOOT_TIMEOUT = 300.0


class Machine(
    CommandsMixin,
    SystemdMixin,
    FilesMixin,
    NetworkMixin,
    MonitorMixin,
    NixosCompatMixin,
    SshMixin,
):
    """A test node. The Driver creates it; scripts use it as ``node01``."""

    name: str
    booted: bool  # the backdoor shell answered in this boot (NixOS's ``booted``)
    boot_seconds: float | None
    out_dir: Path

    def __init__(self, qemu: QemuProcess, logger: Logger, out_dir: Path) -> None:
        self.qemu = qemu
        self.spec = qemu.spec
        self.name = qemu.spec.name
        self.logger = logger
        self.out_dir = out_dir
        self.console = ConsoleLog(qemu.paths.console_log, self.name, logger)
        self.booted = False
        self.boot_seconds: float | None = None
        self.ready_wall: float | None = None  # time.time() when the backdoor answered
        self._shell = GuestShell(str(qemu.paths.backdoor), self._check_alive)
        self._qmp = QmpClient(qemu.paths.qmp, self._check_alive)
        self._lock = threading.RLock()
        # Called before each command a script sends (the Driver checks the script's
        # polling conditions here, as the NixOS driver's machine callbacks do).
        self.callbacks: list[Callable[[], None]] = []
        self.expected_failed_units: set[str] = set()

    def __repr__(self) -> str:
        return f"<Machine {self.name}>"

    @property
    def pid(self) -> int | None:
        """The QEMU process id (None before the first start)."""
        return self.qemu.pid

    @property
    def accel(self) -> Accel | None:
        """The accelerator QEMU runs with (KVM or TCG, and why)."""
        return self.qemu.accel

    @property
    def exit_status(self) -> int | None:
        """Exit status of the last QEMU this Machine started, once it has exited."""
        return self.qemu.exit_status

    # --- lifecycle ---------------------------------------------------------------

    def start(self, allow_reboot: bool = False, fresh_disks: bool = False) -> None:
        """Start QEMU if it is not running; returns at once (commands wait for the boot).
        ``allow_reboot`` lets a guest reboot inside QEMU (default: a reboot stops QEMU);
        ``fresh_disks`` recreates the disk overlays."""
        with self._lock:
            if self.qemu.is_running():
                return
            self._spawn(fresh_disks, allow_reboot)

    def _spawn(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.console.begin()
        self.qemu.start(fresh_disks, allow_reboot, extra_args)
        accel = self.qemu.accel
        what = "loading a saved state" if extra_args else "starting QEMU"
        self.log(f"{what} ({accel.name}: {accel.reason})" if accel else what)
        self.booted = False
        self._qmp.close()
        self._shell.connect(timeout=30.0)
        self.console.start_streaming()

    def _start_from_saved_state(self, state_file: Path, disks: list[Path | None]) -> None:
        """Start QEMU paused on fresh overlays over ``disks`` (None: the spec's own disk),
        loading RAM and device state from ``state_file`` (a QEMU migration stream). Then
        wait for ``_saved_state_loaded`` and resume with QMP ``cont``."""
        with self._lock:
            self.qemu.overlays_over(disks)
            self._spawn(extra_args=("-S", "-incoming", "exec:cat " + shlex.quote(str(state_file))))

    def _saved_state_loaded(self) -> bool:
        """Whether QEMU has loaded the saved state (it is then paused); MachineDied if QEMU
        rejected the state and exited."""
        reply = self.send_qmp_command("query-status")
        return isinstance(reply, dict) and reply.get("status") != "inmigrate"

    def _mark_restored(self, seconds: float) -> None:
        """The node runs again from a saved state: its shell is live, no boot to wait for."""
        self.booted = True
        self.boot_seconds = seconds
        self.ready_wall = time.time()

    def _attach(self, pid: int, boot_seconds: float | None = None) -> None:
        """Adopt an already running QEMU (a detached cluster node) without restarting it."""
        with self._lock:
            if not self.qemu.adopt(pid):
                raise MachineDied(f"{self.name}: QEMU (pid {pid}) is not running", node=self.name)
            self.boot_seconds = boot_seconds
            self.console.begin()
            self._shell.connect(timeout=5.0)
            self.booted = True

    def is_running(self) -> bool:
        """Whether this node's QEMU process exists."""
        return self.qemu.is_running()

    def _check_alive(self) -> None:
        """Raise MachineDied, quoting the console, if QEMU has exited."""
        if self.qemu.is_running():
            return
        status = self.qemu.reap()
        self.booted = False
        panic = [
            ln.strip() for ln in self.console.read().splitlines() if KERNEL_PROBLEMS.search(ln)
        ]
        raise MachineDied(
            f"{self.name}: QEMU exited (status {status})"
            + (f": {panic[0]}" if panic else "")
            + " — last console lines:\n"
            + self.console_tail(),
            node=self.name,
        )

    def console_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of this node's console (this boot)."""
        return self.console.tail(lines)

    def is_up(self) -> bool:
        """True when QEMU runs and the backdoor shell has answered."""
        return self.booted and self.qemu.is_running()

    @property
    def connected(self) -> bool:
        """Whether the driver is connected to the node's backdoor shell (NixOS's
        ``connected``): the node booted and its QEMU runs."""
        return self.is_up()

    def connect(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Start the node if needed and wait until its backdoor shell is ready (the boot
        reached the backdoor unit); fails with the console's last lines after
        ``timeout``."""
        timeout = seconds(timeout)
        with self._lock:
            if self.booted:
                return
            if not self.qemu.is_running():
                self.start()
            with self.nested("waiting for the backdoor shell"):
                try:
                    self._shell.wait_ready(timeout)
                except TimeoutError:
                    raise InfraError(
                        f"{self.name}: no backdoor shell within {timeout}s — console:\n"
                        + self.console_tail()
                    ) from None
                self.boot_seconds = time.monotonic() - self.qemu.started_monotonic
                self.ready_wall = time.time()
                self.booted = True
                self.log(f"ready after {self.boot_seconds:.1f}s")
                if self.spec.meta.get("provision_ssh_key"):
                    self._install_ssh_key()

    def wait_for_shutdown(self, timeout: Duration = DEFAULT_TIMEOUT) -> None:
        """Wait until QEMU has exited (the guest powered off or crashed); does not start a
        shutdown. Fails ("action timed out") after ``timeout``."""
        limit = seconds(timeout)
        try:
            wait_until(lambda: not self.qemu.is_running(), limit)
        except TimeoutError:
            raise self._timed_out(limit, "the node did not shut down") from None
        self._after_exit()

    def _after_exit(self) -> None:
        self.booted = False
        self._shell.close()
        self._qmp.close()
        self.qemu.reap()

    def shutdown(self, timeout: Duration = 60.0) -> None:
        """Power the guest off cleanly (``poweroff``) and wait for QEMU to exit; fails
        after ``timeout``. A node that is not running is left alone (no error)."""
        if not self.qemu.is_running():
            return
        with self.nested("shutting down"):
            if self.booted:
                self.run_unchecked("systemctl start --no-block poweroff.target", timeout=30.0)
            else:
                self.qemu.kill()
            self.wait_for_shutdown(timeout)

    def crash(self, timeout: Duration = 5.0) -> None:
        """Simulate a power loss: QEMU is told to quit at once (QMP ``quit``; no guest
        shutdown, unsynced guest writes are lost). If QEMU is still running after
        ``timeout`` it is killed, with a warning. A node that is not running is left
        alone."""
        if not self.qemu.is_running():
            return
        timeout = seconds(timeout)
        self.log("crashing")
        with contextlib.suppress(Exception):
            self.send_qmp_command("quit")
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not self.qemu.is_running(), timeout, 0.02)
        if self.qemu.is_running():
            self.logger.warning("QMP quit did not stop QEMU; killing it", node=self.name)
        self._kill()

    def reboot(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Reboot: a clean shutdown, then QEMU starts again on the same disks; waits up to
        ``timeout`` s for the backdoor."""
        with self.nested("rebooting"):
            self.shutdown()
            self.start()
            self.connect(timeout)

    def _kill(self) -> None:
        """Terminate QEMU at once (cleanup path; no guest shutdown)."""
        self.console.stop_streaming()
        self.qemu.kill()
        self._after_exit()

    def release(self) -> None:
        """Kill the machine's QEMU at once (the NixOS driver's ``release``); no guest
        shutdown."""
        self.log("release (kill QEMU)")
        self._kill()

    def _detach(self) -> None:
        """Disconnect from a detached node, leaving it running."""
        self.console.stop_streaming()
        self._shell.close()
        self._qmp.close()

    # --- the shell primitive and the monitor ---------------------------------------

    def run(self, command: str, timeout: Duration | None = DEFAULT_TIMEOUT) -> CommandResult:
        """Run ``command`` with bash as root in the guest, as it is (no shell options added);
        returns status, byte-exact stdout and stderr (``stdout_bytes``; ``stdout`` as text),
        duration and ``timed_out``. Waits for the boot first. The reply comes when the
        command's shell exits, even if background children keep running. After ``timeout``
        s the guest kills the command's whole process group: status 124, ``timed_out`` set,
        and the node stays usable. Raises CommandTimeout only if the guest does not answer
        at all. The script's active polling conditions are checked first."""
        self.run_callbacks()
        return self.run_unchecked(command, timeout)

    def run_unchecked(
        self, command: str, timeout: Duration | None = DEFAULT_TIMEOUT
    ) -> CommandResult:
        """``run`` without checking the script's polling conditions: for the driver's own
        commands (health scans, clock steps), which are no part of the script."""
        timeout = optional_seconds(timeout)
        self.connect()
        with self._lock:
            try:
                result = self._shell.run(command, timeout)
            except TimeoutError:
                raise CommandTimeout(
                    f"{self.name}: no answer to `{command}` within {timeout}s "
                    "(the guest shell did not reply)",
                    node=self.name,
                ) from None
        if result.timed_out:
            self.logger.warning(
                f"`{command}` timed out after {timeout}s; the guest killed its process group "
                "(status 124, as `timeout` gives)",
                node=self.name,
            )
            result = dataclasses.replace(result, status=124)
        if result.stderr:
            for line in result.stderr.rstrip("\n").splitlines():
                self.logger.node_line(self.name, line)
        return result

    def send_qmp_command(self, command: str, /, **arguments: object) -> object:
        """Send a QMP command; returns its ``return`` value (raises on a QMP error)."""
        self._check_alive()
        return self._qmp.command(command, **arguments)

    def _next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        self._check_alive()
        return self._qmp.next_event(wait)
