"""Exception hierarchy; every error knows the process exit code it maps to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_TEST_FAILURE = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_TIMEOUT = 124


class DriverError(Exception):
    """Base class of every error the driver raises on purpose."""

    exit_code = EXIT_INFRA


class UsageError(DriverError):
    """Bad input: missing file, malformed spec or topology, unknown node."""

    exit_code = EXIT_USAGE


class InfraError(DriverError):
    """The host cannot do what was asked: QEMU missing, guest failed to boot."""

    exit_code = EXIT_INFRA


class TestFailure(DriverError):
    """A check in a test script failed; ``node`` names the machine when there is one."""

    exit_code = EXIT_TEST_FAILURE
    __test__ = False  # not a pytest test class

    def __init__(self, message: str, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


class MachineDied(TestFailure):
    """The guest's QEMU process exited (crash, panic, kill) while it was needed."""


class Terminated(DriverError):
    """The driver received SIGTERM or SIGINT."""

    exit_code = EXIT_INFRA


class GlobalTimeout(DriverError):
    """The run exceeded --global-timeout."""

    exit_code = EXIT_TIMEOUT


class ToolMissing(InfraError):
    """A host tool is not installed; the message names the Debian package."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"{tool} not found on PATH: install the Debian package '{package}'")
        self.tool = tool
        self.package = package
