"""What unit-active-state.nix checks: wait_for_unit_active_state sees a unit pass through
inactive, activating, active, reloading, active, deactivating and failed (a unit shipped by
the topology file; no health finding for the failure the script waited for)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import run_script

pytestmark = pytest.mark.vm

# The backdoor answers before basic.target, and test.service (default dependencies) cannot
# leave "inactive" before it: under TCG on a busy host that can take longer than the 10 s
# NixOS allows each step, so the script first waits for the boot, as NixOS scripts do.
SCRIPT = """
import datetime as dt

machine.wait_for_unit("multi-user.target")
machine.wait_for_unit_active_state("test.service", "inactive", timeout=10)
machine.succeed("systemctl start --no-block test.service")
machine.wait_for_unit_active_state("test.service", "activating", timeout=10)
machine.wait_for_unit_active_state("test.service", "active", timeout=dt.timedelta(seconds=10))
machine.succeed("systemctl reload --no-block test.service")
machine.wait_for_unit_active_state("test.service", "reloading", timeout=10)
machine.wait_for_unit_active_state("test.service", "active")
machine.succeed("systemctl stop --no-block test.service", timeout=10)
machine.wait_for_unit_active_state("test.service", "deactivating", timeout=10)
machine.wait_for_unit_active_state("test.service", "failed", timeout=10)
with must_raise("action timed out"):
    machine.wait_for_unit_active_state("test.service", "active", timeout=2)
"""


def test_unit_active_state(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert "health" not in outcome.cases
