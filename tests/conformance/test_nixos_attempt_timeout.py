"""What attempt-timeout.nix checks: ``wait_until_succeeds(timeout, attempt_timeout)`` with
``timedelta``s retries a blocking command within the budget and ends in about
``timeout + attempt_timeout``; ``wait_for_open_port`` on a port whose packets are dropped
is bounded by its timeout."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance_helpers import run_script

pytestmark = pytest.mark.vm

SCRIPT = """
import datetime as dt

machine.wait_for_unit("multi-user.target")

with subtest("a blocking command is retried within the budget"):
    command = "echo attempt >> /tmp/attempts; exec sleep 600 > /dev/null"
    started = time.monotonic()
    with must_raise("action timed out"):
        machine.wait_until_succeeds(
            command, timeout=dt.timedelta(seconds=20), attempt_timeout=dt.timedelta(seconds=2)
        )
    elapsed = time.monotonic() - started
    attempts = int(machine.succeed("wc -l < /tmp/attempts"))
    assert attempts >= 4, attempts
    assert 18 < elapsed < 40, elapsed

with subtest("a probe of a dropped port is bounded by the budget"):
    machine.succeed("iptables -A OUTPUT -p tcp -d 127.0.0.1 --dport 1234 -j DROP")
    started = time.monotonic()
    with must_raise("action timed out"):
        machine.wait_for_open_port(1234, addr="127.0.0.1", timeout=dt.timedelta(seconds=5))
    assert time.monotonic() - started < 60
"""


def test_attempt_timeout(tmp_path: Path, xdg_cache: Path, node_kind: str) -> None:
    outcome = run_script(tmp_path, xdg_cache, "machine.toml", SCRIPT, kind=node_kind)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert not outcome.failed()
