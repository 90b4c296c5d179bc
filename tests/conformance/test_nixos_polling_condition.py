"""What nixos-test-driver/polling_condition.py checks: a condition that is false or raises
fails the block at its next machine command with "Polling condition failed: DESCRIPTION";
true, None-returning and command-running conditions pass; the description comes from
``description=``, else the docstring, else the function name."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import run_script

pytestmark = pytest.mark.vm

SCRIPT = """
@polling_condition
def never_holds():
    return False

@polling_condition
def its_command_fails():
    machine.succeed("false")

@polling_condition
def runs_a_command():
    machine.succeed("true")

@polling_condition
def returns_true():
    return True

@polling_condition(description="an explicit description", seconds_interval=1)
def explicit():
    pass

@polling_condition
def documented():
    "a docstring description"

with subtest("failing conditions fail the block"):
    for condition in [never_holds, its_command_fails]:
        assert condition.condition.description == condition.condition.condition.__name__
        with must_raise(f"Polling condition failed: {condition.condition.description}"):
            with condition:
                machine.succeed("true")

with subtest("descriptions"):
    assert explicit.condition.description == "an explicit description"
    assert documented.condition.description == "a docstring description"

with subtest("holding conditions let the block run"):
    for condition in [runs_a_command, returns_true, explicit, documented]:
        with condition:
            machine.succeed("true")
            machine.succeed("true")

with subtest("a condition is checked only inside its block"):
    machine.succeed("true")  # never_holds is not active here

with subtest("wait"):
    machine.succeed("rm -f /tmp/flag; (sleep 2; touch /tmp/flag) >/dev/null 2>&1 &")

    @polling_condition
    def flag_exists():
        return machine.execute("test -e /tmp/flag")[0] == 0

    flag_exists.wait(timeout=30)
"""


def test_polling_condition(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert not outcome.failed()
    assert {"failing conditions fail the block", "descriptions", "wait"} <= set(outcome.cases)
