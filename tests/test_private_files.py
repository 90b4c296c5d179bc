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
