"""Subtest results and the JUnit XML report (junit-xml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from driver.atomic import write_atomic


@dataclass
class SubtestResult:
    """The outcome of one subtest."""

    name: str
    script: str
    seconds: float
    status: str = "passed"  # passed | failed | skipped | error
    message: str = ""
    summary: str = ""
    output: list[str] = field(default_factory=list)


def write_junit(results: list[SubtestResult], suite_name: str, path: Path) -> None:
    """One testcase per subtest, with time, failure message, skip reason, captured output."""
    cases = []
    for result in results:
        case = TestCase(
            result.name,
            classname=f"{suite_name}.{Path(result.script).stem}",
            elapsed_sec=result.seconds,
            stdout="\n".join(result.output),
        )
        if result.status == "failed":
            case.add_failure_info(message=result.summary, output=result.message)
        elif result.status == "error":
            case.add_error_info(message=result.summary, output=result.message)
        elif result.status == "skipped":
            case.add_skipped_info(message=result.message)
        cases.append(case)
    suite = TestSuite(suite_name, cases)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, to_xml_report_string([suite], encoding="utf-8"))
