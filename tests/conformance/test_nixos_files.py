"""What nixos-test-driver/files.py checks: copy_from_host and copy_from_host_via_shell of a
file, copy_from_host of a directory, copy_from_vm into a given directory and by default into
``driver.out_dir``, wait_for_file waiting and timing out with "action timed out"."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import run_script

pytestmark = pytest.mark.vm

SCRIPT = """
import datetime as dt
from tempfile import TemporaryDirectory

out = driver.out_dir

with subtest("a file to the guest and back, both ways in"):
    for method in [machine.copy_from_host, machine.copy_from_host_via_shell]:
        with subtest(method.__name__), TemporaryDirectory() as back:
            method(example_file, "/tmp/copied")
            machine.copy_from_vm("/tmp/copied", back)
            same_on_host(example_file, Path(back, "copied"))
            machine.succeed("rm /tmp/copied")

with subtest("a directory to the guest and back"), TemporaryDirectory() as back:
    machine.copy_from_host(example_dir, "/tmp/tree")
    machine.copy_from_vm("/tmp/tree", back)
    same_on_host(example_file, Path(back, "tree", "example-file"))

with subtest("copy_from_vm defaults to the output directory"):
    machine.succeed("echo out > /tmp/to-out")
    machine.copy_from_vm("/tmp/to-out")
    assert (out / "to-out").read_text() == "out\\n"

with subtest("wait_for_file"):
    machine.succeed("(sleep 3 && echo hello > /tmp/later) >&2 &")
    started = time.monotonic()
    machine.wait_for_file("/tmp/later")
    assert time.monotonic() - started > 2
    with must_raise("action timed out"):
        machine.wait_for_file("/will/never/exist", timeout=dt.timedelta(seconds=3))
"""


def test_files(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert not outcome.failed()
    assert {"copy_from_host", "copy_from_host_via_shell", "wait_for_file"} <= set(outcome.cases)
