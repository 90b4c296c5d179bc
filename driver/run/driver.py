"""Driver: the machines and VLANs of one run and their lifetime. Use it as a context
manager: leaving the block kills what this run started (or, for an attached cluster, only
disconnects). Scripts run through ``ScriptRun`` (script.py) with ``namespace.build``."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType

from driver.config.spec import NodeKind, NodeSpec
from driver.config.topology import Profile, Topology
from driver.duration import Duration, seconds
from driver.errors import DriverError, TestFailure
from driver.events import EventKind
from driver.log import Logger
from driver.machine.argv import Paths
from driver.machine.cgroup import sweep_orphans
from driver.machine.container import NspawnProcess
from driver.machine.machine import BOOT_TIMEOUT, Machine
from driver.machine.node import Node
from driver.machine.process import QemuProcess
from driver.parallel import on_each
from driver.run import snapshots
from driver.run.faults import Faults
from driver.run.health import Finding, HealthGate
from driver.run.helpers import PollingConditions
from driver.run.ports import assign_ports, check_fixed_ports
from driver.run.vlan import VLan
from driver.safe_files import output_dir, private_dir
from driver.triage.artifacts import Artifacts, NodeExport


def socket_prefix(state: Path) -> str:
    """The name prefix of a run's private socket directory (derived from its state dir, so
    tools and tests can find the run's processes)."""
    return "photon-" + hashlib.sha1(str(state).encode()).hexdigest()[:10] + "-"


def socket_parent() -> str:
    """Where a run's sockets go: the temporary directory, unless its path is so long that
    a socket path below it would pass the kernel's 108-byte limit (then /tmp)."""
    parent = tempfile.gettempdir()
    return parent if len(parent) <= 40 else "/tmp"


@dataclass(frozen=True)
class RunContext:
    """What a run is about: where its state and output go, its log and environment, and
    the topology and profile its scripts see."""

    state: Path
    logger: Logger
    environ: Mapping[str, str]
    out_dir: Path
    cache_dir: Path
    topology: Topology | None = None
    profile: Profile | None = None


class Driver:
    """Owns one run's machines and VLAN switches, from start to cleanup."""

    nodes: dict[str, Node]  # every node of the run, by name (``node.machine``: the script's)
    vlans: list[VLan]  # one switch per VLAN
    context: RunContext
    polling: PollingConditions  # the script's active polling conditions

    def __init__(
        self,
        specs: Mapping[str, NodeSpec],
        context: RunContext,
        boot_groups: list[list[str]] | None = None,
        detached: bool = False,
        socket_dir: Path | None = None,
        host_ports: Mapping[str, list[int]] | None = None,
    ) -> None:
        if host_ports is None:  # a fresh run: its fixed forward ports must be free
            check_fixed_ports({name: spec.forwards for name, spec in specs.items()})
        self.context = context
        private_dir(context.state)
        output_dir(context.out_dir)  # scripts may write there at once
        self.state = context.state
        self.logger = context.logger
        self.detached = detached
        self._own_socket_dir = socket_dir is None
        self.socket_dir = socket_dir or Path(
            tempfile.mkdtemp(prefix=socket_prefix(self.state), dir=socket_parent())
        )
        self.socket_dir.chmod(0o700)
        numbers = sorted({nic.vlan for spec in specs.values() for nic in spec.nics})
        self.vlans = [VLan(n, self.socket_dir) for n in numbers]
        sockets = {v.number: v.socket for v in self.vlans}
        self.nodes: dict[str, Node] = {}
        self.polling = PollingConditions(self.logger.log)
        # A fresh run picks free host ports; an attached one has them in the cluster record.
        chosen = (
            assign_ports({name: spec.forwards for name, spec in specs.items()})
            if host_ports is None
            else host_ports
        )
        # Each node's journal and core dumps, kept in the output directory (triage/).
        self.artifacts = Artifacts(context.out_dir, self.logger)
        for swept in sweep_orphans():
            self.logger.log(f"killed container group {swept}, left by a killed run")
        for name, spec in specs.items():
            ports = list(chosen.get(name, []))
            paths = Paths(self.state / name, self.socket_dir / name)
            kind = NspawnProcess if spec.kind == NodeKind.CONTAINER else QemuProcess
            process = kind(
                spec, paths, sockets, ports, context.environ, context.cache_dir, detached
            )
            node = Node(process, self.logger, context.out_dir)
            node.machine.callbacks.append(self.polling.check)
            node.power_loss_hooks.append(partial(self.artifacts.export, node, "crash"))
            self.nodes[name] = node
        names = list(self.nodes)
        groups = [[n for n in g if n in names] for g in (boot_groups or [names])]
        self.boot_groups = [g for g in groups if g]
        self._vlans_started = False
        self.owns_processes = True  # False when attached to a cluster started elsewhere
        self.exit_hooks: list[Callable[[], None]] = []
        self.health = HealthGate()
        self.faults = Faults(self.logger, self.node)

    def __enter__(self) -> Driver:
        """Start the VLAN switches, as the NixOS driver does when it is created: a script
        may begin with ``node.start()`` or a command on any node."""
        try:
            self.start_vlans()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            self.undo_faults()
            if not self.owns_processes or (self.detached and error is None):
                self.detach()
            else:
                self.cleanup()
        finally:
            for hook in self.exit_hooks:
                hook()

    @property
    def out_dir(self) -> Path:
        """Where this run's outputs go (``-o``): ``copy_from_vm``, screenshots, reports."""
        return self.context.out_dir

    @property
    def machines(self) -> list[Machine]:
        """Every node of the run as scripts see it (NixOS's ``driver.machines``)."""
        return [node.machine for node in self.nodes.values()]

    def machine(self, name: str) -> Machine:
        """The Machine called ``name``."""
        return self.nodes[name].machine

    def node(self, which: Machine | str) -> Node:
        """The Node behind a script's Machine (or of that name)."""
        return self.nodes[which if isinstance(which, str) else which.name]

    # --- booting -------------------------------------------------------------------

    def start_vlans(self) -> None:
        """Start one vde_switch per VLAN (once)."""
        if not self._vlans_started:
            for vlan in self.vlans:
                vlan.start(detached=self.detached)
            self._vlans_started = True

    def adopt_vlans(self, pids: Mapping[int, int]) -> None:
        """Use already running switches (an attached cluster): VLAN number -> pid."""
        for vlan in self.vlans:
            vlan.attach(pids[vlan.number])
        self._vlans_started = True

    def start_all(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Boot every machine, group by group in boot order (control plane first): nodes of
        a group boot in parallel, the next group starts once the group's shells answer.
        Each group may take ``timeout``."""
        limit = seconds(timeout)
        self.start_vlans()
        with self.logger.nested("starting all machines"):
            for group in self.boot_groups:
                nodes = [self.nodes[n] for n in group]
                for node in nodes:
                    node.start()  # main thread: the parent-death signal binds to it
                on_each(nodes, lambda n: n.connect(limit), "machines")

    def join_all(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Wait until every machine has shut down (as in the NixOS driver); does not start a
        shutdown. Fails after ``timeout``."""
        limit = seconds(timeout)

        def join(node: Node) -> None:
            try:
                node.wait_exit(limit)
            except TimeoutError:
                message = f"action timed out after {limit:g}s: the node did not shut down"
                raise TestFailure(f"{node.name}: {message}", node=node.name) from None

        on_each([n for n in self.nodes.values() if n.is_running()], join, "machines")

    def wait_for_all_booted(self, timeout: Duration = BOOT_TIMEOUT) -> None:
        """Wait until every started machine's backdoor shell answers (boot finished);
        fails after ``timeout`` s."""
        limit = seconds(timeout)
        running = [n for n in self.nodes.values() if n.is_running()]
        on_each(running, lambda n: n.connect(limit), "machines")

    @staticmethod
    def parallel(machines: list[Machine], action: Callable[[Machine], object]) -> None:
        """Run ``action`` on every machine at once; re-raises the first failure."""
        on_each(machines, action, "machines")

    # --- consoles and health ---------------------------------------------------------

    def serial_stdout_on(self) -> None:
        """Stream every node's console into the log (default)."""
        for node in self.nodes.values():
            node.stream_console(True)

    def serial_stdout_off(self) -> None:
        """Stop streaming consoles into the log (they are still written to vm.log)."""
        for node in self.nodes.values():
            node.stream_console(False)

    def undo_faults(self) -> None:
        """Undo every fault still active (a failing undo is logged, not raised)."""
        for fault in reversed(list(self.faults.active)):
            try:
                fault.undo()
            except Exception as exc:
                self.logger.warning(f"could not undo fault {fault.description}: {exc}")
                self.faults.forget(fault)

    def health_findings(self) -> list[Finding]:
        """New findings of the health gate on every machine started in this run (faults
        still in place are undone first)."""
        self.undo_faults()
        started = [n for n in self.nodes.values() if n.pid is not None]
        begun = time.monotonic()
        findings = self.health.scan(started)
        self.logger.event(
            EventKind.HEALTH_SCAN, duration=round(time.monotonic() - begun, 4), nodes=len(started)
        )
        for finding in findings:
            self.logger.event(EventKind.HEALTH, node=finding.node, text=finding.evidence)
        for what in self.health.unscanned:
            self.logger.warning(f"health: not scanned: {what}")
        self.health.unscanned.clear()
        return findings

    def check_health(self, when: str) -> None:
        """Fail (TestFailure naming node and evidence) if the health gate finds a kernel
        problem or a failed unit the script did not allow."""
        findings = self.health_findings()
        if findings:
            message = "; ".join(str(f) for f in findings)
            raise TestFailure(f"health check {when}: {message}", node=findings[0].node)

    def allow_problem(self, regex: str, node: Machine | str | None = None) -> None:
        """Declare a health finding expected: findings matching ``regex`` (a failed unit,
        a kernel line; on ``node`` only, when given) do not fail the run."""
        self.health.allow(regex, node.name if isinstance(node, Machine) else node)

    def keep_artifacts(self, reason: str) -> list[NodeExport]:
        """Export every running node's journal and core dumps into the output directory
        now (``nodes/<node>/NN-<reason>.*``), in parallel; what each export wrote."""
        running = [n for n in self.nodes.values() if n.pid is not None]
        kept = on_each(running, lambda n: self.artifacts.export(n, reason), "artifacts")
        return [k for k in kept if k is not None]

    def since(self, epoch: float) -> None:
        """Bound the health gate's core dumps and the kept journals to the time from
        ``epoch`` (host seconds) on: an attached cluster's earlier life is not this run's."""
        self.health.since_epoch = epoch
        self.artifacts.window_from(epoch)

    # --- snapshots -------------------------------------------------------------------

    def snapshot(self, name: str) -> None:
        """Save every running node together under ``name`` (RAM, devices, disks; all nodes
        paused around it), replacing an older snapshot of that name."""
        self.undo_faults()
        snapshots.snapshot(list(self.nodes.values()), name, self.logger)

    def restore(self, name: str, keep_journals: bool = True) -> None:
        """Bring every running node back to snapshot ``name`` together, then step each
        guest clock to the host's time; a node the snapshot saved whose QEMU has exited
        since (``crash()``, a guest panic) starts again from it too. Fails, naming the
        node, if a running node has no such snapshot or a QEMU does not load it.
        ``restore("before:SUBTEST")`` restores the snapshot ``--rerun-failed`` took before
        that subtest (kept after the run with ``--keep-on-failure``). The journals the
        restore discards are kept in the output directory first (``keep_journals``;
        ``cluster restore`` skips it)."""
        self.undo_faults()
        if keep_journals:
            self.keep_artifacts("restore")
        snapshots.restore(list(self.nodes.values()), name, self.logger)

    # --- teardown --------------------------------------------------------------------

    def cleanup(self) -> None:
        """Kill every QEMU and switch this run started; remove its socket directory and,
        for a fresh run, the disk overlays (console logs stay)."""
        for node in self.nodes.values():
            try:
                node.kill()
            except DriverError as exc:
                self.logger.warning(f"cleanup: {exc}", node=node.name)
        for vlan in self.vlans:
            vlan.stop()
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        if not self.detached:
            for node in self.nodes.values():
                for overlay in node.disks.overlays:
                    if overlay.suffix == ".qcow2":
                        overlay.unlink(missing_ok=True)
                    elif overlay.is_dir():  # a container's writable layer
                        shutil.rmtree(overlay.parent, ignore_errors=True)

    def detach(self) -> None:
        """Disconnect from detached machines, leaving them running."""
        for node in self.nodes.values():
            node.detach()
