"""Host tools: locating them (with the Debian package that provides each one) and running
the long ones so that nothing outlives the driver."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from driver.errors import ToolMissing
from driver.wait import wait_until

PR_SET_PDEATHSIG = 1
PACKAGES: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "vde_switch": "vde2",
    "vde_plug2tap": "vde2",
    "systemd-nspawn": "systemd-container",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "dpkg-deb": "dpkg",
    "fakeroot": "fakeroot",
    "tar": "tar",
}


def require(tool: str) -> str:
    """Return the absolute path of ``tool`` or raise ToolMissing naming its package."""
    found = shutil.which(tool)
    if found is None:
        raise ToolMissing(tool, PACKAGES.get(tool, tool))
    return found


def own_group_dying_with_parent(signum: int) -> Callable[[], None]:
    """A ``preexec_fn``: in the child, a process group of its own (so the whole tree can be
    stopped together) and ``signum`` when the driver's forking thread dies (bind it from
    the main thread). QEMU and vde_switch get SIGKILL; build tools SIGTERM, to clean up."""

    def in_child() -> None:
        os.setpgid(0, 0)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return in_child


def _group_gone(proc: subprocess.Popen[str]) -> bool:
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop_group(proc: subprocess.Popen[str], grace: float = 30.0) -> None:
    """SIGTERM ``proc``'s process group (mmdebstrap then removes its chroot and mounts),
    SIGKILL what is left after ``grace`` s; returns when the group is gone. SIGINT and
    SIGTERM to the driver are held meanwhile so that a second Ctrl-C cannot cut it short."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: _group_gone(proc), wait)
                return
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def run_tool(
    argv: list[str],
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    grace: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run a long host tool (mmdebstrap, mkfs, fakeroot...) in its own process group with
    its output captured. If anything interrupts the wait (a signal, ``timeout`` s passing:
    then TimeoutExpired), the tool's whole process tree is stopped before this returns."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=None if env is None else dict(env),
        preexec_fn=own_group_dying_with_parent(signal.SIGTERM),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException:
        stop_group(proc, grace)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def unmount_below(path: Path) -> None:
    """Lazily unmount everything mounted under ``path`` (deepest first): what a killed
    mmdebstrap in root mode leaves (proc, sys, dev/pts...)."""
    prefix = str(path.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4])
            if point.startswith(prefix):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_tree(path: Path) -> None:
    """Remove a build directory, unmounting anything below it first."""
    if path.exists():
        unmount_below(path)
        shutil.rmtree(path, ignore_errors=True)


def host_boot_id() -> str | None:
    """This host boot's id (it changes on reboot), None where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
