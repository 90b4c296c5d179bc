"""Test-author commands with the NixOS driver's meanings: every one runs under
``set -euo pipefail``; waits poll inside the guest."""

from __future__ import annotations

from collections.abc import Callable

from driver.errors import CommandTimeout
from driver.machine.base import DEFAULT_TIMEOUT, STRICT, ShellBase


class CommandsMixin(ShellBase):
    """execute, succeed, fail, wait_until_succeeds/fails, sleep, shell_interact."""

    def execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> tuple[int, str]:
        """Run ``command`` under ``set -euo pipefail``; returns ``(status, stdout)``, as the
        NixOS driver does. A command still running after ``timeout`` s is killed with its
        whole process group: status 124.

        ``check_return=False`` returns ``(-1, stdout)``. ``check_output=False`` starts the
        command in the background with its output discarded and returns ``(-2, "")`` at
        once."""
        if not check_output:
            self.run(f"( {STRICT}{command} ) >/dev/null 2>&1 &", timeout)
            return -2, ""
        result = self.run(STRICT + command, timeout)
        return (result.status if check_return else -1), result.stdout

    def execute_bytes(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, bytes]:
        """Like ``execute``, with stdout as exact bytes (binary output: NUL bytes and
        non-UTF-8 data intact)."""
        result = self.run(STRICT + command, timeout)
        return result.status, result.stdout_bytes

    def succeed(self, *commands: str, timeout: float | None = None) -> str:
        """Run each command under ``set -euo pipefail``; returns all stdout. Fails the test
        (TestFailure naming the node, command and status) if one exits non-zero, and with
        CommandTimeout if one runs longer than ``timeout`` s (its process group is
        killed). As in the NixOS driver, no timeout by default (``None``)."""
        output = ""
        for command in commands:
            with self.nested(f"must succeed: {command}"):
                result = self.run(STRICT + command, timeout)
                if result.timed_out:
                    raise CommandTimeout(
                        f"{self.name}: `{command}` timed out after {timeout}s; the guest "
                        "killed its process group",
                        node=self.name,
                    )
                if result.status != 0:
                    stderr = result.stderr.strip()
                    raise self._failure(
                        f"command `{command}` failed (exit {result.status})"
                        + (f"\nstderr: {stderr}" if stderr else "")
                    )
                output += result.stdout
        return output

    def fail(self, *commands: str, timeout: float | None = None) -> str:
        """Run each command under ``set -euo pipefail``; fails the test if one exits 0.
        Returns all stdout. As in the NixOS driver, no timeout by default, and a command
        killed at ``timeout`` s (status 124) counts as failed."""
        output = ""
        for command in commands:
            with self.nested(f"must fail: {command}"):
                result = self.run(STRICT + command, timeout)
                if result.status == 0:
                    raise self._failure(f"command `{command}` unexpectedly succeeded")
                output += result.stdout
        return output

    def wait_until_succeeds(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, attempt_timeout: float | None = None
    ) -> str:
        """Repeat ``command`` (under ``set -euo pipefail``) inside the guest until it exits
        0; returns its stdout. Fails after ``timeout`` s, showing the last output;
        ``attempt_timeout`` bounds each attempt (default: ``timeout``, as in the NixOS
        driver)."""
        with self.nested(f"waiting for success: {command}"):
            polled = self._guest_loop(
                command, timeout, True, attempt_timeout or timeout, strict=True
            )
            if not polled.reached:
                raise self._failure(
                    f"`{command}` did not succeed within {timeout}s; last output:\n" + polled.output
                )
            return polled.output

    def wait_until_fails(
        self, command: str, timeout: float = DEFAULT_TIMEOUT, attempt_timeout: float | None = None
    ) -> str:
        """Repeat ``command`` (under ``set -euo pipefail``) inside the guest until it exits
        non-zero; returns its stdout. Fails after ``timeout`` s; ``attempt_timeout`` bounds
        each attempt (default: ``timeout``)."""
        with self.nested(f"waiting for failure: {command}"):
            polled = self._guest_loop(
                command, timeout, False, attempt_timeout or timeout, strict=True
            )
            if not polled.reached:
                raise self._failure(f"`{command}` did not fail within {timeout}s")
            return polled.output

    def sleep(self, secs: float) -> None:
        """Sleep ``secs`` seconds of guest time (as the NixOS driver does), without
        spawning a process in the guest."""
        self.run(f"photon_sleep {float(secs):g}", timeout=secs + 30.0)

    def shell_interact(self, read_line: Callable[[str], str] = input) -> None:
        """A line-by-line root shell on the guest for debugging; ends at EOF or ``exit``."""
        while True:
            try:
                line = read_line(f"{self.name}# ")
            except EOFError:
                return
            if line.strip() in ("exit", "logout"):
                return
            result = self.run(line)
            print(result.stdout + result.stderr, end="")
