"""A persistent cluster: started detached, attached by later runs (``--reuse``), stopped.

State lives in ``${PHOTON_VM_DIR:-~/.photoncloud-test-cluster}`` (``-<profile>`` suffixed for
profiles other than photoncloud): ``cluster.json`` records QEMU and switch PIDs, forwarded
ports and the host boot id, so a state dir left from before a host reboot is detected.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from driver.config.spec import load_spec
from driver.errors import EXIT_INFRA, DriverError, InfraError, TestScriptError, UsageError
from driver.hosttools import host_boot_id
from driver.log import Logger
from driver.machine import process
from driver.machine.node import Node
from driver.parallel import on_each
from driver.run.driver import Driver, RunContext, socket_parent, socket_prefix
from driver.safe_files import open_for_writing, private_dir
from driver.state import owned
from driver.state.record import (
    RECORD,
    ClusterRecord,
    ForwardRecord,
    NodeRecord,
    UnreadableRecord,
)
from driver.wait import wait_until

LOCK = "cluster.lock"  # held by whoever starts, uses or stops the cluster


def state_dir(environ: Mapping[str, str], profile: str, default_profile: str = "reference") -> Path:
    """The profile's state directory: ``$PHOTON_VM_DIR`` (default
    ``~/.photoncloud-test-cluster``) itself for the default profile (the one a command uses
    when none is named), ``$PHOTON_VM_DIR-PROFILE`` for any other."""
    base = Path(environ.get("PHOTON_VM_DIR") or Path.home() / ".photoncloud-test-cluster")
    return base if profile == default_profile else base.with_name(f"{base.name}-{profile}")


def boot_id() -> str:
    """This host boot's id as the cluster record keeps it (changes on reboot)."""
    return host_boot_id() or "unknown"


def read_record(state: Path) -> ClusterRecord | None:
    """The cluster record, or None when no cluster was started here (record.py)."""
    return ClusterRecord.load(state)


def write_record(driver: Driver, profile: str) -> None:
    """Record a freshly started detached cluster."""
    ClusterRecord(
        profile=profile,
        boot_id=boot_id(),
        started_at=time.time(),
        socket_dir=driver.socket_dir,
        boot_groups=driver.boot_groups,
        vlans={v.number: v.pid for v in driver.vlans if v.pid is not None},
        nodes={
            c.name: NodeRecord(
                pid=c.pid or 0,
                forwards=[
                    ForwardRecord(f.name, f.guest_port, f.protocol, port)
                    for f, port in c.forwards()
                ],
                boot_seconds=c.boot_seconds,
                started_wall=c.started_wall,
                ready_wall=c.ready_wall,
                accel=c.accel.name if c.accel else "",
                addresses=[n.address for n in c.spec.nics],
            )
            for c in driver.nodes.values()
        },
    ).save(driver.state)


def check_record(state: Path, record: ClusterRecord) -> list[str]:
    """Problems that make the recorded cluster unusable (empty when it is healthy)."""
    if record.boot_id != boot_id():
        return [f"{state} is stale: it was started before this host last booted"]
    problems = [
        f"{name}: QEMU (pid {node.pid}) is not running"
        for name, node in record.nodes.items()
        if not process.pid_alive(node.pid)
    ]
    problems += [
        f"VLAN {number}: vde_switch (pid {pid}) is not running"
        for number, pid in record.vlans.items()
        if not process.pid_alive(pid)
    ]
    return problems


def adopt_restarted(state: Path, record: ClusterRecord) -> list[str]:
    """Record the QEMU a node runs where the recorded one is gone but the node's state
    directory has exactly one running (a run that restarted the node, as a restore does,
    was killed before it recorded the new pid); what was adopted, as lines to log."""
    adopted = []
    for name, node in record.nodes.items():
        if process.pid_alive(node.pid):
            continue
        found = owned.node_qemus(state, name)
        if len(found) == 1:
            adopted.append(
                f"{name}: its recorded QEMU (pid {node.pid}) is gone; pid {found[0]}, which "
                "runs on its disks (restarted by a run that was killed before recording it), "
                "is recorded instead"
            )
            node.pid, node.started_wall = found[0], None
    if adopted:
        record.save(state)
    return adopted


def _record_restarts(state: Path, driver: Driver) -> None:
    """After an attached run that restarted nodes (crash + start), record their new QEMU
    pids so that the next run attaches to them."""
    record = read_record(state)
    if record is None:
        return
    changed = False
    for control in driver.nodes.values():
        node = record.nodes.get(control.name)
        if node is not None and control.pid is not None and node.pid != control.pid:
            node.pid, node.started_wall = control.pid, control.started_wall
            changed = True
    if changed:
        record.save(state)


def lock_cluster(state: Path) -> IO[str]:
    """Take the cluster's one lock (``cluster.lock``, held by whoever starts, uses or stops
    the cluster in ``state``) at once, or InfraError naming the holder. The lock is the
    open file: close it to release (the kernel releases it when its holder dies)."""
    private_dir(state)
    lock = open_for_writing(state / LOCK, truncate=False)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        holder = (state / LOCK).read_text(errors="replace").strip() or "?"
        raise InfraError(
            f"the cluster in {state} is in use by another process (pid {holder}); "
            "wait for it, or stop it first"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


@contextlib.contextmanager
def locked(state: Path) -> Iterator[IO[str]]:
    """The cluster's lock for the ``with`` block (see lock_cluster)."""
    lock = lock_cluster(state)
    try:
        yield lock
    finally:
        lock.close()


def recovery_hint(state: Path) -> str:
    """What to do with a cluster whose record and processes disagree."""
    stray = owned.owned_processes(state)
    running = f" ({len(stray)} of its processes still run)" if stray else ""
    return f"a run was killed mid-way{running}: `cluster stop`, then `cluster start`"


def attach(state: Path, context: RunContext, lock: IO[str] | None = None) -> Driver:
    """A Driver bound to the running cluster recorded in ``state``, held exclusively (the
    cluster's lock, taken here unless the caller holds it as ``lock``) until the Driver's
    ``with`` block ends; leaving the block only disconnects. A node a killed run left
    paused is resumed, and one it restarted without recording is adopted
    (``adopt_restarted``)."""
    if read_record(state) is None:
        raise UsageError(no_cluster(state))
    own_lock = lock is None
    held = lock_cluster(state) if lock is None else lock
    try:
        record = read_record(state)
        if record is None:  # stopped meanwhile
            raise UsageError(no_cluster(state))
        for line in adopt_restarted(state, record):
            context.logger.warning(line)
        problems = check_record(state, record)
        if problems:
            raise InfraError(
                f"cannot attach to {state}: " + "; ".join(problems) + f"; {recovery_hint(state)}"
            )
        specs = {name: load_spec(state / name / "spec.json") for name in record.nodes}
        driver = Driver(
            specs,
            context,
            boot_groups=record.boot_groups,
            detached=True,
            socket_dir=record.socket_dir,
            host_ports={n: node.host_ports for n, node in record.nodes.items()},
        )
        driver.owns_processes = False
        driver.since(time.time())  # this run's core dumps and journal lines only
        driver.exit_hooks.append(lambda: _record_restarts(state, driver))
        if own_lock:
            driver.exit_hooks.append(held.close)
        driver.adopt_vlans(record.vlans)
        for control in driver.nodes.values():
            node = record.nodes[control.name]
            control.attach(node.pid, node.boot_seconds, node.accel)
    except BaseException:
        if own_lock:
            held.close()
        raise
    return driver


def _power_off(node: Node) -> None:
    # A node that does not answer is killed below: its shell's failure is not an error.
    with contextlib.suppress(TestScriptError, DriverError, OSError):
        node.run_logged("systemctl start --no-block poweroff.target", timeout=10.0)


@dataclass(frozen=True)
class Stopped:
    """What ``stop`` did: the recorded nodes it stopped, and the processes of the state
    directory it had to kill (no record named them, or they did not power off)."""

    nodes: int
    killed: tuple[owned.OwnedProcess, ...]

    def describe(self) -> str:
        """One line for the user."""
        text = f"stopped {self.nodes} nodes"
        if self.killed:
            text += f"; killed {', '.join(str(p) for p in self.killed)}"
        return text


def stop(
    state: Path,
    logger: Logger,
    environ: Mapping[str, str],
    timeout: float = 60.0,
    lock: IO[str] | None = None,
) -> Stopped:
    """Shut every recorded node down cleanly, then kill every process the state directory
    owns (recorded or not: a killed start or restore leaves such), remove the sockets and
    the record. InfraError, touching nothing, when another process holds the cluster."""
    if not state.is_dir():
        return Stopped(0, tuple(owned.kill_owned(state)))
    with contextlib.ExitStack() as stack:
        held = lock if lock is not None else stack.enter_context(locked(state))
        try:
            record = read_record(state)
        except UnreadableRecord as exc:  # stop what the state directory owns all the same
            logger.warning(f"{exc}: killing the processes of {state} instead")
            record = None
        if record is not None and not check_record(state, record):
            context = RunContext(state, logger, environ, state / "out", state)
            with attach(state, context, lock=held) as driver:
                nodes = list(driver.nodes.values())
                on_each(nodes, _power_off, "machines")
                with contextlib.suppress(TimeoutError):
                    wait_until(lambda: not any(n.is_running() for n in nodes), timeout, 0.2)
        killed = owned.kill_owned(state)
        if record is not None:
            shutil.rmtree(record.socket_dir, ignore_errors=True)
        for stale in Path(socket_parent()).glob(f"{socket_prefix(state)}*"):
            shutil.rmtree(stale, ignore_errors=True)
        (state / RECORD).unlink(missing_ok=True)
        return Stopped(len(record.nodes) if record is not None else 0, tuple(killed))


def no_cluster(state: Path) -> str:
    """The one line every verb that needs a running cluster says without one."""
    return f"no cluster is running in {state} (start one with `cluster start`)"


def print_status(state: Path, out: TextIO) -> int:
    """Print one line per node; returns 0 when all are up, 3 (infrastructure) otherwise."""
    record = read_record(state)
    if record is None:
        out.write(f"no cluster in {state}\n")
        return EXIT_INFRA
    stale = record.boot_id != boot_id()
    out.write(
        f"cluster {state} (profile {record.profile})"
        + (" STALE: started before the last host boot\n" if stale else "\n")
    )
    healthy = not stale
    for name, node in record.nodes.items():
        up = not stale and process.pid_alive(node.pid)
        healthy = healthy and up
        boot = f"{node.boot_seconds:.1f}s" if node.boot_seconds else "-"
        fwds = " ".join(
            f"{f.name}=127.0.0.1:{f.host_port}->{f.guest_port}/{f.protocol}" for f in node.forwards
        )
        out.write(
            f"  {name:8} {'up' if up else 'DOWN':5} boot {boot:7} accel {node.accel:4} "
            f"addr {','.join(node.addresses)}  {fwds}\n"
        )
    return 0 if healthy else EXIT_INFRA
