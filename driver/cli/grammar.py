"""The command-line grammar: every subcommand names its function and says what each option
does, with its default."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from driver.cli import cluster_cmds, run

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
    """--profile/--topology/--specs, accepted before or after the subcommand."""
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


def parser() -> argparse.ArgumentParser:
    """The whole grammar; each subcommand's ``handler`` default is its function."""
    top = argparse.ArgumentParser(
        prog="photon-driver", description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter
    )
    common_options(top, suppress=False)
    top.add_argument(
        "-I",
        "--interactive",
        action="store_true",
        help="open the ptpython REPL with the nodes (default: off)",
    )
    top.set_defaults(handler=None)
    shared = argparse.ArgumentParser(add_help=False)
    common_options(shared, suppress=True)
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, parents=[shared], help=help, description=help, formatter_class=Formatter
        )
        p.set_defaults(handler=handler)
        return p

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
    r.add_argument(
        "--global-timeout",
        type=float,
        default=3600.0,
        help="seconds before the whole run is stopped (exit 124)",
    )
    r.add_argument(
        "--skip-check",
        action="store_true",
        help="do not pre-check the scripts (names, attributes, topology) before booting "
        "(default: off)",
    )
    r.add_argument(
        "-I", "--interactive", action="store_true", help="open the ptpython REPL (default: off)"
    )
    output_options(r)

    b = command("build", cluster_cmds.cmd_build, "build the profile's node images and specs")
    b.add_argument("node_names", nargs="*", metavar="NODE", help="only these nodes")

    c = command("clean", cluster_cmds.cmd_clean, "stop the cluster and remove its state")
    c.add_argument(
        "--images", action="store_true", help="also remove the image cache (default: off)"
    )

    cl = command("cluster", cluster_cmds.cmd_cluster, "the persistent cluster's verbs")
    cl.add_argument(
        "verb",
        choices=["start", "status", "ssh", "stop", "clean", "snapshot", "restore", "snapshots"],
        help="what to do",
    )
    cl.add_argument(
        "rest", nargs=argparse.REMAINDER, help="for ssh: NODE [-- CMD]; for snapshot/restore: NAME"
    )

    command("start", cluster_cmds.cmd_start, "start the cluster detached (= cluster start)")
    command("status", cluster_cmds.cmd_status, "show the cluster (= cluster status)")
    command("stop", cluster_cmds.cmd_stop, "stop the cluster (= cluster stop)")
    s = command("ssh", cluster_cmds.cmd_ssh, "ssh into a running node: ssh NODE [-- CMD]")
    s.add_argument("rest", nargs=argparse.REMAINDER, help="NODE [-- CMD]")

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
            v.add_argument(
                "--global-timeout",
                type=float,
                default=3600.0,
                help="seconds before the whole run is stopped (exit 124)",
            )
            output_options(v)
    return top
