"""``--debug-hook``: the ``debug`` global that stops the script (``debug.breakpoint()``,
and the first failure that would end the script) with every node up, serves pdb on a
UNIX socket in the run directory and says how to attach and how to log in to each node.
Without the hook ``debug`` is scriptlog.DebugHook, which does nothing (NixOS's DebugNop)."""

from __future__ import annotations

import inspect
import shlex
import signal
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType

from driver.errors import EXIT_TEST_FAILURE, DriverError, Interrupted
from driver.log import Logger
from driver.machine.machine import Machine
from driver.scriptrun.namespace import pythonise
from driver.scriptrun.remote_pdb import SOCKET_NAME, Session, stop_here
from driver.scriptrun.scriptlog import DebugHook

ATTACH_VERB = "debug-attach"


class DebuggerQuit(Interrupted):
    """``q`` in the debugger: the run ends at once (exit 1), as a signal would end it (a
    script's ``except Exception`` or ``must_raise`` does not swallow it)."""

    exit_code = EXIT_TEST_FAILURE


class Debugger(DebugHook):
    """The ``debug`` global of a run with ``--debug-hook``: ``breakpoint()`` stops the
    script and waits for ``photon-driver debug-attach``; the run stops the same way at the
    first failure that ends the script (``post_mortem``)."""

    def __init__(self, run_dir: Path, logger: Logger, machines: Sequence[Machine]) -> None:
        self.socket = run_dir / SOCKET_NAME
        self.logger = logger
        self.machines = list(machines)
        self._stopped_on_failure = False

    def breakpoint(self, host: str = "127.0.0.1", port: int = 4444) -> None:
        """Stop the script at this line with every node up: pdb waits on a UNIX socket in
        the run directory (``host`` and ``port``, NixOS's TCP address, are accepted and
        unused) and the log says how to attach (``photon-driver debug-attach SOCKET``) and
        how to ssh into each node. In pdb, ``c`` goes on, ``q`` ends the run (exit 1);
        Ctrl-C, SIGTERM and the global timeout still end it at once."""
        here = inspect.currentframe()
        frame = here.f_back if here is not None else None
        del here
        if frame is None:  # no frame introspection (not CPython): nothing to stop at
            return
        try:
            where = f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
            self._serve(frame, None, f"debug.breakpoint() at {where}", frame.f_code.co_filename)
        finally:
            del frame

    def post_mortem(self, exc: BaseException, script: str) -> None:
        """Stop at ``exc``'s failing line in ``script`` (its frames still hold their
        variables), once per run: later failures go by. ``c`` lets the failure end the
        script as it would have; ``q`` ends the run at once."""
        if self._stopped_on_failure:
            return
        self._stopped_on_failure = True
        tb = exc.__traceback__
        lines = [f for f in traceback.extract_tb(tb) if f.filename == script]
        where = f" at {Path(script).name}:{lines[-1].lineno}" if lines else ""
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
        self._serve(None, tb, f"the failure{where} ({summary})", script)

    def _serve(
        self, frame: FrameType | None, tb: TracebackType | None, what: str, script: str
    ) -> None:
        session = Session(self.socket, self.logger.log)
        try:
            self.logger.warning(self.hint(what))
            session.wait_for_client()
            session.write(f"debugger: stopped at {what}; c goes on, q ends the run\n")
            quit_ = stop_here(session, frame, tb, script)
            if quit_:
                session.write("debugger: quit: the run ends now (exit 1)\n")
                raise DebuggerQuit(f"the run was ended from the debugger (quit at {what})")
            session.write("debugger: continued: the run goes on\n")
            self.logger.log(f"debugger: continued after {what}")
        finally:
            session.close()

    def hint(self, what: str) -> str:
        """What the log says while the debugger waits: where it stopped, the command that
        attaches (also with a pipe, for CI), the pdb commands that end the stop, and an
        ssh command line for each running node."""
        node = pythonise(self.machines[0].name) if self.machines else "node01"
        example = f"{node}.succeed('...')"
        attach = f"photon-driver {ATTACH_VERB} {shlex.quote(str(self.socket))}"
        lines = [
            f"debugger: stopped at {what}; every node stays up",
            f"  attach:        {attach}",
            f"  without a tty: printf 'w\\np locals()\\nc\\n' | {attach}",
            "  in pdb: c goes on (a failure then ends the run as it would have), q ends the "
            f"run (exit 1); {example} and the other script globals work there",
        ]
        for machine in self.machines:
            lines.append(f"  ssh {machine.name}: {self.ssh_line(machine)}")
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        limit = f"the global timeout ends the run in {remaining:.0f} s; " if remaining else ""
        lines.append(f"  {limit}Ctrl-C or SIGTERM end it at once")
        return "\n".join(lines)

    @staticmethod
    def ssh_line(machine: Machine) -> str:
        """The shell command that logs in to ``machine`` (through its forwarded SSH port,
        with the run's key), or why there is none."""
        if not machine.is_running():
            return "(not running)"
        try:
            return shlex.join(machine.ssh_command())
        except DriverError as exc:
            return f"(none: {str(exc).splitlines()[0]})"
