"""The run directories of fresh runs (``<state>/runs/<pid>/``): where a run's console logs
and outputs are, said at its start, and the old ones pruned so they do not pile up."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from driver.log import Logger
from driver.machine.process import pid_alive

if TYPE_CHECKING:
    from driver.run.driver import Driver

KEEP_RUNS = 5  # finished run directories kept per profile (the newest); older ones removed


def prune(runs: Path, keep: int, logger: Logger) -> None:
    """Remove all but the ``keep`` newest finished run directories under ``runs`` (a
    directory whose run is still going, its pid alive, is never removed)."""
    if not runs.is_dir():
        return
    finished = [d for d in runs.iterdir() if d.is_dir() and not running(d.name)]
    finished.sort(key=lambda d: d.stat().st_mtime, reverse=True)
    for old in finished[max(keep - 1, 0) :]:  # room for the run that starts now
        shutil.rmtree(old, ignore_errors=True)
        logger.log(f"removed an old run directory {old} (keeping the last {keep})")


def run_name(pid: int, repetition: int = 0) -> str:
    """A run directory's name: the driver's pid, and ``-K`` for repetition K > 1."""
    return f"{pid}-{repetition}" if repetition > 1 else str(pid)


def running(name: str) -> bool:
    """Whether the run of directory ``name`` (``PID`` or ``PID-K``) is still going."""
    pid = name.split("-", 1)[0]
    return pid.isdigit() and pid_alive(int(pid))


def announce(driver: Driver, state: Path, logger: Logger) -> None:
    """Say where this run keeps its files: the run directory and each console log."""
    logger.log(f"run directory: {state} (outputs in {driver.out_dir})")
    for machine in driver.machines:
        logger.log(f"console log of {machine.name}: {state / machine.name / 'vm.log'}")
