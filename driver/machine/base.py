"""The two bases of the DSL's helper groups, so what a helper may use is a type:
``ShellBase``, the guest shell alone (``run``, the in-guest poll ``_guest_loop``, logging
about this node, the failures' words), for the groups that only run commands (commands,
systemd, files); and ``NodeBase``, that plus the node's ``NodePort`` (port.py: QMP, the
console, host forwards), for the groups that need the node itself (network, monitor, ssh,
the NixOS compatibility methods). Helpers reach no part of the node (QEMU process, console,
shell) directly; mypy refuses a shell helper that reaches for the port.
"""

from __future__ import annotations

import contextlib
import math
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.config.spec import NodeSpec
from driver.duration import Duration
from driver.errors import TestFailure
from driver.log import Logger
from driver.machine.backend import NotOnContainer
from driver.machine.port import NodePort
from driver.machine.shell import CommandResult

# The guest's boot clock in centiseconds (/proc/uptime), into $cs, without a fork: the clock
# of every in-guest deadline (the backdoor's own too). A stepped wall clock (a clock-skew
# fault, a restored snapshot) leaves it alone.
BOOT_CLOCK = "boot_cs() { local up; read -r up _ </proc/uptime; cs=$(( 10#${up/./} )); }\n"

DEFAULT_TIMEOUT = 900.0
# How long a node's boot may take, up to its backdoor shell's answer.
BOOT_TIMEOUT = 300.0
# Prepended to test-author commands (execute, succeed, fail, wait_until_*), as the NixOS
# driver does: `succeed("false | true")` fails.
STRICT = "set -euo pipefail\n"


@dataclass(frozen=True)
class Polled:
    """How an in-guest poll ended: ``reached`` the goal, or not (timeout or a stop status);
    the last attempt's exit status and output."""

    reached: bool
    status: int
    output: str


class ShellBase(ABC):
    """What a helper group that only runs commands may use: the guest shell."""

    name: str
    logger: Logger
    out_dir: Path

    @abstractmethod
    def run(self, command: str, timeout: Duration | None = DEFAULT_TIMEOUT) -> CommandResult:
        """Run ``command`` in the guest and return the full result."""

    @abstractmethod
    def _expect_failed_unit(self, unit: str) -> None:
        """Tell the health gate that ``unit`` failed as the script expected."""

    def log(self, message: str) -> None:
        """Write a line about this node to the run log."""
        self.logger.log(message, node=self.name)

    def log_serial(self, message: str) -> None:
        """Write ``message`` to the run log as a console line of this node."""
        self.logger.node_line(self.name, message)

    @contextlib.contextmanager
    def nested(self, msg: str) -> Iterator[None]:
        """A timed, indented block about this node in the run log."""
        with self.logger.nested(msg, node=self.name):
            yield

    def _failure(self, message: str) -> TestFailure:
        return TestFailure(f"{self.name}: {message}", node=self.name)

    def _timed_out(self, timeout: float, what: str) -> TestFailure:
        """The failure of a wait that ran out of time, in the NixOS driver's words
        ("action timed out"), which scripts match with ``must_raise``."""
        return self._failure(f"action timed out after {timeout:g}s: {what}")

    def _guest_loop(
        self,
        check: str,
        timeout: float,
        want_success: bool = True,
        attempt_timeout: float | None = 60.0,
        interval: float = 0.1,
        strict: bool = False,
        stop_status: int | None = None,
        max_interval: float = 0.5,
    ) -> Polled:
        """The one in-guest wait: run ``check`` in the guest until it succeeds (or, with
        ``want_success`` False, fails), in one round trip; the guest sleeps between attempts
        without spawning a process: ``interval`` s at first, then a twentieth of the time
        waited so far, at most ``max_interval`` s. An attempt forks and may exec, which
        under TCG costs tens of ms of the guest's only vCPU: a long wait must not take the
        CPU from what it waits for, and it still notices within 5 % of its time. Each
        attempt is bounded by ``attempt_timeout`` s (None: a subshell, no ``timeout``
        process); an attempt that exits with ``stop_status`` ends the wait at once. A check
        may read ``$d``, the wait's deadline in centiseconds of /proc/uptime, and call
        ``boot_cs`` (``$cs``: that clock now), to block until then itself (``attempt_timeout``
        None: the attempt is a subshell of the loop). ``strict`` runs ``check`` under ``set -euo pipefail``
        (test-author commands)."""
        if strict:
            check = STRICT + check
        attempt = (
            f"timeout -k 2 {attempt_timeout:g} bash -c {shlex.quote(check)}"
            if attempt_timeout
            else f"(eval {shlex.quote(check)})"
        )
        goal = "-eq" if want_success else "-ne"
        stop = "" if stop_status is None else f'  if [ "$r" -eq {stop_status} ]; then break; fi\n'
        first = max(1, round(interval * 100))
        most = max(first, round(max_interval * 100))
        script = (
            # The attempt's output, byte-exact but for NUL bytes (as a command substitution).
            'attempt_output() { local piece; o=""\n'
            "  while IFS= read -r -d '' piece; do o+=$piece; done <\"$f\"\n"
            "  o+=$piece\n"
            "}\n"
            f"f=/run/photon-backdoor/attempt\n{BOOT_CLOCK}"
            f"boot_cs; s=$cs; d=$(( s + {math.ceil(timeout * 100)} ))\n"
            "while :; do\n"
            # The attempt writes to a file, not into a command substitution: one process
            # fewer to fork, and to exit between the attempt's end and the reply.
            f'  {attempt} >"$f" 2>&1; r=$?\n'
            f'  if [ "$r" {goal} 0 ]; then attempt_output; printf "%s\\n%s" "$r" "$o"; exit 0; fi\n'
            f"{stop}"
            "  boot_cs; n=$cs\n"
            "  if (( n >= d )); then break; fi\n"
            f"  w=$(( (n - s) / 20 )); (( w < {first} )) && w={first}; (( w > {most} )) && w={most}\n"
            "  printf -v w '%d.%02d' $(( w / 100 )) $(( w % 100 ))\n"
            '  photon_sleep "$w"\n'
            "done\n"
            'attempt_output; printf "%s\\n%s" "$r" "$o"; exit 97'
        )
        result = self.run(script, timeout=timeout + (attempt_timeout or 0) + 30.0)
        status, _, output = result.stdout.partition("\n")
        return Polled(result.status == 0, int(status or -1), output)


class NodeBase(ShellBase):
    """What a helper group that needs the node itself may use: the shell and the port."""

    spec: NodeSpec
    callbacks: list[Callable[[], None]]
    _port: NodePort

    def _expect_failed_unit(self, unit: str) -> None:
        self._port.expected_failed_units.add(unit)

    def _check_alive(self) -> None:
        """Raise MachineDied when the guest's QEMU is gone."""
        self._port.check_alive()

    def send_qmp_command(self, command: str, /, **arguments: object) -> object:
        """Send a QMP command; returns its ``return`` value (raises on a QMP error)."""
        return self._port.qmp(command, **arguments)

    def _serial_socket(self, what: str) -> str:
        """The serial console's socket, for ``what``; NotOnContainer on a container node
        (its console is nspawn's output only)."""
        if self._port.serial_socket is None:
            raise NotOnContainer(self._port.name, what, "its console is read-only")
        return str(self._port.serial_socket)

    def _next_qmp_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event within ``wait`` s, or None."""
        return self._port.next_qmp_event(wait)

    def run_callbacks(self) -> None:
        """Run the callbacks due before each command of a script (the Driver checks the
        script's active polling conditions there), as the NixOS driver does."""
        for callback in self.callbacks:
            callback()
