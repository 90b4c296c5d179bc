"""What a test script sees, defined once: each global's name and type. The namespace the
Driver builds and the pre-boot check (script_check.py) both come from ``GLOBALS``."""

from __future__ import annotations

import unittest
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from driver.config.topology import Profile, Topology
from driver.log import Logger
from driver.machine.machine import Machine
from driver.runner import faults, helpers

if TYPE_CHECKING:
    from driver.runner.driver import Driver
    from driver.runner.script import ScriptRun


def _driver_type() -> type:
    from driver.runner.driver import Driver

    return Driver


# name -> the type whose attributes a script may use on it (None: not checked)
GLOBALS: dict[str, Callable[[], type | None]] = {
    "machines": lambda: None,
    "vlans": lambda: None,
    "driver": _driver_type,
    "start_all": lambda: None,
    "join_all": lambda: None,
    "wait_for_all_booted": lambda: None,
    "subtest": lambda: None,
    "retry": lambda: None,
    "polling_condition": lambda: None,
    "serial_stdout_on": lambda: None,
    "serial_stdout_off": lambda: None,
    "t": lambda: unittest.TestCase,
    "log": lambda: None,
    "skip": lambda: None,
    "allow_problem": lambda: None,
    "results": lambda: None,
    "topology": lambda: Topology,
    "profile": lambda: Profile,
    "partition": lambda: None,
    "heal": lambda: None,
    "delay": lambda: None,
    "loss": lambda: None,
    "pause": lambda: None,
    "resume": lambda: None,
    "disk_full": lambda: None,
    "clock_skew": lambda: None,
    "converges": lambda: None,
    "snapshot": lambda: None,
    "restore": lambda: None,
}
NODE_TYPE = Machine


def pythonise(name: str) -> str:
    """A node name as a Python identifier (``node-1`` -> ``node_1``)."""
    return "".join(c if c.isalnum() else "_" for c in name)


def build(driver: Driver, run: ScriptRun, logger: Logger) -> dict[str, Any]:
    """The globals of a script run: one variable per node plus the helpers in GLOBALS."""
    env: dict[str, Any] = {pythonise(m.name): m for m in driver.machines}
    helpers_by_name: dict[str, Any] = {
        "machines": driver.machines,
        "vlans": driver.vlans,
        "driver": driver,
        "start_all": driver.start_all,
        "join_all": driver.join_all,
        "wait_for_all_booted": driver.wait_for_all_booted,
        "subtest": run.subtest,
        "retry": helpers.retry,
        "polling_condition": helpers.polling_condition,
        "serial_stdout_on": driver.serial_stdout_on,
        "serial_stdout_off": driver.serial_stdout_off,
        "t": run.test_case,
        "log": logger.log,
        "skip": helpers.skip,
        "allow_problem": driver.allow_problem,
        "results": run.results,
        "topology": driver.context.topology,
        "profile": driver.context.profile,
        "partition": driver.faults.partition,
        "heal": driver.faults.heal,
        "delay": driver.faults.delay,
        "loss": driver.faults.loss,
        "pause": driver.faults.pause,
        "resume": driver.faults.resume,
        "disk_full": driver.faults.disk_full,
        "clock_skew": driver.faults.clock_skew,
        "converges": faults.converges,
        "snapshot": driver.snapshot,
        "restore": driver.restore,
    }
    if set(helpers_by_name) != set(GLOBALS):
        raise AssertionError("namespace.build and namespace.GLOBALS disagree")
    env.update(helpers_by_name)
    return env
