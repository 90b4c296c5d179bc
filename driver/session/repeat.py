"""``run --repeat N``: the same run N times to shake out races, each a whole run as without
the flag (fresh nodes, from the settled snapshot with ``--settled`` or a ``fresh-*`` verb;
or the attached cluster with ``--reuse``), each with its own outputs and report.html in
``<output>/run-K``; then each subtest's pass rate, printed and written to ``repeat.json``
and ``repeat.html``; with ``--junit-xml`` one file holding every repetition's suite."""

from __future__ import annotations

import copy
import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from driver.atomic import write_atomic
from driver.errors import EXIT_OK
from driver.reports.report import SubtestResult, SubtestStatus
from driver.session.invocation import Invocation
from driver.text import visible_text

RunOnce = Callable[[Invocation, list[SubtestResult]], int]


def run_repeated(inv: Invocation, times: int, run_once: RunOnce) -> int:
    """Run ``times`` times; returns 0 when every repetition passed, else the first
    failing repetition's code (an interruption ends the loop at once)."""
    base = inv.options.output_dir or inv.state / "repeat"
    junit = inv.options.junit_xml
    rates: dict[str, list[SubtestStatus]] = {}
    codes: list[int] = []
    parts: list[Path] = []
    for number in range(1, times + 1):
        out = Path(base) / f"run-{number}"
        once = copy.copy(inv)
        once.options = inv.options.repetition_of(number, out)
        results: list[SubtestResult] = []
        with inv.logger.nested(f"repetition {number} of {times}"):
            codes.append(run_once(once, results))
        for result in results:
            rates.setdefault(result.name, []).append(result.status)
        if junit is not None:
            parts.append(out / "junit.xml")
    table = pass_rates(rates)
    for line in table:
        inv.logger.log(line)
    write_summary(Path(base), rates, codes)
    if junit is not None:
        merge_junit(parts, junit)
    return next((c for c in codes if c != EXIT_OK), EXIT_OK)


def passes(statuses: list[SubtestStatus]) -> int:
    """How many of the runs passed (flaky ones too)."""
    return sum(s in (SubtestStatus.PASSED, SubtestStatus.FLAKY) for s in statuses)


def pass_rates(rates: dict[str, list[SubtestStatus]]) -> list[str]:
    """One line per subtest: passed (flaky counted apart) of runs."""
    lines = ["pass rate per subtest:"]
    for name, statuses in rates.items():
        good = passes(statuses)
        flaky = statuses.count(SubtestStatus.FLAKY)
        note = f" ({flaky} flaky)" if flaky else ""
        lines.append(f"  {good}/{len(statuses)} {100 * good / len(statuses):5.1f}%  {name}{note}")
    return lines


def write_summary(base: Path, rates: dict[str, list[SubtestStatus]], codes: list[int]) -> None:
    """``repeat.json`` and ``repeat.html`` (the pass-rate table, links to each report)."""
    base.mkdir(parents=True, exist_ok=True)
    doc = {"exit_codes": codes, "subtests": rates}
    write_atomic(base / "repeat.json", json.dumps(doc, indent=2) + "\n")
    rows = "".join(
        f"<tr><td>{html.escape(visible_text(name))}</td><td>{passes(st)}/"
        f"{len(st)}</td><td>{st.count(SubtestStatus.FLAKY)}</td><td>{' '.join(map(html.escape, st))}</td></tr>"
        for name, st in rates.items()
    )
    links = "".join(
        f'<li><a href="run-{n}/report.html">run {n}</a> (exit {code})</li>'
        for n, code in enumerate(codes, start=1)
    )
    write_atomic(
        base / "repeat.html",
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>repeat</title>'
        '</head><body><h1>Pass rate per subtest</h1><table id="pass-rates"><tr><th>subtest'
        f"</th><th>passed</th><th>flaky</th><th>each run</th></tr>{rows}</table>"
        f"<h2>Reports</h2><ul>{links}</ul></body></html>\n",
    )


def merge_junit(parts: list[Path], target: Path) -> None:
    """One JUnit file with every repetition's testsuite (named ``... run K``)."""
    root = ET.Element("testsuites")
    for number, part in enumerate(parts, start=1):
        try:
            suites = ET.parse(part).getroot()
        except (OSError, ET.ParseError):
            continue
        for suite in suites.iter("testsuite"):
            suite.set("name", f"{suite.get('name', 'photon-driver')} run {number}")
            root.append(suite)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, ET.tostring(root, encoding="utf-8", xml_declaration=True))
