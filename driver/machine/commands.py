"""Test-author commands with the NixOS driver's meanings: every one runs under
``set -euo pipefail``; waits poll inside the guest."""

from __future__ import annotations

from collections.abc import Callable

from driver.duration import Duration, optional_seconds, seconds
from driver.errors import CommandTimeout
from driver.machine.base import DEFAULT_TIMEOUT, STRICT, ShellBase
from driver.machine.shell import CommandResult

# How much of a failed command's stdout and stderr its failure quotes (the end of each).
OUTPUT_QUOTED_CHARS = 2000


def _quoted_output(result: CommandResult) -> str:
    """The end of ``result``'s stdout and stderr, as lines to append to a failure."""
    text = ""
    for name, stream in (("stdout", result.stdout), ("stderr", result.stderr)):
        stream = stream.strip()
        if len(stream) > OUTPUT_QUOTED_CHARS:
            stream = (
                f"[{len(stream) - OUTPUT_QUOTED_CHARS} chars before] ..."
                + stream[-OUTPUT_QUOTED_CHARS:]
            )
        if stream:
            text += f"\n{name}: {stream}"
    return text


class CommandsMixin(ShellBase):
    """execute, succeed, fail, wait_until_succeeds/fails, sleep, shell_interact."""

    def execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: Duration | None = DEFAULT_TIMEOUT,
    ) -> tuple[int, str]:
        """Run ``command`` under ``set -euo pipefail``; returns ``(status, stdout)``, as the
        NixOS driver does. A command still running after ``timeout`` s is killed with its
        whole process group: status 124.

        ``check_return=False`` returns ``(-1, stdout)``. ``check_output=False`` starts the
        command in the background with its output discarded and returns ``(-2, "")`` at
        once. A command bash cannot parse returns status 2 (bash's message is on stderr and
        the console), as on NixOS. ``timeout`` is honoured to a tenth of a second; 0 or
        None means no limit (NixOS's ``timeout 0``)."""
        if not check_output:
            self.run(f"( {STRICT}{command} ) >/dev/null 2>&1 &", timeout)
            return -2, ""
        result = self._strict(command, timeout)
        return (result.status if check_return else -1), result.stdout

    def _strict(self, command: str, timeout: Duration | None) -> CommandResult:
        """Run a test author's command under ``set -euo pipefail``. A command bash cannot
        parse returns bash's status 2 with its message on stderr, as on NixOS."""
        return self.run(STRICT + command, optional_seconds(timeout))

    def execute_bytes(
        self, command: str, timeout: Duration | None = DEFAULT_TIMEOUT
    ) -> tuple[int, bytes]:
        """Like ``execute``, with stdout as exact bytes (binary output: NUL bytes and
        non-UTF-8 data intact)."""
        result = self.run(STRICT + command, optional_seconds(timeout))
        return result.status, result.stdout_bytes

    def succeed(self, *commands: str, timeout: Duration | None = None) -> str:
        """Run each command under ``set -euo pipefail``; returns all stdout. Fails the test
        (TestFailure naming the node, command and status, and quoting the end of its stdout
        and stderr) if one exits non-zero, and with
        CommandTimeout if one runs longer than ``timeout`` s (its process group is
        killed). As in the NixOS driver, no timeout by default (``None``)."""
        output = ""
        for command in commands:
            with self.nested(f"must succeed: {command}"):
                result = self._strict(command, timeout)
                if result.timed_out:
                    raise CommandTimeout(
                        f"{self.name}: command `{command}` failed (exit 124): timed out after "
                        f"{optional_seconds(timeout)}s; the guest "
                        "killed its process group",
                        node=self.name,
                    )
                if result.status != 0:
                    raise self._failure(
                        f"command `{command}` failed (exit code {result.status})"
                        + _quoted_output(result)
                    )
                output += result.stdout
        return output

    def fail(self, *commands: str, timeout: Duration | None = None) -> str:
        """Run each command under ``set -euo pipefail``; fails the test if one exits 0
        (quoting the end of its output).
        Returns all stdout. As in the NixOS driver, no timeout by default, and a command
        killed at ``timeout`` s (status 124) counts as failed."""
        output = ""
        for command in commands:
            with self.nested(f"must fail: {command}"):
                result = self._strict(command, timeout)
                if result.status == 0:
                    raise self._failure(
                        f"command `{command}` unexpectedly succeeded" + _quoted_output(result)
                    )
                output += result.stdout
        return output

    def wait_until_succeeds(
        self,
        command: str,
        timeout: Duration = DEFAULT_TIMEOUT,
        attempt_timeout: Duration | None = None,
    ) -> str:
        """Repeat ``command`` (under ``set -euo pipefail``) inside the guest until it exits
        0; returns its stdout. Fails ("action timed out", with the last output) after
        ``timeout``; ``attempt_timeout`` bounds each attempt (an attempt still running then
        is killed and the next one starts; default: ``timeout``, as in the NixOS driver).
        Both take a ``timedelta`` or seconds."""
        total = seconds(timeout)
        attempt = optional_seconds(attempt_timeout) or total
        with self.nested(f"waiting for success: {command}"):
            polled = self._guest_loop(command, total, True, attempt, strict=True)
            if not polled.reached:
                raise self._timed_out(
                    total, f"`{command}` did not succeed; last output:\n" + polled.output
                )
            return polled.output

    def wait_until_fails(
        self,
        command: str,
        timeout: Duration = DEFAULT_TIMEOUT,
        attempt_timeout: Duration | None = None,
    ) -> str:
        """Repeat ``command`` (under ``set -euo pipefail``) inside the guest until it exits
        non-zero; returns its stdout. Fails ("action timed out") after ``timeout``;
        ``attempt_timeout`` bounds each attempt (default: ``timeout``)."""
        total = seconds(timeout)
        attempt = optional_seconds(attempt_timeout) or total
        with self.nested(f"waiting for failure: {command}"):
            polled = self._guest_loop(command, total, False, attempt, strict=True)
            if not polled.reached:
                raise self._timed_out(total, f"`{command}` did not fail")
            return polled.output

    def sleep(self, secs: Duration) -> None:
        """Sleep ``secs`` (a ``timedelta`` or seconds) of guest time, as the NixOS driver
        does, without spawning a process in the guest."""
        length = seconds(secs)
        self.run(f"photon_sleep {length:g}", timeout=length + 30.0)

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
