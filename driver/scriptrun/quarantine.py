"""``--quarantine FILE``: known-flaky subtests tolerated until a date, as kola's denylist
snoozes a test. The file is TOML::

    [[quarantine]]
    subtest = "etcd: a crashed member rejoins"   # a regular expression (re.search)
    reason = "the member sometimes needs a second election"
    url = "https://tracker.example/issues/123"
    until = 2025-12-31                           # a TOML date, or "2025-12-31"

A failure of a subtest that matches an entry is reported as *quarantined* (it does not
fail the run) while today is on or before ``until``; afterwards it fails as usual and says
that the quarantine expired on that date."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.errors import UsageError
from driver.log import Logger
from driver.reports.report import SubtestResult, SubtestStatus

FIELDS = ("subtest", "reason", "url", "until")


@dataclass(frozen=True)
class QuarantineEntry:
    """One ``[[quarantine]]`` entry."""

    subtest: re.Pattern[str]
    reason: str
    url: str
    until: dt.date

    def active(self, today: dt.date) -> bool:
        """Whether the entry still excuses a failure on ``today`` (its last day included)."""
        return today <= self.until

    def describe(self) -> str:
        """``REASON (URL)``, for the report."""
        return f"{self.reason} ({self.url})" if self.url else self.reason


@dataclass(frozen=True)
class Quarantine:
    """The entries of one quarantine file."""

    path: Path
    entries: tuple[QuarantineEntry, ...]

    def match(self, subtest: str) -> QuarantineEntry | None:
        """The first entry whose pattern matches ``subtest``, if any."""
        return next((e for e in self.entries if e.subtest.search(subtest)), None)


def _date(value: Any, where: str) -> dt.date:
    """A TOML date (or ``YYYY-MM-DD`` text) of field ``where``."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UsageError(f"{where}: not a date YYYY-MM-DD: {value!r}")


def _entry(raw: Any, where: str) -> QuarantineEntry:
    """One checked ``[[quarantine]]`` table (``where`` names it in an error)."""
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: a table with {', '.join(FIELDS)}")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise UsageError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(FIELDS)})")
    for name in FIELDS:
        if name not in raw:
            raise UsageError(f"{where}.{name}: missing")
    for name in ("subtest", "reason", "url"):
        if not isinstance(raw[name], str):
            raise UsageError(f"{where}.{name}: not a string: {raw[name]!r}")
    if not raw["subtest"] or not raw["reason"].strip():
        empty = "subtest" if not raw["subtest"] else "reason"
        raise UsageError(f"{where}.{empty}: empty")
    try:
        pattern = re.compile(raw["subtest"])
    except re.error as exc:
        raise UsageError(f"{where}.subtest: bad regular expression: {exc}") from None
    until = _date(raw["until"], f"{where}.until")
    return QuarantineEntry(pattern, raw["reason"].strip(), raw["url"].strip(), until)


def load_quarantine(path: Path) -> Quarantine:
    """Read and check a quarantine file; every problem is a UsageError of one line that
    names the file and the field (``q.toml: quarantine[2].until: not a date ...``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: quarantine file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the quarantine file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"quarantine"})
    if unknown:
        raise UsageError(f"{path}: {unknown[0]}: unknown key (expected [[quarantine]] entries)")
    raw = data.get("quarantine", [])
    if not isinstance(raw, list):
        raise UsageError(f"{path}: quarantine: expected [[quarantine]] entries")
    entries = tuple(_entry(item, f"{path}: quarantine[{n}]") for n, item in enumerate(raw, 1))
    return Quarantine(path, entries)


def judge_failure(
    quarantine: Quarantine | None, result: SubtestResult, logger: Logger, today: dt.date
) -> bool:
    """After ``result``'s subtest failed: True when a quarantine entry still excuses it
    (the result is then ``quarantined``, with the entry in its ``note``, and a warning
    says so); an expired entry leaves it failed, its note and an error line saying the
    quarantine expired."""
    entry = None if quarantine is None else quarantine.match(result.name)
    if entry is None:
        return False
    if entry.active(today):
        result.note = f"quarantined until {entry.until}: {entry.describe()}"
        result.status = SubtestStatus.QUARANTINED
        logger.warning(f"subtest '{result.name}' failed but is {result.note}")
        return True
    result.note = f"quarantine expired on {entry.until}: {entry.describe()}"
    logger.error(f"subtest '{result.name}' failed and its {result.note}")
    return False
