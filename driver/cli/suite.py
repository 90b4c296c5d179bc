"""``suite``: many test scripts, each its own ``run`` (a child process), ``-j N`` at once
within the host's memory, a stable shard of them with ``--shard I/N``, one merged JUnit
file and one index page; ``report merge``: the same report from several suites' output
directories (CI shards)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from driver.cli.arg_types import non_negative, positive, seconds_limit
from driver.errors import EXIT_OK, Interrupted, UsageError
from driver.session.invocation import Invocation
from driver.session.options import GLOBAL_TIMEOUT_SECONDS
from driver.suite.budget import Host, choose_jobs, need
from driver.suite.merge import merge, run_entries, write_report
from driver.suite.plan import Defaults, Shard, SuiteTest, collect, read_durations, select
from driver.suite.records import suite_exit_code, summary
from driver.suite.runner import OVERRUN_SECONDS, Pool, launch_of

DEFAULT_OUTPUT = Path("suite-report")


def shard_type(text: str) -> Shard:
    """``I/N`` (argparse type)."""
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def chosen_tests(args: argparse.Namespace) -> list[SuiteTest]:
    """The tests the PATHs name, only the ``--shard``'s when one is given."""
    defaults = Defaults(args.profile, args.topology, args.specs)
    tests = collect(args.paths, defaults, Path.cwd())
    durations = read_durations(args.durations) if args.durations is not None else {}
    return select(tests, args.shard, durations)


def run_options(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``run`` options every test of the suite gets from the suite's own."""
    extra: list[str] = []
    if args.log_level:
        extra += ["--log-level", args.log_level]
    if args.settled:
        extra.append("--settled")
    if args.rerun_failed:
        extra += ["--rerun-failed", str(args.rerun_failed)]
    return (*extra, "--global-timeout", f"{args.global_timeout:g}")


def title_of(args: argparse.Namespace) -> str:
    """The index page's title."""
    shard: Shard | None = args.shard
    return "photon-driver suite" + (
        "" if shard is None else f" (shard {shard.index}/{shard.total})"
    )


def cmd_suite(inv: Invocation, args: argparse.Namespace) -> int:
    """``suite [-j N] [--shard I/N] [--list] [-o DIR] PATH...``."""
    tests = chosen_tests(args)
    if args.list:
        lines = [os.path.relpath(t.script) for t in tests]
        sys.stdout.write("".join(line + "\n" for line in lines))
        sys.stdout.flush()
        return EXIT_OK
    jobs, warnings = choose_jobs(args.jobs, [need(t, {}) for t in tests], Host.probe())
    for warning in warnings:
        inv.logger.warning(warning)
    out: Path = args.output_dir
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: not a directory")
    out.mkdir(parents=True, exist_ok=True)
    launches = [launch_of(t, out, inv.environ, run_options(args)) for t in tests]
    inv.logger.log(f"suite: {len(tests)} test(s), {jobs} at once, reports in {out}")
    limit = args.global_timeout + OVERRUN_SECONDS  # each run stops itself before that
    pool = Pool(launches, jobs, inv.logger.log, limit=limit)
    try:
        records = pool.run()
    except Interrupted:
        write_report(out, run_entries(pool.records_so_far()), title_of(args))
        raise
    junit, index = write_report(out, run_entries(records), title_of(args))
    inv.logger.log(f"suite: {summary(records)}; {junit}, {index}")
    return suite_exit_code(records)


def cmd_report_merge(inv: Invocation, args: argparse.Namespace) -> int:
    """``report merge -o DIR DIRS...``: one JUnit file and index of every test in DIRS;
    the exit code is the suite's (0 every test passed, 1 one failed...)."""
    for directory in args.dirs:
        if not directory.is_dir():
            raise UsageError(f"report merge: {directory}: no such directory")
    entries = merge(args.output_dir, args.dirs, "photon-driver report")
    records = [e.record for e in entries]
    inv.logger.log(f"report: {summary(records)}; {args.output_dir / 'junit.xml'}")
    return suite_exit_code(records)


def add_suite_options(p: argparse.ArgumentParser) -> None:
    """The ``suite`` verb's own options (the grammar adds it)."""

    p.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="test scripts (*.py), directories of them, or suite files (TOML, [[script]] "
        "tables: path, optional id, topology, profile, args)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=positive,
        default=1,
        metavar="N",
        help="runs at once; refused when N runs' memory (nodes' memory_mib plus QEMU's "
        "overhead) does not fit in MemAvailable",
    )
    p.add_argument(
        "--shard",
        type=shard_type,
        metavar="I/N",
        help="run only shard I of N: a stable subset by script id; the N shards are "
        "disjoint and cover every script (default: all)",
    )
    p.add_argument(
        "--durations",
        type=Path,
        metavar="FILE",
        help="a merged junit.xml (or suite output directory) of an earlier run: the shards "
        "are balanced by its durations (default: by a hash of the ids)",
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="print the (shard's) scripts, one a line, and exit; nothing boots",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="DIR/<id>/ for each run (report.html, junit.xml, run.log), DIR/junit.xml "
        "merged, DIR/index.html, DIR/suite.json",
    )
    p.add_argument(
        "--settled",
        action="store_true",
        help="each run starts from the profile's settled snapshot (default: off)",
    )
    p.add_argument(
        "--rerun-failed",
        type=non_negative,
        default=0,
        metavar="N",
        help="each run reruns a failed subtest up to N times (flaky marks are kept)",
    )
    p.add_argument(
        "--global-timeout",
        type=seconds_limit,
        default=GLOBAL_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="each run's own global timeout (exit 124); a run still going 300 s after it "
        "is stopped by the suite",
    )


def add_report_options(p: argparse.ArgumentParser) -> None:
    """``report merge``'s options."""
    p.add_argument(
        "dirs",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="suite output directories (with suite.json), or run directories holding a "
        "junit.xml (a Nix check's result)",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="where junit.xml, index.html and suite.json are written",
    )
