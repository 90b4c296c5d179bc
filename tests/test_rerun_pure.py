"""Pure logic of --rerun-failed: finding a subtest's body in its script, the snapshot name,
and the Surefire rerun records in JUnit (schema-checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driver.reports.report import SubtestResult, write_junit
from driver.run.snapshots import before_subtest, snapshot_tag
from driver.scriptrun.rerun import find_body
from junit_schema import junit_cases

SOURCE = """x = 1
with subtest("one"):
    x += 1
    y = x * 10
with subtest("two"):
    pass
"""


def test_find_body_compiles_the_with_block_at_its_line() -> None:
    body = find_body(SOURCE, "s.py", 2)
    assert body is not None
    env: dict[str, object] = {"x": 1}
    exec(body, env)
    assert env["x"] == 2 and env["y"] == 20
    assert find_body(SOURCE, "s.py", 3) is None  # not a with statement


def test_snapshot_names() -> None:
    assert before_subtest("boot and unit readiness") == "before-boot_and_unit_readiness"
    assert snapshot_tag("before:boot and unit readiness") == "before-boot_and_unit_readiness"
    assert snapshot_tag("mine") == "mine"


def test_junit_rerun_records(tmp_path: Path) -> None:
    flaky = SubtestResult("flaky", "s.py", 1.0, "flaky", "TestFailure: x", "TestFailure: x")
    flaky.attempts = [("TestFailure: first", "trace one", ["out one"])]
    broken = SubtestResult("broken", "s.py", 2.0, "failed", "trace", "TestFailure: b")
    broken.attempts = [
        ("TestFailure: b", "trace", ["a1"]),
        ("TestFailure: b2", "trace2", ["a2"]),
    ]
    path = tmp_path / "j.xml"
    write_junit([flaky, broken, SubtestResult("main", "s.py", 3.0)], "suite", path)
    cases = junit_cases(path)
    assert cases["flaky"].find("failure") is None
    assert cases["flaky"].find("flakyFailure").findtext("system-out") == "out one"  # type: ignore[union-attr]
    reruns = cases["broken"].findall("rerunFailure")
    assert [r.get("message") for r in reruns] == ["TestFailure: b2"]
    assert reruns[0].findtext("stackTrace") == "trace2"


def test_a_node_is_in_a_snapshot_until_one_of_that_name_leaves_it_out(tmp_path: Path) -> None:
    """The node's own record says which snapshots it is in: a restore starts a stopped
    node again only from one of those (a crashed node from the snapshot before the
    subtest; not from an older one of that name it was not in the last time)."""
    from types import SimpleNamespace

    from driver.run.snapshots import _save_frozen_at, saved_here

    control: Any = SimpleNamespace(state_dir=tmp_path)
    assert not saved_here(control, "before-x")
    _save_frozen_at(control, "before-x", 1.5)
    _save_frozen_at(control, "mine", 2.5)
    assert saved_here(control, "before-x") and saved_here(control, "mine")
    _save_frozen_at(control, "before-x", None)
    assert not saved_here(control, "before-x") and saved_here(control, "mine")
