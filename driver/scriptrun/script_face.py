"""ScriptFace: what a script's globals take from the run they belong to (``ScriptRun``
implements it). The script namespace (namespace.py) is built over this face, so it needs
nothing of script.py; the manual documents ``subtest``, ``must_raise`` and ``run_tests``
from here."""

from __future__ import annotations

import unittest
from contextlib import AbstractContextManager
from typing import Protocol

from driver.reports.report import SubtestResult
from driver.scriptrun.script_os import ScriptOs
from driver.scriptrun.scriptlog import DebugHook, ScriptLog


class ScriptFace(Protocol):
    """A script run as its script sees it."""

    results: list[SubtestResult]
    debug: DebugHook
    os_module: ScriptOs
    script_log: ScriptLog

    @property
    def test_case(self) -> unittest.TestCase:
        """The ``t`` global: unittest's assertions."""
        ...

    def subtest(self, name: str) -> AbstractContextManager[bool | None]:
        """A named step: timed in the log, one testcase in the JUnit report. When the block
        passes, the health gate scans every started node. A failure is recorded and, as in
        the NixOS driver, ends the script: it is raised as SubtestFailed, a SystemExit, so
        ``except Exception`` does not swallow it (``must_raise("...", SystemExit)``
        expects it), unless ``--quarantine`` excuses it (reported quarantined, the script
        goes on). ``skip(reason)`` inside marks the subtest skipped. A subtest that
        ``--subtest`` did not select is reported skipped and its block does not run (the
        ``with`` yields False)."""
        ...

    def must_raise(
        self, pattern: str, exception_class: type[BaseException] = Exception
    ) -> AbstractContextManager[None]:
        """The block must raise an ``exception_class`` whose text matches ``pattern`` (a
        regular expression, searched; plain text works too). Otherwise it fails with "no
        exception was raised", "... is not an instance of ..." or "string ... did not
        match ...". Subtests that failed inside a matching block count as passed (the
        failure was expected). SIGINT, SIGTERM and the global timeout always go through."""
        ...

    def run_tests(self) -> None:
        """Run the test script(s) of this run (again): what ``photon-driver run`` was
        given. In the REPL (``run -I``) this runs the scripts named on the command line."""
        ...
