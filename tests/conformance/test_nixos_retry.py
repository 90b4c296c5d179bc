"""What retry.nix checks: ``retry(fn, timeout)`` calls ``fn(remaining)`` (None without a
limit), makes no attempt once the time is up (none for a zero timeout), accepts a late
success, and raises RequestedAssertionFailed; timeouts are ``timedelta`` or seconds."""

from __future__ import annotations

from pathlib import Path

from conformance_helpers import run_script

SCRIPT = """
import datetime as dt
import sys
from test_driver.errors import RequestedAssertionFailed
from test_driver.machine import retry as imported

assert imported is retry

seen = []
retry(lambda remaining: seen.append(remaining) or True, timeout=None)
assert seen == [None]

calls = 0

def slow_failure(remaining):
    global calls
    assert remaining is not None and remaining > 0
    calls += 1
    time.sleep(0.05)
    return False

with t.assertRaises(RequestedAssertionFailed):
    retry(slow_failure, timeout=dt.timedelta(seconds=0.01))
assert calls == 1, calls

late = 0

def late_success(remaining):
    global late
    late += 1
    time.sleep(0.02)
    return True

retry(late_success, timeout=dt.timedelta(seconds=0.01))
assert late == 1

zero = 0

def count(remaining):
    global zero
    zero += 1
    return True

with t.assertRaises(RequestedAssertionFailed):
    retry(count, timeout=dt.timedelta(0))
assert zero == 0

tries = 0

def three(remaining):
    global tries
    tries += 1
    return tries == 3

started = time.monotonic()
retry(three, timeout=10)  # seconds work too; one second between tries
assert tries == 3 and 1.5 < time.monotonic() - started < 8
with must_raise("action timed out"):
    retry(lambda remaining: False, timeout_seconds=1)  # the older keyword
print("RETRY-CHECKS-" + "DONE", file=sys.stderr)
"""


def test_retry(tmp_path: Path, xdg_cache: Path) -> None:
    outcome = run_script(tmp_path, xdg_cache, "none.toml", SCRIPT)
    assert outcome.code == 0, outcome.stderr[-4000:]
    # Every check above ran (the script got to its last line), and nothing failed.
    assert "RETRY-CHECKS-DONE" in outcome.stderr
    assert not outcome.failed()
