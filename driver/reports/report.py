"""Subtest results and the JUnit XML report (junit-xml). The report is well-formed XML
whatever a name, a message or a subtest's output holds: characters XML cannot hold (and
the C1 controls, line separators and non-characters junit-xml would drop silently) are
written as their escapes (``\\x1b``, ``\\x00``, a byte that was not UTF-8 as ``\\xff``),
and a text that had any ends with a line saying so (driver/text.py)."""

from __future__ import annotations

import contextlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from driver.atomic import write_atomic
from driver.errors import EXIT_TEST_FAILURE, Interrupted
from driver.text import noted_text, one_line


class SubtestStatus(StrEnum):
    """How a subtest (or a run's ``main`` case) ended."""

    PASSED = "passed"
    FAILED = "failed"  # a check did not hold
    ERROR = "error"  # anything else went wrong
    FLAKY = "flaky"  # failed, then passed on a rerun
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"  # failed, excused by a quarantine entry

    @property
    def fails_run(self) -> bool:
        """Whether a subtest that ended so fails the run."""
        return self in (SubtestStatus.FAILED, SubtestStatus.ERROR)


# The statuses that do not fail a run, in the order the summary line names them.
NOT_FAILED = tuple(s for s in SubtestStatus if not s.fails_run)


def count_statuses(results: list[SubtestResult]) -> dict[str, int]:
    """How many results ended in each status that does not fail a run, and ``failed``: how
    many did (failed or error)."""
    counts = {str(s): sum(r.status is s for r in results) for s in NOT_FAILED}
    counts["failed"] = sum(r.status.fails_run for r in results)
    return counts


def failure_status(exc: BaseException) -> SubtestStatus:
    """The one rule: FAILED for a check that did not hold (an AssertionError, TestFailure
    included, or what ends a run with the test-failure exit code), ERROR for the rest."""
    if isinstance(exc, AssertionError) or getattr(exc, "exit_code", None) == EXIT_TEST_FAILURE:
        return SubtestStatus.FAILED
    return SubtestStatus.ERROR


@dataclass
class SubtestResult:
    """The outcome of one subtest."""

    name: str
    script: str
    seconds: float
    status: SubtestStatus = SubtestStatus.PASSED
    message: str = ""
    summary: str = ""
    output: list[str] = field(default_factory=list)
    node: str = ""  # the node a failure is about, when there is one
    # With --rerun-failed: the failed attempts (summary, message, output) of a subtest
    # that was run again; status FLAKY when a rerun passed.
    attempts: list[tuple[str, str, list[str]]] = field(default_factory=list)
    # With --quarantine: the entry that excused the failure, or that expired.
    note: str = ""

    def __post_init__(self) -> None:
        self.status = SubtestStatus(self.status)  # "failed" read back is FAILED


def write_junit(results: list[SubtestResult], suite_name: str, path: Path) -> None:
    """One testcase per subtest, with time, failure message, skip reason, captured output;
    a quarantined failure is skipped, with its quarantine's reason and URL."""
    cases = []
    for result in results:
        case = TestCase(
            one_line(result.name),
            classname=one_line(f"{suite_name}.{Path(result.script).stem}"),
            elapsed_sec=result.seconds,
            stdout=noted_text("\n".join(result.output)),
        )
        summary, message = noted_text(result.summary), noted_text(result.message)
        if result.note and result.status is not SubtestStatus.QUARANTINED:
            summary += f" ({noted_text(result.note)})"
        if result.status is SubtestStatus.FAILED:
            case.add_failure_info(message=summary, output=message)
        elif result.status is SubtestStatus.ERROR:
            case.add_error_info(message=summary, output=message)
        elif result.status is SubtestStatus.SKIPPED:
            case.add_skipped_info(message=message)
        elif result.status is SubtestStatus.QUARANTINED:
            note = noted_text(result.note)
            case.add_skipped_info(message=f"{note}; it failed: {summary}", output=message)
        cases.append(case)
    suite = TestSuite(one_line(suite_name), cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = to_xml_report_string([suite], encoding="utf-8")
    if any(r.attempts for r in results):
        text = with_reruns(text, results)
    write_atomic(path, text.encode("utf-8"))


def with_reruns(text: str, results: list[SubtestResult]) -> str:
    """Add the failed attempts of rerun subtests as Maven Surefire writes them (Jenkins'
    junit plugin and GitLab read these): a flaky case (passed on a rerun) gets one
    ``flakyFailure`` per failed attempt, a case that failed every time keeps its
    ``failure`` and gets one ``rerunFailure`` per rerun."""
    root = ET.fromstring(text)
    for case, result in zip(root.iter("testcase"), results, strict=True):
        if not result.attempts:
            continue
        flaky = result.status is SubtestStatus.FLAKY
        extra = result.attempts if flaky else result.attempts[1:]
        tag = "flakyFailure" if flaky else "rerunFailure"
        position = next((i for i, c in enumerate(case) if c.tag.startswith("system-")), len(case))
        for offset, (summary, message, output) in enumerate(extra):
            summary = noted_text(summary)
            element = ET.Element(tag, message=summary, type=summary.split(":")[0])
            ET.SubElement(element, "stackTrace").text = noted_text(message)
            ET.SubElement(element, "system-out").text = noted_text("\n".join(output))
            case.insert(position + offset, element)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


class JunitReport:
    """The JUnit file of one run (``--junit-xml``), written once at the end whatever
    happened, with a ``main`` testcase for the whole run as the NixOS driver writes it:
    passed, or the error that ended the run outside any subtest (a pre-check error, no
    cluster, a failed build or boot, an interruption)."""

    def __init__(self, path: Path | None, suite: str) -> None:
        self.path = path
        self.suite = suite
        self.code: int | None = None

    def finish(self, code: int) -> int:
        """Record the run's exit code; returns it."""
        self.code = code
        return code

    @contextlib.contextmanager
    def around(self, results: list[SubtestResult], script: Path | None) -> Iterator[None]:
        """Write the report when the block ends, from ``results`` and how the block ended."""
        started = time.monotonic()
        main = SubtestResult("main", str(script or ""), 0.0)
        try:
            yield
        except BaseException as exc:
            main.status = failure_status(exc)
            main.summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
            main.message = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, Interrupted):
                main.message += "\nhealth: not scanned (interrupted)"
            raise
        finally:
            if self.code not in (None, 0, 1) and main.status is SubtestStatus.PASSED:
                main.status = SubtestStatus.ERROR
                main.summary = main.message = f"the run ended with exit code {self.code}"
            main.seconds = time.monotonic() - started
            if self.path is not None:
                cases = [r for r in results if r.name != "main"] + [
                    next((r for r in results if r.name == "main"), main)
                ]
                write_junit(cases, self.suite, self.path)
