"""The run's one structured record: JSON lines (``events.jsonl`` in the output directory),
one event per line with its host time ``t`` (Unix seconds), ``kind`` and fields: the
driver's log lines and blocks, guest console and stderr lines, each guest command with
its status and duration, subtests, faults, snapshots, health findings, boots. The Logger
writes every line it prints here too; the HTML report is rendered from this file.

Every line is one JSON object whatever the text it carries: control characters, C1
controls, U+2028/U+2029 and non-characters are written as ``\\uXXXX`` escapes (no reader
sees a line break inside an event), and a lone surrogate (a byte that was not UTF-8,
decoded with ``surrogateescape``) is written as U+FFFD, with the field's raw bytes beside
it as base64 in ``<field>_bytes``."""

from __future__ import annotations

import base64
import contextlib
import enum
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from driver.safe_files import open_for_writing, output_dir
from driver.text import SURROGATES, UNSAFE, raw_bytes

BYTES_SUFFIX = "_bytes"  # beside a field that held bytes that were not UTF-8


class EventKind(enum.StrEnum):
    """Every kind of event in ``events.jsonl``: the one list the writers (the Logger and
    its callers), the timeline, report.html and bench/profile_smoke.py share."""

    DEBUG = "debug"  # a log line shown only at --log-level debug: text, node, depth
    LOG = "log"  # a log line: text, node, depth
    WARNING = "warning"  # text, node, depth
    ERROR = "error"  # text, depth
    BEGIN = "begin"  # a nested log block opens: text, node, depth
    END = "end"  # ... and closes: text, node, depth, duration
    CONSOLE = "console"  # a guest console line: node, text
    STDERR = "stderr"  # a line of a guest command's stderr: node, text
    SPAWN = "spawn"  # QEMU started: node, pid, restore
    READY = "ready"  # the backdoor answered: node, boot_seconds
    CPU = "cpu"  # CPU seconds a QEMU used so far: node, seconds, pid
    EXIT = "exit"  # QEMU exited: node, status
    COMMAND = "command"  # one guest command: node, command, status, duration, stdout
    SUBTEST_BEGIN = "subtest-begin"  # subtest, script
    SUBTEST_END = "subtest-end"  # subtest, status, duration, ...
    FAULT = "fault"  # a fault applied: id, fault, targets, text
    FAULT_UNDO = "fault-undo"  # id, text
    SNAPSHOT = "snapshot"  # name, nodes
    RESTORE = "restore"  # name, nodes
    HEALTH = "health"  # a health finding: node, text
    HEALTH_SCAN = "health-scan"  # duration, nodes
    ARTIFACTS = "artifacts"  # a node's journal and core dumps kept: node, ...


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return "\\ufffd" if SURROGATES.fullmatch(char) else json.dumps(char, ensure_ascii=True)[1:-1]


def event_line(kind: EventKind, t: float, fields: dict[str, Any]) -> str:
    """One event as one line of JSON (no newline), valid and UTF-8-encodable whatever its
    fields hold (see the module's docstring)."""
    event: dict[str, Any] = {"t": t, "kind": str(kind)}
    for key, value in fields.items():
        event[key] = value
        if isinstance(value, str) and SURROGATES.search(value):
            event[key + BYTES_SUFFIX] = base64.b64encode(raw_bytes(value)).decode("ascii")
    try:
        line = json.dumps(event, default=str, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # NaN, a cycle, an odd key: each field as its text
        line = json.dumps({str(k): str(v) for k, v in event.items()}, ensure_ascii=False)
    return UNSAFE.sub(_escape, line)


class EventLog:
    """An append-only JSON-lines file, safe to write from many threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        output_dir(path.parent)
        self._handle: IO[str] | None = open_for_writing(path)
        self._lock = threading.Lock()

    def write(self, kind: EventKind, **fields: Any) -> None:
        """Append one event (``t`` defaults to now)."""
        line = event_line(kind, fields.pop("t", None) or time.time(), fields)
        with self._lock:
            if self._handle is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._handle.write(line + "\n")

    def close(self) -> None:
        """Flush and close the file (later writes are dropped)."""
        with self._lock:
            if self._handle is not None:
                with contextlib.suppress(OSError):
                    self._handle.close()
                self._handle = None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event of ``path`` (a line cut short by a crash is skipped). Lines
    end at LF only: no other character breaks a line of this file."""
    events = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict) and "kind" in event and "t" in event:
                    events.append(event)
    return events


def text_of(event: dict[str, Any], key: str) -> str:
    """Field ``key`` of ``event`` as the driver had it: from its raw bytes when it held
    some that were not UTF-8 (``surrogateescape`` text), else the field as text."""
    raw = event.get(key + BYTES_SUFFIX)
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            return base64.b64decode(raw, validate=True).decode("utf-8", "surrogateescape")
    value = event.get(key)
    return "" if value is None else value if isinstance(value, str) else str(value)


@contextlib.contextmanager
def recording(sinks: list[EventLog], path: Path) -> Iterator[EventLog]:
    """Record into ``path`` for the block: the log is appended to ``sinks`` (the Logger's
    list) and removed and closed afterwards."""
    log = EventLog(path)
    sinks.append(log)
    try:
        yield log
    finally:
        sinks.remove(log)
        log.close()
