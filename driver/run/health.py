"""A kola-style health gate: after every subtest and at the end of a run, each running node
is scanned for kernel panics and oopses, OOM kills, segfaults and core dumps, and failed
units. Findings fail the run unless the script allowed them (``allow_problem``).

One round trip per node (nodes in parallel), with no process started in a healthy guest built
here; the console log is read on the host. Each finding is reported once."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field

from driver.errors import DriverError
from driver.machine.console import HEALTH_MARKER, KERNEL_PROBLEMS
from driver.machine.node import Node
from driver.parallel import on_each
from driver.triage import coredumps

TIMESTAMP = re.compile(r"^\[[ 0-9.]+\] ")
SEPARATOR = "@@photon-health@@"
CORE_SEPARATOR = "@@photon-health-cores@@"
# Bash builtins only on a healthy node (under TCG every exec costs 0.1-1 s on a busy guest).
# Images built here note each unit that enters the failed state in FAILED_NOTES
# (images/guest/photon-health.conf), so systemctl runs only where something failed, or where
# the node has no such note-taker (DROP_IN missing: Nix-built nodes). They also send every
# kernel message to the console (kernel.printk 8), which the host reads anyway, so dmesg
# runs only where the console level is lower. The whole kernel log then comes back and is
# filtered on the host (measured: dmesg alone 0.07-0.2 s, dmesg | grep 0.12-0.23 s).
FAILED_NOTES = "/run/photon-failed"
DROP_IN = "/etc/systemd/system/service.d/90-photon-health.conf"
# The host waits this long for the scan's marker to reach the console.
CONSOLE_WAIT_SECONDS = 10.0


def scan_command(marker: str, since_epoch: float | None = None) -> str:
    """The scan's guest command. Where every kernel message goes to the console, it writes
    ``marker`` to the kernel log and echoes it: once the marker is on the console, so is
    every kernel line before it (the console prints the log in order). Core dumps (from
    ``since_epoch`` on) are listed only where a core file exists."""
    return (
        f"if [[ -s {FAILED_NOTES} || ! -e {DROP_IN} ]]; then "
        "systemctl list-units --state=failed --no-legend --plain --no-pager; fi; "
        f"echo {CORE_SEPARATOR}; {coredumps.list_command(since_epoch)}; "
        f"echo {SEPARATOR}; read -r level _ </proc/sys/kernel/printk; "
        f"if ((level >= 8)); then echo '<7>{marker}' >/dev/kmsg; echo '{marker}'; "
        "else dmesg --notime 2>/dev/null || :; fi"
    )


@dataclass(frozen=True)
class Finding:
    """One problem on one node, with the line that shows it."""

    node: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.node}: {self.evidence}"


@dataclass
class HealthGate:
    """What has been reported and what the script allowed, for one run."""

    allowed: list[tuple[re.Pattern[str], str | None]] = field(default_factory=list)
    reported: set[Finding] = field(default_factory=set)
    console_read: dict[str, int] = field(default_factory=dict)  # node -> console offset
    unscanned: list[str] = field(default_factory=list)  # nodes a scan could not reach, why
    # Core dumps before this (host seconds) are not findings: an attached cluster's past.
    since_epoch: float | None = None

    def allow(self, regex: str, node: str | None = None) -> None:
        """Findings matching ``regex`` (on ``node`` only, when given) do not fail the run."""
        self.allowed.append((re.compile(regex), node))

    def is_allowed(self, finding: Finding) -> bool:
        """Whether the script declared ``finding`` expected."""
        return any(
            pattern.search(finding.evidence) and node in (None, finding.node)
            for pattern, node in self.allowed
        )

    def scan(self, nodes: list[Node]) -> list[Finding]:
        """New findings on ``nodes`` that the script did not allow."""
        if not nodes:
            return []
        scanned = on_each(nodes, self.scan_node, "health")
        found = [f for fs in scanned for f in fs]
        new = [f for f in dict.fromkeys(found) if f not in self.reported]
        self.reported.update(new)
        return [f for f in new if not self.is_allowed(f)]

    def scan_node(self, node: Node) -> list[Finding]:
        """Findings on ``node`` in this boot: console lines not read by an earlier scan,
        kernel log lines, failed units."""
        marker = HEALTH_MARKER + secrets.token_hex(6)
        lines: list[str] = []
        units: list[str] = []
        cores: list[coredumps.CoreDump] = []
        on_console = False
        if node.is_up():
            try:
                command = scan_command(marker, self.since_epoch)
                result = node.run_logged(command, timeout=30.0)
                failed, _, kernel = result.stdout.partition(SEPARATOR)
                failed, _, listed = failed.partition(CORE_SEPARATOR)
                cores = coredumps.parse_list(listed, self.since_epoch)
                units = [ln.split()[0] for ln in failed.splitlines() if ln.strip()]
                units = [u for u in units if u not in node.expected_failed_units]
                on_console = marker in kernel
                lines += [ln.strip() for ln in kernel.splitlines() if marker not in ln]
            except (DriverError, TimeoutError) as exc:
                # The scan's own trouble is no finding about the node's health.
                self.unscanned.append(f"{node.name}: {str(exc).splitlines()[0]}")
        lines += self._console_lines(node, marker if on_console else None)
        findings = [Finding(node.name, f"failed unit {u}") for u in units]
        findings += [Finding(node.name, core.evidence) for core in cores]
        # Console lines carry the kernel's timestamp, dmesg --notime lines do not: patterns
        # anchored at the start of the message (Go's "panic: ") see both alike.
        messages = [TIMESTAMP.sub("", ln) for ln in lines]
        findings += [
            Finding(node.name, "kernel: " + m) for m in messages if KERNEL_PROBLEMS.search(m)
        ]
        return findings

    def _console_lines(self, node: Node, marker: str | None) -> list[str]:
        """Console lines not read by an earlier scan; with ``marker``, up to the line that
        carries it (waited for up to CONSOLE_WAIT_SECONDS)."""
        offset = self.console_read.get(node.name, 0)
        text, offset = node.console_lines_from(offset)
        deadline = time.monotonic() + CONSOLE_WAIT_SECONDS
        while marker is not None and marker not in text:
            if time.monotonic() > deadline:
                self.unscanned.append(f"{node.name}: the console did not show `{marker}`")
                break
            time.sleep(0.01)
            more, offset = node.console_lines_from(offset)
            text += more
        self.console_read[node.name] = offset
        return [ln.strip() for ln in text.splitlines()]
