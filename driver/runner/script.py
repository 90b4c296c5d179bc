"""One run of test scripts against a Driver's machines: subtests, results, failures."""

from __future__ import annotations

import contextlib
import time
import traceback
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from driver.errors import TestFailure
from driver.runner import namespace
from driver.runner.helpers import SkipSubtest
from driver.runner.report import SubtestResult

if TYPE_CHECKING:
    from driver.runner.driver import Driver


class ScriptRun:
    """Runs scripts with the script namespace and records one result per subtest."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.logger = driver.context.logger
        self.results: list[SubtestResult] = []
        self.current_script = ""
        self.test_case = unittest.TestCase()
        self.test_case.maxDiff = None

    @contextlib.contextmanager
    def subtest(self, name: str) -> Iterator[None]:
        """A named step: timed in the log, one testcase in the JUnit report. A failure is
        recorded and re-raised; ``skip(reason)`` inside marks it skipped. When the block
        passes, the health gate scans every started node."""
        result = SubtestResult(name, self.current_script, 0.0)
        started = time.monotonic()
        with self.logger.capture() as lines, self.logger.nested(f"subtest: {name}"):
            try:
                yield
                self.driver.check_health(f"after subtest '{name}'")
            except SkipSubtest as exc:
                result.status, result.message = "skipped", str(exc)
                self.logger.warning(f"skipped: {exc}")
            except Exception as exc:
                result.status = (
                    "failed" if isinstance(exc, TestFailure | AssertionError) else "error"
                )
                result.message = self.describe_failure(exc)
                result.summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
                raise
            finally:
                result.seconds = time.monotonic() - started
                result.output = list(lines)
                self.results.append(result)

    def describe_failure(self, exc: BaseException) -> str:
        """The error with only the test script's frames and the failing node's console."""
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename == self.current_script
        ]
        where = "".join(traceback.format_list(frames)).rstrip()
        text = f"{type(exc).__name__}: {exc}"
        node = getattr(exc, "node", None)
        if node and "console lines" not in str(exc):
            with contextlib.suppress(KeyError):
                tail = self.driver.machine(node).console_tail()
                text += f"\nlast console lines of {node}:\n{tail}"
        return f"{where}\n{text}" if where else text

    def run_script(self, path: Path, source: str | None = None) -> None:
        """Execute one test script with the script namespace."""
        if source is None:
            source = path.read_text()
        self.current_script = str(path)
        code = compile(source, str(path), "exec")
        env = namespace.build(self.driver, self, self.logger)
        env["__file__"] = str(path)
        env["__name__"] = "__photon_test__"
        with self.logger.nested(f"running {path}"):
            try:
                exec(code, env)
            except SkipSubtest as exc:
                self.logger.warning(f"script skipped: {exc}")
                self.results.append(SubtestResult(path.stem, str(path), 0.0, "skipped", str(exc)))
            except Exception as exc:
                if not any(r.status in ("failed", "error") for r in self.results):
                    status = "failed" if isinstance(exc, TestFailure | AssertionError) else "error"
                    summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    message = self.describe_failure(exc)
                    self.results.append(
                        SubtestResult(path.stem, str(path), 0.0, status, message, summary)
                    )
                raise
