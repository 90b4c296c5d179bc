"""A node's journal, exported in journald's export format, then kept as a journal file
(``journalctl --file``, where the host has ``systemd-journal-remote``) and as plain text.

The guest runs one ``journalctl -o export``; the host keeps the newest ``cap`` bytes of it
(whole entries) and says what it cut."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# The newest this many bytes of a journal export are kept per export.
JOURNAL_CAP_BYTES = 16 * 1024 * 1024
JOURNAL_REMOTE = ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")


def since_option(since_epoch: float | None) -> str:
    """``--since=@T`` for journalctl and coredumpctl, or nothing."""
    return "" if since_epoch is None else f" --since=@{int(since_epoch)}"


def export_command(since_epoch: float | None, cap: int = JOURNAL_CAP_BYTES) -> str:
    """The guest command: the journal (since ``since_epoch``, host seconds, when given) in
    export format, its last ``cap + 1`` bytes (one more than kept, so a cut shows)."""
    return f"journalctl -o export --no-pager{since_option(since_epoch)} | tail -c {cap + 1}"


@dataclass(frozen=True)
class JournalExport:
    """Whole export-format entries, and how many bytes of older entries were cut."""

    data: bytes
    cut_bytes: int

    @classmethod
    def from_tail(cls, raw: bytes, cap: int = JOURNAL_CAP_BYTES) -> JournalExport:
        """The export from the tail the guest sent: when longer than ``cap``, the older
        part (up to the first whole entry) is dropped."""
        if len(raw) <= cap:
            return cls(raw, 0)
        start = raw.find(b"\n\n", len(raw) - cap)
        kept = b"" if start < 0 else raw[start + 2 :]
        return cls(kept, len(raw) - len(kept))

    def entries(self) -> Iterator[dict[str, bytes]]:
        """Each entry's fields (a binary field's value as its bytes)."""
        data, at = self.data, 0
        entry: dict[str, bytes] = {}
        while at < len(data):
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end
            line = data[at:end]
            if not line:
                if entry:
                    yield entry
                entry, at = {}, end + 1
                continue
            name, eq, value = line.partition(b"=")
            if eq:
                entry[name.decode("ascii", "replace")] = value
                at = end + 1
                continue
            # A binary field: its name, a newline, a little-endian 64-bit size, the data.
            if end + 9 > len(data):
                break
            (size,) = struct.unpack("<Q", data[end + 1 : end + 9])
            entry[name.decode("ascii", "replace")] = data[end + 9 : end + 9 + size]
            at = end + 9 + size + 1
        if entry:
            yield entry

    def as_text(self) -> str:
        """One line per entry as ``journalctl -o short-precise`` prints it (UTC)."""
        lines = []
        for entry in self.entries():
            stamp = entry.get("__REALTIME_TIMESTAMP", b"0")
            when = datetime.fromtimestamp(int(stamp or b"0") / 1e6, UTC)
            who = entry.get("SYSLOG_IDENTIFIER") or entry.get("_COMM") or b"?"
            pid = entry.get("_PID") or entry.get("SYSLOG_PID")
            host = entry.get("_HOSTNAME", b"")
            message = entry.get("MESSAGE", b"").decode("utf-8", "replace")
            label = who.decode("utf-8", "replace") + (f"[{pid.decode()}]" if pid else "")
            lines.append(
                f"{when:%b %d %H:%M:%S.%f} {host.decode('utf-8', 'replace')} {label}: {message}"
            )
        return "\n".join(lines) + ("\n" if lines else "")


def journal_remote() -> str | None:
    """The host's ``systemd-journal-remote``, if installed."""
    found = shutil.which("systemd-journal-remote")
    return found or next((p for p in JOURNAL_REMOTE if Path(p).exists()), None)


def write_journal_file(export: Path, target: Path, timeout: float = 60.0) -> str | None:
    """Turn the export file into a journal file at ``target`` (must end in ``.journal``);
    returns why not when it cannot (no ``systemd-journal-remote`` on the host, or its
    error)."""
    tool = journal_remote()
    if tool is None:
        return "systemd-journal-remote is not installed on the host"
    done = subprocess.run(
        [tool, f"--output={target}", str(export)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0 or not target.exists():
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return None
