"""What nixos-test-driver/systemd.py checks: wait_for_unit, and require_unit_state passing
for the unit's state and failing with NixOS's text for another."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import run_script

pytestmark = pytest.mark.vm

SCRIPT = """
machine.wait_for_unit("multi-user.target")

with subtest("require_unit_state"):
    machine.require_unit_state("multi-user.target", "active")
    machine.require_unit_state("multi-user.target")  # "active" is the default
    with must_raise("to to be in state 'borked'"):
        machine.require_unit_state("multi-user.target", "borked")
    with must_raise("but it is in state 'active'"):
        machine.require_unit_state("multi-user.target", "inactive")

with subtest("wait_for_unit fails at once for a unit that cannot start"):
    started = time.monotonic()
    with must_raise('unit "no-such-thing.service"'):
        machine.wait_for_unit("no-such-thing.service", timeout=60)
    assert time.monotonic() - started < 30

with subtest("unit info and properties"):
    assert machine.get_unit_info("multi-user.target")["ActiveState"] == "active"
    assert machine.get_unit_property("multi-user.target", "ActiveState") == "active"
    status, out = machine.systemctl("is-active multi-user.target")
    assert (status, out.strip()) == (0, "active")
"""


def test_systemd(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert not outcome.failed()
    assert "require_unit_state" in outcome.cases
