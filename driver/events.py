"""The run's one structured record: JSON lines (``events.jsonl`` in the output directory),
one event per line with its host time ``t`` (Unix seconds), ``kind`` and fields: the
driver's log lines and blocks, guest console and stderr lines, each guest command with
its status and duration, subtests, faults, snapshots, health findings, boots. The Logger
writes every line it prints here too; the HTML report is rendered from this file."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class EventLog:
    """An append-only JSON-lines file, safe to write from many threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] | None = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, kind: str, **fields: Any) -> None:
        """Append one event (``t`` defaults to now)."""
        event = {"t": fields.pop("t", None) or time.time(), "kind": kind, **fields}
        line = json.dumps(event, default=str, ensure_ascii=False)
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
    """Every complete event of ``path`` (a line cut short by a crash is skipped)."""
    events = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
    return events


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
