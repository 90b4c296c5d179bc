"""What a suite records about each test (``suite.json`` beside the merged JUnit file) and
the suite's exit code.

The exit code of ``suite`` and ``report merge`` (when the suite itself was not stopped:
then 130 SIGINT, 143 SIGTERM): 0 when every test passed (flaky too); 1 if any test failed;
else the worst (highest) exit code of a run (2 a run refused its input, 3 infrastructure,
124 a run's global timeout...), 3 for a test not run or whose code is not known."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from driver.atomic import write_atomic
from driver.errors import (
    EXIT_INFRA,
    EXIT_OK,
    EXIT_TEST_FAILURE,
    UsageError,
)

MANIFEST = "suite.json"
FORMAT = 1


class Status(StrEnum):
    """A test's outcome."""

    PASSED = "passed"
    FLAKY = "flaky"  # passed, after a failed attempt (--rerun-failed)
    FAILED = "failed"
    ERROR = "error"  # no verdict: bad input, infrastructure, timeout, killed
    NOT_RUN = "not run"  # the suite stopped before it started


@dataclass(frozen=True)
class RunRecord:
    """One test of a suite. ``run_dir``: its run's output directory relative to the
    directory of the ``suite.json`` listing it ("" when there is none)."""

    id: str
    status: Status
    seconds: float
    exit_code: int | None  # None: not run, or not known (a JUnit file merged by itself)
    run_dir: str = ""


def status_of(exit_code: int | None, flaky: bool) -> Status:
    """A run's status from its exit code (and whether a subtest passed only on a rerun)."""
    if exit_code is None:
        return Status.NOT_RUN
    if exit_code == EXIT_OK:
        return Status.FLAKY if flaky else Status.PASSED
    return Status.FAILED if exit_code == EXIT_TEST_FAILURE else Status.ERROR


def suite_exit_code(records: list[RunRecord]) -> int:
    """The suite's exit code (see the module's docstring)."""
    if any(r.status is Status.FAILED for r in records):
        return EXIT_TEST_FAILURE
    worst = EXIT_OK
    for record in records:
        if record.status in (Status.ERROR, Status.NOT_RUN):
            code = record.exit_code if record.exit_code not in (None, EXIT_OK) else EXIT_INFRA
            worst = max(worst, code)
    return worst


def counts(records: list[RunRecord]) -> dict[Status, int]:
    """How many tests ended in each status (every status, 0 too)."""
    return {s: sum(r.status is s for r in records) for s in Status}


def summary(records: list[RunRecord]) -> str:
    """``3 tests: 2 passed, 1 failed`` (statuses with none left out)."""
    parts = [f"{n} {s.value}" for s, n in counts(records).items() if n]
    return f"{len(records)} tests: " + (", ".join(parts) or "none")


def write_manifest(directory: Path, records: list[RunRecord]) -> Path:
    """``suite.json`` in ``directory``."""
    tests = [asdict(r) | {"status": r.status.value} for r in records]
    text = json.dumps({"format": FORMAT, "tests": tests}, indent=1)  # ASCII: any id
    path = directory / MANIFEST
    write_atomic(path, text + "\n")
    return path


def read_manifest(directory: Path) -> list[RunRecord]:
    """The records of ``directory/suite.json``."""
    path = directory / MANIFEST
    try:
        raw = json.loads(path.read_text())
        records = [
            RunRecord(
                str(t["id"]),
                Status(t["status"]),
                float(t["seconds"]),
                None if t["exit_code"] is None else int(t["exit_code"]),
                str(t["run_dir"]),
            )
            for t in raw["tests"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a suite record: {exc}") from None
    if raw.get("format") != FORMAT:
        raise UsageError(f"{path}: format {raw.get('format')!r}, this driver reads {FORMAT}")
    return records
