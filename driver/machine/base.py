"""The interface the Machine's helper mixins build on: run a shell command in the guest."""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from pathlib import Path

from driver.errors import TestFailure
from driver.log import Logger
from driver.machine.backdoor import CommandResult

DEFAULT_TIMEOUT = 900.0
# Prepended to test-author commands (execute, succeed, fail, wait_until_*), as the NixOS
# driver does: `succeed("false | true")` fails.
STRICT = "set -euo pipefail\n"


class ShellBase(ABC):
    """What every mixin may call."""

    name: str
    logger: Logger
    out_dir: Path

    @abstractmethod
    def run(self, command: str, timeout: float | None = DEFAULT_TIMEOUT) -> CommandResult:
        """Run ``command`` in the guest and return the full result."""

    @abstractmethod
    def alive(self) -> None:
        """Raise MachineDied when the guest's QEMU is gone."""

    @abstractmethod
    def send_qmp_command(self, command: str, **arguments: object) -> object:
        """Send a QMP command; returns its ``return`` value."""

    @abstractmethod
    def console_tail(self, lines: int = 20) -> str:
        """The last console lines of this boot."""

    def failure(self, message: str) -> TestFailure:
        """A TestFailure that names this node."""
        return TestFailure(f"{self.name}: {message}", node=self.name)

    def guest_loop(
        self,
        check: str,
        timeout: float,
        want_success: bool = True,
        attempt_timeout: float | None = 60.0,
        interval: float = 0.1,
        strict: bool = False,
    ) -> tuple[bool, str]:
        """Poll ``check`` inside the guest (one round trip) until it succeeds (or fails).

        Returns (reached, output of the last attempt). Each attempt is bounded by
        ``attempt_timeout`` seconds; between attempts the guest sleeps ``interval``
        seconds without spawning a process. ``strict`` runs ``check`` under
        ``set -euo pipefail`` (test-author commands)."""
        if strict:
            check = STRICT + check
        attempt = (
            f"timeout -k 2 {attempt_timeout:g} bash -c {shlex.quote(check)}"
            if attempt_timeout
            else f"(eval {shlex.quote(check)})"
        )
        goal = "-eq" if want_success else "-ne"
        script = (
            f"d=$(( ${{EPOCHREALTIME/./}} + {int(timeout * 1e6)} ))\n"
            "while :; do\n"
            f"  o=$({attempt} 2>&1); r=$?\n"
            f'  if [ "$r" {goal} 0 ]; then printf %s "$o"; exit 0; fi\n'
            f'  if (( ${{EPOCHREALTIME/./}} >= d )); then printf %s "$o"; exit 97; fi\n'
            f"  photon_sleep {interval:g}\n"
            "done"
        )
        grace = (attempt_timeout or 0) + 30.0
        result = self.run(script, timeout=timeout + grace)
        return result.status == 0, result.stdout
