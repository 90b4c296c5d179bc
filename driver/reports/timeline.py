"""The run's timeline, read from its event log (events.py): per node the boots, commands,
fault windows, snapshots, restores and health findings; the subtests; the failing step.
What report_html.py draws."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from driver.events import EventKind, text_of
from driver.reports.report import SubtestResult


@dataclass
class Span:
    """Something that lasted from ``start`` to ``end`` (host seconds)."""

    start: float
    end: float
    label: str
    kind: str  # boot | command | fault | subtest
    status: str = ""  # command exit status / subtest status
    detail: str = ""
    failing: bool = False


@dataclass
class Mark:
    """Something that happened at one moment."""

    at: float
    label: str
    kind: str  # snapshot | restore | health | exit


@dataclass
class NodeRow:
    """One node's row."""

    name: str
    spans: list[Span] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    console_lines: list[tuple[float, str, str]] = field(default_factory=list)  # (t, source, text)


@dataclass
class Failure:
    """The failing step: its subtest, node, command, status and the moment it failed."""

    subtest: str
    node: str
    command: str
    status: str
    output: str
    message: str
    at: float


@dataclass
class Timeline:
    """Everything the report draws, times in host seconds."""

    start: float
    end: float
    rows: list[NodeRow]
    subtests: list[Span]
    failure: Failure | None

    def position(self, start: float, end: float) -> tuple[float, float]:
        """Left offset and width in percent of the run."""
        span = max(self.end - self.start, 1e-3)
        left = max(0.0, min(100.0, (start - self.start) / span * 100))
        width = max(0.15, min(100.0 - left, (end - start) / span * 100))
        return left, width


def build(events: list[dict[str, Any]], results: list[SubtestResult], nodes: list[str]) -> Timeline:
    """The timeline of a run from its events and subtest results."""
    times = [float(e["t"]) for e in events] or [0.0]
    start, end = min(times), max(times)
    rows = {name: NodeRow(name) for name in nodes}

    def row(name: str | None) -> NodeRow | None:
        if not name:
            return None
        return rows.setdefault(name, NodeRow(name))

    spawned: dict[str, float] = {}
    faults: dict[int, dict[str, Any]] = {}
    begun: dict[str, float] = {}
    subtests: list[Span] = []
    for event in events:
        kind, at, node = event["kind"], float(event["t"]), event.get("node")
        here = row(node)
        if kind == EventKind.SPAWN and node:
            spawned[node] = at
        elif kind == EventKind.READY and here is not None:
            label = "restored" if event.get("boot_seconds") is None else "boot"
            here.spans.append(Span(spawned.get(here.name, at), at, label, "boot"))
        elif kind == EventKind.COMMAND and here is not None:
            duration = float(event.get("duration") or 0.0)
            status = str(event.get("status"))
            here.spans.append(
                Span(
                    at,
                    at + duration,
                    text_of(event, "command"),
                    "command",
                    status,
                    text_of(event, "stdout"),
                )
            )
        elif kind in (EventKind.CONSOLE, EventKind.STDERR) and here is not None:
            here.console_lines.append((at, kind, text_of(event, "text")))
        elif kind == EventKind.FAULT:
            faults[int(event["id"])] = {**event, "start": at}
        elif kind == EventKind.FAULT_UNDO and int(event["id"]) in faults:
            faults[int(event["id"])]["end"] = at
        elif kind in (EventKind.SNAPSHOT, EventKind.RESTORE):
            for name in event.get("nodes", []):
                if (target := row(name)) is not None:
                    target.marks.append(Mark(at, f"{kind} {event.get('name', '')}", kind))
        elif kind == EventKind.HEALTH and here is not None:
            here.marks.append(Mark(at, text_of(event, "text"), "health"))
        elif kind == EventKind.EXIT and here is not None:
            here.marks.append(Mark(at, f"QEMU exited ({event.get('status')})", "exit"))
        elif kind == EventKind.SUBTEST_BEGIN:
            begun[text_of(event, "subtest")] = at
        elif kind == EventKind.SUBTEST_END:
            name = text_of(event, "subtest")
            first = begun.pop(name, at)
            subtests.append(Span(first, at, name, "subtest", str(event.get("status", ""))))
    for fault in faults.values():
        for name in fault.get("targets", []):
            if (target := row(name)) is not None:
                target.spans.append(
                    Span(fault["start"], fault.get("end", end), fault["text"], "fault")
                )
    timeline = Timeline(start, end, list(rows.values()), subtests, None)
    timeline.failure = find_failure(timeline, results)
    return timeline


def find_failure(timeline: Timeline, results: list[SubtestResult]) -> Failure | None:
    """The first failed subtest and, inside it, the last failed command (on the node the
    failure names, when it names one); that command span is marked ``failing``."""
    failed = next((r for r in results if r.status.fails_run), None)
    if failed is None:
        return None
    band = next((s for s in timeline.subtests if s.label == failed.name), None)
    low, high = (band.start, band.end) if band else (timeline.start, timeline.end)
    candidates = [
        (span, row.name)
        for row in timeline.rows
        if not failed.node or row.name == failed.node
        for span in row.spans
        if span.kind == "command" and span.status != "0" and low <= span.start <= high
    ]
    if band is not None:
        band.failing = True
    if not candidates:
        return Failure(failed.name, failed.node, "", "", "", failed.message, high)
    span, node = max(candidates, key=lambda c: c[0].start)
    span.failing = True
    return Failure(
        failed.name, node, span.label, span.status, span.detail, failed.message, span.end
    )
