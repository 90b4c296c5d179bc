"""One node's QEMU process: disks, command line, spawn with a parent-death signal for fresh
runs, adopt, kill."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from driver.atomic import write_atomic
from driver.config.spec import NodeSpec
from driver.errors import InfraError
from driver.hosttools import own_group_dying_with_parent, require
from driver.machine.accel import Accel, choose_accel
from driver.machine.argv import Paths, qemu_argv
from driver.machine.backend import NodeControl, VmControl
from driver.machine.qmp import QmpClient
from driver.safe_files import open_binary_for_writing, private_dir
from driver.wait import wait_until


def spawn(argv: list[str], log: Path, detached: bool) -> subprocess.Popen[bytes]:
    """Start ``argv``; QEMU's own stderr goes to ``log``.

    Fresh runs tie the child's life to the driver (PR_SET_PDEATHSIG); detached clusters
    start a new session so they outlive the command that started them. Call from the
    main thread: the death signal binds to the thread that forks.
    """
    with open_binary_for_writing(log, truncate=False) as stderr:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=None if detached else own_group_dying_with_parent(signal.SIGKILL),
                start_new_session=detached,
                close_fds=True,
            )
        except FileNotFoundError:
            raise InfraError(
                f"{argv[0]} not found: install the Debian package 'qemu-system-x86'"
            ) from None


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system, all threads) process ``pid`` has used, or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_pid(pid: int, grace: float = 0.0) -> None:
    """SIGTERM (after ``grace`` seconds of waiting) then SIGKILL."""
    with contextlib.suppress(TimeoutError):
        if grace:
            wait_until(lambda: not pid_alive(pid), grace)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not pid_alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not pid_alive(pid), 2.0, 0.02)


def create_overlay(
    base: Path | None, overlay: Path, size_mib: int = 0, base_format: str = "raw"
) -> None:
    """A qcow2 overlay over ``base`` (absolute backing path, in ``base_format``), or without
    a base a blank qcow2 of ``size_mib``."""
    qemu_img = require("qemu-img")
    overlay.unlink(missing_ok=True)
    if base is None:
        argv = [qemu_img, "create", "-q", "-f", "qcow2", str(overlay), f"{size_mib}M"]
    else:
        argv = [
            qemu_img,
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            str(base.resolve()),
            "-F",
            base_format,
            str(overlay),
        ]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InfraError(f"{overlay}: qemu-img create failed: {proc.stderr.strip()}")


def last_line(log: Path, limit: int = 400) -> str:
    """The last non-blank line of ``log``, at most ``limit`` characters ("" if none)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else ""


class QemuProcess:
    """One node's QEMU: its disks (overlays), accelerator, command line and process. Starts
    it, adopts a running one (a detached cluster node), reports whether it runs, kills it."""

    def __init__(
        self,
        spec: NodeSpec,
        paths: Paths,
        vlan_sockets: Mapping[int, Path],
        host_ports: list[int],
        environ: Mapping[str, str],
        cache_dir: Path,
        detached: bool = False,
    ) -> None:
        self.program = "QEMU"  # named in messages
        self.spec = spec
        self.paths = paths
        self.vlan_sockets = dict(vlan_sockets)
        self.host_ports = list(host_ports)
        self.environ = environ
        self.cache_dir = cache_dir
        self.detached = detached
        self.accel: Accel | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.exit_status: int | None = None  # of the last QEMU started here
        self.started_wall: float | None = None  # time.time() at spawn
        self.started_monotonic = 0.0
        self.serial_socket: Path | None = self.paths.serial
        self.allow_reboot = False  # as the last QEMU started here was
        private_dir(paths.state)
        paths.sockets.mkdir(parents=True, exist_ok=True)

    @property
    def overlays(self) -> list[Path]:
        """The files QEMU opens for the spec's disks (qcow2 overlays or the disks)."""
        return [
            self.paths.state / f"disk{i}.qcow2" if d.overlay else Path(d.base)
            for i, d in enumerate(self.spec.disks)
        ]

    def create_overlays(self) -> None:
        """Fresh copy-on-write overlays over the (read-only) base disks, or blank disks."""
        for disk, overlay in zip(self.spec.disks, self.overlays, strict=True):
            if disk.overlay:
                base = Path(disk.base) if disk.base else None
                create_overlay(base, overlay, disk.size_mib)

    def overlays_over(self, saved: list[Path | None]) -> None:
        """Fresh overlays over saved disk images (qcow2; None: the spec's own disk, e.g. one
        QEMU opens directly)."""
        for disk, overlay, base in zip(self.spec.disks, self.overlays, saved, strict=True):
            if disk.overlay and base is not None:
                create_overlay(base, overlay, base_format="qcow2")

    def choose_accel(self) -> Accel:
        """The accelerator (probing KVM once per host boot, see accel.py)."""
        if self.accel is None:
            self.accel = choose_accel(
                self.spec.accel, self.spec.qemu, self.spec.kernel, self.environ, self.cache_dir
            )
        return self.accel

    def argv(self, accel: Accel, allow_reboot: bool = False) -> list[str]:
        """The QEMU command line for ``accel``."""
        argv = qemu_argv(
            self.spec,
            accel,
            self.paths,
            self.overlays,
            self.vlan_sockets,
            self.host_ports,
            Path(self.spec.initrd),
        )
        return [a for a in argv if a != "-no-reboot"] if allow_reboot else argv

    def start(
        self,
        fresh_disks: bool = False,
        allow_reboot: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        """Spawn QEMU (overlays recreated with ``fresh_disks`` or when missing), with
        ``extra_args`` appended (e.g. ``-S -incoming URI`` to load a saved state)."""
        if fresh_disks or not all(p.exists() for p in self.overlays):
            self.create_overlays()
        self.allow_reboot = allow_reboot
        argv = self.argv(self.choose_accel(), allow_reboot) + list(extra_args)
        for sock in (self.paths.qmp, self.paths.backdoor, self.paths.serial):
            sock.unlink(missing_ok=True)
        self.started_monotonic = time.monotonic()
        self.started_wall = time.time()
        self.popen = spawn(argv, self.paths.state / "qemu.log", self.detached)
        self.pid = self.popen.pid
        self.exit_status = None
        write_atomic(self.paths.state / "argv", "\0".join(argv))

    def last_words(self, limit: int = 400) -> str:
        """The last line QEMU wrote to its log (stderr), at most ``limit`` characters:
        why it refused to start or exited; empty when it wrote nothing."""
        return last_line(self.paths.state / "qemu.log", limit)

    def adopt(self, pid: int) -> bool:
        """Take over an already running QEMU; False when ``pid`` is not running."""
        if not pid_alive(pid):
            return False
        self.pid, self.popen = pid, None
        return True

    def is_running(self) -> bool:
        """Whether the QEMU process exists."""
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def reap(self) -> int | None:
        """Collect the exit status of a QEMU this object started (None for adopted ones)."""
        if self.popen is not None:
            self.exit_status = self.popen.wait()
        return self.exit_status

    def kill(self) -> None:
        """SIGTERM then SIGKILL; returns when QEMU is gone."""
        if self.pid is not None:
            kill_pid(self.pid)
        self.reap()

    def control(self, alive: Callable[[], None]) -> NodeControl:
        """QMP on QEMU's monitor socket."""
        return VmControl(QmpClient(self.paths.qmp, alive))
