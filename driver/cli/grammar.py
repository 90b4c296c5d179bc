"""The command-line grammar: every subcommand names its function and says what each option
does, with its default."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from driver.cli import cluster_cmds, debug_cmd, run, suite
from driver.cli.arg_types import non_negative, positive, seconds_limit
from driver.session.options import GLOBAL_TIMEOUT_SECONDS, PROGRESS_AFTER_SECONDS


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("photoncloud-test-driver")
    except PackageNotFoundError:
        return "unknown (not installed)"


DESCRIPTION = "Boot QEMU test nodes and run NixOS-test-driver-style Python test scripts."
EPILOG = """first steps:
  photon-driver --profile reference fresh-smoke
        build the images, boot the six reference nodes, run the smoke, tear down
  photon-driver run --profile minimal --nodes node01 SCRIPT.py
        run your own script on one bare node
  (the test suite of this tool: python3 -m pytest -v tests)

exit codes: 0 pass, 1 test failure, 2 usage or bad input, 3 infrastructure failure,
124 global timeout, 130 SIGINT, 143 SIGTERM"""

Handler = Callable[..., int]
LOG_LEVELS = ("debug", "info", "warning", "error")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``photon-driver COMMAND: error: ...`` and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Every option's default in its help (unless the help already says it, or there is
    none: a flag, an unset path); epilogs kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, "", argparse.SUPPRESS):
            return text
        return f"{text} (default: {default})"


def common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """--profile/--topology/--specs/--log-level, accepted before or after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--profile",
        default=default,
        help="reference (open-source stand-ins, runs anywhere), photoncloud (Nix-built), "
        "minimal (bare nodes); default: $PHOTON_PROFILE or reference",
    )
    parser.add_argument(
        "--topology",
        type=Path,
        default=default,
        help="cluster topology TOML (default: the one shipped with the driver)",
    )
    parser.add_argument(
        "--specs",
        type=Path,
        default=default,
        help="directory of prebuilt node spec JSONs (e.g. from `nix build .#nodeSpecs`) "
        "instead of building Debian images",
    )
    parser.add_argument(
        "--containers",
        action="store_true",
        default=default,
        help="run as container nodes (systemd-nspawn) the nodes the topology marks "
        "container_ok; the rest stay VMs (default: off: every node as the topology says)",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=default,
        help="the least a line needs to be shown on the terminal: debug (also the console "
        "lines a script hid and commands' stderr), info, warning, error; the files "
        "(events.jsonl, vm.log, JUnit output) keep everything (default: info)",
    )


def output_options(parser: argparse.ArgumentParser) -> None:
    """Where a run writes its reports."""
    parser.add_argument(
        "--junit-xml", type=Path, help="write a JUnit XML report here (default: none)"
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        help="screenshots and copied files (default: <state>/out)",
    )


def global_timeout_option(parser: argparse.ArgumentParser) -> None:
    """``--global-timeout SECONDS`` and ``--progress-after SECONDS`` (defaults in
    options.py)."""
    parser.add_argument(
        "--global-timeout",
        type=seconds_limit,
        default=GLOBAL_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="seconds before the whole run is stopped (exit 124); the message names the "
        "steps in flight",
    )
    parser.add_argument(
        "--progress-after",
        type=seconds_limit,
        default=PROGRESS_AFTER_SECONDS,
        metavar="SECONDS",
        help="a step on a node running longer prints a progress line every SECONDS (node, "
        "call, command, elapsed / deadline, script file:line, last console line); SIGUSR1 "
        "prints every step in flight at once",
    )


def selection_options(parser: argparse.ArgumentParser) -> None:
    """``--subtest REGEX`` (repeatable) and ``--list``."""
    parser.add_argument(
        "--subtest",
        action="append",
        metavar="REGEX",
        help="run only the subtests whose name matches REGEX (re.search; repeatable: any "
        "of them), with the subtests inside them and those holding them; the others are "
        "reported skipped; code outside subtests still runs (default: every subtest)",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="print the subtests the scripts would run, found in their source (with "
        "--subtest: run or skip for each), and exit; nothing is built or booted "
        "(default: off)",
    )


def failure_options(parser: argparse.ArgumentParser, fresh: bool = True) -> None:
    """``--rerun-failed N``, ``--repeat N``, ``--quarantine FILE`` and, for runs on fresh
    nodes, ``--keep-on-failure``."""
    parser.add_argument(
        "--rerun-failed",
        type=non_negative,
        default=0,
        metavar="N",
        help="rerun a failed subtest up to N times, each from a snapshot of the nodes taken "
        "before it; passing on a rerun makes it flaky (default: 0)",
    )
    parser.add_argument(
        "--repeat",
        type=positive,
        default=1,
        metavar="N",
        help="run N times (fresh nodes each time; from the settled snapshot with --settled "
        "or a fresh- verb) and report each subtest's pass rate (default: 1)",
    )
    parser.add_argument(
        "--quarantine",
        type=Path,
        metavar="FILE",
        help="TOML of [[quarantine]] entries (subtest regex, reason, url, until date): a "
        "matching subtest's failure is reported quarantined and does not fail the run until "
        "that date, after which it fails and says the quarantine expired (default: none)",
    )
    parser.add_argument(
        "--debug-hook",
        action="store_true",
        help="at the first failure that ends a script (a failed subtest, an uncaught "
        "error), and at debug.breakpoint(), stop there with every node up and wait for "
        "`photon-driver debug-attach` (pdb: c goes on, q ends the run); the log says how to "
        "attach and how to ssh into each node; Ctrl-C, SIGTERM and --global-timeout still "
        "end the run (default: off; debug.breakpoint() does nothing)",
    )
    if not fresh:
        return
    parser.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="when a subtest or health check fails, stop there and leave every node running "
        "as the profile's cluster (ssh, run --reuse, cluster stop) (default: off)",
    )


def parser() -> argparse.ArgumentParser:
    """The whole grammar; each subcommand's ``handler`` default is its function."""
    top = Parser(
        prog="photon-driver", description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    import shtab

    shtab.add_argument_to(top, ["--print-completion"], help="print a bash or zsh completion script")
    common_options(top, suppress=False)
    top.add_argument(
        "-I",
        "--interactive",
        action="store_true",
        help="open the ptpython REPL with the nodes (default: off)",
    )
    top.set_defaults(handler=None)
    shared = Parser(add_help=False)
    common_options(shared, suppress=True)
    sub = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(
        name: str, handler: Handler, help: str, where: Any = sub
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = where.add_parser(
            name, parents=[shared], help=help, description=help, formatter_class=Formatter
        )
        p.set_defaults(handler=handler)
        return p

    def ssh_arguments(p: argparse.ArgumentParser) -> None:
        p.add_argument("node", metavar="NODE", help="the node to log in to")
        p.add_argument(
            "remote", nargs=argparse.REMAINDER, metavar="-- CMD", help="a command to run there"
        )

    r = command("run", run.cmd_run, "boot nodes (or attach with --reuse) and run test scripts")
    r.add_argument("scripts", nargs="*", type=Path, help="test scripts, run in order")
    r.add_argument("--nodes", default="", help="comma-separated subset of nodes (default: all)")
    r.add_argument(
        "--reuse", action="store_true", help="attach to the running cluster (default: off)"
    )
    r.add_argument(
        "--settled",
        action="store_true",
        help="start the fresh nodes from the profile's cached settled snapshot (saved after "
        "the first cold boot reaches unit readiness) (default: off)",
    )
    global_timeout_option(r)
    r.add_argument(
        "--skip-check",
        action="store_true",
        help="do not pre-check the scripts (names, attributes, topology) before booting "
        "(default: off)",
    )
    r.add_argument(
        "-I", "--interactive", action="store_true", help="open the ptpython REPL (default: off)"
    )
    failure_options(r)
    selection_options(r)
    output_options(r)

    suite.add_suite_options(
        command("suite", suite.cmd_suite, "run many test scripts, each its own run, -j N at once")
    )
    rep = command("report", suite.cmd_report_merge, "reports of suites")
    reports = rep.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)
    suite.add_report_options(
        command("merge", suite.cmd_report_merge, "merge suite output directories", reports)
    )

    d = command(
        "debug-attach",
        debug_cmd.cmd_debug_attach,
        "attach this terminal (or a pipe) to the pdb of a run stopped by --debug-hook",
    )
    d.add_argument(
        "target",
        nargs="?",
        type=Path,
        metavar="SOCKET_OR_RUN_DIR",
        help="the socket the run's log names, or its run directory (default: the one run "
        "of the profile that is waiting)",
    )

    b = command("build", cluster_cmds.cmd_build, "build the profile's node images and specs")
    b.add_argument("node_names", nargs="*", metavar="NODE", help="only these nodes")

    cl = command("cluster", cluster_cmds.cmd_cluster, "the persistent cluster's verbs")
    verbs = cl.add_subparsers(dest="verb", metavar="VERB", required=True, parser_class=Parser)
    for where in (sub, verbs):
        command("start", cluster_cmds.cmd_start, "start the cluster detached", where)
        command("status", cluster_cmds.cmd_status, "show the cluster's nodes", where)
        command("stop", cluster_cmds.cmd_stop, "stop the cluster", where)
        c = command("clean", cluster_cmds.cmd_clean, "stop the cluster, remove its state", where)
        c.add_argument(
            "--images", action="store_true", help="also remove the image cache (default: off)"
        )
        ssh_arguments(command("ssh", cluster_cmds.cmd_ssh, "ssh NODE [-- CMD]", where))
    for verb, what in (("snapshot", "save"), ("restore", "restore")):
        snap = command(verb, cluster_cmds.cmd_snapshot, f"{what} a whole-cluster snapshot", verbs)
        snap.add_argument("name", metavar="NAME", help="the snapshot's name")
    command("snapshots", cluster_cmds.cmd_snapshot, "list the snapshots", verbs)

    for verb in [*run.SEED_SCRIPTS, *run.SEED_ALIASES]:
        for name, what in ((verb, "on the running cluster"), (f"fresh-{verb}", "on fresh nodes")):
            v = command(name, run.cmd_seed_script, f"the bundled {verb} script {what}")
            if name.startswith("fresh-"):
                v.add_argument(
                    "--cold",
                    action="store_true",
                    help="boot cold instead of starting from the cached settled snapshot, "
                    "and save none (default: off)",
                )
            failure_options(v, fresh=name.startswith("fresh-"))
            selection_options(v)
            global_timeout_option(v)
            output_options(v)
    return top
