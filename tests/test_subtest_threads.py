"""Subtests run at once in threads (issue 36): what each thread logs is captured for its own
subtest's JUnit case, never the other's; driver worker threads (``on_each``) log into their
caller's subtest; threads that capture nothing themselves (console streamers, a plain
thread a script starts) log into the main thread's subtest."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from conftest import photon_cli, photon_env
from driver.images.builder import Image
from driver.log import Logger
from driver.parallel import on_each
from junit_schema import junit_cases


def _logger() -> Logger:
    return Logger(io.StringIO(), colour=False)


def test_two_threads_each_capture_only_their_own_lines() -> None:
    logger = _logger()
    barrier = threading.Barrier(2, timeout=10)
    captured: dict[str, list[str]] = {}

    def work(name: str) -> None:
        with logger.capture() as lines, logger.nested(f"subtest: {name}"):
            for number in range(7):
                barrier.wait()  # both threads log each line while the other's capture is open
                logger.log(f"{name}-{number}")
        captured[name] = list(lines)

    with logger.capture() as main_lines:
        logger.log("main-before")
        threads = [threading.Thread(target=work, args=(n,)) for n in ("alpha", "beta")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger.log("main-after")
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        own = [line.strip() for line in captured[name] if "seconds)" not in line]
        assert own == [f"subtest: {name}", *(f"{name}-{n}" for n in range(7))], captured[name]
        assert not any(other in line for line in captured[name]), captured[name]
    assert [line for line in main_lines if "alpha" in line or "beta" in line] == []
    assert main_lines == ["main-before", "main-after"]


def test_worker_threads_log_into_their_callers_capture() -> None:
    logger = _logger()
    captured: list[str] = []

    def caller() -> None:
        with logger.capture() as lines:
            on_each(["w1", "w2", "w3"], lambda name: logger.log(f"worker {name}"), "test")
        captured.extend(lines)

    with logger.capture() as main_lines:
        thread = threading.Thread(target=caller)
        thread.start()
        thread.join()
    assert sorted(captured) == ["worker w1", "worker w2", "worker w3"]
    assert main_lines == []


def test_a_thread_without_a_capture_logs_into_the_main_threads() -> None:
    logger = _logger()
    with logger.capture() as outer:
        with logger.capture() as inner:
            thread = threading.Thread(target=lambda: logger.node_line("node01", "console"))
            thread.start()
            thread.join()
        assert inner == ["node01 # console"]
        logger.log("outer only")
    assert outer == ["node01 # console", "outer only"]  # an inner capture's lines too
    thread = threading.Thread(target=lambda: logger.log("after every capture"))
    thread.start()
    thread.join()
    assert "after every capture" not in outer


THREADS_SCRIPT = """import threading
start_all()
barrier = threading.Barrier(2, timeout=120)
def work(name, node):
    with subtest(name):
        for number in range(7):
            barrier.wait()
            node.succeed(f"echo {name.upper()}-LINE-{number}")
threads = [
    threading.Thread(target=work, args=(name, node))
    for name, node in (("alpha", node01), ("beta", node02))
]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
with subtest("main thread"):
    node01.succeed("echo MAIN-LINE")
"""


@pytest.mark.vm
def test_junit_cases_of_subtests_in_threads_carry_only_their_own_lines(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    junit = tmp_path / "junit.xml"
    proc = photon_cli(
        photon_env(xdg_cache, tmp_path / "vm"),
        "run",
        "--nodes",
        "node01,node02",
        "--junit-xml",
        str(junit),
        str(script),
        profile="minimal",
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    cases = junit_cases(junit)
    for name, other in (("alpha", "BETA"), ("beta", "ALPHA")):
        out = cases[name].findtext("system-out") or ""
        own = {n for n in range(7) if f"{name.upper()}-LINE-{n}" in out}
        assert own == set(range(7)), out
        assert f"{other}-LINE" not in out and "MAIN-LINE" not in out, out
    main = cases["main thread"].findtext("system-out") or ""
    assert "MAIN-LINE" in main and "ALPHA-LINE" not in main and "BETA-LINE" not in main
