"""Stopping is instant and honest (issue 17): an interruption is not an Exception a script
can swallow, cancels the guest command in flight (the node answers the next one at once),
skips the end-of-run health scan instead of inventing findings, and every in-guest deadline
runs on the boot clock. Plus kola's console patterns in the health gate."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from conftest import leftovers, photon_env
from driver.errors import GlobalTimeout, Interrupted
from driver.images.builder import Image
from driver.machine.machine import Machine
from driver.run.driver import Driver
from junit_schema import junit_cases
from test_cli import (
    driver_cmd,
    run_state,
)

pytestmark = pytest.mark.vm


@pytest.fixture()
def n1(two_nodes: Driver) -> Machine:
    return two_nodes.machine("node01")


@pytest.fixture()
def alarm() -> Iterator[None]:
    """SIGALRM raises GlobalTimeout in this thread (what --global-timeout does)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise GlobalTimeout("test alarm")

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_interruptions_are_not_exceptions() -> None:
    assert not issubclass(GlobalTimeout, Exception) and issubclass(GlobalTimeout, Interrupted)


def test_an_interrupted_command_is_cancelled_in_the_guest(n1: Machine, alarm: None) -> None:
    n1.succeed("true")
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    started = time.monotonic()
    with pytest.raises(GlobalTimeout):
        n1.run("sleep 333", timeout=600)
    assert time.monotonic() - started < 5
    started = time.monotonic()
    assert n1.succeed("echo answered") == "answered\n"
    assert time.monotonic() - started < 3, "the next command waited behind the old one"
    assert n1.execute("pgrep -f 'sleep 333'")[0] != 0, "the cancelled command still runs"


@pytest.mark.parametrize("step", ["+1 hour", "-1 hour"])
def test_a_stepped_clock_does_not_change_a_wait(n1: Machine, step: str) -> None:
    n1.succeed("rm -f /tmp/stepped")
    check = (
        "[ -e /tmp/stepped ] || { touch /tmp/stepped; "
        f"(sleep 2; date -s '{step}') >/dev/null 2>&1 & }}; false"
    )
    started = time.monotonic()
    try:
        with pytest.raises(Exception, match="action timed out"):
            n1.wait_until_succeeds(check, timeout=12)
        elapsed = time.monotonic() - started
    finally:
        back = "-1 hour" if step.startswith("+") else "+1 hour"
        n1.succeed(f"date -s '{back}' >/dev/null")
    assert 11 < elapsed < 25, f"a {step} clock step made a 12 s wait last {elapsed:.1f} s"


KOLA_LINES = [
    "You are in emergency mode. After logging in, type journalctl -xb",
    "WARNING: CPU: 0 PID: 1 at kernel/photon.c:1 photon_test+0x1/0x2",
    "blk_update_request: I/O error, dev vdz, sector 2048 op 0x0:(READ)",
    "sd 9:0:0:0: rejecting I/O to offline device",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "goroutine 1 [running]:",
    "systemd-coredump[123]: Process 42 (photon) of user 0 dumped core.",
    "systemd[1]: photon.target: Found ordering cycle on photon.service/start",
    "systemd[1]: /usr/lib/systemd/system-generators/photon-generator failed with exit status 1.",
]


@pytest.mark.parametrize("line", KOLA_LINES)
def test_kola_console_patterns_fail_the_health_gate(
    two_nodes: Driver, n1: Machine, line: str
) -> None:
    n1.succeed(f"echo {line!r} > /dev/kmsg")
    findings = [f for f in two_nodes.health_findings() if f.node == "node01"]
    assert any(line.split(": ", 1)[-1][:30] in f.evidence for f in findings), findings


SWALLOWER = """
import time
start_all()
node01.succeed("true")
print("SCRIPT-READY", flush=True)
try:
    node01.wait_until_succeeds("false", timeout=600)
except Exception:
    pass
node01.succeed("true")
"""


@pytest.mark.parametrize(
    ("signame", "code", "nodes"),
    [("SIGTERM", 143, "node01,node02,node03,node04,node05,node06"), ("SIGINT", 130, "node01")],
)
def test_a_signal_in_a_wait_that_the_script_guards_stops_the_run(
    tmp_path: Path,
    xdg_cache: Path,
    minimal_image: tuple[Image, float],
    signame: str,
    code: int,
    nodes: str,
) -> None:
    script = tmp_path / "guarded.py"
    script.write_text(SWALLOWER)
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        driver_cmd("run", "--nodes", nodes, str(script), "--junit-xml", str(junit)),
        env=photon_env(xdg_cache, vm_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the run's log line as it enters the guarded wait
        seen.append(line)
        if "waiting for success: false" in line:
            break
    assert "SCRIPT-READY\n" in seen, "".join(seen)[-3000:]
    signalled = time.monotonic()
    proc.send_signal(getattr(signal, signame))
    rest, _ = proc.communicate(timeout=60)
    err = "".join(seen) + rest
    took = time.monotonic() - signalled
    assert proc.returncode == code, err[-3000:]
    assert took < 5, f"{took:.1f} s from {signame} to exit ({nodes})"
    assert "health scan failed" not in err and "health check at the end" not in err
    main = junit_cases(junit)["main"]
    error = main.find("error")
    assert error is not None and "not scanned (interrupted)" in (error.text or "")
    assert leftovers(run_state(vm_dir, proc.pid)) == []


def test_a_full_cache_in_a_settled_run_is_one_line_exit_3(
    tmp_path: Path, cache_root: Path, minimal_image: tuple[Image, float], small_tmpfs: Path
) -> None:
    # The image cache is found through a link; the settled snapshots and their keys would be
    # written on a 256 KiB filesystem that is full.
    cache = small_tmpfs / "xdg" / "photoncloud-test-driver"
    cache.mkdir(parents=True)
    (cache / "images").symlink_to(cache_root / "images")
    subprocess.run(["dd", "if=/dev/zero", f"of={small_tmpfs}/fill", "bs=4k"], capture_output=True)
    script = tmp_path / "one.py"
    script.write_text("start_all()\nnode01.succeed('true')\n")
    for attempt in (1, 2):
        proc = subprocess.run(
            driver_cmd("run", "--settled", "--nodes", "node01", str(script)),
            env=photon_env(small_tmpfs / "xdg", tmp_path / "vm"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 3, (attempt, proc.stderr[-3000:])
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert str(small_tmpfs) in errors[0], errors[0]
    keys = list((cache / "settled").rglob("*")) if (cache / "settled").exists() else []
    assert not [k for k in keys if k.is_file() and k.stat().st_size == 0], keys
    assert not [k for k in keys if k.name.endswith(".tmp") or ".tmp." in k.name], keys
