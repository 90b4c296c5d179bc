"""``run`` and the seed's script verbs (``smoke``, ``fresh-smoke``, ...): pre-check the
scripts, get a Driver (fresh or attached), run, report, clean up."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from driver.errors import EXIT_OK, EXIT_TEST_FAILURE, DriverError, UsageError
from driver.reports.report import (
    NOT_FAILED,
    JunitReport,
    SubtestResult,
    SubtestStatus,
    count_statuses,
)
from driver.run.driver import Driver
from driver.safe_files import private_dir
from driver.scriptrun.debugger import Debugger
from driver.scriptrun.rerun import Reruns
from driver.scriptrun.script import ScriptRun
from driver.scriptrun.script_check import check_script, read_script
from driver.scriptrun.selection import Selection, find_subtests, list_lines, unmatched
from driver.session.invocation import Invocation
from driver.session.keep import run_keeping
from driver.session.options import RunMode
from driver.session.recorded import recorded
from driver.session.repeat import run_repeated
from driver.session.signals import global_timeout, watching
from driver.state import cluster, runs
from driver.state.settled import start_settled


def read_and_check(inv: Invocation, scripts: list[Path]) -> dict[Path, str]:
    """Each script's source, pre-checked against the topology (unless --skip-check)."""
    names = inv.nodes_subset() or list(inv.topology().nodes)
    sources: dict[Path, str] = {}
    for script in scripts:
        sources[script] = read_script(script)
        if not inv.options.skip_check:
            check_script(script, sources[script], names, inv.topology(), inv.profile)
    return sources


def checked_selection(inv: Invocation, sources: dict[Path, str]) -> Selection | None:
    """The ``--subtest`` selection; a bad pattern, or one that matches no subtest of any
    script (when every name is a literal), is a UsageError before anything boots."""
    selection = inv.selection()
    if selection is None:
        return None
    sites = [site for path, text in sources.items() for site in find_subtests(text, path)]
    missing = unmatched(selection, sites)
    if missing:
        names = ", ".join(repr(s.name) for s in sites) or "none"
        shown = ", ".join(repr(m) for m in missing)
        scripts = ", ".join(str(p) for p in sources)
        raise UsageError(
            f"--subtest {shown} matches no subtest of {scripts} (its subtests: {names})"
        )
    return selection


def list_subtests(inv: Invocation, scripts: list[Path]) -> int:
    """``--list``: each script's subtests, from its source (with ``--subtest``, whether
    each runs), on stdout; nothing is built or booted."""
    selection = inv.selection()
    lines = []
    for script in scripts:
        source = read_script(script)
        sites = find_subtests(source, script)
        known = None if selection is None else selection.with_sites(str(script), sites)
        lines.append(f"{script}:")
        lines += ["  " + line for line in list_lines(str(script), sites, known)]
        if not sites:
            lines.append("  (no subtests)")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def run_scripts(
    inv: Invocation,
    driver: Driver,
    scripts: list[Path],
    sources: dict[Path, str],
    results: list[SubtestResult],
) -> int:
    """Run the pre-checked scripts (or the REPL), then the final health check; results go
    to ``results``. Returns the exit code."""
    session = ScriptRun(driver)
    session.results = results
    session.selection = inv.selection()
    session.quarantine = inv.quarantine()
    if inv.options.debug_hook:
        session.enable_debug_hook(Debugger(driver.state, inv.logger, driver.machines))
    reruns = inv.options.rerun_failed
    if reruns or inv.options.keep_on_failure:
        # Snapshots before each subtest: reruns start from them, and a kept cluster can be
        # put back to where its failed subtest began (restore("before:NAME")).
        session.reruns = Reruns(lambda: list(driver.nodes.values()), inv.logger, reruns)
    code = EXIT_OK
    interrupted = False
    try:
        if inv.options.interactive:
            from driver.scriptrun.repl import run_repl

            run_repl(session, scripts, inv.state)
        else:
            for script in scripts:
                session.run_script(script, sources[script])
    except Exception as exc:
        inv.logger.error(session.describe_failure(exc))
        code = exc.exit_code if isinstance(exc, DriverError) else EXIT_TEST_FAILURE
    except BaseException:
        interrupted = True  # a signal or the global timeout: stop now, scan nothing
        raise
    finally:
        findings = [] if interrupted else driver.health_findings()
        kept = [] if interrupted else driver.keep_artifacts("end")
        if findings:
            message = "; ".join(str(f) for f in findings)
            inv.logger.error(f"health check at the end of the run: {message}")
            files = "".join(f"\nkept: {f}" for k in kept for f in k.files)
            results.append(
                SubtestResult(
                    "health", "", 0.0, SubtestStatus.FAILED, message + files, message[:200]
                )
            )
            code = code or EXIT_TEST_FAILURE
    counts = count_statuses(results)
    failed = counts["failed"]
    if failed and code == EXIT_OK:
        # A failed subtest the script caught itself (not excused by must_raise) still
        # fails the run.
        inv.logger.error(f"{failed} subtest(s) failed although the script went on")
        code = EXIT_TEST_FAILURE
    line = f"{counts['passed']} passed, {failed} failed"
    for status in NOT_FAILED[1:]:
        line += f", {counts[status]} {status}" if counts[status] else ""
    inv.logger.log("subtests: " + line)
    return code


def run(inv: Invocation, scripts: list[Path], results: list[SubtestResult] | None = None) -> int:
    """The one owner of a run's modes (``RunOptions.mode``, options.py): fresh nodes, the
    running cluster, or fresh nodes kept on a failure; from the settled snapshot
    (``from_settled``: taking one after a cold boot when none matches); ``--repeat`` runs
    it again and again (repeat.py), ``--rerun-failed`` inside (``run_scripts``). With
    ``--junit-xml`` a report is written whatever happens: a pre-check error, no cluster, a
    failed build or boot, an interruption. ``results`` (filled in) are the subtests'
    outcomes. Live progress (``watching``) runs from the boot to the end."""
    repeat = inv.options.repeat
    if repeat > 1 and results is None:
        return run_repeated(inv, repeat, lambda once, found: run(once, scripts, found))
    results = [] if results is None else results
    report = JunitReport(inv.options.junit_xml, f"photon-driver.{inv.profile}")
    with report.around(results, scripts[0] if scripts else None):
        inv.selection()  # a bad pattern, or a bad quarantine file: before anything else
        inv.quarantine()
        sources = read_and_check(inv, scripts)
        checked_selection(inv, sources)
        threshold = inv.options.progress_after
        with watching(inv.logger, scripts, threshold) as view:
            ran = Watched(inv, scripts, sources, results, view.summary)
            mode, settled = inv.options.mode, inv.options.from_settled
            if mode is RunMode.REUSE:
                code = ran.attached()
            else:
                code = ran.kept(settled) if mode is RunMode.KEEP else ran.fresh(settled)
        return report.finish(code)


class Watched:
    """The body of one ``run`` under live progress: the global timeout (its message naming
    ``in_flight()``) around a Driver (attached, kept or fresh) and the scripts."""

    def __init__(
        self,
        inv: Invocation,
        scripts: list[Path],
        sources: dict[Path, str],
        results: list[SubtestResult],
        in_flight: Callable[[], str],
    ) -> None:
        self.inv = inv
        self.scripts = scripts
        self.sources = sources
        self.results = results
        self.in_flight = in_flight
        self.timeout: float = inv.options.global_timeout

    def attached(self) -> int:
        """On the running cluster (``--reuse``, the seed verbs)."""
        inv = self.inv
        with (
            global_timeout(self.timeout, self.in_flight),
            cluster.attach(inv.state, inv.context(inv.state)) as driver,
            recorded(inv, driver, self.results),
        ):
            return run_scripts(inv, driver, self.scripts, self.sources, self.results)

    def kept(self, settled: bool) -> int:
        """On fresh nodes kept as the profile's cluster on a failure."""
        with global_timeout(self.timeout, self.in_flight):
            return run_keeping(
                self.inv, self.scripts, self.sources, self.results, settled, run_scripts
            )

    def fresh(self, settled: bool) -> int:
        """On fresh nodes in a run directory of their own, removed when nothing booted."""
        inv = self.inv
        state = inv.state / "runs" / runs.run_name(os.getpid(), inv.options.repetition)
        for private in (inv.state, inv.state / "runs"):  # no planted link on the way
            private_dir(private)
        runs.prune(inv.state / "runs", keep=runs.KEEP_RUNS, logger=inv.logger)
        private_dir(state)
        try:
            with global_timeout(self.timeout, self.in_flight):
                driver = inv.fresh_driver(state, settled=settled)
                runs.announce(driver, state, inv.logger)
                with driver, recorded(inv, driver, self.results):
                    if settled:
                        start_settled(
                            driver, inv.topology().profile(inv.profile), inv.settled_root()
                        )
                    return run_scripts(inv, driver, self.scripts, self.sources, self.results)
        except BaseException:
            out = state / "out"
            if not (out.is_dir() and any(out.iterdir())) and not any(state.glob("*/vm.log")):
                shutil.rmtree(state, ignore_errors=True)  # nothing booted: leave nothing
            raise
