"""``photon-driver``: run test scripts, build images, manage a persistent cluster."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from driver import cluster
from driver.bundled import testscripts_dir
from driver.driver import GLOBAL_NAMES, Driver, pythonise
from driver.errors import (
    EXIT_INFRA,
    EXIT_OK,
    EXIT_TEST_FAILURE,
    DriverError,
    GlobalTimeout,
    Terminated,
    UsageError,
    describe_os_error,
)
from driver.images.builder import clean_images, default_cache_root
from driver.log import Logger
from driver.realise import profile_specs
from driver.report import SubtestResult, write_junit
from driver.script_check import check_script
from driver.topology import Topology, load_topology

SEED_SCRIPTS = {
    "smoke": "smoke.py",
    "matrix": "matrix.py",
    "validate": "validate.py",
    "bench-storage": "bench_storage.py",
    "bench-coronafs-local-matrix": "bench_coronafs_local_matrix.py",
}


def seed_script(profile: str, verb: str) -> Path:
    """The test script a seed verb runs for ``profile``."""
    folder = testscripts_dir() / ("reference" if profile == "reference" else "")
    return folder / SEED_SCRIPTS[verb]


def parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    p = argparse.ArgumentParser(prog="photon-driver", description=__doc__)
    p.add_argument("--topology", type=Path, default=None)
    p.add_argument("--profile", default=None, help="reference (default), photoncloud, minimal")
    p.add_argument("--specs", type=Path, default=None)
    p.add_argument("-I", "--interactive", action="store_true", help="open the ptpython REPL")
    # --profile / --topology are accepted before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", default=argparse.SUPPRESS)
    common.add_argument("--topology", type=Path, default=argparse.SUPPRESS)
    common.add_argument("--specs", type=Path, default=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command")
    original = sub.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return original(name, parents=[common], **kwargs)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    run = sub.add_parser("run", help="boot the nodes and run test scripts")
    run.add_argument("scripts", nargs="*", type=Path)
    run.add_argument("--nodes", default="", help="comma-separated subset of nodes")
    run.add_argument("--junit-xml", type=Path)
    run.add_argument("-o", "--output-dir", type=Path)
    run.add_argument("--global-timeout", type=float, default=3600.0)
    run.add_argument("--skip-check", action="store_true")
    run.add_argument("--reuse", action="store_true", help="attach to the running cluster")
    run.add_argument("-I", "--interactive", action="store_true", dest="run_interactive")

    build = sub.add_parser("build", help="build the profile's node images and specs")
    build.add_argument("nodes", nargs="*")

    clean = sub.add_parser("clean", help="remove cluster state (and with --images the cache)")
    clean.add_argument("--images", action="store_true")

    cl = sub.add_parser("cluster", help="persistent cluster: start|status|ssh|stop|clean")
    cl.add_argument("verb", choices=["start", "status", "ssh", "stop", "clean"])
    cl.add_argument("rest", nargs=argparse.REMAINDER)

    for verb in ("start", "status", "stop"):
        sub.add_parser(verb, help=f"cluster {verb}")
    ssh = sub.add_parser("ssh", help="ssh into a node: ssh NODE [-- CMD]")
    ssh.add_argument("rest", nargs=argparse.REMAINDER)
    for verb in SEED_SCRIPTS:
        for name in (verb, f"fresh-{verb}"):
            v = sub.add_parser(name, help=f"{'fresh cluster, ' if 'fresh' in name else ''}{verb}")
            v.add_argument("--junit-xml", type=Path)
            v.add_argument("-o", "--output-dir", type=Path)
    return p


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT/SIGTERM become Terminated in the main thread, so every command's normal
    cleanup path runs (then exit 130 / 143)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"interrupted by {signal.Signals(signum).name}", signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def global_timeout(seconds: float) -> Iterator[None]:
    """After ``seconds``, GlobalTimeout is raised in the main thread (exit 124)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise GlobalTimeout(f"global timeout of {seconds:g}s reached")

    old = signal.getsignal(signal.SIGALRM)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


class Cli:
    """One invocation."""

    def __init__(self, args: argparse.Namespace, environ: Mapping[str, str]) -> None:
        self.args = args
        self.environ = environ
        self.logger = Logger()
        self.profile: str = args.profile or environ.get("PHOTON_PROFILE", "reference")
        self.state = cluster.state_dir(environ, self.profile)
        self.cache = default_cache_root(environ)

    def topology(self) -> Topology:
        """The validated topology."""
        return load_topology(self.args.topology)

    def nodes_subset(self, topology: Topology) -> list[str] | None:
        """The --nodes selection, validated."""
        raw = getattr(self.args, "nodes", "")
        if not raw:
            return None
        names = [n.strip() for n in raw.split(",") if n.strip()] if isinstance(raw, str) else raw
        for name in names:
            if name not in topology.nodes:
                raise UsageError(f"--nodes: unknown node '{name}' (known: "
                                 f"{', '.join(topology.nodes)})")  # fmt: skip
        return names

    def fresh_driver(self, state: Path, detached: bool = False) -> Driver:
        """Build specs and a Driver for a fresh set of nodes."""
        topology = self.topology()
        names = self.nodes_subset(topology)
        specs = profile_specs(
            topology, self.profile, state, self.cache, self.logger, names, self.args.specs
        )
        out = getattr(self.args, "output_dir", None) or state / "out"
        return Driver(specs, state, self.logger, self.environ, out_dir=out,
                      boot_groups=topology.boot_groups(names), detached=detached,
                      cache_dir=self.cache, topology=topology,
                      profile=topology.profile(self.profile))  # fmt: skip

    def run_scripts(
        self, driver: Driver, scripts: list[Path], interactive: bool, sources: dict[Path, str]
    ) -> int:
        """Run the pre-checked ``sources`` of ``scripts``, report. Returns the exit code."""
        code = EXIT_OK
        try:
            if interactive:
                from driver.repl import run_repl

                run_repl(driver, scripts)
            else:
                for script in scripts:
                    driver.run_script(script, sources[script])
        except (AssertionError, DriverError, Exception) as exc:
            self.logger.error(driver.describe_failure(exc))
            code = exc.exit_code if isinstance(exc, DriverError) else EXIT_TEST_FAILURE
        finally:
            findings = driver.health_findings()
            if findings:
                message = "; ".join(str(f) for f in findings)
                self.logger.error(f"health check at the end of the run: {message}")
                driver.results.append(
                    SubtestResult("health", "", 0.0, "failed", message, message[:200])
                )
                code = code or EXIT_TEST_FAILURE
            junit = getattr(self.args, "junit_xml", None)
            if junit is not None:
                write_junit(driver.results, f"photon-driver.{self.profile}", junit)
        self._summary(driver)
        return code

    def _summary(self, driver: Driver) -> None:
        counts = {s: sum(r.status == s for r in driver.results)
                  for s in ("passed", "failed", "skipped", "error")}  # fmt: skip
        line = f"{counts['passed']} passed, {counts['failed'] + counts['error']} failed"
        if counts["skipped"]:
            line += f", {counts['skipped']} skipped"
        self.logger.log("subtests: " + line)

    def cmd_run(self, scripts: list[Path], reuse: bool, interactive: bool) -> int:
        """``run``: fresh nodes (or --reuse), scripts, cleanup."""
        topology = self.topology()
        names = self.nodes_subset(topology) or list(topology.nodes)
        known = [*GLOBAL_NAMES, *(pythonise(n) for n in names)]
        sources: dict[Path, str] = {}
        for script in scripts:
            if not script.exists():
                raise UsageError(f"{script}: test script not found")
            sources[script] = script.read_text()
            if not getattr(self.args, "skip_check", False):
                check_script(script, sources[script], known, list(topology.nodes))
        timeout = getattr(self.args, "global_timeout", 3600.0)
        if reuse:
            out = getattr(self.args, "output_dir", None)
            with (
                global_timeout(timeout),
                cluster.attached(
                    self.state, self.logger, self.environ, out, self.topology()
                ) as driver,
            ):
                return self.run_scripts(driver, scripts, interactive, sources)
        state = self.state / "runs" / str(os.getpid())
        fresh: Driver | None = None
        try:
            with global_timeout(timeout):
                fresh = self.fresh_driver(state)
                return self.run_scripts(fresh, scripts, interactive, sources)
        finally:
            if fresh is not None:
                fresh.cleanup()
            else:  # nothing booted: leave no half-written run directory behind
                shutil.rmtree(state, ignore_errors=True)

    def cmd_cluster(self, verb: str, rest: list[str]) -> int:
        """The persistent-cluster verbs."""
        if verb == "start":
            if cluster.read_record(self.state) and not cluster.check_record(
                self.state, cluster.read_record(self.state) or {}
            ):
                self.logger.log(f"cluster already running in {self.state}")
                return cluster.print_status(self.state, sys.stdout)
            cluster.stop(self.state, self.logger, self.environ)
            driver = self.fresh_driver(self.state, detached=True)
            for machine in driver.machines:
                machine.create_overlays()
            try:
                with global_timeout(3600.0):
                    driver.start_all()
                cluster.write_record(driver, self.profile)
            except BaseException:
                driver.cleanup()
                raise
            driver.detach()
            return cluster.print_status(self.state, sys.stdout)
        if verb == "status":
            return cluster.print_status(self.state, sys.stdout)
        if verb == "stop":
            count = cluster.stop(self.state, self.logger, self.environ)
            self.logger.log(f"stopped {count} nodes")
            return EXIT_OK
        if verb == "clean":
            cluster.stop(self.state, self.logger, self.environ)
            shutil.rmtree(self.state, ignore_errors=True)
            self.logger.log(f"removed {self.state}")
            return EXIT_OK
        return self.cmd_ssh(rest)

    def cmd_ssh(self, rest: list[str]) -> int:
        """``ssh NODE [-- CMD]``."""
        if not rest:
            raise UsageError("ssh: name a node, e.g. `photon-driver ssh node04`")
        node, command = rest[0], [a for a in rest[1:] if a != "--"]
        with cluster.attached(self.state, self.logger, self.environ) as driver:
            try:
                argv = driver.machine(node).ssh_command()
            except KeyError:
                raise UsageError(f"ssh: unknown node '{node}'") from None
        return subprocess.call(argv + command)

    def dispatch(self) -> int:
        """Run the chosen command."""
        a = self.args
        command = a.command
        if command is None:
            return self.cmd_run([], False, True) if a.interactive else 2
        if command == "run":
            return self.cmd_run(a.scripts, a.reuse, a.interactive or a.run_interactive)
        if command == "build":
            topology = self.topology()
            self.args.nodes = a.nodes
            profile_specs(
                topology,
                self.profile,
                self.state / "build",
                self.cache,
                self.logger,
                self.nodes_subset(topology),
                self.args.specs,
            )
            return EXIT_OK
        if command == "clean":
            if a.images:
                self.logger.log(f"removed {clean_images(self.cache)} cached images")
            return self.cmd_cluster("clean", [])
        if command == "cluster":
            return self.cmd_cluster(a.verb, a.rest)
        if command in ("start", "status", "stop"):
            return self.cmd_cluster(command, [])
        if command == "ssh":
            return self.cmd_ssh(a.rest)
        fresh = command.startswith("fresh-")
        script = seed_script(self.profile, command.removeprefix("fresh-"))
        if fresh:
            return self.cmd_run([script], False, False)
        return self.cmd_run([script], True, False)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit code (0 pass, 1 test failure, 2 usage, 3 infra, 124
    global timeout)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(".py"):
        argv = ["run", *argv]
    args = parser().parse_args(argv)
    cli = Cli(args, os.environ if environ is None else environ)
    try:
        with signals_raise():
            return cli.dispatch()
    except DriverError as exc:
        cli.logger.error(str(exc))
        return exc.exit_code
    except OSError as exc:
        cli.logger.error(describe_os_error(exc))
        return EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())
