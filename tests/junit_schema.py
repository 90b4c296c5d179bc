"""The JUnit XML shape that Jenkins' junit plugin and GitLab read (the widely used
junit-10.xsd: testsuites > testsuite > testcase, each testcase with at most one of failure,
error, skipped, plus system-out/system-err), checked on a report file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

# Maven Surefire's rerun records, which Jenkins' junit plugin and GitLab also read.
RERUNS = {"flakyFailure", "flakyError", "rerunFailure", "rerunError"}
CASE_CHILDREN = {"failure", "error", "skipped", "system-out", "system-err"} | RERUNS
OUTCOMES = {"failure", "error", "skipped"}


def _number(element: ET.Element, attribute: str, kind: type = float) -> None:
    value = element.get(attribute)
    if value is not None:
        kind(value)  # raises ValueError when it is not a number


def validate_junit(path: Path) -> ET.Element:
    """Parse ``path`` and assert the schema's rules; returns the root."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    assert root.tag in ("testsuites", "testsuite"), root.tag
    for suite in suites:
        assert suite.tag == "testsuite", suite.tag
        assert suite.get("name"), "a testsuite needs a name"
        for attribute in ("tests", "failures", "errors", "skipped"):
            _number(suite, attribute, int)
        _number(suite, "time")
        cases = [c for c in suite if c.tag == "testcase"]
        assert int(suite.get("tests", len(cases))) == len(cases)
        assert int(suite.get("failures", 0)) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors", 0)) == sum(c.find("error") is not None for c in cases)
        for case in cases:
            assert case.get("name"), "a testcase needs a name"
            _number(case, "time")
            tags = [child.tag for child in case]
            assert set(tags) <= CASE_CHILDREN, tags
            assert sum(t in OUTCOMES for t in tags) <= 1, tags
            if any(t.startswith("rerun") for t in tags):
                assert "failure" in tags or "error" in tags, "a rerun record needs a failure"
            if any(t.startswith("flaky") for t in tags):
                assert not set(tags) & OUTCOMES, "a flaky case passed in the end"
            for child in case:
                if child.tag in ("failure", "error"):
                    assert child.get("message") is not None or (child.text or "").strip()
                if child.tag in RERUNS:
                    assert child.get("message") is not None and child.find("stackTrace") is not None
    return root


def junit_cases(path: Path) -> dict[str, ET.Element]:
    """The report's testcases by name (validated first)."""
    root = validate_junit(path)
    return {c.get("name", ""): c for c in root.iter("testcase")}
