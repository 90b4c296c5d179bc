"""Machine: one node as test scripts see it (``node01``), built on the node's ``NodePort``
(port.py; ``NodeControl`` in control.py implements it for a QEMU node). Lifecycle and
``run`` live here; every other DSL method is in a helper module that uses only ``run``,
the in-guest poll, QMP, the port and the logger.

Method names follow the NixOS test driver where the meaning is the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path

from driver.duration import Duration, optional_seconds, seconds
from driver.errors import CommandTimeout
from driver.log import Logger
from driver.machine.accel import Accel
from driver.machine.base import DEFAULT_TIMEOUT, STRICT
from driver.machine.commands import CommandsMixin
from driver.machine.files import FilesMixin
from driver.machine.lifecycle import NodeState
from driver.machine.monitor import MonitorMixin
from driver.machine.network import NetworkMixin
from driver.machine.nixos_compat import NixosCompatMixin
from driver.machine.port import NodePort
from driver.machine.shell import CommandResult
from driver.machine.ssh import SshMixin
from driver.machine.systemd import SystemdMixin
from driver.safe_files import create_new, output_dir

BOOT_TIMEOUT = 300.0
# The end of a command's stdout in its event; the end of its stderr in the log (the rest is
# written to a file under the output directory).
EVENT_STDOUT_BYTES = 2000
LOGGED_STDERR_BYTES = 64 * 1024


class Machine(
    CommandsMixin,
    SystemdMixin,
    FilesMixin,
    NetworkMixin,
    MonitorMixin,
    NixosCompatMixin,
    SshMixin,
):
    """A test node. The Driver creates it over the node's port; scripts use it as
    ``node01``."""

    name: str
    out_dir: Path

    def __init__(self, port: NodePort, logger: Logger, out_dir: Path) -> None:
        self._port = port
        self.spec = port.spec
        self.name = port.name
        self.logger = logger
        self.out_dir = out_dir
        # Called before each command a script sends (the Driver checks the script's
        # polling conditions here, as the NixOS driver's machine callbacks do).
        self.callbacks: list[Callable[[], None]] = []
        # Called before a simulated power loss (``crash``): the Driver keeps the node's
        # journal, which dies with it.
        self.before_power_loss: list[Callable[[], object]] = []
        # Units the script waited to see failed: the health gate does not report them.
        self.expected_failed_units: set[str] = set()

    def __repr__(self) -> str:
        return f"<Machine {self.name}>"

    @property
    def booted(self) -> bool:
        """Whether the backdoor shell answered in this boot (NixOS's ``booted``)."""
        return self._port.state is NodeState.UP

    @property
    def boot_seconds(self) -> float | None:
        """Seconds from QEMU's start to the shell's answer in this boot (None before)."""
        return self._port.boot_seconds

    @property
    def pid(self) -> int | None:
        """The QEMU process id (None before the first start)."""
        return self._port.pid

    @property
    def accel(self) -> Accel | None:
        """The accelerator QEMU runs with (KVM or TCG, and why)."""
        return self._port.accel

    @property
    def exit_status(self) -> int | None:
        """Exit status of the last QEMU this Machine started, once it has exited."""
        return self._port.exit_status

    # --- lifecycle ---------------------------------------------------------------

    def start(self, allow_reboot: bool = False, fresh_disks: bool = False) -> None:
        """Start QEMU if it is not running; returns at once (commands wait for the boot).
        ``allow_reboot`` lets a guest reboot inside QEMU (default: a reboot stops QEMU);
        ``fresh_disks`` recreates the disk overlays."""
        if not self._port.is_running():
            self._port.spawn(fresh_disks, allow_reboot)

    def is_running(self) -> bool:
        """Whether this node's QEMU process exists."""
        return self._port.is_running()

    def console_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of this node's console (this boot)."""
        return self._port.console_tail(lines)

    def is_up(self) -> bool:
        """True when QEMU runs and the backdoor shell has answered."""
        return self.booted and self._port.is_running()

    @property
    def connected(self) -> bool:
        """Whether the driver is connected to the node's backdoor shell (NixOS's
        ``connected``): the node booted and its QEMU runs."""
        return self.is_up()

    def connect(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Start the node if needed and wait until its backdoor shell is ready (the boot
        reached the backdoor unit); fails with the console's last lines after
        ``timeout``."""
        limit = seconds(timeout)
        if self.booted:
            return
        if not self._port.is_running():
            self.start()
        with self.nested("waiting for the backdoor shell"):
            if not self._port.wait_ready(limit):
                return
            self.log(f"ready after {self.boot_seconds or 0.0:.1f}s")
        if self.spec.meta.get("provision_ssh_key"):
            self._install_ssh_key()

    def wait_for_shutdown(self, timeout: Duration = DEFAULT_TIMEOUT) -> None:
        """Wait until QEMU has exited (the guest powered off or crashed); does not start a
        shutdown. Fails ("action timed out") after ``timeout``."""
        limit = seconds(timeout)
        try:
            self._port.wait_exit(limit)
        except TimeoutError:
            raise self._timed_out(limit, "the node did not shut down") from None

    def shutdown(self, timeout: Duration = 60.0) -> None:
        """Power the guest off cleanly (``poweroff``) and wait for QEMU to exit; fails
        after ``timeout``. A node that is not running is left alone (no error)."""
        if not self._port.is_running():
            return
        with self.nested("shutting down"):
            if self.booted:
                self.run_unchecked("systemctl start --no-block poweroff.target", timeout=30.0)
            else:
                self._port.kill()
            self.wait_for_shutdown(timeout)

    def crash(self, timeout: Duration = 5.0) -> None:
        """Simulate a power loss: QEMU is told to quit at once (QMP ``quit``; no guest
        shutdown, unsynced guest writes are lost). If QEMU is still running after
        ``timeout`` it is killed, with a warning. A node that is not running is left
        alone."""
        if not self._port.is_running():
            return
        limit = seconds(timeout)
        for hook in self.before_power_loss:
            hook()
        self.log("crashing")
        with contextlib.suppress(Exception):
            self.send_qmp_command("quit")
        try:
            self._port.wait_exit(limit)
        except TimeoutError:
            self.logger.warning("QMP quit did not stop QEMU; killing it", node=self.name)
        self._port.kill()

    def reboot(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Reboot: a clean shutdown, then QEMU starts again on the same disks; waits up to
        ``timeout`` s for the backdoor."""
        with self.nested("rebooting"):
            self.shutdown()
            self.start()
            self.connect(timeout)

    def release(self) -> None:
        """Kill the machine's QEMU at once (the NixOS driver's ``release``); no guest
        shutdown."""
        self.log("release (kill QEMU)")
        self._port.kill()

    # --- the shell primitive -------------------------------------------------------

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
        limit = optional_seconds(timeout)
        self.connect()
        started = time.time()
        try:
            result = self._port.run(command, limit)
        except TimeoutError:
            raise CommandTimeout(
                f"{self.name}: no answer to `{command}` within {limit}s "
                "(the guest shell did not reply)",
                node=self.name,
            ) from None
        if result.timed_out:
            self.logger.warning(
                f"`{command}` timed out after {limit}s; the guest killed its process group "
                "(status 124, as `timeout` gives)",
                node=self.name,
            )
            result = dataclasses.replace(result, status=124)
        self.logger.event(
            "command",
            t=started,
            node=self.name,
            command=command.removeprefix(STRICT)[:500],
            status=result.status,
            duration=round(result.duration, 4),
            stdout=self._stdout_excerpt(result),
        )
        # The guest echoes a command's stderr to its console (as NixOS's backdoor does), which
        # the run log shows when consoles are streamed: here it goes to the event log only,
        # its end when it is long (the whole of it in a file named there).
        stderr = result.stderr_bytes
        if len(stderr) > LOGGED_STDERR_BYTES:
            kept = self._keep_output(stderr, "stderr")
            self.logger.node_line(
                self.name,
                f"[{len(stderr) - LOGGED_STDERR_BYTES} bytes of stderr before; all of it in "
                f"{kept}]",
                source="stderr",
                shown=False,
            )
            stderr = stderr[-LOGGED_STDERR_BYTES:]
        for line in stderr.decode(errors="replace").rstrip("\n").splitlines():
            self.logger.node_line(self.name, line, source="stderr", shown=False)
        return result

    def _stdout_excerpt(self, result: CommandResult) -> str:
        """The end of a command's stdout for its event; a failed command's longer stdout is
        written whole into the output directory, named in the excerpt."""
        stdout = result.stdout_bytes
        tail = stdout[-EVENT_STDOUT_BYTES:].decode(errors="replace")
        if result.status == 0 or len(stdout) <= EVENT_STDOUT_BYTES:
            return tail
        kept = self._keep_output(stdout, "stdout")
        return f"[{len(stdout) - EVENT_STDOUT_BYTES} bytes before; all of it in {kept}]\n{tail}"

    def _keep_output(self, data: bytes, stream: str) -> str:
        """Write a command's whole ``stream`` into the output directory
        (``outputs/<node>-<n>.<stream>``); its path there."""
        folder = output_dir(output_dir(self.out_dir) / "outputs")
        for number in itertools.count(1):
            path = folder / f"{self.name}-{number}.{stream}"
            try:
                with create_new(path) as out:
                    out.write(data)
                return str(path.relative_to(self.out_dir))
            except FileExistsError:
                continue
        raise AssertionError("unreachable")
