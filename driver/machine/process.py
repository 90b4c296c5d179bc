"""Starting and stopping one QEMU process, with a parent-death signal for fresh runs."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

from driver.errors import InfraError
from driver.hosttools import require

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: SIGKILL when the forking thread (the driver's main thread) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgid(0, 0)


def spawn(argv: list[str], log: Path, detached: bool) -> subprocess.Popen[bytes]:
    """Start ``argv``; QEMU's own stderr goes to ``log``.

    Fresh runs tie the child's life to the driver (PR_SET_PDEATHSIG); detached clusters
    start a new session so they outlive the command that started them. Call from the
    main thread: the death signal binds to the thread that forks.
    """
    with log.open("ab") as stderr:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=None if detached else _die_with_parent,
                start_new_session=detached,
                close_fds=True,
            )
        except FileNotFoundError:
            raise InfraError(f"{argv[0]} not found: install the Debian package "
                             "'qemu-system-x86'") from None  # fmt: skip


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def kill_pid(pid: int, grace: float = 0.0) -> None:
    """SIGTERM (after ``grace`` seconds of waiting) then SIGKILL."""
    deadline = time.monotonic() + grace
    while grace and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not pid_alive(pid):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        end = time.monotonic() + 2.0
        while pid_alive(pid) and time.monotonic() < end:
            time.sleep(0.02)


def create_overlay(base: Path | None, overlay: Path, size_mib: int = 0) -> None:
    """A qcow2 overlay over the raw ``base`` (absolute backing path), or without a base a
    blank qcow2 of ``size_mib``."""
    qemu_img = require("qemu-img")
    overlay.unlink(missing_ok=True)
    if base is None:
        argv = [qemu_img, "create", "-q", "-f", "qcow2", str(overlay), f"{size_mib}M"]
    else:
        argv = [qemu_img, "create", "-q", "-f", "qcow2", "-b", str(base.resolve()), "-F", "raw",
                str(overlay)]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InfraError(f"{overlay}: qemu-img create failed: {proc.stderr.strip()}")
