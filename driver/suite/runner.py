"""Running a suite's tests: each its own ``photon-driver run`` child process (its own
state directory under ``$PHOTON_VM_DIR-suite/``, its own output directory ``DIR/<id>/``
with its JUnit file, report and ``run.log``), ``jobs`` at once. When the suite is stopped
(a signal, raised in the main thread) every running child gets that signal at once and
is waited for (killed, with its process group, after ``grace`` seconds): nothing is left."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from driver.suite.plan import SuiteTest
from driver.suite.records import RunRecord, Status, status_of

POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 120.0  # how long a stopped run may take to clean up before it is killed
# A run still going this long after its start is stopped (a backstop: each run has its own
# --global-timeout, which the suite sets to this less OVERRUN_SECONDS).
RUN_LIMIT_SECONDS = 3600.0 + 300.0
OVERRUN_SECONDS = 300.0
RUN_LOG = "run.log"
RUN_JUNIT = "junit.xml"


@dataclass(frozen=True)
class Launch:
    """How one test's run starts: its command line, environment, folder and output."""

    test: SuiteTest
    out: Path
    argv: tuple[str, ...]
    env: Mapping[str, str]


def vm_dir(environ: Mapping[str, str], test_id: str) -> Path:
    """The run's own ``PHOTON_VM_DIR``: ``$PHOTON_VM_DIR-suite/<id, / as __>``."""
    base = Path(environ.get("PHOTON_VM_DIR") or Path.home() / ".photoncloud-test-cluster")
    return base.with_name(f"{base.name}-suite") / test_id.replace("/", "__")


def launch_of(
    test: SuiteTest,
    out_root: Path,
    environ: Mapping[str, str],
    extra: tuple[str, ...] = (),
    python: str = sys.executable,
) -> Launch:
    """The child ``python -m driver run`` of ``test``, writing into ``out_root/<id>/``;
    ``extra``: more ``run`` options (the suite's own ``--log-level``...)."""
    out = (out_root / test.id).absolute()
    argv = (
        python,
        "-m",
        "driver",
        "run",
        *test.run_options(),
        *extra,
        "-o",
        str(out),
        "--junit-xml",
        str(out / RUN_JUNIT),
        str(test.script),
    )
    env = dict(environ) | {"PHOTON_VM_DIR": str(vm_dir(environ, test.id))}
    env.setdefault("NO_COLOR", "1")  # the run's log is a file
    return Launch(test, out, argv, env)


def was_flaky(junit: Path) -> bool:
    """Whether a run's JUnit file has a subtest that passed on a rerun."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return False
    return any(True for _ in root.iter("flakyFailure"))


@dataclass
class Running:
    """A started run."""

    launch: Launch
    process: subprocess.Popen[bytes]
    started: float


class Pool:
    """Runs launches ``jobs`` at once; ``report(line)`` says what starts and ends."""

    def __init__(
        self,
        launches: list[Launch],
        jobs: int,
        report: Callable[[str], None],
        grace: float = STOP_GRACE_SECONDS,
        limit: float = RUN_LIMIT_SECONDS,
    ) -> None:
        self.pending = list(launches)
        self.limit = limit
        self.jobs = max(1, jobs)
        self.report = report
        self.grace = grace
        self.running: list[Running] = []
        self.records: dict[str, RunRecord] = {}

    def start(self, launch: Launch) -> None:
        """Start one run, its output in ``run.log`` in its own folder."""
        launch.out.mkdir(parents=True, exist_ok=True)
        (launch.out / RUN_JUNIT).unlink(missing_ok=True)  # an earlier suite's: not this run's
        with open(launch.out / RUN_LOG, "wb") as log:
            process = subprocess.Popen(
                launch.argv,
                cwd=launch.test.cwd,
                env=dict(launch.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches the suite, which stops it
            )
        self.running.append(Running(launch, process, time.monotonic()))
        self.report(f"started {launch.test.id} (pid {process.pid})")

    def finish(self, run: Running, code: int) -> None:
        """Record an ended run."""
        seconds = time.monotonic() - run.started
        code = code if code >= 0 else 128 - code  # killed by a signal: 128 + its number
        flaky = was_flaky(run.launch.out / RUN_JUNIT)
        status = status_of(code, flaky)
        self.records[run.launch.test.id] = RunRecord(
            run.launch.test.id, status, seconds, code, str(run.launch.out)
        )
        self.report(f"{status.value}: {run.launch.test.id} (exit {code}, {seconds:.1f} s)")

    def run(self) -> list[RunRecord]:
        """Run every launch; on an interruption stop the running ones, then re-raise."""
        try:
            while self.pending or self.running:
                while self.pending and len(self.running) < self.jobs:
                    self.start(self.pending.pop(0))
                for run in list(self.running):
                    code = run.process.poll()
                    if code is not None:
                        self.running.remove(run)
                        self.finish(run, code)
                now = time.monotonic()
                overdue = [r for r in self.running if now - r.started > self.limit]
                for run in overdue:
                    self.report(f"{run.launch.test.id}: still running after {self.limit:g} s")
                if overdue:
                    self.stop(signal.SIGTERM, overdue)
                if self.running:
                    time.sleep(POLL_SECONDS)
        except BaseException as exc:
            self.stop(int(getattr(exc, "exit_code", 128 + signal.SIGTERM)) - 128)
            raise
        return self.records_so_far()

    def stop(self, signum: int, runs: list[Running] | None = None) -> None:
        """Send ``signum`` (SIGTERM when it is no signal) to ``runs`` (every running one)
        at once, wait for each; one still running after the grace time is killed with its
        process group."""
        if signum not in (signal.SIGINT, signal.SIGTERM):
            signum = signal.SIGTERM
        runs = list(self.running) if runs is None else runs
        for run in runs:
            with contextlib.suppress(ProcessLookupError):
                run.process.send_signal(signum)
        deadline = time.monotonic() + self.grace
        for run in runs:
            try:
                code = run.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(run.process.pid, signal.SIGKILL)
                code = run.process.wait()
            self.running.remove(run)
            self.finish(run, code)

    def records_so_far(self) -> list[RunRecord]:
        """A record for every launch: the ended ones' and, for those never started, not
        run."""
        records = dict(self.records)
        for launch in self.pending:
            records[launch.test.id] = RunRecord(
                launch.test.id, Status.NOT_RUN, 0.0, None, str(launch.out)
            )
        return sorted(records.values(), key=lambda r: r.id)
