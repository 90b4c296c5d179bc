"""One owner of a cluster's lifetime (issue 36), on real guests: a `cluster start` killed
while its nodes boot leaves nothing `cluster stop` cannot stop; a second start while the
first boots is refused at once; a node a killed run left paused is resumed by the next
`run --reuse`; a run killed during a restore leaves a cluster the next run adopts or
explains in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.state.owned import owned_processes
from driver.wait import wait_until

pytestmark = pytest.mark.vm

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"


def _cli(tmp_path: Path, xdg_cache: Path, *words: str) -> list[str]:
    return [sys.executable, "-m", "driver", "--topology", str(tmp_path / "t.toml"), *words]


def _run(tmp_path: Path, xdg_cache: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cli(tmp_path, xdg_cache, *words),
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _start_in_background(tmp_path: Path, xdg_cache: Path) -> subprocess.Popen[str]:
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    return subprocess.Popen(
        _cli(tmp_path, xdg_cache, "cluster", "start"),
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_qemu(state: Path, timeout: float = 120.0) -> None:
    wait_until(lambda: any(p.program.startswith("qemu") for p in owned_processes(state)), timeout)


def test_a_start_killed_while_booting_is_stopped_whole(tmp_path: Path, xdg_cache: Path) -> None:
    """SIGKILL of `cluster start` right after its QEMU is spawned: its processes live on
    with no record; `cluster stop` kills them all (naming them), exit 0, nothing left."""
    state = tmp_path / "vm"
    start = _start_in_background(tmp_path, xdg_cache)
    try:
        _wait_for_qemu(state)
        start.send_signal(signal.SIGKILL)
        start.wait(timeout=30)
        assert owned_processes(state), "the killed start's processes are gone already"
        proc = _run(tmp_path, xdg_cache, "cluster", "stop")
        assert proc.returncode == 0, proc.stderr
        assert "killed" in proc.stderr + proc.stdout and "qemu-system" in proc.stderr + proc.stdout
        assert leftovers(state) == []
    finally:
        if start.poll() is None:
            start.kill()
        _run(tmp_path, xdg_cache, "cluster", "stop")
    assert leftovers(state) == []


def test_a_second_start_while_the_first_boots_is_refused(tmp_path: Path, xdg_cache: Path) -> None:
    """A second `cluster start` while the first is booting: one line, exit 3, at once; the
    first finishes with one node set running; `cluster stop` leaves nothing."""
    state = tmp_path / "vm"
    first = _start_in_background(tmp_path, xdg_cache)
    try:
        _wait_for_qemu(state)
        started = time.monotonic()
        second = _run(tmp_path, xdg_cache, "cluster", "start")
        assert time.monotonic() - started < 30
        assert second.returncode == 3, second.stderr
        errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "in use by another process" in errors[0], second.stderr
        _, err = first.communicate(timeout=600)
        assert first.returncode == 0, err[-3000:]
        qemus = [p for p in owned_processes(state) if p.program.startswith("qemu")]
        assert len(qemus) == 1, qemus
        stop = _run(tmp_path, xdg_cache, "cluster", "stop")
        assert stop.returncode == 0 and "stopped 1 nodes" in stop.stderr + stop.stdout
    finally:
        if first.poll() is None:
            first.kill()
        _run(tmp_path, xdg_cache, "cluster", "stop")
    assert leftovers(state) == []


def test_a_node_left_paused_by_a_killed_run_is_resumed(tmp_path: Path, xdg_cache: Path) -> None:
    """A `run --reuse` killed (SIGKILL) while its node is paused, as during a snapshot:
    the next `run --reuse` resumes the node and its script passes."""
    state = tmp_path / "vm"
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "pause.py").write_text(
        "import os, signal\n"
        'machine.send_monitor_command("stop")\n'
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (tmp_path / "check.py").write_text('machine.succeed("true")\n')
    try:
        assert _run(tmp_path, xdg_cache, "cluster", "start").returncode == 0
        killed = _run(tmp_path, xdg_cache, "run", "--reuse", "pause.py")
        assert killed.returncode == -signal.SIGKILL
        again = _run(tmp_path, xdg_cache, "run", "--reuse", "check.py")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "left paused" in again.stdout + again.stderr
    finally:
        stop = _run(tmp_path, xdg_cache, "cluster", "stop")
    assert stop.returncode == 0, stop.stderr
    assert leftovers(state) == []
    assert not (state / "cluster.json").exists()


def test_clean_keeps_what_a_live_run_uses(tmp_path: Path, xdg_cache: Path) -> None:
    """`clean` while a `run --settled` is running: the settled snapshot and the live run's
    directory stay (a warning says so), the run passes; a `clean` after it removes all."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(
        "import pathlib, time\n"
        'machine.succeed("true")\n'
        'pathlib.Path("started").touch()\n'
        'while not pathlib.Path("cleaned").exists():\n'
        "    time.sleep(0.1)\n"
        'machine.succeed("true")\n'
    )
    state = tmp_path / "vm"
    run = subprocess.Popen(
        _cli(tmp_path, xdg_cache, "run", "--settled", "t.py"),
        env=photon_env(xdg_cache, state),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def running() -> None:
            assert run.poll() is None, run.communicate()[1][-3000:]

        wait_until((tmp_path / "started").exists, 600, 0.2, on_poll=running)
        settled = xdg_cache / "photoncloud-test-driver" / "settled"
        assert list(settled.glob("*/*/manifest.json")), "no settled snapshot was saved"
        clean = _run(tmp_path, xdg_cache, "clean")
        (tmp_path / "cleaned").touch()
        assert clean.returncode == 0, clean.stderr
        assert "in use by a live run: kept" in clean.stderr + clean.stdout
        assert list(settled.glob("*/*/manifest.json")), "clean removed a snapshot in use"
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    again = _run(tmp_path, xdg_cache, "clean")
    assert again.returncode == 0, again.stderr
    assert not list(settled.glob("*/*/manifest.json"))
    assert leftovers(state) == []


def test_an_unusable_settled_cache_is_a_warning_and_a_cold_boot(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """`run --settled` where the profile's settled cache cannot be written (here its
    directory is a file, as a read-only or broken cache would refuse it): a warning, a
    cold boot, the script runs and passes."""
    profile = f"unusable{os.getpid()}"
    (tmp_path / "t.toml").write_text(TOPOLOGY + f'[profiles.{profile}]\nimage = "default"\n')
    (tmp_path / "t.py").write_text('machine.succeed("true")\n')
    blocker = xdg_cache / "photoncloud-test-driver" / "settled" / profile
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a directory\n")
    try:
        proc = _run(tmp_path, xdg_cache, "run", "--settled", "t.py")
    finally:
        blocker.unlink()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "is not usable" in proc.stdout + proc.stderr
    assert leftovers(tmp_path / "vm") == []


def _killed_in_restore(when: str) -> str:
    """A script that SIGKILLs its own driver during ``restore``: once the node's QEMU has
    quit (``quit``), or once its new QEMU runs (``spawned``)."""
    wait = (
        "while Path(f'/proc/{old}').exists() and "
        "Path(f'/proc/{old}/stat').read_text().split()[2] != 'Z':\n        time.sleep(0.001)\n"
        if when == "quit"
        else "while not [p for p in node_qemus(state, 'machine') if p != old]:\n"
        "        time.sleep(0.001)\n"
    )
    return (
        "import os, signal, threading, time\n"
        "from pathlib import Path\n"
        "from driver.state.owned import node_qemus\n"
        "state = Path(os.environ['PHOTON_VM_DIR'])\n"
        'snapshot("s")\n'
        "old = machine.pid\n"
        "def killer():\n"
        f"    {wait}"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "threading.Thread(target=killer, daemon=True).start()\n"
        'restore("s")\n'
        "time.sleep(60)\n"
    )


@pytest.mark.parametrize("when", ["spawned", "quit"])
def test_a_run_killed_during_a_restore_leaves_a_usable_or_explained_cluster(
    when: str, tmp_path: Path, xdg_cache: Path
) -> None:
    """SIGKILL of a `run --reuse` in the middle of `restore`: once the new QEMU runs, the
    next run adopts it and passes; in any case the next run either passes or says in one
    line what is wrong and to `cluster stop`, and `cluster stop` leaves nothing."""
    state = tmp_path / "vm"
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "kill.py").write_text(_killed_in_restore(when))
    (tmp_path / "check.py").write_text('machine.succeed("true")\n')
    try:
        assert _run(tmp_path, xdg_cache, "cluster", "start").returncode == 0
        killed = _run(tmp_path, xdg_cache, "run", "--reuse", "kill.py")
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
        again = _run(tmp_path, xdg_cache, "run", "--reuse", "check.py")
        said = again.stdout + again.stderr
        if when == "spawned":
            assert again.returncode == 0, said[-3000:]
            assert "is recorded instead" in said, said[-3000:]
        else:
            errors = [line for line in again.stderr.splitlines() if line.startswith("error")]
            assert again.returncode == 0 or (
                again.returncode == 3 and len(errors) == 1 and "cluster stop" in errors[0]
            ), said[-3000:]
    finally:
        stop = _run(tmp_path, xdg_cache, "cluster", "stop")
    assert stop.returncode == 0, stop.stderr
    assert leftovers(state) == []
    assert not (state / "cluster.json").exists()
