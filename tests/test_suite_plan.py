"""The suite's pure parts (issue 34): shards (stable, disjoint, covering, balanced by
durations), the memory budget, the exit code, and the merge keeping flaky and rerun marks
and properties, from JUnit files written here (nothing runs)."""

from __future__ import annotations

import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from driver.errors import UsageError
from driver.suite.budget import Host, Need, choose_jobs
from driver.suite.merge import merge
from driver.suite.plan import Shard, SuiteTest, assign, read_durations, select
from driver.suite.records import RunRecord, Status, suite_exit_code
from driver.suite.runner import Launch, Pool
from driver.wait import wait_until


def suite_of(*ids: str) -> list[SuiteTest]:
    """Suite tests with these ids (their scripts need not exist)."""
    return [SuiteTest(i, Path(f"/s/{i}.py"), Path("/s")) for i in ids]


@pytest.mark.parametrize("total", [1, 2, 3, 7])
def test_shards_cover_every_test_once(total: int) -> None:
    tests = suite_of(*(f"t{i}" for i in range(20)))
    chosen = [t.id for i in range(1, total + 1) for t in select(tests, Shard(i, total), {})]
    assert sorted(chosen) == sorted(t.id for t in tests)
    sizes = [len(select(tests, Shard(i, total), {})) for i in range(1, total + 1)]
    assert max(sizes) - min(sizes) <= 1


def test_a_shard_keeps_its_tests_when_others_are_added() -> None:
    tests = suite_of("a", "b", "c", "d")
    first = [t.id for t in select(tests, Shard(1, 2), {})]
    assert first == [t.id for t in select(list(reversed(tests)), Shard(1, 2), {})]


def test_durations_balance_the_shards() -> None:
    tests = suite_of("long", "a", "b", "c", "new")
    durations = {"long": 100.0, "a": 30.0, "b": 30.0, "c": 30.0}
    shards = assign(tests, 2, durations)
    loads = [0.0, 0.0]
    for test, shard in zip(tests, shards, strict=True):
        loads[shard] += durations.get(test.id, 30.0)
    assert sorted(loads) == [100.0, 120.0]
    assert shards[0] != shards[1]  # the longest alone with one other at most


def test_durations_from_a_merged_junit(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite name="a" time="3.5"/><testsuite name="b" time="x"/></testsuites>'
    )
    assert read_durations(tmp_path) == {"a": 3.5}
    with pytest.raises(UsageError, match="--durations"):
        read_durations(tmp_path / "none.xml")


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shard(text: str) -> None:
    with pytest.raises(ValueError):
        Shard.parse(text)


def test_memory_budget() -> None:
    needs = [Need(f"t{i}", 1, 1224, 1) for i in range(3)]
    assert choose_jobs(2, needs, Host(2, 4000))[0] == 2
    assert choose_jobs(5, needs, Host(8, 4000))[0] == 3  # no more than there are tests
    with pytest.raises(UsageError, match="3672 MiB.*3000 MiB available"):
        choose_jobs(3, needs, Host(8, 3000))
    jobs, warnings = choose_jobs(1, needs, Host(1, 1000))
    assert jobs == 1 and "may not boot" in warnings[0]
    assert "slower" in choose_jobs(2, needs, Host(1, 4000))[1][0]
    assert choose_jobs(None, needs, Host(2, 100000))[0] == 2  # what fits: 2 CPUs


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([0, 0], 0), ([0, 1, 3], 1), ([0, 3, 2], 3), ([2, 0], 2), ([124, 3], 124), ([0, None], 3)],
)
def test_exit_code(codes: list[int | None], expected: int) -> None:
    statuses = {0: Status.PASSED, 1: Status.FAILED, None: Status.NOT_RUN}
    records = [
        RunRecord(f"t{i}", statuses.get(c, Status.ERROR), 1.0, c) for i, c in enumerate(codes)
    ]
    assert suite_exit_code(records) == expected


RUN_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="photon-driver.default" tests="2" time="2.0">
<properties><property name="seed" value="7"/></properties>
<testcase name="wobbly" classname="photon-driver.default.x" time="1.0">
<flakyFailure message="AssertionError" type="AssertionError"><stackTrace>t</stackTrace>
</flakyFailure></testcase>
<testcase name="broken" classname="photon-driver.default.x" time="1.0">
<failure message="no" type="failure">no</failure>
<rerunFailure message="no" type="no"><stackTrace>t</stackTrace></rerunFailure></testcase>
</testsuite></testsuites>
"""


def test_merge_keeps_flaky_and_rerun_marks_and_properties(tmp_path: Path) -> None:
    run = tmp_path / "x"
    run.mkdir()
    (run / "junit.xml").write_text(RUN_JUNIT)
    entries = merge(tmp_path / "m", [run])
    assert [(e.record.id, e.record.status) for e in entries] == [("x", Status.FAILED)]
    root = ET.parse(tmp_path / "m" / "junit.xml").getroot()
    (suite,) = root.iter("testsuite")
    assert suite.get("name") == "x" and suite.get("failures") == "1" and suite.get("tests") == "2"
    assert suite.find("properties/property[@name='seed']") is not None
    assert root.find(".//testcase[@name='wobbly']/flakyFailure") is not None
    assert root.find(".//testcase[@name='broken']/rerunFailure") is not None
    again = merge(tmp_path / "m2", [tmp_path / "m"])  # a merged report merges again
    assert [e.record.id for e in again] == ["x"]
    assert (tmp_path / "m2" / "index.html").read_text().count('href="../x/junit.xml"') == 1
    with pytest.raises(UsageError, match="neither a suite output"):
        merge(tmp_path / "m3", [tmp_path / "nothing"])


def pool_of(tmp_path: Path, commands: dict[str, str], **options: float) -> Pool:
    """A Pool whose launches are shell commands (no driver) writing into tmp_path/<id>."""
    launches = [
        Launch(SuiteTest(i, tmp_path / f"{i}.py", tmp_path), tmp_path / i, ("sh", "-c", c), {})
        for i, c in commands.items()
    ]
    return Pool(launches, 2, lambda line: None, **options)


def test_pool_codes_and_an_overdue_run_killed_with_its_group(tmp_path: Path) -> None:
    stubborn = "trap '' TERM; sleep 60 & echo $! > child; wait"
    pool = pool_of(
        tmp_path, {"ok": "exit 0", "bad": "exit 3", "stuck": stubborn}, grace=0.5, limit=1.0
    )
    started = time.monotonic()
    records = {r.id: r for r in pool.run()}
    assert time.monotonic() - started < 20
    assert (records["ok"].status, records["bad"].status) == (Status.PASSED, Status.ERROR)
    assert records["bad"].exit_code == 3
    assert records["stuck"].exit_code == 128 + signal.SIGKILL
    grandchild = int((tmp_path / "child").read_text())  # in the run's folder

    def gone() -> bool:
        try:
            return "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True

    # SIGKILL went to the whole group; the kernel takes a moment to end the grandchild
    # (seen in a CI-like run: still "R" right after the pool returned).
    wait_until(gone, 5.0, 0.01)
    assert (tmp_path / "ok" / "run.log").is_file()


def test_pool_stopped_stops_every_run_and_lists_the_rest(tmp_path: Path) -> None:
    pool = pool_of(tmp_path, dict.fromkeys("abc", "exec sleep 60"))
    for launch in list(pool.pending[:2]):
        pool.pending.remove(launch)
        pool.start(launch)
    pool.stop(signal.SIGINT)
    records = {r.id: r for r in pool.records_so_far()}
    assert records["a"].exit_code == records["b"].exit_code == 128 + signal.SIGINT
    assert records["c"].status is Status.NOT_RUN
    assert pool.running == []
