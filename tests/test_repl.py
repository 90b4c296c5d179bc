"""The interactive REPL (ptpython) with the script globals, driven through a pty."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest

from conftest import photon_env
from driver.images.builder import Image

pytestmark = pytest.mark.vm


def test_repl_runs_commands_and_the_loaded_script(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    script = tmp_path / "loaded.py"
    script.write_text("start_all()\nlog('LOADED-SCRIPT-' + node01.succeed('hostname').strip())\n")
    env = photon_env(xdg_cache, tmp_path / "vm")
    env["TERM"] = "dumb"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "driver", "--profile", "minimal", "run", "--nodes", "node01", "-I", str(script)],
        env=env,
        encoding="utf-8",
        timeout=240,
        dimensions=(40, 200),
    )
    try:
        child.expect(">>>")
        child.sendline("test_script()")
        child.expect("LOADED-SCRIPT-node01")
        child.expect(">>>")
        child.sendline("print('ANSWER-' + node01.succeed('echo $((6*7))').strip())")
        child.expect("ANSWER-42")
        child.expect(">>>")
        child.sendline("help()")
        child.expect("the test script's globals")
        child.expect("wait_for_all_booted")
        child.expect("nodes: node01")
        child.expect(">>>")
        child.sendline("exit()")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    # The REPL keeps its input history in the profile's state directory.
    history = (tmp_path / "vm-minimal" / "repl-history").read_text()
    assert "echo $((6*7))" in history and "help()" in history
