"""Live progress (issue 33): a step on a node running longer than ``--progress-after``
prints a line every threshold (node, call, command, elapsed / deadline, the script's
file:line, the node's last console line); SIGUSR1 prints every step in flight at once and
the run goes on; the global timeout's message names what was in flight.

The logic is tested with a fake node whose DSL call is a Logger block that waits (no
guest); the CLI runs use a script whose step is ``log.nested(..., {"machine": NODE})``
around a sleep, so no QEMU starts. The last test is the acceptance on a real guest."""

from __future__ import annotations

import ast
import io
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.errors import GlobalTimeout
from driver.log import Logger
from driver.scriptrun.progress import InFlightView, ProgressMonitor, line_call
from driver.session.signals import global_timeout, on_signal

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"


def test_line_call_finds_the_dsl_call_and_its_deadline() -> None:
    source = (
        "import time\n"
        'machine.wait_until_succeeds("false", timeout=120)\n'
        'machine.wait_until_succeeds("false", 45)\n'
        'machine.wait_for_unit("x")\n'
        "time.sleep(3)\n"
        'other.succeed(machine.succeed("a", timeout=7), timeout=9)\n'
        'machine.wait_until_succeeds("false", timeout=t)\n'
    )
    tree = ast.parse(source)
    assert line_call(tree, 2) == ("wait_until_succeeds", 120.0)
    assert line_call(tree, 3) == ("wait_until_succeeds", 45.0)
    name, default = line_call(tree, 4)
    assert name == "wait_for_unit" and default is not None and default > 0
    assert line_call(tree, 5) == (None, None)  # time.sleep is no node's
    assert line_call(tree, 6, "machine") == ("succeed", 7.0)  # the step's node first
    assert line_call(tree, 7) == ("wait_until_succeeds", None)  # not a literal


class FakeNode:
    """A node whose ``wait_until_succeeds`` is a timed Logger block that waits."""

    def __init__(self, logger: Logger, release: threading.Event) -> None:
        self.logger = logger
        self.release = release

    def wait_until_succeeds(self, command: str, timeout: float = 900) -> None:
        with self.logger.nested(f"waiting for success: {command}", node="machine"):
            self.release.wait(timeout)


def _script_thread(tmp_path: Path, logger: Logger, release: threading.Event) -> threading.Thread:
    """A thread running ``s.py``: one wait on the fake node at line 3."""
    script = tmp_path / "s.py"
    script.write_text('x = 1\nlog("start")\nmachine.wait_until_succeeds("false", timeout=120)\n')
    code = compile(script.read_text(), str(script), "exec")
    env = {"machine": FakeNode(logger, release), "log": logger.log}
    return threading.Thread(target=exec, args=(code, env), daemon=True)


def test_progress_lines_every_threshold_and_the_dump(tmp_path: Path) -> None:
    """Threshold 0.3 s: lines name node, call, command, elapsed / deadline, file:line and
    the node's last console line; a requested dump shows the script around the line."""
    stream = io.StringIO()
    logger = Logger(stream, colour=False)
    release = threading.Event()
    thread = _script_thread(tmp_path, logger, release)
    view = InFlightView(logger, [tmp_path / "s.py"])
    monitor = ProgressMonitor(view, threshold=0.3)
    monitor.start()
    try:
        thread.start()
        logger.node_line("machine", "login: the last console line")
        time.sleep(1.1)
        monitor.request_dump()
        time.sleep(0.5)
        summary = view.summary()
    finally:
        release.set()
        thread.join(5)
        monitor.stop()
    lines = stream.getvalue().splitlines()
    progress = [ln for ln in lines if ln.startswith("progress: ")]
    assert len(progress) >= 3, lines
    assert re.fullmatch(
        r"progress: machine: wait_until_succeeds: waiting for success: false "
        rf"\(\d s / 120 s deadline\) at {re.escape(str(tmp_path / 's.py'))}:3 \| "
        r"last console line: login: the last console line",
        progress[0],
    ), progress[0]
    dump = lines.index("SIGUSR1: 1 step(s) in flight")
    assert lines[dump + 1].startswith("  machine: wait_until_succeeds: waiting for success")
    assert '      >    3 | machine.wait_until_succeeds("false", timeout=120)' in lines
    assert summary.startswith("in flight: machine: wait_until_succeeds: waiting for success")
    assert summary.endswith("last console line: login: the last console line")
    assert logger.activity.innermost() == []  # the block ended: nothing in flight


def test_global_timeout_names_what_was_in_flight_and_survives_a_broken_view() -> None:
    with pytest.raises(GlobalTimeout, match=r"^global timeout of 0.2s reached; in flight: X$"):
        with global_timeout(0.2, lambda: "in flight: X"):
            time.sleep(2)

    def broken() -> str:
        raise RuntimeError("no view")

    with pytest.raises(GlobalTimeout, match=r"^global timeout of 0.2s reached$"):
        with global_timeout(0.2, broken):
            time.sleep(2)


def test_on_signal_calls_the_action_and_puts_the_old_handler_back() -> None:
    called: list[int] = []
    old = signal.getsignal(signal.SIGUSR1)
    with on_signal(signal.SIGUSR1, lambda: called.append(1)):
        signal.raise_signal(signal.SIGUSR1)
    assert called == [1]
    assert signal.getsignal(signal.SIGUSR1) is old


STEP = """\
import time
with subtest("slow"):
    with log.nested("pretend waiting", {"machine": "machine"}):
        time.sleep(SECONDS)
print("the run went on")
"""


def _start(tmp_path: Path, xdg_cache: Path, seconds: float, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(STEP.replace("SECONDS", str(seconds)))
    return subprocess.Popen(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py", *args],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_progress_after_on_a_run(tmp_path: Path, xdg_cache: Path) -> None:
    proc = _start(tmp_path, xdg_cache, 2.6, "--progress-after", "1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    progress = [ln for ln in err.splitlines() if ln.startswith("progress: ")]
    assert len(progress) == 2, err
    for line in progress:
        assert re.fullmatch(r"progress: machine: pretend waiting \(\d s\) at t\.py:4", line)
    assert out == "the run went on\n"


def test_sigusr1_prints_every_step_in_flight_and_the_run_goes_on(
    tmp_path: Path, xdg_cache: Path
) -> None:
    proc = _start(tmp_path, xdg_cache, 4)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # the step has begun
            if "machine: pretend waiting" in line:
                break
        sent = time.monotonic()
        proc.send_signal(signal.SIGUSR1)
        dump = proc.stderr.readline()
        took = time.monotonic() - sent
        rest = proc.stderr.read()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert dump == "SIGUSR1: 1 step(s) in flight\n"
    assert took < 2.0
    lines = rest.splitlines()
    assert lines[0].startswith("  machine: pretend waiting (") and lines[0].endswith("at t.py:4")
    assert lines[1] == "      within: running t.py > subtest: slow"
    assert "      >    4 |         time.sleep(4)" in lines
    assert proc.returncode == 0, rest
    assert "subtests: 1 passed, 0 failed" in rest


def test_the_global_timeout_message_names_the_step(tmp_path: Path, xdg_cache: Path) -> None:
    proc = _start(tmp_path, xdg_cache, 30, "--global-timeout", "2")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 124, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, err
    assert re.fullmatch(
        r"error: global timeout of 2s reached; in flight: machine: pretend waiting "
        r"\(\d s\) at t\.py:4",
        errors[0],
    ), errors[0]


@pytest.mark.vm
def test_a_stuck_wait_prints_progress_within_35_s_and_the_dump_on_sigusr1(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """The acceptance on a real guest: ``wait_until_succeeds("false", timeout=120)`` at the
    default threshold prints a progress line with the script's file:line within 35 s of
    the wait's start; SIGUSR1 prints the step at once; SIGTERM then ends the run."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text('machine.wait_until_succeeds("false", timeout=120)\n')
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py"],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "machine: waiting for success: false" in line:
                break
        began = time.monotonic()
        for line in proc.stderr:
            if line.startswith("progress: "):
                break
        assert time.monotonic() - began <= 35
        assert line.startswith(
            "progress: machine: wait_until_succeeds: waiting for success: false ("
        )
        assert "s / 120 s deadline) at t.py:1" in line
        proc.send_signal(signal.SIGUSR1)
        sent = time.monotonic()
        for line in proc.stderr:
            if line.startswith("SIGUSR1: "):
                break
        assert time.monotonic() - sent < 5
        assert proc.stderr.readline().startswith("  machine: wait_until_succeeds: waiting")
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        assert proc.returncode == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert leftovers(vm_dir / "runs" / str(proc.pid)) == []
