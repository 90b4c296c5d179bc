"""A kola-style scan after a run: kernel problems on the consoles and failed units."""

from __future__ import annotations

import re

from driver.errors import DriverError
from driver.machine.machine import Machine

KERNEL_PROBLEMS = re.compile(
    r"Kernel panic|Oops:|BUG: |general protection fault|segfault at|Out of memory: Killed"
)


def scan_machine(machine: Machine) -> list[str]:
    """Problems seen on ``machine`` during this boot (console lines, failed units)."""
    problems = [
        f"{machine.name}: console: {line.strip()}"
        for line in machine.get_console_log().splitlines()
        if KERNEL_PROBLEMS.search(line)
    ]
    if machine.is_up():
        try:
            problems += [f"{machine.name}: failed unit {u}" for u in machine.failed_units()]
        except (DriverError, TimeoutError) as exc:
            problems.append(f"{machine.name}: could not list failed units: {exc}")
    return problems


def scan(machines: list[Machine]) -> list[str]:
    """Problems on every machine."""
    return [problem for machine in machines for problem in scan_machine(machine)]
