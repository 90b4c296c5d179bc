"""The photon-driver command: exit codes, cleanup on every path, concurrent runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.images.builder import Image
from driver.wait import wait_until
from junit_schema import junit_cases

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
        proc = subprocess.run(
            driver_cmd("run", "--nodes", "node01,node02", str(bad)),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr
        assert time.monotonic() - started < 5

    def rejected(*args: str) -> str:
        proc = subprocess.run(
            driver_cmd(*args), capture_output=True, text=True, env=env, timeout=60
        )
        assert proc.returncode == 2, proc.stderr
        return proc.stderr

    assert "missing.py: test script not found" in rejected("run", str(tmp_path / "missing.py"))
    assert "unknown node 'node77'" in rejected("run", "--nodes", "node77", str(bad))
    assert "--settled starts fresh nodes" in rejected("run", "--settled", "--reuse", str(bad))
    assert not (tmp_path / "vm-minimal" / "runs").exists() or not any(
        (tmp_path / "vm-minimal" / "runs").iterdir()
    )


@pytest.mark.vm
@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        ("pass", "start_all()\nwith subtest('ok'):\n    node01.succeed('true')\n", 0),
        ("failure", "start_all()\nwith subtest('bad'):\n    node01.succeed('false')\n", 1),
        ("exception", "start_all()\nnode01.succeed('true')\nraise RuntimeError('boom')\n", 1),
    ],
)
def test_cleanup_after_outcome(
    tmp_path: Path,
    xdg_cache: Path,
    minimal_image: tuple[Image, float],
    name: str,
    source: str,
    expected: int,
) -> None:
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        driver_cmd("run", "--nodes", "node01", str(script), "--junit-xml", str(junit)),
        env=photon_env(xdg_cache, vm_dir),
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == expected, err[-3000:]
    assert leftovers(run_state(vm_dir, proc.pid)) == []
    cases = junit_cases(junit)  # schema-checked
    assert "main" in cases
    if name == "failure":
        assert "last console lines of node01" in err
        assert cases["bad"].find("failure") is not None
    if name == "exception":
        assert cases["main"].find("error") is not None


@pytest.mark.vm
@pytest.mark.parametrize(
    ("how", "expected"),
    [("SIGINT", 130), ("SIGTERM", 143), ("SIGKILL", -9), ("global-timeout", 124)],
)
def test_cleanup_after_signal_or_timeout(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float], how: str, expected: int
) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    vm_dir = tmp_path / "vm"
    extra = ["--global-timeout", "40"] if how == "global-timeout" else []
    junit = tmp_path / "junit.xml"
    proc = subprocess.Popen(
        driver_cmd("run", "--nodes", "node01", *extra, str(script), "--junit-xml", str(junit)),
        env=photon_env(xdg_cache, vm_dir),
        stderr=subprocess.PIPE,
        text=True,
    )
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
    if how != "SIGKILL":
        main = junit_cases(junit)["main"]
        assert main.find("error") is not None, "an interrupted run's JUnit says so"
    with contextlib.suppress(TimeoutError):  # the kill may take a moment to land
        wait_until(lambda: not leftovers(state), timeout=10, interval=0.2)
    assert leftovers(state) == []


@pytest.mark.vm
def test_two_drivers_concurrently(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    procs = []
    for run in (1, 2):
        # Distinct payloads: crosstalk between the runs' VLANs would show up as the other
        # run's text arriving on node02.
        script = tmp_path / f"pair{run}.py"
        script.write_text(
            "import time\n"
            "started = time.time()\n"
            "start_all()\n"
            "node02.wait_for_unit('multi-user.target', timeout=120)\n"
            "node02.succeed('(exec nc -l 9999 > /tmp/got) >/dev/null 2>&1 &')\n"
            "node02.wait_for_open_port(9999, timeout=60)\n"
            f"node01.wait_until_succeeds('echo run{run}-$(hostname) | nc -N node02 9999', 60)\n"
            "node02.wait_until_succeeds('test -s /tmp/got', timeout=30)\n"
            f"t.assertEqual(node02.succeed('cat /tmp/got'), 'run{run}-node01\\n')\n"
            f"open({str(tmp_path / f'times{run}')!r}, 'w').write(f'{{started}} {{time.time()}}')\n"
        )
        procs.append(
            subprocess.Popen(
                driver_cmd("run", "--nodes", "node01,node02", str(script)),
                env=photon_env(xdg_cache, tmp_path / f"vm{run}"),
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for run, proc in enumerate(procs, start=1):
        _, err = proc.communicate(timeout=400)
        assert proc.returncode == 0, err[-3000:]
        assert leftovers(run_state(tmp_path / f"vm{run}", proc.pid)) == []
    spans = [[float(x) for x in (tmp_path / f"times{run}").read_text().split()] for run in (1, 2)]
    assert max(s[0] for s in spans) < min(s[1] for s in spans), f"runs did not overlap: {spans}"


def test_clean_images_removes_the_cache(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    image = xdg / "photoncloud-test-driver" / "images" / "minimal-0123456789abcdef"
    image.mkdir(parents=True)
    (image / "manifest.json").write_text("{}")
    proc = subprocess.run(
        driver_cmd("clean", "--images"),
        capture_output=True,
        text=True,
        env=photon_env(xdg, tmp_path / "vm"),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 cached images" in proc.stderr
    assert not image.exists()


@pytest.mark.vm
@pytest.mark.parametrize("problem", ["read-only file system", "no space left on device"])
def test_unwritable_state_dir_is_one_line_exit_3(
    tmp_path: Path,
    xdg_cache: Path,
    minimal_image: tuple[Image, float],
    small_tmpfs: Path,
    problem: str,
) -> None:
    if problem == "read-only file system":
        subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    script = tmp_path / "one.py"
    script.write_text("start_all()\nnode01.succeed('true')\n")
    vm_dir = small_tmpfs / "vm"
    proc = subprocess.run(
        driver_cmd("run", "--nodes", "node01", str(script)),
        env=photon_env(xdg_cache, vm_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 3, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and problem in errors[0] and str(small_tmpfs) in errors[0]
    assert "Traceback" not in proc.stderr
    assert leftovers(Path(f"{vm_dir}-minimal")) == []


def mounts_containing(text: str) -> list[str]:
    return [ln for ln in Path("/proc/self/mountinfo").read_text().splitlines() if text in ln]


@pytest.mark.vm
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_interrupted_build_leaves_nothing(tmp_path: Path, signame: str) -> None:
    cache = tmp_path / "xdg"
    tmp_before = set(Path("/tmp").glob("mmdebstrap.*"))
    proc = subprocess.Popen(
        driver_cmd("build"),
        env=photon_env(cache, tmp_path / "vm"),
        stderr=subprocess.PIPE,
        text=True,
    )

    def mounted() -> bool:
        # mmdebstrap (root mode) has mounted /proc, /sys... into its chroot: it is well into
        # the build, with what an interrupted build must undo in place.
        assert proc.poll() is None, "the build ended before mmdebstrap mounted anything"
        return bool(mounts_containing(str(cache)))

    wait_until(mounted, timeout=300, interval=0.1)
    signum = getattr(signal, signame)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: interrupted by {signame}"]
    assert ps_lines(str(cache)) == []
    assert mounts_containing(str(cache)) == []
    images = cache / "photoncloud-test-driver" / "images"
    assert list(images.glob(".*tmp*")) == []
    assert set(Path("/tmp").glob("mmdebstrap.*")) <= tmp_before


def ps_lines(text: str) -> list[str]:
    """Full command lines of the processes that mention ``text``."""
    out = subprocess.run(["pgrep", "-af", text], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if "pgrep" not in ln]


def test_stale_build_directories_are_swept(tmp_path: Path) -> None:
    from driver.images.builder import sweep_stale_builds

    images = tmp_path / "images"
    stale = images / ".minimal-0123456789abcdef.tmp-999999999"
    live = images / f".minimal-0123456789abcdef.tmp-{os.getpid()}"
    for folder in (stale, live):
        (folder / "rootfs").mkdir(parents=True)
        (folder / "rootfs" / "big").write_bytes(b"x" * 1000)
    mounted = os.geteuid() == 0
    if mounted:
        (stale / "rootfs" / "proc").mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "tmpfs", str(stale / "rootfs" / "proc")], check=True
        )
    sweep_stale_builds(images)
    assert not stale.exists() and live.exists()
    if mounted:
        assert mounts_containing(str(stale)) == []


OOPS = "node01.succeed(\"echo '<1>Oops: photon deliberate test oops' > /dev/kmsg\")"
# An info-level kernel line (as a real segfault's is): on the console only because the images
# send every kernel message there; the gate no longer runs dmesg on them.
SEGFAULT = (
    "node01.succeed(\"echo '<6>photon-test[1]: segfault at 0 ip 0 sp 0 error 4' > /dev/kmsg\")"
)
DOOMED = (
    "node01.succeed('systemd-run --unit=doomed -p Type=oneshot false || true')\n"
    "    node01.wait_until_succeeds('systemctl is-failed doomed', timeout=60)"
)


@pytest.mark.vm
@pytest.mark.parametrize(
    ("name", "source", "expected", "evidence"),
    [
        ("oops", f"with subtest('oops'):\n    {OOPS}\n", 1, "node01: kernel: Oops: photon"),
        ("unit", f"with subtest('unit'):\n    {DOOMED}\n", 1, "node01: failed unit doomed"),
        (
            "segfault",
            f"with subtest('segfault'):\n    {SEGFAULT}\n",
            1,
            "node01: kernel: photon-test[1]: segfault at 0",
        ),
        (
            "allowed",
            "allow_problem('Oops: photon deliberate', node01)\nallow_problem('doomed')\n"
            f"with subtest('oops'):\n    {OOPS}\nwith subtest('unit'):\n    {DOOMED}\n",
            0,
            "",
        ),
    ],
)
def test_health_gate_fails_the_run_unless_allowed(
    tmp_path: Path,
    xdg_cache: Path,
    minimal_image: tuple[Image, float],
    name: str,
    source: str,
    expected: int,
    evidence: str,
) -> None:
    script = tmp_path / f"{name}.py"
    script.write_text("start_all()\nnode01.wait_for_unit('multi-user.target')\n" + source)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        driver_cmd("run", "--nodes", "node01", str(script), "--junit-xml", str(junit)),
        env=photon_env(xdg_cache, tmp_path / "vm"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == expected, proc.stderr[-3000:]
    report = junit.read_text()
    if evidence:
        assert evidence in report and "health check after subtest" in report
    else:
        assert "<failure" not in report
