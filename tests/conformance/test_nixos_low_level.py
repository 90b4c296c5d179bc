"""What nixos-test-driver/low_level.py checks: retry ending under a patched-out sleep,
execute's status and output (``check_return=False`` -> -1, a syntax error is status 2),
succeed/fail and their failure texts, wait_until_*, is_up, sleep, wait_for_text without OCR,
and send_monitor_command returning the monitor's text up to its prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import check_passed, run_script

pytestmark = pytest.mark.vm

SCRIPT = """
import datetime as dt
from test_driver.machine import retry as imported_retry

assert imported_retry is retry

with subtest("retry ends at once when sleep is patched out"):
    started = time.monotonic()
    with must_raise("action timed out"), sleep_patched_out():
        retry(lambda remaining: False)
    assert time.monotonic() - started < 30, "retry spun for its whole timeout"
    with sleep_patched_out():
        retry(lambda remaining: remaining)  # a positive remaining time is true

with subtest("execute"):
    assert machine.execute("true") == (0, "")
    assert machine.execute("echo out; exit 3") == (3, "out\\n")
    assert machine.execute("false", check_return=False) == (-1, "")
    assert machine.execute("sleep 30", timeout=dt.timedelta(seconds=1))[0] == 124
    # What the NixOS driver returns for a command bash cannot parse (issue 35, measured on
    # the real driver): bash's status 2, its message on the console.
    assert machine.execute(")") == (2, "")
    machine.wait_for_console_text("syntax error near unexpected token", timeout=10)

with subtest("succeed"):
    assert machine.succeed("echo hello") == "hello\\n"
    assert machine.succeed("echo a", "echo b") == "a\\nb\\n"
    machine.wait_until_succeeds("true")
    with must_raise("command `false` failed"):
        machine.succeed("false")
    lines = machine.succeed("seq 10000").splitlines()
    assert lines == [str(i + 1) for i in range(10000)]

with subtest("fail"):
    machine.fail("false")
    machine.wait_until_fails("false")
    with must_raise("command `true` unexpectedly succeeded"):
        machine.fail("true")

with subtest("is_up and sleep"):
    assert machine.is_up() and machine.booted and machine.connected
    started = time.monotonic()
    machine.sleep(dt.timedelta(seconds=2))
    assert time.monotonic() - started >= 1.9

with subtest("no OCR on a headless node"):
    with must_raise("OCR requested but enableOCR is false"):
        machine.wait_for_text("anything")

with subtest("send_monitor_command"):
    text = machine.send_monitor_command("help")
    assert "balloon" in text, text[:200]
    assert text.rstrip().endswith("(qemu)"), text[-200:]
    assert len(text) > 10_000  # the whole help text, not a first chunk
"""


def test_low_level(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    check_passed(outcome, node_kind, vm_only="send_monitor_command")
    assert {
        "retry ends at once when sleep is patched out",
        "execute",
        "send_monitor_command",
    } <= set(outcome.cases)
