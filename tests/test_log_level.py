"""``--log-level debug|info|warning|error`` (issue 33): how much of the log the terminal
shows; events.jsonl and the captured output (JUnit) keep every line whatever the level.
The run here touches no node, so no QEMU starts."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import photon_env
from driver.events import EventLog, read_events
from driver.log import Logger, LogLevel


def _logged(level: LogLevel, tmp_path: Path) -> tuple[list[str], list[str], list[str]]:
    """Terminal lines, captured lines and event texts of the same lines at ``level``."""
    stream = io.StringIO()
    logger = Logger(stream, colour=False)
    logger.level = level
    events = EventLog(tmp_path / f"{level.name}.jsonl")
    logger.event_logs.append(events)
    with logger.capture() as captured:
        logger.debug("d")
        with logger.nested("block"):
            logger.log("i")
        logger.warning("w")
        logger.error("e")
        logger.node_line("n1", "console shown")
        logger.node_line("n1", "console hidden", shown=False)
    events.close()
    texts = [str(e.get("text")) for e in read_events(events.path) if e.get("text")]
    return stream.getvalue().splitlines(), list(captured), texts


@pytest.mark.parametrize(
    ("level", "shown"),
    [
        (
            LogLevel.DEBUG,
            [
                *("d", "block", "  i", "(0.00 seconds)", "warning: w", "error: e"),
                *("n1 # console shown", "n1 # console hidden"),
            ],
        ),
        (
            LogLevel.INFO,
            ["block", "  i", "(0.00 seconds)", "warning: w", "error: e", "n1 # console shown"],
        ),
        (LogLevel.WARNING, ["warning: w", "error: e"]),
        (LogLevel.ERROR, ["error: e"]),
    ],
)
def test_the_terminal_shows_the_level_and_above_the_files_keep_all(
    level: LogLevel, shown: list[str], tmp_path: Path
) -> None:
    terminal, captured, events = _logged(level, tmp_path)
    assert terminal == shown
    assert captured == [
        "d",
        "block",
        "  i",
        "(0.00 seconds)",
        "warning: w",
        "error: e",
        "n1 # console shown",
    ]
    assert events == ["d", "block", "i", "block", "w", "e", "console shown", "console hidden"]


def _run(tmp_path: Path, xdg_cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "t.toml").write_text("[nodes.machine]\nvlans = [1]\n")
    (tmp_path / "t.py").write_text(
        'log.debug("a debug line")\nlog("an info line")\nlog.warning("a warning line")\n'
        'with subtest("s"):\n    log.error("an error line")\n'
    )
    return subprocess.run(
        [sys.executable, "-m", "driver", *args],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("before_the_verb", [True, False])
def test_log_level_error_on_a_run(before_the_verb: bool, tmp_path: Path, xdg_cache: Path) -> None:
    """Only the error line on the terminal (the option before or after ``run``);
    events.jsonl and JUnit's captured output still have every line."""
    level = ["--log-level", "ERROR"]
    run = ["run", "--topology", "t.toml", "t.py", "-o", "out", "--junit-xml", "j.xml"]
    proc = _run(tmp_path, xdg_cache, *(level + run if before_the_verb else run + level))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["    error: an error line"]
    texts = [e.get("text") for e in read_events(tmp_path / "out" / "events.jsonl")]
    for line in ("a debug line", "an info line", "a warning line", "an error line"):
        assert line in texts
    assert "subtest: s" in (tmp_path / "j.xml").read_text()


def test_log_level_debug_shows_debug_lines(tmp_path: Path, xdg_cache: Path) -> None:
    proc = _run(tmp_path, xdg_cache, "run", "--log-level", "debug", "--topology", "t.toml", "t.py")
    assert proc.returncode == 0, proc.stderr
    assert "  a debug line" in proc.stderr.splitlines()
    quiet = _run(tmp_path, xdg_cache, "run", "--topology", "t.toml", "t.py")
    assert "a debug line" not in quiet.stderr and "an info line" in quiet.stderr


def test_an_unknown_level_is_one_line_exit_2(tmp_path: Path, xdg_cache: Path) -> None:
    proc = _run(tmp_path, xdg_cache, "run", "--log-level", "loud", "t.py")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: photon-driver run: argument --log-level: invalid")
    assert len(proc.stderr.splitlines()) == 1
