"""Core dumps caught by systemd-coredump in a guest: listed by the health gate (each one a
finding naming the program and the signal), described and copied by the artifact export."""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass

from driver.triage.journal_export import since_option

CORE_DIR = "/var/lib/systemd/coredump"
# The core files of one export, at most this many bytes (a tar of them); larger is not copied.
CORE_FILES_CAP_BYTES = 64 * 1024 * 1024


def list_command(since_epoch: float | None) -> str:
    """A guest command printing the core dumps as coredumpctl's JSON, and nothing (no
    process started: builtins only) where no core file exists."""
    return (
        f"if compgen -G '{CORE_DIR}/core.*' >/dev/null; then "
        f"coredumpctl --json=short --no-pager list{since_option(since_epoch)} 2>/dev/null || :; "
        "fi"
    )


# systemd-coredump's instances while they write a core (cgroup v2, then v1): `?` stands for
# the backslash of `\x2d`.
WRITING = tuple(
    f"/sys/fs/cgroup{v1}/system.slice/system-systemd?x2dcoredump.slice/systemd-coredump@*"
    for v1 in ("", "/systemd")
)


def info_command(since_epoch: float | None, wait_seconds: float = 10.0) -> str:
    """A guest command describing every core dump (metadata and backtrace, when there is
    one), as ``coredumpctl info`` prints it, after waiting up to ``wait_seconds`` for
    cores being written. Builtins only where no core is being written or kept."""
    writing = " || ".join(f"compgen -G '{w}' >/dev/null" for w in WRITING)
    rounds = max(1, int(wait_seconds * 10))
    return (
        f"for ((i = 0; i < {rounds}; i++)); do {{ {writing}; }} || break; sleep 0.1; done; "
        f"if compgen -G '{CORE_DIR}/core.*' >/dev/null; then "
        f"coredumpctl info --no-pager{since_option(since_epoch)} 2>&1 || :; fi"
    )


def files_command(since_epoch: float | None, cap: int = CORE_FILES_CAP_BYTES) -> str:
    """A guest command writing a tar of the core files (newer than ``since_epoch``) to
    stdout, at most ``cap + 1`` bytes (a longer one is not kept)."""
    newer = "" if since_epoch is None else f" -newermt @{int(since_epoch)}"
    return (
        f"cd {CORE_DIR} 2>/dev/null && find . -maxdepth 1 -name 'core.*'{newer} -print0 | "
        f"tar --null -T - -cf - 2>/dev/null | head -c {cap + 1}"
    )


@dataclass(frozen=True)
class CoreDump:
    """One core dump as coredumpctl lists it."""

    pid: int
    signal: int
    executable: str
    microseconds: int  # when, since the epoch

    @property
    def evidence(self) -> str:
        """The health finding's text: the program, its pid and the signal."""
        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = "unknown signal"
        return (
            f"core dump: {self.executable} (pid {self.pid}) killed by signal {self.signal} ({name})"
        )


def parse_list(text: str, since_epoch: float | None = None) -> list[CoreDump]:
    """The core dumps in coredumpctl's ``--json=short`` output (from ``since_epoch`` on);
    text that is not that JSON gives none."""
    try:
        rows = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        return []
    dumps = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        dump = CoreDump(
            int(row.get("pid") or 0),
            int(row.get("sig") or 0),
            str(row.get("exe") or "?"),
            int(row.get("time") or 0),
        )
        if since_epoch is None or dump.microseconds >= since_epoch * 1e6:
            dumps.append(dump)
    return dumps
