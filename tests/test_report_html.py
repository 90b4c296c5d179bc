"""report.html from a made-up event log (pure rendering, opened in headless Chromium): the
real-run browser test is in test_rerun.py."""

from __future__ import annotations

import json
from pathlib import Path

from browser import dom, with_class
from driver.reports.report import SubtestResult
from driver.reports.report_html import write_report

EVENTS = [
    {"t": 100.0, "kind": "spawn", "node": "a"},
    {"t": 100.0, "kind": "spawn", "node": "b"},
    {"t": 110.0, "kind": "ready", "node": "a", "boot_seconds": 10.0},
    {"t": 111.0, "kind": "ready", "node": "b", "boot_seconds": 11.0},
    {"t": 112.0, "kind": "subtest-begin", "subtest": "ok"},
    {"t": 112.5, "kind": "command", "node": "a", "command": "true", "status": 0, "duration": 0.1},
    {
        "t": 113.0,
        "kind": "fault",
        "id": 7,
        "fault": "partition",
        "targets": ["a", "b"],
        "text": "partition a | b",
    },
    {"t": 115.0, "kind": "fault-undo", "id": 7, "text": "partition a | b"},
    {"t": 115.5, "kind": "subtest-end", "subtest": "ok", "status": "passed", "duration": 3.5},
    {"t": 116.0, "kind": "snapshot", "name": "s1", "nodes": ["a", "b"]},
    {"t": 117.0, "kind": "subtest-begin", "subtest": "bad <one>"},
    {"t": 117.2, "kind": "console", "node": "a", "text": "a says <hello>"},
    {
        "t": 117.5,
        "kind": "command",
        "node": "b",
        "command": "exit 4",
        "status": 4,
        "duration": 0.2,
        "stdout": "partial",
    },
    {"t": 117.6, "kind": "console", "node": "b", "text": "kernel: b is unwell"},
    {
        "t": 118.0,
        "kind": "subtest-end",
        "subtest": "bad <one>",
        "status": "failed",
        "node": "b",
        "duration": 1.0,
    },
]


def test_report_marks_the_failing_step_and_draws_the_timeline(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS) + '{"t": 1, "kin')
    results = [
        SubtestResult("ok", "s.py", 3.5, output=["subtest: ok", "a # a guest line"]),
        SubtestResult(
            "bad <one>",
            "s.py",
            1.0,
            "failed",
            "command `exit 4` failed (exit code 4)",
            "TestFailure: x",
            node="b",
        ),
    ]
    vm_log = tmp_path / "a" / "vm.log"
    vm_log.parent.mkdir()
    vm_log.write_text("console\n")
    page = write_report(
        tmp_path / "report.html", events, results, ["a", "b"], "t", {"a console": vm_log}
    )
    text, elements = dom(page)
    assert [r["data-node"] for r in with_class(elements, "node-row")] == ["a", "b"]
    failing = [f for f in with_class(elements, "failing") if "command" in f["class"].split()]
    assert [f["data-node"] for f in failing] == ["b"]
    assert len(with_class(elements, "fault")) == 2 and len(with_class(elements, "boot")) == 2
    assert len(with_class(elements, "snapshot")) == 2
    section = next(a for _, a in elements if a.get("id") == "failure")
    assert section["data-node"] == "b" and section["data-subtest"] == "bad <one>"
    # Both nodes' console around the failing moment, escaped; driver and guest lines apart.
    assert "a says &lt;hello&gt;" in text and "kernel: b is unwell" in text
    assert with_class(elements, "guest") and with_class(elements, "driver")
    assert 'href="a/vm.log"' in text and 'id="count-failed">1 failed' in text
