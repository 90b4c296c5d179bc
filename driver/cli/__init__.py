"""``photon-driver``: run test scripts, build images, manage a persistent cluster."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from driver.errors import EXIT_INFRA, EXIT_USAGE, DriverError, Interrupted, describe_os_error


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit code (0 pass, 1 test failure, 2 usage, 3 infra,
    124 global timeout, 130/143 interrupted)."""
    from driver.cli.grammar import parser
    from driver.file_modes import private_files
    from driver.session.invocation import Invocation
    from driver.session.signals import signals_raise

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(".py"):
        argv = ["run", *argv]
    args = parser().parse_args(argv)
    if args.handler is None:
        if not args.interactive:
            parser().print_help()
            return EXIT_USAGE
        args.command, args.scripts, args.reuse = "run", [], False
        from driver.cli.run import cmd_run

        args.handler = cmd_run
    try:
        inv = Invocation(args, os.environ if environ is None else environ)
    except DriverError as exc:
        from driver.log import Logger

        Logger().error(str(exc))
        return exc.exit_code
    try:
        with signals_raise(), private_files():
            code: int = args.handler(inv, args)
            return code
    except (DriverError, Interrupted) as exc:
        inv.logger.error(str(exc))
        return exc.exit_code
    except OSError as exc:
        inv.logger.error(describe_os_error(exc))
        return EXIT_INFRA
