"""Whole-cluster snapshots: every node's RAM, device and disk state saved and restored
together (QEMU internal snapshots in the nodes' qcow2 overlays), with all nodes paused
around the save and the restore, so the cluster resumes as if it had been paused as one:
Raft leaders, TCP connections between nodes and timers carry on. After a restore each
guest clock is stepped to the host's time (the journal records the step)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from driver.atomic import write_atomic
from driver.errors import TestFailure
from driver.events import EventKind
from driver.log import Logger
from driver.machine.node import Node
from driver.parallel import on_each
from driver.wait import wait_until

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as a node's QEMU lists it."""

    node: str
    name: str
    vm_state: str  # size of the saved RAM and device state, as QEMU prints it
    date: str


def _hmp(node: Node, command: str) -> str:
    reply = node.hmp(command).strip()
    if reply:  # savevm/loadvm/delvm answer nothing on success, an error text otherwise
        raise TestFailure(f"{node.name}: `{command}` failed: {reply}", node=node.name)
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


CLOCKS = "snapshot-clocks.json"  # in a node's state directory: name -> host time it froze


def took_effect_at(action: Callable[[], object]) -> float:
    """Run ``action`` (a QMP ``stop`` or ``cont``); the host time it took effect at (the
    midpoint of the round trip)."""
    sent = time.time()
    action()
    return (sent + time.time()) / 2


def _frozen_at(node: Node) -> dict[str, float]:
    """Snapshot name -> the host time the node's guest clock stood at in it."""
    try:
        data = json.loads((node.state_dir / CLOCKS).read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, float)} if isinstance(data, dict) else {}


def _save_frozen_at(node: Node, name: str, at: float | None) -> None:
    """Record (None: forget) that ``node``'s node saved snapshot ``name`` at ``at``."""
    frozen = _frozen_at(node)
    if at is None and name not in frozen:
        return
    kept = {k: v for k, v in frozen.items() if k != name}
    write_atomic(node.state_dir / CLOCKS, json.dumps(kept if at is None else {**kept, name: at}))


def saved_here(node: Node, name: str) -> bool:
    """Whether ``node``'s node was among the nodes the last snapshot ``name`` saved (its
    state directory's record): a node stopped since can be started from it again."""
    return name in _frozen_at(node)


def _step_round(node: Node, step: float, message: str, timeout: float) -> tuple[float, float]:
    """One round trip: step the guest clock by ``step`` s (none when 0) and return the
    offset left (guest minus host) and how far off that estimate can be. GNU date computes
    ``now + step`` itself, right before it sets the clock, so neither delivery nor its own
    start (the one process this costs) adds to the step; the guest reports its clock before
    and after, so its own processing is taken out of the round trip, and the rest is split
    evenly between the two directions (as NTP does; the uncertainty is half of that rest)."""
    # The journal line goes through /dev/kmsg (journald files it under the tag): no
    # process to start, where systemd-cat would cost a second right after a restore.
    journal = f"echo '<13>photon-driver: {message}' >/dev/kmsg; " if step else ""
    setter = f"date -s 'now {step:+.6f} seconds' >/dev/null; " if step else ""
    sent = time.time()
    reply = node.check(f"a=$EPOCHREALTIME; {journal}{setter}echo $a $EPOCHREALTIME", timeout)
    received = time.time()
    before, after = map(float, reply.split())
    processing = min(max(0.0, after - before - step), received - sent)
    one_way = (received - sent - processing) / 2
    return after - (sent + one_way + processing), one_way


def step_clock(
    node: Node,
    why: str,
    lag: float | None = None,
    timeout: float = 30.0,
    within: float = 0.05,
) -> float:
    """Step the guest clock to the host's time (after ``why``) and say so in the log and
    the guest's journal; returns the total step in seconds. ``lag``, when known (how long
    the node stood still in a restore), is stepped in the first round trip, which also
    answers the offset left; without it the first round trip only measures. Another step
    follows while the offset is above ``within`` s plus the estimate's uncertainty (at
    most three more)."""
    total, pending = 0.0, lag or 0.0
    for _ in range(4):
        message = f"clock stepped by {total + pending:+.3f}s after {why}"
        offset, uncertainty = _step_round(node, pending, message, timeout)
        total += pending
        if abs(offset) <= within + uncertainty:
            break
        pending = -offset
    node.logger.log(f"clock stepped by {total:+.3f}s after {why}", node=node.name)
    return total


def step_clocks(nodes: list[Node], why: str, lags: dict[str, float] | None = None) -> None:
    """``step_clock`` on every node at once (one thread each), with each one's ``lag``
    when known."""
    on_each(nodes, lambda n: step_clock(n, why, (lags or {}).get(n.name)), "clocks")


def snapshot(nodes: list[Node], name: str, logger: Logger) -> None:
    """Save every running node under ``name`` (replacing an older one of that name): all
    paused, ``savevm`` on all at once, all resumed; then each guest clock stepped forward
    by how long its node stood still."""
    _check_name(name)
    running = [n for n in nodes if n.is_running()]
    for node in nodes:
        if not node.is_running():  # not in this snapshot: a restore leaves it stopped
            _save_frozen_at(node, name, None)
    with logger.nested(f"snapshot {name} of {', '.join(n.name for n in running)}"):
        stopped = on_each(running, lambda n: took_effect_at(n.pause), "pause")

        def save(node: Node) -> None:
            with logger.nested(f"savevm {name}", node=node.name):
                _hmp(node, f"savevm {name}")

        try:
            on_each(running, save, "savevm")
        finally:
            resumed = on_each(running, lambda n: took_effect_at(n.resume), "resume")
        for node, at in zip(running, stopped, strict=True):
            _save_frozen_at(node, name, at)
        lags = {n.name: r - s for n, s, r in zip(running, stopped, resumed, strict=True)}
        step_clocks(running, f"saving snapshot {name}", lags)
    logger.event(EventKind.SNAPSHOT, name=name, nodes=[n.name for n in running])


def resume_loaded(nodes: list[Node], started: float, timeout: float = 120.0) -> list[float]:
    """Wait until every node started from a saved state has loaded it, resume all together
    and mark them restored (``started``: the restore's ``time.monotonic()``); the host time
    each one resumed at. TimeoutError after ``timeout`` s."""
    wait_until(lambda: all([c.disks.saved_state_loaded() for c in nodes]), timeout)
    resumed = on_each(nodes, lambda c: took_effect_at(c.resume), "resume")
    for node in nodes:
        node.mark_restored(time.monotonic() - started)
    return resumed


def restore(nodes: list[Node], name: str, logger: Logger, timeout: float = 120.0) -> None:
    """Bring the cluster back to snapshot ``name``: every running node, and every node
    the snapshot saved whose QEMU has exited since (crashed, killed, shut down: it starts
    again from the snapshot). Each QEMU quits and starts again paused, loading the snapshot
    (``-loadvm``); all resume together, and each guest clock, frozen in the snapshot, is
    stepped to the host's time (by how long ago the snapshot froze it, with the offset left
    answered in the same round trip). Fails, naming the nodes, when a running node lacks
    the snapshot, when there is no node to restore, or after ``timeout`` s if a QEMU does
    not load it."""
    name = snapshot_tag(name)
    _check_name(name)
    chosen = [n for n in nodes if n.is_running() or saved_here(n, name)]
    if not chosen:
        raise TestFailure(f"restore {name}: no node is running and none was saved in it")
    missing = [
        n.name for n in chosen if n.is_running() and name not in {s.name for s in list_snapshots(n)}
    ]
    if missing:
        raise TestFailure(f"no snapshot {name!r} on {', '.join(missing)}", node=missing[0])
    revived = [n.name for n in chosen if not n.is_running()]
    frozen = {c.name: _frozen_at(c).get(name) for c in chosen}
    again = f" ({', '.join(revived)}: QEMU had exited, started again)" if revived else ""
    with logger.nested(f"restore {name} on {', '.join(n.name for n in chosen)}{again}"):
        started = time.monotonic()
        on_each(chosen, lambda c: c.quit(), "quit")  # a QEMU already gone: only tidied
        for node in chosen:  # main thread: the parent-death signal binds to it
            node.disks.start_from_snapshot(name)
        try:
            resumed = resume_loaded(chosen, started, timeout)
        except TimeoutError:
            late = [c.name for c in chosen if not c.disks.saved_state_loaded()]
            raise TestFailure(
                f"restore {name}: {', '.join(late)} did not load it within {timeout}s",
                node=late[0] if late else None,
            ) from None
        lags = {
            c.name: at - frozen_at
            for c, at in zip(chosen, resumed, strict=True)
            if (frozen_at := frozen[c.name]) is not None
        }
        step_clocks(chosen, f"restoring snapshot {name}", lags)
    logger.event(EventKind.RESTORE, name=name, nodes=[n.name for n in chosen])


def list_snapshots(node: Node) -> list[SnapshotInfo]:
    """The snapshots in ``node``'s disks (``info snapshots``)."""
    found = []
    for line in node.hmp("info snapshots").splitlines():
        fields = line.split()
        # ID (digits, or "--" for a snapshot on every disk)  TAG  VM SIZE (number unit)
        # DATE (day time)  VM CLOCK  [ICOUNT]
        if len(fields) >= 6 and (fields[0].isdigit() or fields[0] == "--"):
            found.append(
                SnapshotInfo(node.name, fields[1], " ".join(fields[2:4]), " ".join(fields[4:6]))
            )
    return found
