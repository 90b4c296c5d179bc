"""One JUnit file for many runs: one ``testsuite`` per test, named by its id, holding the
run's own testcases as its JUnit file wrote them (failures, errors, skips, Surefire's
``flakyFailure``/``rerunFailure``, captured output), sorted by id, each suite's time as
given. A suite run writes it (``DIR/junit.xml`` with ``index.html`` and ``suite.json``),
and ``report merge`` writes the same from the output directories of several suite runs
(CI shards) or plain run directories holding a ``junit.xml`` (a Nix check's ``result``)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path

from driver.atomic import write_atomic
from driver.errors import UsageError
from driver.suite.index import write_index
from driver.suite.records import (
    MANIFEST,
    RunRecord,
    Status,
    read_manifest,
    write_manifest,
)
from driver.text import one_line

JUNIT = "junit.xml"
OUTCOMES = ("failure", "error", "skipped")


@dataclass(frozen=True)
class Entry:
    """One test's record, where its run's files are (None: nowhere), its testsuite."""

    record: RunRecord
    run_dir: Path | None
    suite: ET.Element


def read_suites(path: Path) -> list[ET.Element]:
    """The ``testsuite`` elements of a JUnit file ([] when it is missing or unreadable)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def has(suite: ET.Element, tag: str) -> bool:
    """Whether any testcase of ``suite`` has a ``tag`` element."""
    return any(case.find(tag) is not None for case in suite.iter("testcase"))


def recount(suite: ET.Element, seconds: float | None = None) -> ET.Element:
    """Set a testsuite's counts from its testcases (and its time, when given)."""
    cases = list(suite.iter("testcase"))
    suite.set("tests", str(len(cases)))
    for outcome, attribute in zip(OUTCOMES, ("failures", "errors", "skipped"), strict=True):
        suite.set(attribute, str(sum(c.find(outcome) is not None for c in cases)))
    if seconds is not None:
        suite.set("time", f"{seconds:.3f}")
    return suite


def suite_element(
    test_id: str, found: list[ET.Element], seconds: float, why_none: str
) -> ET.Element:
    """The testsuite of one test: the contents of the testsuites ``found`` in its run's
    JUnit file under the name ``test_id``; without any testcase, one ``main`` testcase
    saying ``why_none`` (an error, or a skip when the test was not run)."""
    suite = ET.Element("testsuite", name=one_line(test_id))
    for one in found:
        for key, value in one.attrib.items():  # timestamp, hostname...: the first run's
            if key not in suite.attrib:
                suite.set(key, value)
        suite.extend(list(one))
    suite.set("name", one_line(test_id))
    if suite.find("testcase") is None:
        case = ET.SubElement(suite, "testcase", name="main", classname="photon-driver.suite")
        case.set("time", "0.000")
        tag = "skipped" if why_none.startswith("not run") else "error"
        ET.SubElement(case, tag, message=one_line(why_none), type=tag)
    return recount(suite, seconds)


def status_from_junit(suite: ET.Element) -> Status:
    """A run's status read from its testsuite alone (no exit code known)."""
    if has(suite, "failure"):
        return Status.FAILED
    if has(suite, "error"):
        return Status.ERROR
    return Status.FLAKY if has(suite, "flakyFailure") else Status.PASSED


def merged_junit(entries: list[Entry]) -> bytes:
    """The merged JUnit document: the entries' testsuites sorted by test id."""
    root = ET.Element("testsuites")
    suites = [e.suite for e in sorted(entries, key=lambda e: e.record.id)]
    root.extend(suites)
    totals = {a: sum(int(s.get(a, "0")) for s in suites) for a in ("tests", "failures")}
    totals |= {a: sum(int(s.get(a, "0")) for s in suites) for a in ("errors", "skipped")}
    for attribute, value in totals.items():
        root.set(attribute, str(value))
    root.set("time", f"{sum(float(s.get('time', '0')) for s in suites):.3f}")
    ET.indent(root, space="\t")
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"


def load(directory: Path) -> list[Entry]:
    """The tests of a suite output directory (``suite.json`` + ``junit.xml``), or of a
    plain run directory holding a ``junit.xml`` (one test, named after the directory)."""
    if (directory / MANIFEST).is_file():
        suites = {s.get("name", ""): s for s in read_suites(directory / JUNIT)}
        entries = []
        for record in read_manifest(directory):
            run_dir = directory / record.run_dir if record.run_dir else None
            suite = suites.get(record.id)
            if suite is None:
                why = f"no testsuite {record.id!r} in {directory / JUNIT}"
                suite = suite_element(record.id, [], record.seconds, why)
            entries.append(Entry(record, run_dir, suite))
        return entries
    junit = directory / JUNIT
    found = read_suites(junit)
    if not found:
        raise UsageError(f"{directory}: neither a suite output ({MANIFEST}) nor a run ({JUNIT})")
    seconds = sum(float(s.get("time", "0") or 0) for s in found)
    name = directory.absolute().name  # a Nix ``result`` link: the link's own name
    suite = suite_element(name, found, seconds, "")
    record = RunRecord(name, status_from_junit(suite), seconds, None)
    return [Entry(record, directory, suite)]


def run_entries(records: list[RunRecord]) -> list[Entry]:
    """The entries of a suite's own runs (``run_dir`` each record's output folder, where
    its run wrote ``junit.xml``)."""
    entries = []
    for record in records:
        run_dir = Path(record.run_dir) if record.run_dir else None
        ran = run_dir is not None and record.status is not Status.NOT_RUN
        found = read_suites(run_dir / JUNIT) if ran and run_dir is not None else []
        if record.status is Status.NOT_RUN:
            why = "not run: the suite was stopped before it started"
        else:
            why = f"the run ended with exit code {record.exit_code} and wrote no JUnit file"
        entries.append(Entry(record, run_dir, suite_element(record.id, found, record.seconds, why)))
    return entries


def write_report(out: Path, entries: list[Entry], title: str) -> tuple[Path, Path]:
    """``junit.xml``, ``index.html`` and ``suite.json`` in ``out``; an id found twice
    is a UsageError. Returns the JUnit file and the index."""
    seen: set[str] = set()
    for entry in entries:
        if entry.record.id in seen:
            raise UsageError(f"test {entry.record.id!r} is in more than one input")
        seen.add(entry.record.id)
    entries = sorted(entries, key=lambda e: e.record.id)
    out.mkdir(parents=True, exist_ok=True)
    records = [
        replace(
            e.record,
            run_dir="" if e.run_dir is None else os.path.relpath(e.run_dir, out),
        )
        for e in entries
    ]
    junit = out / JUNIT
    write_atomic(junit, merged_junit(entries))
    index = write_index(out / "index.html", [(e.record, e.run_dir) for e in entries], title)
    write_manifest(out, records)
    return junit, index


def merge(out: Path, directories: list[Path], title: str = "photon-driver report") -> list[Entry]:
    """``report merge``: the report of every test in ``directories``, written to ``out``."""
    entries = [entry for directory in directories for entry in load(directory)]
    write_report(out, entries, title)
    return entries
