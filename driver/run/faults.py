"""Faults between named nodes, as script calls: partition/heal, delay, loss, pause/resume,
disk_full, clock_skew. Real mechanisms only (blackhole routes and tc netem inside the
guests, QMP stop/cont, a filesystem filled for real, the guest clock set). Each returns a
Fault that is also a context manager (undone when the block ends, even when it raises);
the Driver undoes every fault still active before a health scan and at cleanup. Every fault
and its undo are logged with their scope."""

from __future__ import annotations

import enum
import shlex
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

from driver.config.spec import NodeKind
from driver.errors import TestFailure
from driver.events import EventKind
from driver.log import Logger
from driver.machine.backend import NotOnContainer
from driver.machine.machine import Machine
from driver.machine.node import Node

# The cluster-VLAN interface of the node whose address is $ip (NIC order varies by image).
_DEV = "dev=$(ip -o -4 addr show to {ip} | awk '{{print $2}}'); [ -n \"$dev\" ]"


def _address(node: Node) -> str:
    if not node.spec.nics or not node.spec.nics[0].address:
        raise TestFailure(f"{node.name}: no cluster address to aim a fault at", node=node.name)
    return node.spec.nics[0].address.split("/")[0]


# Whether netem works in a container node's network namespace: the qdisc is the host
# kernel's (a container cannot load sch_netem), on the node's own loopback for an instant.
NETEM_PROBE = "tc qdisc add dev lo root netem delay 0ms && tc qdisc del dev lo root"


class FaultKind(enum.Enum):
    """What a fault does."""

    PARTITION = "partition"
    DELAY = "delay"
    LOSS = "loss"
    PAUSE = "pause"
    DISK_FULL = "disk full"
    CLOCK_SKEW = "clock skew"


NETWORK_FAULTS = frozenset({FaultKind.PARTITION, FaultKind.DELAY, FaultKind.LOSS})


class Fault:
    """One applied fault; ``undo()`` (or leaving its ``with`` block) takes it back.
    ``kind`` and ``targets`` (the node names it touches) say what it is; ``description``
    is the log's words for it."""

    def __init__(
        self,
        kind: FaultKind,
        targets: tuple[str, ...],
        description: str,
        undo: Callable[[], object],
        faults: Faults,
    ) -> None:
        self.kind = kind
        self.targets = targets
        self.description = description
        self._undo = undo
        self._faults = faults
        self.undone = False

    def __repr__(self) -> str:
        return f"<Fault {self.description}{' (undone)' if self.undone else ''}>"

    def undo(self) -> None:
        """Take the fault back (once)."""
        if self.undone:
            return
        self.undone = True
        with self._faults.logger.nested(f"undo fault: {self.description}"):
            self._undo()
        self._faults.logger.event(EventKind.FAULT_UNDO, id=id(self), text=self.description)
        self._faults.forget(self)

    def __enter__(self) -> Fault:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.undo()


class Faults:
    """The faults of one run. Scripts name nodes by their Machines; ``node_of`` gives the
    Node behind each, which the faults work on."""

    def __init__(self, logger: Logger, node_of: Callable[[Machine], Node]) -> None:
        self.logger = logger
        self._node_of = node_of
        self.active: list[Fault] = []
        self._bands: dict[str, dict[str, int]] = {}  # node -> peer address -> tc band

    def forget(self, fault: Fault) -> None:
        """Drop an undone fault from the active list."""
        if fault in self.active:
            self.active.remove(fault)

    def _apply(
        self,
        kind: FaultKind,
        targets: Iterable[Machine],
        description: str,
        do: Callable[[], object],
        undo: Callable[[], object],
    ) -> Fault:
        names = tuple(m.name for m in targets)
        with self.logger.nested(f"fault: {description}"):
            do()
        fault = Fault(kind, names, description, undo, self)
        self.logger.event(
            EventKind.FAULT, id=id(fault), fault=kind.value, targets=list(names), text=description
        )
        self.active.append(fault)
        return fault

    def pausing(self) -> bool:
        """Whether a pause fault is in place (a snapshot would resume the paused node)."""
        return any(f.kind is FaultKind.PAUSE for f in self.active)

    # --- network -------------------------------------------------------------------

    def partition(self, *groups: Sequence[Machine]) -> Fault:
        """Cut the cluster network between the groups (each node can still reach the nodes
        of its own group): blackhole routes to the other groups' addresses on every node,
        so traffic fails in both directions."""
        if len(groups) < 2:
            raise TestFailure("partition needs at least two groups of nodes")
        nodes = [[self._node_of(m) for m in g] for g in groups]
        pairs = [(a, b) for i, g in enumerate(nodes) for h in nodes[i + 1 :] for a in g for b in h]

        def routes(verb: str) -> None:
            for a, b in pairs:
                for node, peer in ((a, b), (b, a)):
                    node.check(f"ip route {verb} blackhole {_address(peer)}/32", timeout=30)

        names = " | ".join(",".join(m.name for m in g) for g in groups)
        return self._apply(
            FaultKind.PARTITION,
            [m for g in groups for m in g],
            f"partition {names}",
            lambda: routes("replace"),
            lambda: routes("del"),
        )

    def heal(self) -> None:
        """Undo every partition, delay and loss still in place."""
        for fault in reversed(list(self.active)):
            if fault.kind in NETWORK_FAULTS:
                fault.undo()

    def _netem(
        self, kind: FaultKind, machine_a: Machine, machine_b: Machine, netem: str, description: str
    ) -> Fault:
        a, b = self._node_of(machine_a), self._node_of(machine_b)

        def add(node: Node, peer: Node) -> None:
            if node.spec.kind == NodeKind.CONTAINER and not node.run_logged(NETEM_PROBE, 30).ok:
                raise NotOnContainer(node.name, kind.value, "the host's kernel has no netem")
            bands = self._bands.setdefault(node.name, {})
            band = next(k for k in range(2, 17) if k not in bands.values())
            ip, peer_ip = _address(node), _address(peer)
            setup = (
                ""
                if bands
                else (
                    "tc qdisc replace dev $dev root handle 1: prio bands 16 "
                    "priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 && "
                )
            )
            node.check(
                _DEV.format(ip=ip)
                + " && "
                + setup
                + f"tc qdisc add dev $dev parent 1:{band} handle {band}0: netem {netem} && "
                + f"tc filter add dev $dev parent 1: protocol ip prio {band} u32 "
                + f"match ip dst {peer_ip}/32 flowid 1:{band}",
                timeout=30,
            )
            bands[peer_ip] = band

        def remove(node: Node, peer: Node) -> None:
            bands = self._bands.get(node.name, {})
            band = bands.pop(_address(peer), None)
            if band is None:
                return
            command = (
                _DEV.format(ip=_address(node))
                + " && "
                + (
                    f"tc filter del dev $dev parent 1: prio {band}; "
                    f"tc qdisc del dev $dev parent 1:{band} handle {band}0:"
                    if bands
                    else "tc qdisc del dev $dev root"
                )
            )
            node.check(command, timeout=30)

        def both(action: Callable[[Node, Node], None]) -> None:
            action(a, b)
            action(b, a)

        return self._apply(
            kind,
            [machine_a, machine_b],
            f"{description} between {a.name} and {b.name}",
            lambda: both(add),
            lambda: both(remove),
        )

    def delay(self, node_a: Machine, node_b: Machine, ms: float, jitter_ms: float = 0) -> Fault:
        """Delay packets between two nodes by ``ms`` (± ``jitter_ms``) in each direction
        (tc netem on both nodes' cluster interface)."""
        jitter = f" {jitter_ms:g}ms" if jitter_ms else ""
        return self._netem(
            FaultKind.DELAY, node_a, node_b, f"delay {ms:g}ms{jitter}", f"delay {ms:g}ms"
        )

    def loss(self, node_a: Machine, node_b: Machine, percent: float) -> Fault:
        """Drop ``percent`` % of the packets between two nodes, each direction (tc netem)."""
        return self._netem(
            FaultKind.LOSS, node_a, node_b, f"loss {percent:g}%", f"loss {percent:g}%"
        )

    # --- one node ------------------------------------------------------------------

    def pause(self, node: Machine) -> Fault:
        """Freeze the node's VM (QMP ``stop``): it answers nothing until resumed."""
        target = self._node_of(node)
        return self._apply(
            FaultKind.PAUSE,
            [node],
            f"pause {node.name}",
            target.pause,
            target.resume,
        )

    def resume(self, node: Machine) -> None:
        """Undo ``pause(node)``."""
        for fault in list(self.active):
            if fault.kind is FaultKind.PAUSE and fault.targets == (node.name,):
                fault.undo()

    def disk_full(self, node: Machine, path: str = "/var/tmp") -> Fault:
        """Fill the filesystem holding ``path`` on ``node`` (a real file taking every free
        block); the undo removes the file. Not on a container node: its files are on the
        host's filesystem, which this would fill."""
        target = self._node_of(node)
        if target.spec.kind == NodeKind.CONTAINER:
            raise NotOnContainer(node.name, "disk_full", "its files are on the host's disk")
        filler = shlex.quote(f"{path.rstrip('/')}/.photon-disk-full")
        where = shlex.quote(path)
        fill = (
            f"fallocate -l $(( ($(stat -f -c %f {where}) - 16) * $(stat -f -c %S {where}) )) "
            f"{filler} 2>/dev/null || true; "
            f"dd if=/dev/zero of={filler}.top bs=4k status=none 2>/dev/null || true; sync; "
            # full means full: a 64 KiB write must fail now
            f"if head -c 65536 /dev/zero > {filler}.probe 2>/dev/null; then "
            f"rm -f {filler}.probe; exit 1; fi; rm -f {filler}.probe"
        )
        return self._apply(
            FaultKind.DISK_FULL,
            [node],
            f"disk full at {path} on {node.name}",
            lambda: target.check(fill, timeout=300),
            lambda: target.check(f"rm -f {filler} {filler}.top {filler}.probe; sync", timeout=60),
        )

    def clock_skew(self, node: Machine, seconds: float) -> Fault:
        """Step the node's clock by ``seconds`` (negative: back); the undo steps it back.
        Not on a container node: it shares the host's clock."""
        step, target = int(seconds), self._node_of(node)
        if target.spec.kind == NodeKind.CONTAINER:
            raise NotOnContainer(node.name, "clock_skew", "it shares the host's clock")
        return self._apply(
            FaultKind.CLOCK_SKEW,
            [node],
            f"clock of {node.name} {step:+d}s",
            lambda: target.check(f"date -s @$(( $(date +%s) + {step} )) >/dev/null"),
            lambda: target.check(f"date -s @$(( $(date +%s) - {step} )) >/dev/null"),
        )
