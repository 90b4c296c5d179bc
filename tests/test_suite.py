"""``photon-driver suite`` and ``report merge`` (issue 34) on scripts that touch no node,
so nothing boots: three scripts (one failing) with -j 2, shards that are disjoint and
cover everything, a merge of two shards' outputs equal to the unsharded run, the memory
budget's refusal, a signal ending every run, bad input in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import photon_env
from driver.wait import wait_until

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"
PASSING = 'with subtest("a"):\n    pass\n'
FAILING = 'with subtest("b"):\n    assert False\n'


def driver(
    args: list[str], cwd: Path, xdg_cache: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m driver ARGS`` in ``cwd``, its state under ``cwd/vm``."""
    return subprocess.run(
        [sys.executable, "-m", "driver", *args],
        env=photon_env(xdg_cache, cwd / "vm"),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scripts(folder: Path, sources: dict[str, str]) -> None:
    """``t.toml`` and the scripts in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "t.toml").write_text(TOPOLOGY)
    for name, source in sources.items():
        (folder / name).write_text(source)


def suites(junit: Path) -> dict[str, list[tuple[str, str]]]:
    """Suite name -> its cases (name, outcome) of a merged JUnit file."""
    found: dict[str, list[tuple[str, str]]] = {}
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        cases = []
        for case in suite.iter("testcase"):
            tags = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            cases.append((case.get("name", ""), tags[0] if tags else "passed"))
        found[suite.get("name", "")] = sorted(cases)
    return found


def children_of_suite(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (this test's folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(int(entry.name))
    return found


def test_three_scripts_two_at_once(tmp_path: Path, xdg_cache: Path) -> None:
    scripts(tmp_path, {"a.py": PASSING, "b.py": FAILING, "c.py": PASSING})
    args = ["suite", "--topology", "t.toml", "-j", "2", "-o", "rep", "a.py", "b.py", "c.py"]
    proc = driver(args, tmp_path, xdg_cache)
    assert proc.returncode == 1, proc.stderr
    merged = suites(tmp_path / "rep" / "junit.xml")
    assert sorted(merged) == ["a", "b", "c"]
    assert ("b", "failure") in merged["b"]
    assert ("a", "passed") in merged["a"] and ("a", "passed") in merged["c"]
    root = ET.parse(tmp_path / "rep" / "junit.xml").getroot()
    assert root.get("tests") == "6" and root.get("failures") == "1"
    index = (tmp_path / "rep" / "index.html").read_text()
    for name in ("a", "b", "c"):
        assert (tmp_path / "rep" / name / "report.html").is_file()
        assert f'href="{name}/report.html"' in index
        assert (tmp_path / "rep" / name / "run.log").is_file()
    assert "2 at once" in proc.stderr
    assert children_of_suite(str(tmp_path)) == []
    assert not (tmp_path / "vm").exists()  # each run has its own state, beside it
    assert sorted(p.name for p in (tmp_path / "vm-suite").iterdir()) == ["a", "b", "c"]


def test_all_passed_is_exit_0_and_a_directory_is_every_script(
    tmp_path: Path, xdg_cache: Path
) -> None:
    scripts(tmp_path / "s", {"one.py": PASSING, "two.py": PASSING, "_helper.py": "x = 1\n"})
    args = ["suite", "--topology", "s/t.toml", "-o", "rep", "s"]
    proc = driver(args, tmp_path, xdg_cache)
    assert proc.returncode == 0, proc.stderr
    assert sorted(suites(tmp_path / "rep" / "junit.xml")) == ["s/one", "s/two"]


def test_shards_are_disjoint_and_cover_everything(tmp_path: Path, xdg_cache: Path) -> None:
    names = [f"s{i}.py" for i in range(5)]
    scripts(tmp_path, dict.fromkeys(names, PASSING))
    listed = []
    for shard in ("1/2", "2/2"):
        proc = driver(["suite", "--shard", shard, "--list", *names], tmp_path, xdg_cache)
        assert proc.returncode == 0, proc.stderr
        listed.append(proc.stdout.split())
    assert sorted(listed[0] + listed[1]) == names
    assert not set(listed[0]) & set(listed[1])
    assert listed[0] and listed[1]
    again = driver(["suite", "--shard", "1/2", "--list", *reversed(names)], tmp_path, xdg_cache)
    assert again.stdout.split() == listed[0]  # stable: by path, not by order given
    whole = driver(["suite", "--list", *names], tmp_path, xdg_cache)
    assert whole.stdout.split() == names
    assert not (tmp_path / "vm").exists() and not (tmp_path / "vm-suite").exists()


def test_shards_balanced_by_durations(tmp_path: Path, xdg_cache: Path) -> None:
    names = [f"s{i}.py" for i in range(5)]
    scripts(tmp_path, dict.fromkeys(names, PASSING))
    times = {"s0": 100.0, "s1": 40.0, "s2": 30.0, "s3": 20.0, "s4": 10.0}
    suites_xml = "".join(f'<testsuite name="{k}" time="{v}"/>' for k, v in times.items())
    (tmp_path / "old.xml").write_text(f"<testsuites>{suites_xml}</testsuites>")
    listed = []
    for shard in ("1/2", "2/2"):
        args = ["suite", "--shard", shard, "--durations", "old.xml", "--list", *names]
        proc = driver(args, tmp_path, xdg_cache)
        assert proc.returncode == 0, proc.stderr
        listed.append(proc.stdout.split())
    assert listed == [["s0.py"], ["s1.py", "s2.py", "s3.py", "s4.py"]]
    bad = driver(["suite", "--durations", "none.xml", "--list", *names], tmp_path, xdg_cache)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --durations"), bad.stderr


def test_merge_of_two_shards_is_the_unsharded_report(tmp_path: Path, xdg_cache: Path) -> None:
    names = ["a.py", "b.py", "c.py", "d.py"]
    scripts(tmp_path, {"a.py": PASSING, "b.py": FAILING, "c.py": PASSING, "d.py": PASSING})
    base = ["suite", "--topology", "t.toml"]
    whole = driver([*base, "-j", "2", "-o", "all", *names], tmp_path, xdg_cache)
    assert whole.returncode == 1, whole.stderr
    codes = []
    for i in (1, 2):
        proc = driver([*base, "--shard", f"{i}/2", "-o", f"shard{i}", *names], tmp_path, xdg_cache)
        codes.append(proc.returncode)
    assert sorted(codes) == [0, 1]
    merged = driver(["report", "merge", "-o", "merged", "shard1", "shard2"], tmp_path, xdg_cache)
    assert merged.returncode == 1, merged.stderr
    assert suites(tmp_path / "merged" / "junit.xml") == suites(tmp_path / "all" / "junit.xml")
    index = (tmp_path / "merged" / "index.html").read_text()
    for name in ("a", "b", "c", "d"):
        assert any(f'href="../shard{i}/{name}/report.html"' in index for i in (1, 2)), index
    twice = driver(["report", "merge", "-o", "m2", "shard1", "shard1"], tmp_path, xdg_cache)
    assert twice.returncode == 2 and twice.stderr.startswith("error:"), twice.stderr


def test_memory_budget_refuses_in_one_line(tmp_path: Path, xdg_cache: Path) -> None:
    scripts(tmp_path, {"a.py": PASSING, "b.py": PASSING})
    (tmp_path / "t.toml").write_text(TOPOLOGY + "memory_mib = 65536\n")
    args = ["suite", "--topology", "t.toml", "-j", "2", "-o", "rep", "a.py", "b.py"]
    proc = driver(args, tmp_path, xdg_cache)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "MiB" in lines[0], lines
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('[[script]]\npath = "nope.py"\n', "script[0].path"),
        ('[[script]]\npath = "a.py"\ncolour = 1\n', "script[0].colour"),
        ('[[script]]\npath = "a.py"\ntopology = "none.toml"\n', "script[0].topology"),
        ("[[script]\n", "invalid TOML"),
    ],
)
def test_bad_suite_file(content: str, words: str, tmp_path: Path, xdg_cache: Path) -> None:
    scripts(tmp_path, {"a.py": PASSING})
    (tmp_path / "suite.toml").write_text(content)
    proc = driver(["suite", "-o", "rep", "suite.toml"], tmp_path, xdg_cache)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], lines
    assert "suite.toml" in lines[0]
    assert not (tmp_path / "rep").exists()


def test_suite_file_with_topology_and_ids(tmp_path: Path, xdg_cache: Path) -> None:
    scripts(tmp_path / "s", {"a.py": PASSING, "b.py": FAILING})
    (tmp_path / "suite.toml").write_text(
        '[[script]]\npath = "s/a.py"\ntopology = "s/t.toml"\n'
        '[[script]]\npath = "s/b.py"\nid = "bee"\ntopology = "s/t.toml"\n'
    )
    proc = driver(["suite", "-j", "2", "-o", "rep", "suite.toml"], tmp_path, xdg_cache)
    assert proc.returncode == 1, proc.stderr
    assert sorted(suites(tmp_path / "rep" / "junit.xml")) == ["bee", "s/a"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_every_run(signum: int, tmp_path: Path, xdg_cache: Path) -> None:
    slow = 'import time\nwith subtest("slow"):\n    time.sleep(120)\n'
    scripts(tmp_path, {"x.py": slow, "y.py": slow, "z.py": slow})
    args = ["suite", "--topology", "t.toml", "-j", "2", "-o", "rep", "x.py", "y.py", "z.py"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "driver", *args],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        logs = [tmp_path / "rep" / n / "run.log" for n in ("x", "y")]
        wait_until(
            lambda: all(p.is_file() and "subtest: slow" in p.read_text() for p in logs), 60, 0.2
        )
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, stderr
    assert children_of_suite(str(tmp_path)) == []
    merged = suites(tmp_path / "rep" / "junit.xml")
    assert sorted(merged) == ["x", "y", "z"]
    assert merged["z"] == [("main", "skipped")]  # never started


def test_an_empty_shard_writes_an_empty_report(tmp_path: Path, xdg_cache: Path) -> None:
    scripts(tmp_path, {"a.py": PASSING})
    args = ["suite", "--topology", "t.toml", "--shard", "2/3", "-o", "rep", "a.py"]
    listed = driver([*args, "--list"], tmp_path, xdg_cache)
    assert listed.returncode == 0 and listed.stdout == ""
    proc = driver(args, tmp_path, xdg_cache)
    assert proc.returncode == 0, proc.stderr
    assert suites(tmp_path / "rep" / "junit.xml") == {}


def test_a_flaky_run_keeps_its_marks(tmp_path: Path, xdg_cache: Path) -> None:
    flaky = (
        "from pathlib import Path\n"
        'with subtest("wobbly"):\n'
        '    marker = Path("marker")\n'
        "    if not marker.exists():\n"
        '        marker.write_text("1")\n'
        '        assert False, "first time"\n'
    )
    scripts(tmp_path, {"f.py": flaky})
    args = ["suite", "--topology", "t.toml", "--rerun-failed", "1", "-o", "rep", "f.py"]
    proc = driver(args, tmp_path, xdg_cache)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(tmp_path / "rep" / "junit.xml").getroot()
    assert root.find(".//testsuite[@name='f']/testcase[@name='wobbly']/flakyFailure") is not None
    assert 'class="status flaky"' in (tmp_path / "rep" / "index.html").read_text()
    merged = driver(["report", "merge", "-o", "m", "rep"], tmp_path, xdg_cache)
    assert merged.returncode == 0, merged.stderr
    again = ET.parse(tmp_path / "m" / "junit.xml").getroot()
    assert again.find(".//testcase[@name='wobbly']/flakyFailure") is not None
