"""A run's files are its own whatever the caller's umask: under ``umask 000`` nothing the
run makes is group- or world-writable, and nothing holding a key is readable by others
(issue 36). Image builds keep a root filesystem's usual modes (umask 022)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.file_modes import image_files, private_files

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"
SCRIPT = 'machine.succeed("true")\n'


def _made(path: Path) -> int:
    path.mkdir()
    (path / "f").write_text("x")
    return stat.S_IMODE((path / "f").stat().st_mode) | stat.S_IMODE(path.stat().st_mode) << 9


def test_private_files_strip_group_and_other_and_restore_the_umask(tmp_path: Path) -> None:
    """Under private_files a new file is 0600 and a directory 0700, under image_files
    0644/0755, even from umask 000; the caller's umask is back afterwards."""
    old = os.umask(0)
    try:
        with private_files():
            assert _made(tmp_path / "private") == (0o700 << 9) | 0o600
            with image_files():
                assert _made(tmp_path / "image") == (0o755 << 9) | 0o644
            assert _made(tmp_path / "private-again") == (0o700 << 9) | 0o600
        assert os.umask(0) == 0
    finally:
        os.umask(old)


@pytest.mark.vm
def test_a_run_under_umask_000_leaves_nothing_open_to_others(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """A one-node run started with umask 000: every file and directory it made (state,
    the node's initrd with its SSH host key, the client key, logs, JUnit, report) has no
    group or other bits at all."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text(SCRIPT)
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py"),
            *("--junit-xml", str(tmp_path / "junit.xml")),
        ],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.umask(0) and None,
    )
    try:
        _, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    state = vm_dir / "runs" / str(proc.pid)
    assert leftovers(state) == []
    assert proc.returncode == 0, err[-3000:]
    made = [tmp_path / "junit.xml", vm_dir, *vm_dir.rglob("*")]
    assert any(p.name == "initrd.img" for p in made), "the node's initrd was not kept"
    assert any(p.name == "id_ed25519" for p in made), "the client key was not kept"
    open_to_others = [
        f"{oct(stat.S_IMODE(p.lstat().st_mode))} {p}"
        for p in made
        if not p.is_symlink() and not p.is_socket() and p.lstat().st_mode & 0o077
    ]
    assert open_to_others == []


def _run(tmp_path: Path, xdg_cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """A run of a script that boots nothing (it touches no node), on a one-node topology."""
    (tmp_path / "t.toml").write_text(TOPOLOGY)
    (tmp_path / "t.py").write_text('print("hello")\n')
    return subprocess.run(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py", *extra],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _error_line(proc: subprocess.CompletedProcess[str]) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.parametrize("planted", ["events.jsonl", "report.html"])
def test_a_link_planted_in_the_output_directory_is_refused(
    planted: str, tmp_path: Path, xdg_cache: Path
) -> None:
    """A symbolic link where the run writes a report: nothing is written through it, one
    line names it, exit 3, no run directory left."""
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / planted).symlink_to(victim)
    proc = _run(tmp_path, xdg_cache, "-o", "out")
    assert victim.read_text() == "untouched\n"
    if planted == "report.html":  # written by rename: the link is replaced, not followed
        assert proc.returncode == 0, proc.stderr
        assert not (tmp_path / "out" / planted).is_symlink()
        return
    assert proc.returncode == 3, proc.stderr
    assert f"out/{planted}: is a symbolic link" in _error_line(proc)
    assert list((tmp_path / "vm" / "runs").iterdir()) == []


def test_an_output_directory_that_is_a_link_is_refused(tmp_path: Path, xdg_cache: Path) -> None:
    """``-o`` naming a symbolic link to a directory elsewhere: refused, nothing there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").symlink_to(elsewhere)
    proc = _run(tmp_path, xdg_cache, "-o", "out")
    assert proc.returncode == 3, proc.stderr
    assert "out: is a symbolic link" in _error_line(proc)
    assert list(elsewhere.iterdir()) == []


def test_state_reached_through_a_link_or_open_to_others_is_refused(
    tmp_path: Path, xdg_cache: Path
) -> None:
    """The state directory's ``runs`` planted as a link, then the state directory left
    writable by others: each is refused with one line naming it, exit 3."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "vm").mkdir(mode=0o700)
    (tmp_path / "vm" / "runs").symlink_to(elsewhere)
    proc = _run(tmp_path, xdg_cache)
    assert proc.returncode == 3, proc.stderr
    assert "vm/runs/" in _error_line(proc) or "vm/runs:" in _error_line(proc)
    assert list(elsewhere.iterdir()) == []
    (tmp_path / "vm" / "runs").unlink()
    (tmp_path / "vm").chmod(0o777)
    proc = _run(tmp_path, xdg_cache)
    assert proc.returncode == 3, proc.stderr
    assert "vm: is writable by group or others" in _error_line(proc)


def test_an_atomic_write_refuses_a_planted_temporary_and_replaces_a_link(tmp_path: Path) -> None:
    """write_atomic never writes through a link: one at the target is replaced, one at
    the temporary name is refused (UnsafePath naming it)."""
    from driver.atomic import write_atomic
    from driver.safe_files import UnsafePath

    victim = tmp_path / "victim"
    victim.write_text("untouched")
    target = tmp_path / "report.json"
    target.symlink_to(victim)
    write_atomic(target, "new")
    assert victim.read_text() == "untouched" and target.read_text() == "new"
    (tmp_path / f".{target.name}.{os.getpid()}.tmp").symlink_to(victim)
    with pytest.raises(UnsafePath, match="is a symbolic link"):
        write_atomic(target, "newer")
    assert victim.read_text() == "untouched"
