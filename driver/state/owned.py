"""The processes a cluster's state directory owns, found from the processes themselves:
a QEMU whose command line names a file under the state directory (a fresh run's, under
``runs/``, excepted) or a process using the directory's socket directory (QEMU's QMP and
shell sockets, the VLAN switches). Whatever crashed and whatever a record says, ``cluster
stop`` finds them here; a command line is an identity, so a reused pid is never taken."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from driver.machine.cgroup import groups_named
from driver.run.driver import socket_prefix

# The programs a cluster runs; nothing else is ever killed here (a container's own
# processes are killed through its cgroup: machine/cgroup.py).
PROGRAMS = ("qemu-system-", "vde_switch", "systemd-nspawn", "vde_plug2tap")
NODE_PROGRAMS = ("qemu-system-", "systemd-nspawn")  # what runs a node


@dataclass(frozen=True)
class OwnedProcess:
    """A running process of the cluster: its pid and program name."""

    pid: int
    program: str

    def __str__(self) -> str:
        return f"{self.program} (pid {self.pid})"


def _argv(entry: Path) -> list[str]:
    try:
        raw = (entry / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _programs(proc: Path) -> Iterator[tuple[int, str, list[str]]]:
    """Every other running QEMU or vde_switch: pid, program name, command line."""
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _argv(entry)
        program = os.path.basename(argv[0]) if argv else ""
        if program.startswith(PROGRAMS):
            yield int(entry.name), program, argv[1:]


def owned_processes(state: Path, proc: Path = Path("/proc")) -> list[OwnedProcess]:
    """The QEMU and vde_switch processes that belong to the cluster in ``state``."""
    inside, fresh_runs = f"{state}/", f"{state}/runs/"
    sockets = socket_prefix(state)
    found = [
        OwnedProcess(pid, program)
        for pid, program, args in _programs(proc)
        if any(sockets in arg or (inside in arg and fresh_runs not in arg) for arg in args)
    ]
    return sorted(found, key=lambda p: p.pid)


def node_qemus(state: Path, node: str, proc: Path = Path("/proc")) -> list[int]:
    """The QEMU (or nspawn) processes of ``node`` in the cluster in ``state``: their command
    line names a file in the node's state directory."""
    inside = f"{state}/{node}/"
    return sorted(
        pid
        for pid, program, args in _programs(proc)
        if program.startswith(NODE_PROGRAMS) and any(inside in arg for arg in args)
    )


def kill_owned(state: Path, timeout: float = 10.0) -> list[OwnedProcess]:
    """SIGKILL every process ``state`` owns and wait (up to ``timeout`` s) until they are
    gone; returns what was killed."""
    for group in groups_named(socket_prefix(state)):
        group.kill(timeout)
    killed = owned_processes(state)
    for process in killed:
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(Path(f"/proc/{p.pid}").exists() for p in killed):
        # A zombie child of ours is gone for this purpose once it is reaped.
        for process in killed:
            try:
                os.waitpid(process.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)
    return killed
