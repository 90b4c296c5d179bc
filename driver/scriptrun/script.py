"""One run of test scripts against a Driver's machines: subtests, results, failures,
``must_raise``, with the NixOS test driver's meanings."""

from __future__ import annotations

import contextlib
import datetime as dt
import inspect
import time
import traceback
import types
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from driver.errors import (
    DriverError,
    Interrupted,
    ScriptAssertion,
    ScriptExited,
    ScriptOsExit,
    ScriptRaisedInterrupt,
    SubtestFailed,
    TestFailure,
)
from driver.events import EventKind
from driver.reports.report import SubtestResult, SubtestStatus, failure_status
from driver.run.helpers import SkipSubtest, exception_matches
from driver.scriptrun import namespace
from driver.scriptrun.debugger import Debugger
from driver.scriptrun.nixos_imports import nixos_modules, script_builtins
from driver.scriptrun.quarantine import Quarantine, judge_failure
from driver.scriptrun.rerun import Reruns, find_body, script_frame, source_of
from driver.scriptrun.script_check import read_script
from driver.scriptrun.script_os import ScriptOs
from driver.scriptrun.scriptlog import DebugHook, ScriptLog
from driver.scriptrun.selection import Selection, Verdict, compile_script, find_subtests

if TYPE_CHECKING:
    from driver.run.driver import Driver

# Never swallowed by must_raise unless asked for by name (os._exit: never).
INTERRUPTIONS = (KeyboardInterrupt, GeneratorExit, Interrupted, ScriptOsExit)


class AssertionTester(unittest.TestCase):
    """The ``t`` global: unittest assertions whose failures are RequestedAssertionFailed
    (as in NixOS) and AssertionError."""

    failureException = ScriptAssertion
    maxDiff = None

    def runTest(self) -> None:  # a TestCase needs one test method to be made
        """Unused."""


class ScriptRun:
    """Runs scripts with the script namespace and records one result per subtest."""

    def __init__(self, driver: Driver, interactive: bool = False) -> None:
        self.driver = driver
        self.logger = driver.context.logger
        self.interactive = interactive
        self.results: list[SubtestResult] = []
        self.reruns: Reruns | None = None  # --rerun-failed N
        self.scripts: list[tuple[Path, str]] = []
        self.current_script = ""
        self.test_case = AssertionTester()
        self.selection: Selection | None = None  # --subtest: which subtests run
        self._script_selection: Selection | None = None  # that, knowing the running script
        self._inside_selected = 0  # how many subtests that matched the block is inside
        self.quarantine: Quarantine | None = None  # --quarantine: failures tolerated
        self.debug = DebugHook()  # the ``debug`` global
        self.debugger: Debugger | None = None  # --debug-hook: stop at the first failure
        self.os_module = ScriptOs()  # the scripts' ``os``: os._exit ends only the script
        self.script_log = ScriptLog(
            self.logger,
            lambda on: driver.serial_stdout_on() if on else driver.serial_stdout_off(),
        )

    @contextlib.contextmanager
    def subtest(self, name: str) -> Iterator[bool | None]:
        """``ScriptFace.subtest`` (script_face.py)."""
        selection = self._script_selection
        verdict = Verdict.SELECTED
        if selection is not None:
            frame = script_frame(self.current_script)
            where = (self.current_script, frame.f_lineno) if frame is not None else None
            verdict = selection.decide(name, self._inside_selected > 0, where)
            del frame
        if verdict is Verdict.SKIPPED and selection is not None:
            if self._entered_in_script():
                self._not_selected(name, selection.reason())
                yield False
                return
            # Entered elsewhere (a helper module): its body is not guarded, so it runs.
            self.logger.warning(
                f"subtest '{name}' runs although {selection.reason()}: its `with` is not "
                "in the script, so its body cannot be skipped"
            )
            verdict = Verdict.CONTAINER
        self._inside_selected += verdict is Verdict.SELECTED
        try:
            with self._subtest(name):
                yield None
        finally:
            self._inside_selected -= verdict is Verdict.SELECTED

    def _entered_in_script(self) -> bool:
        """Whether the ``with subtest(...)`` being entered is in the running script's own
        code (compiled with its bodies guarded), not in a module it calls."""
        frame = inspect.currentframe()
        skipped = {__file__, contextlib.__file__}
        while frame is not None and frame.f_code.co_filename in skipped:
            frame = frame.f_back
        entered = frame is not None and frame.f_code.co_filename == self.current_script
        del frame
        return entered

    def _not_selected(self, name: str, reason: str) -> None:
        """Record the subtest ``name`` as skipped because ``--subtest`` did not select it."""
        self.logger.event(EventKind.SUBTEST_BEGIN, subtest=name, script=self.current_script)
        self.logger.log(f"subtest: {name}: skipped ({reason})")
        skipped = SubtestResult(name, self.current_script, 0.0, SubtestStatus.SKIPPED, reason)
        self.results.append(skipped)
        self.logger.event(
            EventKind.SUBTEST_END, subtest=name, status=skipped.status, duration=0.0, summary=reason
        )

    @contextlib.contextmanager
    def _subtest(self, name: str) -> Iterator[None]:
        """A subtest that runs: see ``subtest``."""
        result = SubtestResult(name, self.current_script, 0.0)
        started = time.monotonic()
        frame = script_frame(self.current_script) if self.reruns else None
        self.logger.event(EventKind.SUBTEST_BEGIN, subtest=name, script=self.current_script)
        with self.logger.capture() as lines, self.logger.nested(f"subtest: {name}"):
            saved = self.reruns is not None and self.reruns.save_before(
                name, self.driver.faults.pausing()
            )
            try:
                yield
                self.driver.check_health(f"after subtest '{name}'")
            except SkipSubtest as exc:
                result.status, result.message = SubtestStatus.SKIPPED, str(exc)
                self.logger.warning(f"skipped: {exc}")
            except SubtestFailed as exc:
                result.status = failure_status(exc.cause)
                result.message = f"subtest '{exc.name}' inside it failed"
                result.summary = str(exc)
                raise
            except Exception as exc:
                result.status = failure_status(exc)
                result.node = exc.node or "" if isinstance(exc, DriverError) else ""
                result.message = self.describe_failure(exc)
                result.summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
                self.logger.error(f'Test "{name}" failed with error: "{exc}"')
                result.message += kept_artifacts(self.driver)
                if self._rerun(name, result, frame, saved, list(lines)):
                    return
                if judge_failure(self.quarantine, result, self.logger, dt.date.today()):
                    return  # tolerated: the script goes on as after a pass
                if self.interactive:
                    raise
                raise SubtestFailed(name, exc) from exc
            except BaseException as exc:
                result.status, result.message = SubtestStatus.ERROR, f"interrupted: {exc!r}"
                raise
            finally:
                result.seconds = time.monotonic() - started
                result.output = list(lines)
                self.results.append(result)
                self.logger.event(
                    EventKind.SUBTEST_END,
                    subtest=name,
                    status=result.status,
                    duration=round(result.seconds, 4),
                    node=result.node,
                    summary=result.summary,
                )

    def _rerun(
        self,
        name: str,
        result: SubtestResult,
        frame: types.FrameType | None,
        saved: bool,
        output: list[str],
    ) -> bool:
        """With --rerun-failed: run the failed subtest again; True when a rerun passed
        (the result is then flaky, with every failed attempt kept)."""
        source = source_of(Path(self.current_script), self.scripts)
        if self.reruns is None or not self.reruns.times or frame is None or source is None:
            return False
        body = find_body(source, self.current_script, frame.f_lineno)
        if body is None:
            return False
        passed, failures = self.reruns.rerun(
            name,
            body,
            frame,
            saved,
            lambda: self.driver.check_health(f"after subtest '{name}'"),
            self.describe_failure,
        )
        attempts = [(result.summary, result.message, output)]
        attempts += [(a.summary, a.message, a.output) for a in failures]
        result.attempts = attempts
        if passed:
            result.status = SubtestStatus.FLAKY
            self.logger.warning(f"subtest '{name}' is flaky: it failed, then passed on a rerun")
        return passed

    @contextlib.contextmanager
    def must_raise(
        self, pattern: str, exception_class: type[BaseException] = Exception
    ) -> Iterator[None]:
        """``ScriptFace.must_raise`` (script_face.py)."""
        mark = len(self.results)
        try:
            yield
        except BaseException as exc:
            wanted = isinstance(exc, exception_class)
            if isinstance(exc, INTERRUPTIONS) and not (
                wanted and exception_class not in (BaseException, Exception, SystemExit)
            ):
                raise
            if not wanted:
                raise TestFailure(
                    f"{type(exc).__name__}({str(exc)!r}) is not an instance of "
                    f"{exception_class.__name__}"
                ) from exc
            if not exception_matches(pattern, exc):
                raise TestFailure(f"string {str(exc)!r} did not match {pattern!r}") from exc
            for result in self.results[mark:]:
                if result.status.fails_run:
                    result.output.append(f"failed as expected by must_raise: {result.summary}")
                    result.status = SubtestStatus.PASSED
            return
        raise TestFailure(
            f"no exception was raised (expected {exception_class.__name__} matching {pattern!r})"
        )

    def describe_failure(self, exc: BaseException) -> str:
        """The error with only the test script's frames and the failing node's console."""
        if isinstance(exc, SubtestFailed):
            exc = exc.cause
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if f.filename == self.current_script
        ]
        where = "".join(traceback.format_list(frames)).rstrip()
        text = f"{type(exc).__name__}: {exc}"
        node = exc.node if isinstance(exc, DriverError) else None
        if node and not (isinstance(exc, DriverError) and exc.quotes_console):
            with contextlib.suppress(KeyError):
                tail = self.driver.machine(node).console_tail()
                text += f"\nlast console lines of {node}:\n{tail}"
        return f"{where}\n{text}" if where else text

    def enable_debug_hook(self, debugger: Debugger) -> None:
        """``--debug-hook``: ``debug.breakpoint()`` stops the script for pdb, and so does
        the first failure that ends a script (a failed subtest, an uncaught error)."""
        self.debug = self.debugger = debugger

    def namespace(self) -> dict[str, Any]:
        """A fresh script namespace: the globals, the nodes, ``test_driver`` imports."""
        env = namespace.build(self.driver, self)
        modules = nixos_modules(self.script_log, type(self.driver))
        env["__builtins__"] = script_builtins(modules, self.os_module)
        return env

    def run_tests(self) -> None:
        """``ScriptFace.run_tests`` (script_face.py)."""
        for path, source in list(self.scripts):
            self.run_script(path, source)

    def _exec(self, code: types.CodeType, env: dict[str, Any]) -> None:
        """Run a compiled script; its selection ends with it."""
        try:
            exec(code, env)
        finally:
            self._script_selection = None

    def run_script(self, path: Path, source: str | None = None) -> None:
        """Execute one test script with the script namespace. A failed subtest ends the
        script; its error is raised as it was."""
        if source is None:
            source = read_script(path)
        if (path, source) not in self.scripts:
            self.scripts.append((path, source))
        self.current_script = str(path)
        code = compile_script(source, path)
        self._script_selection = (
            None
            if self.selection is None
            else self.selection.with_sites(str(path), find_subtests(source, path))
        )
        env = self.namespace()
        env["__file__"] = str(path)
        env["__name__"] = "__photon_test__"
        with self.logger.nested(f"running {path}"):
            try:
                self._exec(code, env)
            except SkipSubtest as exc:
                self.logger.warning(f"script skipped: {exc}")
                self.results.append(
                    SubtestResult(path.stem, str(path), 0.0, SubtestStatus.SKIPPED, str(exc))
                )
            except SubtestFailed as exc:
                if self.debugger is not None:
                    self.debugger.post_mortem(exc.cause, str(path))
                raise exc.cause from None
            except SystemExit as exc:  # the script's own sys.exit(), exit() or os._exit()
                status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
                call = "os._exit" if isinstance(exc, ScriptOsExit) else "sys.exit"
                if status == 0:
                    self.logger.log(f"{path} ended itself with {call}({exc.code!r})")
                    return
                exited = ScriptExited(f"{path}: the script called {call}({exc.code!r})", status)
                self._record_main_failure(path, exited)
                raise exited from None
            except KeyboardInterrupt:
                raised = ScriptRaisedInterrupt(f"{path}: the script raised KeyboardInterrupt")
                self._record_main_failure(path, raised)
                raise raised from None
            except Exception as exc:
                self._record_main_failure(path, exc)
                if self.debugger is not None:
                    self.debugger.post_mortem(exc, str(path))
                raise

    def _record_main_failure(self, path: Path, exc: BaseException) -> None:
        """The script's failure outside any subtest as the ``main`` result (unless a
        subtest's failure already stands for it)."""
        if not any(r.status.fails_run for r in self.results):
            summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
            message = self.describe_failure(exc) + kept_artifacts(self.driver)
            self.results.append(
                SubtestResult("main", str(path), 0.0, failure_status(exc), message, summary)
            )


def kept_artifacts(driver: Driver) -> str:
    """Keep every running node's journal and core dumps at a failure; the files, as lines
    to append to the failure's message (paths relative to the output directory)."""
    out = driver.out_dir
    files = [f for e in driver.keep_artifacts("failure") for f in e.files]
    names = [str(f.relative_to(out)) if f.is_relative_to(out) else str(f) for f in files]
    return "".join(f"\nkept: {name}" for name in names)
