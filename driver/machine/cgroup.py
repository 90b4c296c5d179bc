"""ContainerGroup: the cgroup that holds every process of one container node (the nspawn
start wrapper, nspawn, the container's own processes, its VLAN plugs), so that pausing the
node freezes them all and killing it leaves nothing, whoever their parent is now. Under
cgroup v1 (this host: hybrid) it is a ``freezer`` cgroup; under the unified hierarchy, a
cgroup with ``cgroup.freeze``. Groups live under ``photon-driver/`` and are named after the
run's socket directory and the node, so ``cluster stop`` finds a cluster's groups by name
and a later run finds those whose nspawn died (``sweep_orphans``)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from driver.errors import InfraError
from driver.wait import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "photon-driver"
# What starts a container, in the host's PID namespace (container.py): while one of them is
# in a group, the group is not an orphan.
STARTERS = ("systemd-nspawn", "unshare", "bash")
# A group with no process yet may be one a driver is about to start: left alone this long.
YOUNG_SECONDS = 60.0


def _hierarchy(root: Path = CGROUP_ROOT) -> Path:
    """Where groups that can be frozen are made: v1's freezer hierarchy, else the unified."""
    if (root / "freezer" / "freezer.state").exists() or (root / "freezer").is_dir():
        return root / "freezer" / PARENT
    if (root / "cgroup.controllers").exists():
        return root / PARENT
    raise InfraError(
        f"{root}: no freezer cgroup (v1) and no unified hierarchy: container nodes need one"
    )


class ContainerGroup:
    """One container node's cgroup."""

    def __init__(self, name: str, root: Path = CGROUP_ROOT) -> None:
        self.path = _hierarchy(root) / name
        self._unified = self.path.parent.parent == root

    def create(self) -> None:
        """Make the group (and its parent); an existing one is kept."""
        self.path.mkdir(parents=True, exist_ok=True)

    def joiner(self) -> Callable[[], None]:
        """A ``preexec_fn`` part: the child moves itself into the group before it execs."""
        procs = str(self.path / "cgroup.procs")

        def join() -> None:
            with open(procs, "w") as handle:
                handle.write(str(os.getpid()))

        return join

    def pids(self) -> list[int]:
        """The processes in the group (empty when it does not exist)."""
        try:
            text = (self.path / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def freeze(self) -> None:
        """Stop every process of the group (they see nothing; the network plugs stop too)."""
        self._set_frozen(True)

    def thaw(self) -> None:
        """Let the group's processes run again."""
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        if self._unified:
            (self.path / "cgroup.freeze").write_text("1" if frozen else "0")
            return
        (self.path / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
        want = "FROZEN" if frozen else "THAWED"
        wait_until(lambda: (self.path / "freezer.state").read_text().strip() == want, 10.0, 0.01)

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL every process of the group (frozen first, so none forks meanwhile), wait
        up to ``timeout`` s until it is empty, and remove it."""
        if not self.path.is_dir():
            return
        with contextlib.suppress(OSError, TimeoutError):
            self.freeze()
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError, TimeoutError):
            self.thaw()
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.02)
        self.remove()

    def remove(self) -> None:
        """Remove the group once it is empty (a group with processes stays)."""
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def has_host_side(self) -> bool:
        """Whether the group still has what started the container, in the host's PID
        namespace: nspawn, or the start script before it becomes nspawn. A group without
        one is an orphan (its nspawn was killed with the driver; the container, the VLAN
        plugs and the forwarder ran on)."""
        mine = os.readlink("/proc/self/ns/pid")
        for pid in self.pids():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/pid") != mine:
                    continue
                if Path(f"/proc/{pid}/comm").read_text().strip() in STARTERS:
                    return True
        return False


def groups_named(prefix: str, root: Path = CGROUP_ROOT) -> list[ContainerGroup]:
    """The container groups whose name starts with ``prefix``."""
    try:
        parent = _hierarchy(root)
    except InfraError:
        return []
    if not parent.is_dir():
        return []
    return [
        ContainerGroup(p.name, root)
        for p in sorted(parent.iterdir())
        if p.is_dir() and p.name.startswith(prefix)
    ]


def sweep_orphans(root: Path = CGROUP_ROOT) -> list[str]:
    """Kill the groups a killed driver left (no nspawn and no start wrapper in them, and not
    just made); returns their names."""
    swept = []
    for group in groups_named("", root):
        try:
            age = time.time() - group.path.stat().st_mtime
        except OSError:
            continue
        if group.has_host_side() or (not group.pids() and age < YOUNG_SECONDS):
            continue
        group.kill()
        swept.append(group.path.name)
    return swept
