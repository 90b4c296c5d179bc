"""Machine: one QEMU node. Lifecycle, the backdoor shell and command helpers.

Method names follow the NixOS test driver where the meaning is the same. Helpers for
systemd, files, networking and the QEMU monitor live in sibling mixin modules.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driver.errors import CommandTimeout, InfraError, MachineDied
from driver.log import Logger
from driver.machine import process
from driver.machine.backdoor import BackdoorClient, CommandResult
from driver.machine.base import DEFAULT_TIMEOUT, STRICT
from driver.machine.console import KERNEL_PROBLEMS, ConsoleLog
from driver.machine.files import FilesMixin
from driver.machine.monitor import MonitorMixin
from driver.machine.network import NetworkMixin
from driver.machine.nixos_compat import NixosCompatMixin
from driver.machine.qemu import Accel, Paths, choose_accel, qemu_argv
from driver.machine.ssh import SshMixin
from driver.machine.systemd import SystemdMixin
from driver.spec import NodeSpec

BOOT_TIMEOUT = 300.0


class Machine(SystemdMixin, FilesMixin, NetworkMixin, MonitorMixin, NixosCompatMixin, SshMixin):
    """A test node. Create through the Driver; use in scripts as ``node01``."""

    def __init__(
        self,
        spec: NodeSpec,
        paths: Paths,
        logger: Logger,
        out_dir: Path,
        vlan_sockets: Mapping[int, Path],
        host_ports: list[int],
        environ: Mapping[str, str],
        initrd: Path | None = None,
        detached: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.paths = paths
        self.logger = logger
        self.out_dir = out_dir
        self.vlan_sockets = dict(vlan_sockets)
        self.host_ports = list(host_ports)
        self.environ = environ
        self.initrd = initrd or Path(spec.initrd)
        self.detached = detached
        self.cache_dir = cache_dir or paths.state
        self.accel: Accel | None = None
        self.console = ConsoleLog(paths.console_log, self.name, logger)
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.exit_status: int | None = None  # of the last QEMU this Machine started
        self.booted = False
        self.boot_seconds: float | None = None
        self.started_wall: float | None = None  # time.time() at QEMU spawn
        self.ready_wall: float | None = None  # time.time() when the backdoor answered
        self._started_at = 0.0
        self._shell = BackdoorClient(str(paths.backdoor), self.alive)
        self._lock = threading.RLock()
        self._qmp: Any = None
        paths.state.mkdir(parents=True, exist_ok=True)
        paths.sockets.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"<Machine {self.name}>"

    # --- lifecycle ---------------------------------------------------------------

    @property
    def overlays(self) -> list[Path]:
        """The files QEMU opens for the spec's disks (qcow2 overlays or the disks)."""
        return [
            self.paths.state / f"disk{i}.qcow2" if d.overlay else Path(d.base)
            for i, d in enumerate(self.spec.disks)
        ]

    def create_overlays(self) -> None:
        """Fresh copy-on-write overlays over the (read-only) base disks."""
        for disk, overlay in zip(self.spec.disks, self.overlays, strict=True):
            if disk.overlay:
                base = Path(disk.base) if disk.base else None
                process.create_overlay(base, overlay, disk.size_mib)

    def argv(self) -> list[str]:
        """The QEMU command line this node starts with."""
        if self.accel is None:
            self.accel = choose_accel(
                self.spec.accel, self.spec.qemu, self.spec.kernel, self.environ, self.cache_dir
            )
        return qemu_argv(
            self.spec, self.accel, self.paths, self.overlays, self.vlan_sockets,
            self.host_ports, self.initrd,
        )  # fmt: skip

    def start(self, fresh_disks: bool = False) -> None:
        """Start QEMU if it is not running; returns at once (commands wait for the boot).

        With ``fresh_disks`` (or when an overlay is missing) the overlays are recreated."""
        with self._lock:
            if self.is_running():
                return
            if fresh_disks or not all(p.exists() for p in self.overlays):
                self.create_overlays()
            argv = self.argv()
            for sock in (self.paths.qmp, self.paths.backdoor, self.paths.serial):
                sock.unlink(missing_ok=True)
            self.console.begin()
            assert self.accel is not None
            self.logger.log(f"{self.name}: starting QEMU ({self.accel.name}: {self.accel.reason})")
            self._started_at = time.monotonic()
            self.started_wall = time.time()
            self.process = process.spawn(argv, self.paths.state / "qemu.log", self.detached)
            self.pid = self.process.pid
            (self.paths.state / "qemu.pid").write_text(f"{self.pid}\n")
            (self.paths.state / "argv").write_text("\0".join(argv))
            self.booted = False
            self._qmp = None
            self._shell.connect(timeout=30.0)
            self.console.start_streaming()

    def attach(self, pid: int, boot_seconds: float | None = None) -> None:
        """Adopt an already running QEMU (a detached cluster node) without restarting it."""
        with self._lock:
            if not process.pid_alive(pid):
                raise MachineDied(f"{self.name}: QEMU (pid {pid}) is not running", node=self.name)
            self.pid = pid
            self.process = None
            self.boot_seconds = boot_seconds
            self.console.begin()
            self._shell.connect(timeout=5.0)
            self.booted = True

    def is_running(self) -> bool:
        """Whether this node's QEMU process exists."""
        if self.process is not None:
            return self.process.poll() is None
        return self.pid is not None and process.pid_alive(self.pid)

    def alive(self) -> None:
        """Raise MachineDied, quoting the console, if QEMU has exited."""
        if self.is_running():
            return
        status = self.process.poll() if self.process is not None else None
        self.booted = False
        panic = [
            line.strip()
            for line in self.console.read().splitlines()
            if KERNEL_PROBLEMS.search(line)
        ][:1]
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
        return self.booted and self.is_running()

    def connect(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Start the node if needed and wait until its backdoor shell is ready."""
        with self._lock:
            if self.booted:
                return
            if not self.is_running():
                self.start()
            with self.logger.nested(f"{self.name}: waiting for the backdoor shell"):
                try:
                    self._shell.wait_ready(timeout)
                except TimeoutError:
                    raise InfraError(
                        f"{self.name}: no backdoor shell within {timeout}s — console:\n"
                        + self.console_tail()
                    ) from None
                self.boot_seconds = time.monotonic() - self._started_at
                self.ready_wall = time.time()
                self.booted = True
                self.logger.log(f"{self.name}: ready after {self.boot_seconds:.1f}s")
                if self.spec.meta.get("provision_ssh_key"):
                    self._install_ssh_key()

    wait_for_boot = connect

    def wait_for_shutdown(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until QEMU has exited (guest powered off or crashed)."""
        deadline = time.monotonic() + timeout
        while self.is_running():
            if time.monotonic() > deadline:
                raise self.failure(f"did not shut down within {timeout}s")
            time.sleep(0.05)
        self._after_exit()

    def _after_exit(self) -> None:
        self.booted = False
        self._shell.close()
        self._close_qmp()
        if self.process is not None:
            self.exit_status = self.process.wait()

    def shutdown(self, timeout: float = 60.0) -> None:
        """Power the guest off cleanly (``poweroff``) and wait for QEMU to exit."""
        if not self.is_running():
            return
        with self.logger.nested(f"{self.name}: shutting down"):
            if self.booted:
                self.run("systemctl poweroff --no-block", timeout=30.0)
            else:
                process.kill_pid(self.pid or 0)
            self.wait_for_shutdown(timeout)

    def crash(self, timeout: float = 5.0) -> None:
        """Simulate a power loss: QEMU is told to quit at once (QMP ``quit``; no guest
        shutdown, unsynced guest writes are lost). If QEMU is still running after
        ``timeout`` s it is killed, with a warning."""
        if not self.is_running():
            return
        self.logger.log(f"{self.name}: crashing")
        with contextlib.suppress(Exception):
            self.send_qmp_command("quit")
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.is_running():
            self.logger.warning(f"{self.name}: QMP quit did not stop QEMU; killing it")
        self.kill()

    def reboot(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Reboot the guest (QEMU runs with -no-reboot, so it restarts QEMU on the same disks)."""
        with self.logger.nested(f"{self.name}: rebooting"):
            self.shutdown()
            self.start()
            self.connect(timeout)

    def kill(self) -> None:
        """Terminate QEMU at once (cleanup path; no guest shutdown)."""
        self.console.stop_streaming()
        if self.pid is not None:
            process.kill_pid(self.pid)
        self._after_exit()

    def release(self) -> None:
        """Kill the machine's QEMU at once (the NixOS driver's ``release``); no guest
        shutdown."""
        self.logger.log(f"{self.name}: release (kill QEMU)")
        self.kill()

    def detach(self) -> None:
        """Disconnect from a detached node, leaving it running."""
        self.console.stop_streaming()
        self._shell.close()
        self._close_qmp()

    # --- commands ------------------------------------------------------------------

    def run(self, command: str, timeout: float | None = DEFAULT_TIMEOUT) -> CommandResult:
        """Run ``command`` with bash as root in the guest, as it is (no shell options added);
        returns status, byte-exact stdout and stderr (``stdout_bytes``; ``stdout`` as text),
        duration and ``timed_out``. Waits for the boot first. The reply comes when the
        command's shell exits, even if background children keep running. After ``timeout``
        s the guest kills the command's whole process group: status 124, ``timed_out`` set,
        and the node stays usable. Raises CommandTimeout only if the guest does not answer
        at all."""
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
                f"{self.name}: `{command}` timed out after {timeout}s; the guest killed its "
                "process group (status 124, as `timeout` gives)"
            )
            result = dataclasses.replace(result, status=124)
        if result.stderr:
            for line in result.stderr.rstrip("\n").splitlines():
                self.logger.node_line(self.name, line)
        return result

    def execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> tuple[int, str]:
        """Run ``command`` under ``set -euo pipefail``; returns ``(status, stdout)``, as the
        NixOS driver does. A command still running after ``timeout`` s is killed with its
        whole process group: status 124.

        ``check_return=False`` returns ``(-1, stdout)``. ``check_output=False`` starts the
        command in the background with its output discarded and returns ``(-2, "")`` at
        once."""
        if not check_output:
            self.run(f"( {STRICT}{command} ) >/dev/null 2>&1 &", timeout)
            return -2, ""
        result = self.run(STRICT + command, timeout)
        return (result.status if check_return else -1), result.stdout

    def execute_bytes(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, bytes]:
        """Like ``execute``, with stdout as exact bytes (binary output: NUL bytes and
        non-UTF-8 data intact)."""
        result = self.run(STRICT + command, timeout)
        return result.status, result.stdout_bytes

    def succeed(self, *commands: str, timeout: float | None = None) -> str:
        """Run each command under ``set -euo pipefail``; returns all stdout. Fails the test
        (TestFailure naming the node, command and status) if one exits non-zero, and with
        CommandTimeout if one runs longer than ``timeout`` s (its process group is
        killed). As in the NixOS driver, no timeout by default (``None``)."""
        output = ""
        for command in commands:
            with self.logger.nested(f"{self.name}: must succeed: {command}"):
                result = self.run(STRICT + command, timeout)
                if result.timed_out:
                    raise CommandTimeout(
                        f"{self.name}: `{command}` timed out after {timeout}s; the guest "
                        "killed its process group",
                        node=self.name,
                    )
                if result.status != 0:
                    raise self.failure(
                        f"command `{command}` failed (exit {result.status})"
                        + (f"\nstderr: {result.stderr.strip()}" if result.stderr.strip() else "")
                    )
                output += result.stdout
        return output

    def fail(self, *commands: str, timeout: float | None = None) -> str:
        """Run each command under ``set -euo pipefail``; fails the test if one exits 0.
        Returns all stdout. As in the NixOS driver, no timeout by default, and a command
        killed at ``timeout`` s (status 124) counts as failed."""
        output = ""
        for command in commands:
            with self.logger.nested(f"{self.name}: must fail: {command}"):
                result = self.run(STRICT + command, timeout)
                if result.status == 0:
                    raise self.failure(f"command `{command}` unexpectedly succeeded")
                output += result.stdout
        return output

    def wait_until_succeeds(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, attempt_timeout: float | None = None
    ) -> str:
        """Repeat ``command`` (under ``set -euo pipefail``) inside the guest until it exits
        0; returns its stdout. Fails after ``timeout`` s; ``attempt_timeout`` bounds each
        attempt (default: ``timeout``, as in the NixOS driver)."""
        with self.logger.nested(f"{self.name}: waiting for success: {command}"):
            ok, output = self.guest_loop(
                command, timeout, True, attempt_timeout or timeout, strict=True
            )
            if not ok:
                raise self.failure(
                    f"`{command}` did not succeed within {timeout}s; last output:\n{output}"
                )
            return output

    def wait_until_fails(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, attempt_timeout: float | None = None
    ) -> str:
        """Repeat ``command`` (under ``set -euo pipefail``) inside the guest until it exits
        non-zero; returns its stdout. Fails after ``timeout`` s; ``attempt_timeout`` bounds
        each attempt (default: ``timeout``)."""
        with self.logger.nested(f"{self.name}: waiting for failure: {command}"):
            ok, output = self.guest_loop(
                command, timeout, False, attempt_timeout or timeout, strict=True
            )
            if not ok:
                raise self.failure(f"`{command}` did not fail within {timeout}s")
            return output

    def sleep(self, secs: float) -> None:
        """Sleep ``secs`` seconds of guest time (as the NixOS driver does), without
        spawning a process in the guest."""
        self.run(f"photon_sleep {float(secs):g}", timeout=secs + 30.0)

    def wait_for_console_text(self, regex: str, timeout: float | None = None) -> str:
        """Wait until the serial console shows text matching ``regex`` (not yet consumed
        by an earlier wait); returns the matched text. Fails after ``timeout`` s (default
        ``None``: no limit, as in the NixOS driver)."""
        with self.logger.nested(f"{self.name}: waiting for console text {regex!r}"):
            try:
                return self.console.wait_for_text(regex, timeout, self.alive)
            except TimeoutError as exc:
                raise self.failure(str(exc)) from None

    def get_console_log(self) -> str:
        """The serial console text of the current boot."""
        return self.console.read()

    def log(self, message: str) -> None:
        """Write a line to the run log, prefixed with this node's name."""
        self.logger.log(f"{self.name}: {message}")

    def shell_interact(self, read_line: Callable[[str], str] = input) -> None:
        """A line-by-line root shell on the guest for debugging; end with EOF or ``exit``."""
        while True:
            try:
                line = read_line(f"{self.name}# ")
            except EOFError:
                return
            if line.strip() in ("exit", "logout"):
                return
            result = self.run(line)
            print(result.stdout + result.stderr, end="")
