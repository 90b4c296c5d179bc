"""``run --rerun-failed N`` on two real guests: each subtest starts from a whole-cluster
snapshot; a failed one is restored and run again. A subtest that fails once (a guest file
its first attempt writes, gone again after the restore) ends flaky, one that always fails
ends failed, each with every attempt's output in JUnit the way Surefire writes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from browser import dom, screenshot, with_class
from conftest import photon_cli, photon_env
from driver.images.builder import Image
from junit_schema import junit_cases

pytestmark = pytest.mark.vm

SCRIPT = """start_all()
tries = {"flaky": 0, "broken": 0}
with subtest("a fault window"):
    with partition([node01], [node02]):
        node01.sleep(1)
with subtest("flaky once"):
    tries["flaky"] += 1
    if tries["flaky"] == 1:
        node01.succeed("touch /var/tmp/first-attempt-was-here")
    # Passes only when the restore took the first attempt's file away again.
    node01.succeed(f"echo FLAKY-ATTEMPT-{tries['flaky']} >&2")
    node01.fail("test -e /var/tmp/first-attempt-was-here")
with subtest("always broken"):
    tries["broken"] += 1
    node02.succeed(f"echo BROKEN-ATTEMPT-{tries['broken']} >&2; exit 3")
"""


def test_rerun_failed_marks_flaky_and_failed(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    script = tmp_path / "reruns.py"
    script.write_text(SCRIPT)
    junit = tmp_path / "junit.xml"
    proc = photon_cli(
        photon_env(xdg_cache, tmp_path / "vm"),
        "run",
        "--nodes",
        "node01,node02",
        "--rerun-failed",
        "2",
        "--junit-xml",
        str(junit),
        str(script),
        profile="minimal",
    )
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert "subtests: 1 passed, 1 failed, 1 flaky" in proc.stderr
    assert "subtest 'flaky once' is flaky" in proc.stderr
    assert proc.stderr.count("rerun 1/2 of subtest 'always broken'") == 1
    assert proc.stderr.count("rerun 2/2 of subtest 'always broken'") == 1
    assert "rerun 2/2 of subtest 'flaky once'" not in proc.stderr

    cases = junit_cases(junit)
    flaky, broken = cases["flaky once"], cases["always broken"]
    assert flaky.find("failure") is None and flaky.find("error") is None
    flaky_failures = flaky.findall("flakyFailure")
    assert len(flaky_failures) == 1
    assert "FLAKY-ATTEMPT-1" in (flaky_failures[0].findtext("system-out") or "")
    assert "FLAKY-ATTEMPT-2" in (flaky.findtext("system-out") or "")
    assert broken.find("failure") is not None
    reruns = broken.findall("rerunFailure")
    assert len(reruns) == 2
    for number, rerun in zip((2, 3), reruns, strict=True):
        assert f"BROKEN-ATTEMPT-{number}" in (rerun.findtext("system-out") or "")
    assert "exit code 3" in (reruns[-1].findtext("stackTrace") or "")

    # The report, opened in a real browser: one timeline row per node, the failing step
    # and node marked, the fault window drawn on both nodes, every attempt listed.
    out = Path(f"{tmp_path / 'vm'}-minimal") / "runs"
    report = next(out.glob("*/out/report.html"))
    text, elements = dom(report)
    rows = with_class(elements, "node-row")
    assert [r["data-node"] for r in rows] == ["node01", "node02"]
    failing = [f for f in with_class(elements, "failing") if "command" in f["class"].split()]
    assert [f["data-node"] for f in failing] == ["node02"]
    assert "bad" in failing[0]["class"].split()
    section = next(a for t, a in elements if a.get("id") == "failure")
    assert section["data-node"] == "node02" and section["data-subtest"] == "always broken"
    assert len(with_class(elements, "fault")) == 2  # the partition, on both rows
    assert "BROKEN-ATTEMPT-3" in text and "exit code 3" in text
    assert "attempt 2" in text and 'id="count-flaky">1 flaky' in text
    assert (report.parent / "events.jsonl").stat().st_size > 0
    screenshot(report, tmp_path / "report.png")


CRASH_SCRIPT = """import pathlib
flag = pathlib.Path({flag!r})
start_all()
node01.succeed("touch /var/tmp/before-subtest")
with subtest("crashes node01 once"):
    node02.succeed("echo ATTEMPT-ON-NODE02")
    if not flag.exists():
        flag.write_text("the first attempt crashed node01")
        node01.succeed("touch /var/tmp/first-attempt && sync")
        {crash}
    # The rerun starts from the snapshot: node01 runs again, as it was before the subtest.
    node01.succeed("test -e /var/tmp/before-subtest")
    node01.fail("test -e /var/tmp/first-attempt")
node01.succeed("echo NODE01-ANSWERS-AFTER")
"""


CRASHES = {
    # QEMU told to quit (a power loss), then the attempt fails on its own.
    "crash": 'node01.crash(); t.fail("node01 crashed on the first attempt")',
    # A guest kernel panic: panic=1 reboots, -no-reboot ends QEMU; the command fails.
    "sysrq": 'node01.succeed("echo c > /proc/sysrq-trigger", timeout=60)',
}


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_rerun_restores_a_node_the_subtest_crashed(
    how: str, tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    """A subtest that crashes node01 (its QEMU gone) fails once; the rerun starts node01
    again from the snapshot taken before the subtest (with node02 restored beside it), so
    the subtest ends flaky and node01 answers afterwards."""
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT.format(flag=str(tmp_path / "crashed-once"), crash=CRASHES[how]))
    junit = tmp_path / "junit.xml"
    proc = photon_cli(
        photon_env(xdg_cache, tmp_path / "vm"),
        "run",
        "--nodes",
        "node01,node02",
        "--rerun-failed",
        "1",
        "--junit-xml",
        str(junit),
        str(script),
        profile="minimal",
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "crashed-once").exists()
    assert "subtest 'crashes node01 once' is flaky" in proc.stderr
    assert (
        "restore before-crashes_node01_once on node01, node02 (node01: QEMU had exited"
        in proc.stderr
    )
    assert "NODE01-ANSWERS-AFTER" in proc.stderr
    case = junit_cases(junit)["crashes node01 once"]
    assert case.find("failure") is None and case.find("error") is None
    flaky = case.findall("flakyFailure")
    assert len(flaky) == 1 and "node01" in (flaky[0].get("message") or ""), flaky
