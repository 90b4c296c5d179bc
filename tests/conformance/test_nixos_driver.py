"""What nixos-test-driver/driver.py checks, with no nodes at all (``nodes = { }``): a
failing subtest ends the script as SystemExit, the logger's ``sanitise``, and must_raise's
three ways to fail. Plus the globals a NixOS script finds in its namespace."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from conformance_helpers import run_script

SCRIPT = """
import string
from test_driver import logger
from test_driver.errors import RequestedAssertionFailed

with subtest("a failing subtest ends the script as SystemExit"):
    with must_raise("", SystemExit):
        with subtest("expected to fail"):
            raise Exception("Oops.")
    with must_raise("still a SystemExit", SystemExit):
        try:
            with subtest("not caught by except Exception"):
                raise ValueError("still a SystemExit")
        except Exception:
            raise AssertionError("a subtest failure was swallowed by except Exception")

with subtest("sanitise"):
    assert logger.rootlog.sanitise("foobar") == "foobar"
    kept = [c for c in map(chr, range(128)) if logger.rootlog.sanitise(c) == c]
    assert all(c in string.printable for c in kept)
    assert logger.rootlog.sanitise("a\\x1b[31mb\\x07") == "a[31mb"

with subtest("must_raise"):
    with must_raise("Oops."):
        raise Exception("Oops.")
    with must_raise("string .* did not match"):
        with must_raise("Something"):
            raise Exception("Another thing")
    with must_raise(".* is not an instance of .*"):
        with must_raise("Oops.", ValueError):
            raise IndexError("Oops.")
    with must_raise("no exception was raised"):
        with must_raise("Oops."):
            pass

with subtest("the namespace"):
    assert machines == [] and vlans == [] and driver.machines == []
    assert driver.out_dir.is_dir()
    assert os.path.isdir(driver.out_dir)
    assert Machine.__name__ == "Machine"
    log.info("log.info works")
    with log.nested("a nested block"):
        log("and log() too")
    with must_raise("1 != 2"):
        t.assertEqual(1, 2)
    try:
        t.assertTrue(False)
    except RequestedAssertionFailed:
        pass
    debug.breakpoint()
"""


def test_driver_globals(tmp_path: Path, xdg_cache: Path) -> None:
    outcome = run_script(tmp_path, xdg_cache, "none.toml", SCRIPT)
    assert outcome.code == 0, outcome.stderr[-4000:]
    assert not outcome.failed(), outcome.failed()
    # the expected failures are reported as passed, with a note
    expected = outcome.cases["expected to fail"]
    assert "failed as expected by must_raise" in (expected.findtext("system-out") or "")


def test_an_uncaught_subtest_failure_fails_the_run(tmp_path: Path, xdg_cache: Path) -> None:
    outcome = run_script(
        tmp_path,
        xdg_cache,
        "none.toml",
        """
        with subtest("boom"):
            raise ValueError("boom")
        raise AssertionError("the script went on after a failed subtest")
        """,
    )
    assert outcome.code == 1, outcome.stderr[-3000:]
    assert outcome.failed() == ["boom"]
    failure = outcome.cases["boom"].find("error")
    assert failure is not None and "ValueError: boom" in ET.tostring(failure, "unicode")
    assert "went on" not in outcome.stderr
