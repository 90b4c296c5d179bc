"""Exception hierarchy; every error knows the process exit code it maps to."""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_TEST_FAILURE = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_TIMEOUT = 124


class DriverError(Exception):
    """Base class of every error the driver raises on purpose. ``quotes_console``: the
    message already ends with the node's last console lines (reports add them otherwise)."""

    exit_code = EXIT_INFRA
    quotes_console = False
    node: str | None = None  # the node the error is about, when there is one


class TestScriptError(Exception):
    """The NixOS test driver's base class of a failed test script (not a driver bug):
    ``from test_driver.errors import TestScriptError`` in a script gets this class."""

    __test__ = False  # not a pytest test class


class RequestedAssertionFailed(TestScriptError, AssertionError):
    """A requested assertion failed (``succeed``, ``t.assertEqual``, a wait that timed
    out): the NixOS driver's name, which scripts catch and ``must_raise`` matches. As
    there, an ``AssertionError`` (``except AssertionError`` catches a failed ``succeed``);
    a script's own bug (a bare ``assert``, a TypeError) is not one of these."""


class ScriptAssertion(RequestedAssertionFailed):
    """What ``t.assert*`` raises: an AssertionError (plain Python habits) and a
    RequestedAssertionFailed (NixOS scripts)."""


class MachineError(TestScriptError):
    """The NixOS driver's error for a machine that cannot do what was asked."""


class UsageError(DriverError):
    """Bad input: missing file, malformed spec or topology, unknown node."""

    exit_code = EXIT_USAGE


class InfraError(DriverError):
    """The host cannot do what was asked: QEMU missing, guest failed to boot."""

    exit_code = EXIT_INFRA


class TestFailure(DriverError, RequestedAssertionFailed):
    """A check in a test script failed; ``node`` names the machine when there is one."""

    exit_code = EXIT_TEST_FAILURE
    __test__ = False  # not a pytest test class

    def __init__(self, message: str, node: str | None = None, quotes_console: bool = False) -> None:
        super().__init__(message)
        self.node = node
        self.quotes_console = quotes_console


class CommandTimeout(TestFailure):
    """A guest command ran past its timeout; the guest killed its whole process group."""


class MachineDied(TestFailure, MachineError):
    """The guest's QEMU process exited (crash, panic, kill) while it was needed."""


class ScriptExited(DriverError):
    """The script ended itself with ``sys.exit(N)`` (N not 0): the run exits N (a text
    argument, as Python, 1), as the NixOS driver's process would."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.exit_code = status


class ScriptOsExit(SystemExit):
    """What the script's ``os._exit(N)`` raises (scriptrun/script_os.py): a SystemExit with
    code N, so the script ends as with ``sys.exit(N)`` instead of the driver's process
    ending without cleanup."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status

    def __str__(self) -> str:
        return f"os._exit({self.status})"


class ScriptRaisedInterrupt(TestScriptError):
    """The script raised KeyboardInterrupt itself (Ctrl-C and signals are Terminated):
    an error of the script like any other."""


class SubtestFailed(SystemExit):
    """A subtest failed: as in the NixOS driver, the failure ends the script (a
    SystemExit, so ``except Exception`` in a script does not swallow it; ``must_raise(...,
    SystemExit)`` can expect it). ``cause`` is the original error."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f'Test "{name}" failed with error: "{cause}"')
        self.name = name
        self.cause = cause
        self.exit_code = getattr(cause, "exit_code", EXIT_TEST_FAILURE)

    def __str__(self) -> str:
        return str(self.args[0])


class Interrupted(BaseException):
    """The run is being stopped from outside: a signal or the global timeout. Not an
    ``Exception``, like KeyboardInterrupt: a script's ``except Exception`` or
    ``must_raise`` never swallows it, so the run always stops with its exit code."""

    exit_code = EXIT_INFRA


class Terminated(Interrupted):
    """The driver received SIGINT (exit 130) or SIGTERM (exit 143)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class GlobalTimeout(Interrupted):
    """The run exceeded --global-timeout."""

    exit_code = EXIT_TIMEOUT


class BootTimeout(InfraError):
    """A node's backdoor shell did not answer in time; the message quotes its console."""

    quotes_console = True

    def __init__(self, message: str, node: str) -> None:
        super().__init__(message)
        self.node = node


class ToolMissing(InfraError):
    """A host tool is not installed; the message names the Debian package."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"{tool} not found on PATH: install the Debian package '{package}'")
        self.tool = tool
        self.package = package


_OS_REASONS = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
}


# Host resources running out or refused: the logger turns these into HostCallFailed,
# naming the logged activity they interrupted.
HOST_RESOURCE_ERRNOS = frozenset(
    {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}
)


def describe_os_error(exc: OSError) -> str:
    """One line for a failed host call: what was being done, the path, why."""
    reason = _OS_REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    path = exc.filename if exc.filename is not None else "(no path)"
    line = f"{path}: {reason}"
    return f"{exc.activity}: {line}" if isinstance(exc, HostCallFailed) else line


class HostCallFailed(InfraError, OSError):
    """A host call failed for want of a host resource (disk full, read-only or forbidden
    path) during a logged activity: an InfraError (exit 3) and still the OSError it was,
    with ``activity`` naming what was being done."""

    def __init__(self, activity: str, cause: OSError) -> None:
        OSError.__init__(self, cause.errno, cause.strerror, cause.filename)
        self.activity = activity

    def __str__(self) -> str:
        return describe_os_error(self)
