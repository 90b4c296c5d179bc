"""Each node's journal and core dumps, kept in the run's output directory
(``<out>/nodes/<node>/``): ``NN-REASON.journal`` (``journalctl --file``; the raw
``NN-REASON.export`` where the host cannot convert it), ``NN-REASON.txt``, and, when
systemd-coredump caught any, ``NN-REASON-coredumps.txt`` and the core files under
``cores/``."""

from __future__ import annotations

import io
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from driver.errors import DriverError
from driver.events import EventKind
from driver.log import Logger
from driver.machine.node import Node
from driver.safe_files import create_new, output_dir
from driver.triage import coredumps
from driver.triage.journal_export import (
    JOURNAL_CAP_BYTES,
    JournalExport,
    export_command,
    write_journal_file,
)

# Guest and host clocks may differ by this much: a window's start is moved back by it.
CLOCK_SLACK_SECONDS = 2.0
EXPORT_TIMEOUT_SECONDS = 30.0


@dataclass
class NodeExport:
    """What one export of one node wrote, and what it could not keep."""

    node: str
    reason: str
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Artifacts:
    """The journals and core dumps of one run's nodes: the whole boot, or on an attached
    cluster the run's own time (``window_from``)."""

    def __init__(self, out_dir: Path, logger: Logger) -> None:
        self.root = out_dir / "nodes"
        self.logger = logger
        self.since: float | None = None
        self.exports: list[NodeExport] = []
        self._lock = threading.Lock()
        self._numbers: dict[str, int] = {}

    def window_from(self, epoch: float) -> None:
        """Take only what happened from ``epoch`` (host seconds) on."""
        self.since = epoch - CLOCK_SLACK_SECONDS

    def _stem(self, node: str, reason: str) -> str:
        """The next file stem of ``node``'s exports: ``01-failure``, ``02-end``..."""
        with self._lock:
            self._numbers[node] = self._numbers.get(node, 0) + 1
            return f"{self._numbers[node]:02d}-{reason}"

    def export(self, machine: Node, reason: str) -> NodeExport | None:
        """Keep ``machine``'s journal and core dumps now (a node that is not up has none to
        give: None). A node that does not answer within EXPORT_TIMEOUT_SECONDS is a
        warning, never an error."""
        if not machine.is_up():
            return None
        done = NodeExport(machine.name, reason)
        try:
            folder = output_dir(output_dir(self.root) / machine.name)
            stem = self._stem(machine.name, reason)
            self._journal(machine, folder, stem, done)
            self._core_dumps(machine, folder, stem, done)
        except (DriverError, TimeoutError, OSError) as exc:
            done.notes.append(f"journal export ({reason}) failed: {exc}")  # logged below
        with self._lock:
            self.exports.append(done)
        self.logger.event(
            EventKind.ARTIFACTS,
            node=machine.name,
            reason=reason,
            files=[str(f) for f in done.files],
            notes=done.notes,
        )
        for note in done.notes:
            self.logger.warning(note, node=machine.name)
        return done

    def _journal(self, machine: Node, folder: Path, stem: str, done: NodeExport) -> None:
        """The journal as a journal file (or the raw export) and as text."""
        result = machine.run_logged(
            export_command(self.since, JOURNAL_CAP_BYTES), timeout=EXPORT_TIMEOUT_SECONDS
        )
        export = JournalExport.from_tail(result.stdout_bytes, JOURNAL_CAP_BYTES)
        if export.cut_bytes:
            done.notes.append(
                f"journal export cut: the oldest {export.cut_bytes} bytes were dropped "
                f"(the newest {JOURNAL_CAP_BYTES} are kept)"
            )
        raw = folder / f"{stem}.export"
        with create_new(raw) as out:
            out.write(export.data)
        text = folder / f"{stem}.txt"
        with create_new(text) as out:
            out.write(export.as_text().encode())
        journal = folder / f"{stem}.journal"
        why_not = write_journal_file(raw, journal) if export.data else "the journal is empty"
        if why_not is None:
            raw.unlink()
            done.files.append(journal)
        else:
            done.files.append(raw)
            done.notes.append(f"no journal file ({why_not}): the export is kept as {raw.name}")
        done.files.append(text)

    def _core_dumps(self, machine: Node, folder: Path, stem: str, done: NodeExport) -> None:
        """coredumpctl's description of every core dump, and the core files not kept yet."""
        info = machine.run_logged(
            coredumps.info_command(self.since), timeout=EXPORT_TIMEOUT_SECONDS
        )
        if not info.stdout.strip():
            return
        described = folder / f"{stem}-coredumps.txt"
        with create_new(described) as out:
            out.write(info.stdout_bytes)
        done.files.append(described)
        tar = machine.run_logged(
            coredumps.files_command(self.since), timeout=EXPORT_TIMEOUT_SECONDS
        ).stdout_bytes
        if len(tar) > coredumps.CORE_FILES_CAP_BYTES:
            done.notes.append(
                f"core files not copied: more than {coredumps.CORE_FILES_CAP_BYTES} bytes "
                f"(see {described.name})"
            )
            return
        cores = output_dir(folder / "cores")
        try:
            with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
                for member in archive.getmembers():
                    target = cores / Path(member.name).name
                    if member.isfile() and not target.exists():
                        archive.extract(member, cores, filter="data")
                        done.files.append(target)
        except tarfile.TarError as exc:
            done.notes.append(f"core files not copied: {exc}")
