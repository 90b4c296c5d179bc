"""What nixos-test-driver/power.py checks: shutdown and crash stop the node
(wait_for_shutdown returns, ``booted`` is False), a second call is a no-op, join_all returns,
and the next command starts the node again."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import run_script

pytestmark = pytest.mark.vm

SCRIPT = """
for method in [machine.shutdown, machine.crash]:
    with subtest(method.__name__):
        machine.wait_for_unit("multi-user.target")  # (re)starts the node when it is down
        machine.succeed("touch /root/was-here")
        method()
        machine.wait_for_shutdown()
        assert not machine.booted
        assert not machine.is_up()
        method()  # no-op on a stopped node
        join_all()

with subtest("the node comes back on the same disk"):
    machine.succeed("test -e /root/was-here")
"""


def test_power(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert not outcome.failed()
    assert {"shutdown", "crash", "the node comes back on the same disk"} <= set(outcome.cases)
