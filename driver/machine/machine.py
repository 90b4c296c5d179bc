"""Machine: one node as test scripts see it (``node01``), built on the node's ``NodePort``
(port.py; the driver's ``Node`` in node.py implements it and creates its Machine). Lifecycle
and ``run`` live here; every other DSL method is in a helper module that uses only ``run``,
the in-guest poll, QMP, the port and the logger.

Method names follow the NixOS test driver where the meaning is the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from driver.duration import Duration, optional_seconds, seconds
from driver.log import Logger
from driver.machine.accel import Accel
from driver.machine.base import BOOT_TIMEOUT, DEFAULT_TIMEOUT
from driver.machine.commands import CommandsMixin
from driver.machine.files import FilesMixin
from driver.machine.lifecycle import NodeState
from driver.machine.monitor import MonitorMixin
from driver.machine.nixos_compat import NixosCompatMixin
from driver.machine.port import NodePort
from driver.machine.shell import CommandResult
from driver.machine.ssh import SshMixin
from driver.machine.systemd import SystemdMixin

__all__ = ["BOOT_TIMEOUT", "Machine"]


class Machine(
    CommandsMixin,
    SystemdMixin,
    FilesMixin,
    SshMixin,  # built on NetworkMixin, which comes with it
    MonitorMixin,
    NixosCompatMixin,
):
    """A test node as a script sees it (``node01``); its ``Node`` creates it over itself."""

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
        self._port.start(allow_reboot, fresh_disks)

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
        self._port.connect(seconds(timeout))

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
                self._port.run_logged("systemctl start --no-block poweroff.target", 30.0)
            else:
                self._port.kill()
            self.wait_for_shutdown(timeout)

    def crash(self, timeout: Duration = 5.0) -> None:
        """Simulate a power loss: QEMU is told to quit at once (QMP ``quit``; no guest
        shutdown, unsynced guest writes are lost). If QEMU is still running after
        ``timeout`` it is killed, with a warning. A node that is not running is left
        alone."""
        self._port.crash(seconds(timeout))

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
        return self._port.run_logged(command, optional_seconds(timeout))
