"""``debug-attach``: this terminal, or a pipe, on the pdb of a run that ``--debug-hook``
stopped (see driver/scriptrun/debugger.py)."""

from __future__ import annotations

import argparse
import stat
import sys
from pathlib import Path

from driver.errors import EXIT_OK, UsageError
from driver.scriptrun.remote_pdb import SOCKET_NAME, attach
from driver.session.invocation import Invocation
from driver.state.runs import running


def waiting_sockets(state: Path) -> list[Path]:
    """The debugger sockets under the profile's state directory: its own (a kept or
    reused cluster's run) and those of fresh runs still going (their pid alive)."""
    live = [p for p in sorted((state / "runs").glob(f"*/{SOCKET_NAME}")) if running(p.parent.name)]
    return [path for path in [state / SOCKET_NAME, *live] if _is_socket(path)]


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False


def debug_socket(target: Path | None, state: Path) -> Path:
    """The socket to attach to: ``target`` itself, ``target/debug.sock`` for a run
    directory, or without a target the one waiting under ``state``. A UsageError names
    what is missing or ambiguous."""
    if target is None:
        found = waiting_sockets(state)
        if len(found) == 1:
            return found[0]
        if not found:
            raise UsageError(f"debug-attach: no run under {state} is waiting for a debugger")
        listed = ", ".join(str(p) for p in found)
        raise UsageError(f"debug-attach: several runs are waiting; name one of: {listed}")
    path = target / SOCKET_NAME if target.is_dir() else target
    if not _is_socket(path):
        why = "no run is waiting there" if not path.exists() else "not a socket"
        raise UsageError(f"debug-attach: {path}: {why}")
    return path


def cmd_debug_attach(inv: Invocation, args: argparse.Namespace) -> int:
    """``debug-attach [SOCKET_OR_RUN_DIR]``: stdin to the debugger, its answers to stdout,
    until the run goes on or quits (exit 0). Works without a terminal: ``printf 'p x\\nc\\n'
    | photon-driver debug-attach SOCKET`` answers and continues the run."""
    path = debug_socket(args.target, inv.state)
    try:
        attach(path, sys.stdin.buffer, sys.stdout.buffer)
    except (ConnectionRefusedError, FileNotFoundError):
        raise UsageError(
            f"debug-attach: {path}: nothing listens there (the run went on or ended)"
        ) from None
    return EXIT_OK
