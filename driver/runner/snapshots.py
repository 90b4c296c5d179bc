"""Whole-cluster snapshots: every node's RAM, device and disk state saved and restored
together (QEMU internal snapshots in the nodes' qcow2 overlays), with all nodes paused
around the save and the restore, so the cluster resumes as if it had been paused as one:
Raft leaders, TCP connections between nodes and timers carry on. After a restore each
guest clock is stepped to the host's time (the journal records the step)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from driver.errors import TestFailure
from driver.log import Logger
from driver.machine.machine import Machine

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as a node's QEMU lists it."""

    node: str
    name: str
    vm_state: str  # size of the saved RAM and device state, as QEMU prints it
    date: str


def _hmp(machine: Machine, command: str) -> str:
    reply = machine.human_monitor_command(command).strip()
    if reply:  # savevm/loadvm/delvm answer nothing on success, an error text otherwise
        raise TestFailure(f"{machine.name}: `{command}` failed: {reply}", node=machine.name)
    return reply


def before_subtest(subtest: str) -> str:
    """The snapshot ``--rerun-failed`` takes before ``subtest``; ``restore("before:NAME")``
    in a script or the REPL restores it."""
    return "before-" + re.sub(r"[^A-Za-z0-9_.-]", "_", subtest)[:48]


def snapshot_tag(name: str) -> str:
    """The snapshot tag for ``name`` as a script gives it (``before:SUBTEST`` allowed)."""
    return before_subtest(name[len("before:") :]) if name.startswith("before:") else name


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise TestFailure(f"snapshot name {name!r}: letters, digits, '.', '_', '-' only")


def _all_paused(machines: list[Machine], action: str, logger: Logger) -> None:
    for machine in machines:
        machine.send_qmp_command("stop")
    try:
        for machine in machines:
            with logger.nested(action, node=machine.name):
                _hmp(machine, action)
    finally:
        for machine in machines:
            machine.send_qmp_command("cont")


def _quiet(machine: Machine, command: str, timeout: float) -> str:
    """Run a driver-internal command without a log line; raise if it fails."""
    result = machine.run_unchecked(command, timeout=timeout)
    if result.status != 0:
        raise TestFailure(
            f"{machine.name}: `{command}` failed (status {result.status}): {result.stderr}",
            node=machine.name,
        )
    return result.stdout


def clock_offset(machine: Machine, samples: int = 3, timeout: float = 30.0) -> tuple[float, float]:
    """The guest clock minus the host's, in seconds, and the round trip it was measured
    over: the sample with the shortest round trip, guest time against the midpoint of the
    host's send and receive (as NTP does)."""
    best = (0.0, float("inf"))
    for _ in range(samples):
        sent = time.time()
        guest = float(_quiet(machine, "echo $EPOCHREALTIME", timeout))
        received = time.time()
        if received - sent < best[1]:
            best = (guest - (sent + received) / 2, received - sent)
    return best


def step_clock(machine: Machine, why: str, timeout: float = 30.0, within: float = 0.05) -> float:
    """Step the guest clock to the host's time (after ``why``) and say so in the log and
    the guest's journal; returns the total step in seconds. The offset is measured over two
    round trips (the shorter counts); the step is relative to the guest's own clock, so the
    command's delivery time does not add to the error, and carries the journal line in the
    same command; one more sample checks it, and a second step follows only when the
    residual is still above ``within`` s."""
    offset, _ = clock_offset(machine, samples=2, timeout=timeout)
    total = 0.0
    for _ in range(2):
        if abs(offset) < within:
            break
        micros = -round(offset * 1e6)
        total -= offset
        message = f"clock stepped by {total:+.3f}s after {why}"
        # systemd-cat with a command (without one it execs /bin/cat: NixOS has none)
        _quiet(
            machine,
            f"t=$(( ${{EPOCHREALTIME/./}} + ({micros}) )); date -s @${{t:0:-6}}.${{t: -6}}"
            f" >/dev/null; systemd-cat -t photon-driver echo 'photon-driver: {message}'",
            timeout,
        )
        offset, _ = clock_offset(machine, samples=1, timeout=timeout)
    machine.log(f"clock stepped by {total:+.3f}s after {why}")
    return total


def step_clocks(machines: list[Machine], why: str) -> None:
    """``step_clock`` on every machine at once (one thread each)."""
    if not machines:
        return
    with ThreadPoolExecutor(max_workers=len(machines), thread_name_prefix="clocks") as pool:
        for future in [pool.submit(step_clock, m, why) for m in machines]:
            future.result()


def snapshot(machines: list[Machine], name: str, logger: Logger) -> None:
    """Save every running node under ``name`` (replacing an older one of that name)."""
    _check_name(name)
    running = [m for m in machines if m.is_running()]
    with logger.nested(f"snapshot {name} of {', '.join(m.name for m in running)}"):
        _all_paused(running, f"savevm {name}", logger)
    logger.event("snapshot", name=name, nodes=[m.name for m in running])


def restore(machines: list[Machine], name: str, logger: Logger) -> None:
    """Bring every running node back to snapshot ``name``, then step every guest clock to
    the host's time, all nodes at once."""
    name = snapshot_tag(name)
    _check_name(name)
    running = [m for m in machines if m.is_running()]
    missing = [m.name for m in running if name not in {s.name for s in list_snapshots(m)}]
    if missing:
        raise TestFailure(f"no snapshot {name!r} on {', '.join(missing)}")
    with logger.nested(f"restore {name} on {', '.join(m.name for m in running)}"):
        _all_paused(running, f"loadvm {name}", logger)
        step_clocks(running, f"restoring snapshot {name}")
    logger.event("restore", name=name, nodes=[m.name for m in running])


def list_snapshots(machine: Machine) -> list[SnapshotInfo]:
    """The snapshots in ``machine``'s disks (``info snapshots``)."""
    found = []
    for line in machine.human_monitor_command("info snapshots").splitlines():
        fields = line.split()
        # ID (digits, or "--" for a snapshot on every disk)  TAG  VM SIZE (number unit)
        # DATE (day time)  VM CLOCK  [ICOUNT]
        if len(fields) >= 6 and (fields[0].isdigit() or fields[0] == "--"):
            found.append(
                SnapshotInfo(machine.name, fields[1], " ".join(fields[2:4]), " ".join(fields[4:6]))
            )
    return found


def delete(machines: list[Machine], name: str, logger: Logger) -> None:
    """Remove snapshot ``name`` from every running node."""
    _check_name(name)
    for machine in [m for m in machines if m.is_running()]:
        with logger.nested(f"delvm {name}", node=machine.name):
            _hmp(machine, f"delvm {name}")
