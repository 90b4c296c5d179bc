"""``--quarantine FILE`` (issue 33): a known-flaky subtest's failure, tracked at a URL and
tolerated until a date, is reported quarantined (terminal, JUnit skipped with reason and
URL, report.html) and does not fail the run; after the date it fails as usual and says the
quarantine expired. A bad file is one line naming file and field, exit 2. The runs touch
no node, so no QEMU starts."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import photon_env
from driver.errors import UsageError
from driver.log import Logger
from driver.reports.report import SubtestResult
from driver.scriptrun.quarantine import judge_failure, load_quarantine

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"
SCRIPT = """\
with subtest("flaky: clock race"):
    assert False, "boom"
with subtest("after"):
    print("after ran")
"""
ENTRY = """\
[[quarantine]]
subtest = "^flaky"
reason = "races with the clock"
url = "https://tracker.example/issues/7"
until = {until}
"""


def _write(tmp_path: Path, until: str) -> Path:
    path = tmp_path / "q.toml"
    path.write_text(ENTRY.format(until=until))
    return path


def test_load_reads_toml_and_text_dates(tmp_path: Path) -> None:
    entry = load_quarantine(_write(tmp_path, "2031-05-06")).entries[0]
    assert (entry.reason, entry.url, entry.until) == (
        "races with the clock",
        "https://tracker.example/issues/7",
        dt.date(2031, 5, 6),
    )
    assert entry.subtest.search("flaky: clock race")
    assert load_quarantine(_write(tmp_path, '"2031-05-06"')).entries[0].until == entry.until


BAD = [
    (
        ENTRY.replace('url = "https://tracker.example/issues/7"\n', ""),
        r"quarantine\[1\]\.url: missing",
    ),
    (ENTRY.replace("^flaky", "(flaky"), r"quarantine\[1\]\.subtest: bad regular expression"),
    (ENTRY.replace("{until}", '"soon"'), r"quarantine\[1\]\.until: not a date"),
    (ENTRY.replace("{until}", "2031-02-30"), r"not valid TOML"),
    (ENTRY + "owner = 'me'\n", r"quarantine\[1\]\.owner: unknown field"),
    (ENTRY.replace('reason = "races with the clock"', 'reason = " "'), r"\.reason: empty"),
    (ENTRY.replace('"^flaky"', "3"), r"quarantine\[1\]\.subtest: not a string"),
    ("[quarantine]\nsubtest = 'x'\n", r"quarantine: expected \[\[quarantine\]\] entries"),
    ("[[quarantin]]\n", r"quarantin: unknown key"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m for _, m in BAD])
def test_a_bad_file_is_one_usage_error_naming_file_and_field(
    text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "q.toml"
    path.write_text(text.replace("{until}", "2031-01-01"))
    with pytest.raises(UsageError) as info:
        load_quarantine(path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)
    assert re.search(message, str(info.value)), str(info.value)


def test_judge_failure_until_the_last_day_then_expired(tmp_path: Path) -> None:
    """Its last day still excuses; the day after, the failure stands with a note."""
    quarantine = load_quarantine(_write(tmp_path, "2031-05-06"))
    logger = Logger()
    logger.stream = io.StringIO()
    last_day = SubtestResult("flaky: clock race", "t.py", 1.0, "failed")
    assert judge_failure(quarantine, last_day, logger, dt.date(2031, 5, 6))
    assert last_day.status == "quarantined"
    assert last_day.note == (
        "quarantined until 2031-05-06: races with the clock (https://tracker.example/issues/7)"
    )
    after = SubtestResult("flaky: clock race", "t.py", 1.0, "failed")
    assert not judge_failure(quarantine, after, logger, dt.date(2031, 5, 7))
    assert after.status == "failed" and after.note.startswith("quarantine expired on 2031-05-06")
    other = SubtestResult("steady", "t.py", 1.0, "failed")
    assert not judge_failure(quarantine, other, logger, dt.date(2031, 5, 6)) and not other.note
    assert not judge_failure(None, other, logger, dt.date(2031, 5, 6))


def _run(tmp_path: Path, xdg_cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py", *extra],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_quarantined_failure_passes_the_run_and_is_reported(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """Exit 0; the script goes on (the next subtest runs); the terminal says quarantined
    with reason and URL; JUnit has it skipped with both; report.html shows it."""
    _write(tmp_path, "2999-01-01")
    proc = _run(tmp_path, xdg_cache, "--quarantine", "q.toml", "--junit-xml", "j.xml", "-o", "o")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["after ran"]
    note = "quarantined until 2999-01-01: races with the clock (https://tracker.example/issues/7)"
    assert f"warning: subtest 'flaky: clock race' failed but is {note}" in proc.stderr
    assert "subtests: 1 passed, 0 failed, 1 quarantined" in proc.stderr
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")}
    skipped = cases["flaky: clock race"].find("skipped")
    assert skipped is not None and cases["flaky: clock race"].find("failure") is None
    assert skipped.get("message") == f"{note}; it failed: AssertionError: boom"
    assert "AssertionError: boom" in (skipped.text or "")
    page = (tmp_path / "o" / "report.html").read_text()
    assert 'id="count-quarantined">1 quarantined' in page
    assert 'id="count-failed">0 failed' in page
    assert "races with the clock (https://tracker.example/issues/7)</span>" in page
    assert list((tmp_path / "vm").rglob("vm.log")) == []  # no QEMU started


def test_an_expired_quarantine_fails_the_run_and_says_so(tmp_path: Path, xdg_cache: Path) -> None:
    _write(tmp_path, "2000-01-01")
    proc = _run(tmp_path, xdg_cache, "--quarantine", "q.toml", "--junit-xml", "j.xml", "-o", "o")
    assert proc.returncode == 1, proc.stderr
    expired = "quarantine expired on 2000-01-01: races with the clock"
    assert f"error: subtest 'flaky: clock race' failed and its {expired}" in proc.stderr
    assert proc.stdout == ""  # a failure ends the script as usual
    case = next(
        c
        for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")
        if c.get("name") == "flaky: clock race"
    )
    failure = case.find("failure")
    assert failure is not None and expired in (failure.get("message") or "")
    page = (tmp_path / "o" / "report.html").read_text()
    assert f'<span class="quarantine">{expired}' in page


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (ENTRY.replace("{until}", '"tomorrow"'), "quarantine[1].until"),
        (
            ENTRY.format(until="2031-01-01").replace('reason = "races with the clock"\n', ""),
            "quarantine[1].reason",
        ),
    ],
)
def test_a_bad_quarantine_file_stops_the_run_before_it_starts(
    text: str, field: str, tmp_path: Path, xdg_cache: Path
) -> None:
    (tmp_path / "q.toml").write_text(text)
    proc = _run(tmp_path, xdg_cache, "--quarantine", "q.toml", "--junit-xml", "j.xml")
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: q.toml: {field}: "), proc.stderr
    assert not (tmp_path / "vm" / "runs").exists() or not any((tmp_path / "vm" / "runs").iterdir())
    missing = _run(tmp_path, xdg_cache, "--quarantine", "nope.toml")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: nope.toml: quarantine file not found"


def test_reruns_come_first_then_the_quarantine(tmp_path: Path, xdg_cache: Path) -> None:
    """With ``--rerun-failed 1`` a quarantined subtest that fails every time is
    quarantined (its reruns in JUnit's output); one that passes on its rerun is flaky.
    (No node is running, so the reruns go without a snapshot.)"""
    _write(tmp_path, "2999-01-01")
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(
        "tries = []\n"
        'with subtest("flaky: passes second"):\n'
        "    tries.append(1)\n"
        "    assert len(tries) > 1\n"
        'with subtest("flaky: never passes"):\n'
        "    assert False, 'boom'\n"
    )
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py"),
            *("--rerun-failed", "1", "--quarantine", "q.toml", "--junit-xml", "j.xml"),
        ],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "subtests: 0 passed, 0 failed, 1 flaky, 1 quarantined" in proc.stderr
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")}
    assert cases["flaky: passes second"].find("skipped") is None
    assert cases["flaky: never passes"].find("skipped") is not None
    assert "rerun 1 of 'flaky: never passes' failed" in proc.stderr
