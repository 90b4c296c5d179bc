"""Driver: the machines and VLANs of one run, the script globals, subtests and cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import socket
import tempfile
import threading
import time
import traceback
import unittest
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from driver.errors import DriverError, TestFailure
from driver.health import Finding, HealthGate
from driver.log import Logger
from driver.machine.machine import BOOT_TIMEOUT, Machine
from driver.machine.qemu import Paths
from driver.report import SubtestResult
from driver.spec import NodeSpec
from driver.topology import Profile, Topology
from driver.vlan import VLan

GLOBAL_NAMES = (
    "machines", "vlans", "driver", "start_all", "join_all", "wait_for_all_booted", "subtest", "retry",
    "polling_condition", "serial_stdout_on", "serial_stdout_off", "t", "log", "skip", "allow_problem",
    "results", "topology", "profile",
)  # fmt: skip


class SkipSubtest(Exception):
    """Raised by ``skip(reason)``; the subtest is reported as skipped."""


def pythonise(name: str) -> str:
    """A node name as a Python identifier (``node-1`` -> ``node_1``)."""
    return "".join(c if c.isalnum() else "_" for c in name)


def socket_prefix(state: Path) -> str:
    """The name prefix of a run's private socket directory (derived from its state dir, so
    tools and tests can find the run's processes)."""
    return "photon-" + hashlib.sha1(str(state).encode()).hexdigest()[:10] + "-"


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Driver:
    """Owns the run: builds Machines from specs, boots them, runs scripts, cleans up."""

    def __init__(
        self,
        specs: Mapping[str, NodeSpec],
        state: Path,
        logger: Logger,
        environ: Mapping[str, str],
        out_dir: Path | None = None,
        boot_groups: list[list[str]] | None = None,
        detached: bool = False,
        cache_dir: Path | None = None,
        socket_dir: Path | None = None,
        host_ports: Mapping[str, list[int]] | None = None,
        topology: Topology | None = None,
        profile: Profile | None = None,
    ) -> None:
        self.state = state
        self.topology = topology
        self.profile = profile
        self.logger = logger
        self.out_dir = out_dir or state / "out"
        self.detached = detached
        self._own_socket_dir = socket_dir is None
        self.socket_dir = socket_dir or Path(tempfile.mkdtemp(prefix=socket_prefix(state)))
        self.socket_dir.chmod(0o700)
        numbers = sorted({nic.vlan for spec in specs.values() for nic in spec.nics})
        self.vlans = [VLan(n, self.socket_dir) for n in numbers]
        self.machines: list[Machine] = []
        for name, spec in specs.items():
            ports = (host_ports or {}).get(name) or [
                f.host_port or free_port() for f in spec.forwards
            ]
            self.machines.append(Machine(
                spec, Paths(state / name, self.socket_dir / name), logger, self.out_dir,
                {v.number: v.socket for v in self.vlans}, ports, environ,
                detached=detached, cache_dir=cache_dir,
            ))  # fmt: skip
        names = [m.name for m in self.machines]
        self.boot_groups = [[n for n in g if n in names] for g in (boot_groups or [names])]
        self.boot_groups = [g for g in self.boot_groups if g]
        self.results: list[SubtestResult] = []
        self.current_script = ""
        self._vlans_started = False
        self.health = HealthGate()
        self.test_case = unittest.TestCase()
        self.test_case.maxDiff = None

    # --- machines ------------------------------------------------------------------

    def machine(self, name: str) -> Machine:
        """The Machine called ``name``."""
        for machine in self.machines:
            if machine.name == name:
                return machine
        raise KeyError(name)

    def start_vlans(self) -> None:
        """Start one vde_switch per VLAN (once)."""
        if not self._vlans_started:
            for vlan in self.vlans:
                vlan.start(detached=self.detached)
            self._vlans_started = True

    def start_all(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Boot every machine, group by group in boot order (control plane first); nodes of
        a group boot in parallel, the next group starts once the group's shells answer."""
        self.start_vlans()
        with self.logger.nested("starting all machines"):
            for group in self.boot_groups:
                machines = [self.machine(n) for n in group]
                for machine in machines:
                    machine.start()  # main thread: the parent-death signal binds to it
                self._parallel(machines, lambda m: m.connect(timeout))

    def join_all(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Wait until every machine has shut down (as in the NixOS driver); does not start a
        shutdown. Fails after ``timeout`` s."""
        self._parallel(
            [m for m in self.machines if m.is_running()], lambda m: m.wait_for_shutdown(timeout)
        )

    def wait_for_all_booted(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Wait until every started machine's backdoor shell answers (boot finished);
        fails after ``timeout`` s."""
        self._parallel([m for m in self.machines if m.is_running()], lambda m: m.connect(timeout))

    def _parallel(self, machines: list[Machine], action: Callable[[Machine], None]) -> None:
        if not machines:
            return
        pool = ThreadPoolExecutor(max_workers=len(machines), thread_name_prefix="boot")
        try:
            for future in [pool.submit(action, m) for m in machines]:
                future.result()
        finally:
            # On a signal or timeout, don't wait for the other boots: cleanup kills their
            # QEMUs, which ends those threads within one poll interval.
            pool.shutdown(wait=False, cancel_futures=True)

    # --- script helpers ------------------------------------------------------------

    @contextlib.contextmanager
    def subtest(self, name: str) -> Iterator[None]:
        """A named step: timed in the log, one testcase in the JUnit report. A failure is
        recorded and re-raised; ``skip(reason)`` inside marks it skipped."""
        result = SubtestResult(name, self.current_script, 0.0)
        started = time.monotonic()
        with self.logger.capture() as lines, self.logger.nested(f"subtest: {name}"):
            try:
                yield
                self.check_health(f"after subtest '{name}'")
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

    def started_machines(self) -> list[Machine]:
        """Machines that have been started in this run (running or not)."""
        return [m for m in self.machines if m.pid is not None]

    def health_findings(self) -> list[Finding]:
        """New findings of the health gate on every started machine."""
        return self.health.scan(self.started_machines())

    def check_health(self, when: str) -> None:
        """Fail (TestFailure naming node and evidence) if the health gate finds a kernel
        problem or a failed unit the script did not allow."""
        findings = self.health_findings()
        if findings:
            first = findings[0].node
            raise TestFailure(
                f"health check {when}: " + "; ".join(str(f) for f in findings), node=first
            )

    def allow_problem(self, regex: str, node: Machine | str | None = None) -> None:
        """Declare a health finding expected: findings matching ``regex`` (a failed unit,
        a kernel line; on ``node`` only, when given) do not fail the run."""
        name = node.name if isinstance(node, Machine) else node
        self.health.allow(regex, name)

    @staticmethod
    def skip(reason: str) -> None:
        """Skip the current subtest with ``reason`` (JUnit ``skipped``)."""
        raise SkipSubtest(reason)

    def retry(self, fn: Callable[[bool], bool], timeout_seconds: float = 900.0) -> None:
        """Call ``fn(last_try)`` once a second until it returns True; ``last_try`` is True on
        the final attempt so ``fn`` can print diagnostics only then."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            last = time.monotonic() + 1.0 >= deadline
            if fn(last):
                return
            if last:
                raise TestFailure(f"retry: condition not met within {timeout_seconds}s")
            time.sleep(1.0)

    @contextlib.contextmanager
    def polling_condition(
        self, condition: Callable[[], bool], seconds_interval: float = 2.0, description: str = ""
    ) -> Iterator[None]:
        """While the block runs, check ``condition`` every ``seconds_interval`` s in the
        background; if it ever returns False (or raises), the block fails afterwards."""
        failures: list[str] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(seconds_interval):
                try:
                    ok = condition()
                except Exception as exc:
                    ok, detail = False, str(exc)
                else:
                    detail = ""
                if not ok:
                    failures.append(detail or "returned False")
                    return

        thread = threading.Thread(target=poll, name="polling-condition", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
        if failures:
            label = description or getattr(condition, "__name__", "condition")
            raise TestFailure(f"polling condition '{label}' failed: {failures[0]}")

    def serial_stdout_on(self) -> None:
        """Stream every node's console into the log (default)."""
        for machine in self.machines:
            machine.console.stream_to_log = True

    def serial_stdout_off(self) -> None:
        """Stop streaming consoles into the log (they are still written to vm.log)."""
        for machine in self.machines:
            machine.console.stream_to_log = False

    def script_globals(self) -> dict[str, Any]:
        """What a test script sees: one variable per node plus the driver helpers."""
        env: dict[str, Any] = {pythonise(m.name): m for m in self.machines}
        env.update(
            machines=self.machines,
            vlans=self.vlans,
            driver=self,
            start_all=self.start_all,
            join_all=self.join_all,
            wait_for_all_booted=self.wait_for_all_booted,
            subtest=self.subtest,
            retry=self.retry,
            polling_condition=self.polling_condition,
            serial_stdout_on=self.serial_stdout_on,
            serial_stdout_off=self.serial_stdout_off,
            t=self.test_case,
            log=self.logger.log,
            skip=self.skip,
            allow_problem=self.allow_problem,
            results=self.results,
            topology=self.topology,
            profile=self.profile,
        )
        return env

    def describe_failure(self, exc: BaseException) -> str:
        """The error with only the test script's frames and the failing node's console."""
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename == self.current_script]  # fmt: skip
        where = "".join(traceback.format_list(frames)).rstrip()
        text = f"{type(exc).__name__}: {exc}"
        node = getattr(exc, "node", None)
        if node and "console lines" not in str(exc):
            with contextlib.suppress(KeyError):
                text += f"\nlast console lines of {node}:\n{self.machine(node).console_tail()}"
        return f"{where}\n{text}" if where else text

    def run_script(self, path: Path, source: str | None = None) -> None:
        """Execute one test script with the script globals."""
        if source is None:
            source = path.read_text()
        self.current_script = str(path)
        code = compile(source, str(path), "exec")
        env = self.script_globals()
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
                    self.results.append(SubtestResult(
                        path.stem, str(path), 0.0, status, self.describe_failure(exc),
                        f"{type(exc).__name__}: {exc}".splitlines()[0]))  # fmt: skip
                raise

    # --- teardown ------------------------------------------------------------------

    def cleanup(self) -> None:
        """Kill every QEMU and switch this run started; remove its socket directory."""
        for machine in self.machines:
            try:
                machine.kill()
            except DriverError as exc:
                self.logger.warning(f"{machine.name}: cleanup: {exc}")
        for vlan in self.vlans:
            vlan.stop()
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        if not self.detached:
            for machine in self.machines:  # keep vm.log, drop the disk overlays
                for overlay in machine.overlays:
                    if overlay.suffix == ".qcow2":
                        overlay.unlink(missing_ok=True)

    def detach(self) -> None:
        """Disconnect from detached machines, leaving them running."""
        for machine in self.machines:
            machine.detach()
