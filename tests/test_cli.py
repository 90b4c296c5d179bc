"""The photon-driver command: exit codes, cleanup on every path, concurrent runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.images.builder import Image

SLEEPER = """start_all()
node01.succeed("true")
log("SCRIPT-READY")
import time
time.sleep(600)
"""


def driver_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "driver", "--profile", "minimal", *args]


def run_state(vm_dir: Path, pid: int) -> Path:
    return Path(f"{vm_dir}-minimal") / "runs" / str(pid)


def test_usage_errors_fail_fast(tmp_path: Path, xdg_cache: Path) -> None:
    env = photon_env(xdg_cache, tmp_path / "vm")
    bad = tmp_path / "bad.py"
    cases = {
        "start_all()\nif\n": r"bad.py:2: syntax error",
        "start_all()\nnode03.succeed('x')\n": r"bad.py:2: unknown node 'node03'",
        "start_all()\nnod01.succeed('x')\n": r"bad.py:2: undefined name 'nod01'",
    }
    for source, message in cases.items():
        bad.write_text(source)
        started = time.monotonic()
        proc = subprocess.run(driver_cmd("run", "--nodes", "node01,node02", str(bad)),
                              capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
        assert time.monotonic() - started < 5
    proc = subprocess.run(driver_cmd("run", str(tmp_path / "missing.py")), capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "missing.py: test script not found" in proc.stderr
    proc = subprocess.run(driver_cmd("run", "--nodes", "node77", str(bad)), capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "unknown node 'node77'" in proc.stderr
    assert not (tmp_path / "vm-minimal" / "runs").exists() or not any(
        (tmp_path / "vm-minimal" / "runs").iterdir()
    )


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("pass", "start_all()\nwith subtest('ok'):\n    node01.succeed('true')\n", 0),
        ("failure", "start_all()\nwith subtest('bad'):\n    node01.succeed('false')\n", 1),
        ("exception", "start_all()\nnode01.succeed('true')\nraise RuntimeError('boom')\n", 1),
    ],
)
def test_cleanup_after_outcome(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float], name: str, source: str,
    expected: int,
) -> None:  # fmt: skip
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(driver_cmd("run", "--nodes", "node01", str(script), "--junit-xml",
                                       str(junit)), env=photon_env(xdg_cache, vm_dir),
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == expected, err[-3000:]
    assert leftovers(run_state(vm_dir, proc.pid)) == []
    assert junit.exists()
    if name == "failure":
        assert "last console lines of node01" in err


@pytest.mark.parametrize(
    ("how", "expected"),
    [("SIGINT", 3), ("SIGTERM", 3), ("SIGKILL", -9), ("global-timeout", 124)],
)
def test_cleanup_after_signal_or_timeout(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float], how: str, expected: int
) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    vm_dir = tmp_path / "vm"
    extra = ["--global-timeout", "40"] if how == "global-timeout" else []
    proc = subprocess.Popen(driver_cmd("run", "--nodes", "node01", *extra, str(script)),
                            env=photon_env(xdg_cache, vm_dir), stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 200
    for line in proc.stderr:
        if "SCRIPT-READY" in line or time.monotonic() > deadline:
            break
    state = run_state(vm_dir, proc.pid)
    assert leftovers(state), "the node should be running now"
    if how != "global-timeout":
        os.kill(proc.pid, getattr(signal, how))
    proc.stderr.read()
    assert proc.wait(timeout=120) == expected
    deadline = time.monotonic() + 10
    while leftovers(state) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(state) == []


def test_two_drivers_concurrently(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    script = tmp_path / "pair.py"
    script.write_text(
        "start_all()\n"
        "node02.wait_for_unit('multi-user.target', timeout=120)\n"
        "node02.succeed('(exec nc -l 9999 > /tmp/got) >/dev/null 2>&1 &')\n"
        "node02.wait_for_open_port(9999, timeout=60)\n"
        "node01.wait_until_succeeds('echo ping-$(hostname) | nc -N node02 9999', timeout=60)\n"
        "node02.wait_until_succeeds('grep -q ping-node01 /tmp/got', timeout=30)\n"
    )
    procs = [
        subprocess.Popen(
            driver_cmd("run", "--nodes", "node01,node02", str(script)),
            env=photon_env(xdg_cache, tmp_path / f"vm{i}"),
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in (1, 2)
    ]
    for i, proc in enumerate(procs, start=1):
        _, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
        assert leftovers(run_state(tmp_path / f"vm{i}", proc.pid)) == []


def test_clean_images_removes_the_cache(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    image = xdg / "photoncloud-test-driver" / "images" / "minimal-0123456789abcdef"
    image.mkdir(parents=True)
    (image / "manifest.json").write_text("{}")
    proc = subprocess.run(driver_cmd("clean", "--images"), capture_output=True, text=True,
                          env=photon_env(xdg, tmp_path / "vm"), timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 cached images" in proc.stderr
    assert not image.exists()
