"""What a test script sees, defined once: ``GLOBALS`` lists every global with how its value
is made, the type whose attributes the pre-check allows on it, and its reference text. The
namespace the Driver builds, the pre-boot check (script_check.py) and docs/dsl.md
(driver/docs.py) all come from this table.

The names follow the NixOS test driver's ``test_symbols`` (its current source) where we offer
the same thing; docs/nixos-compat.md says which differ and why."""

from __future__ import annotations

import builtins
import keyword
import re
import unittest
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driver.config.spec import NodeKind
from driver.config.topology import Profile, Topology
from driver.errors import UsageError
from driver.machine.machine import Machine
from driver.run import convergence, faults, helpers
from driver.run.driver import Driver
from driver.scriptrun.script_face import ScriptFace
from driver.scriptrun.scriptlog import DebugHook, ScriptLog


@dataclass(frozen=True)
class ScriptGlobal:
    """One script global: ``value(driver, run)`` makes it; ``kind()`` is the type whose
    attributes the pre-check allows on it (None: not checked); ``reference`` is the
    function whose signature and docstring document it, or a sentence for a value."""

    value: Callable[[Driver, ScriptFace], Any]  # (driver, the script's run) -> the value
    kind: Callable[[], type | None] = lambda: None
    reference: Callable[[], Callable[..., Any] | str] = lambda: ""


def _driver_method(name: str) -> ScriptGlobal:
    return ScriptGlobal(lambda d, r: getattr(d, name), reference=lambda: getattr(Driver, name))


def _fault(name: str) -> ScriptGlobal:
    return ScriptGlobal(
        lambda d, r: getattr(d.faults, name), reference=lambda: getattr(faults.Faults, name)
    )


def _value(get: Callable[[Driver, ScriptFace], Any], text: str, kind: type | None = None) -> Any:
    return ScriptGlobal(get, lambda: kind, lambda: text)


def _not_offered(name: str, why: str) -> Callable[..., Any]:
    def refuse(*args: object, **kwargs: object) -> None:
        from driver.errors import TestFailure

        raise TestFailure(f"{name}: not offered by photon-driver: {why}")

    refuse.__name__ = name
    refuse.__doc__ = f"Not offered (fails with one line): {why}."
    return refuse


CREATE_MACHINE = _not_offered(
    "create_machine", "nodes come from the topology file (--topology); declare the node there"
)

GLOBALS: dict[str, ScriptGlobal] = {
    "machines": _value(lambda d, r: d.machines, "every node of the run (a list of Machine)"),
    "machines_qemu": _value(
        lambda d, r: [m for m in d.machines if m.spec.kind == NodeKind.VM],
        "the run's VM nodes (QEMU), as in the NixOS driver",
    ),
    "machines_nspawn": _value(
        lambda d, r: [m for m in d.machines if m.spec.kind == NodeKind.CONTAINER],
        "the run's container nodes (systemd-nspawn), as in the NixOS driver",
    ),
    "vlans": _value(lambda d, r: d.vlans, "the run's VLAN switches (also vlanN, one per VLAN)"),
    "driver": ScriptGlobal(
        lambda d, r: d, lambda: Driver, lambda: "the Driver (driver.out_dir, driver.machines, ...)"
    ),
    "start_all": _driver_method("start_all"),
    "join_all": _driver_method("join_all"),
    "wait_for_all_booted": _driver_method("wait_for_all_booted"),
    "subtest": ScriptGlobal(lambda d, r: r.subtest, reference=lambda: ScriptFace.subtest),
    "must_raise": ScriptGlobal(lambda d, r: r.must_raise, reference=lambda: ScriptFace.must_raise),
    "retry": ScriptGlobal(lambda d, r: helpers.retry, reference=lambda: helpers.retry),
    "polling_condition": ScriptGlobal(
        lambda d, r: d.polling.polling_condition,
        reference=lambda: helpers.PollingConditions.polling_condition,
    ),
    "serial_stdout_on": _driver_method("serial_stdout_on"),
    "serial_stdout_off": _driver_method("serial_stdout_off"),
    "t": _value(
        lambda d, r: r.test_case,
        "a unittest.TestCase for its assertions (t.assertEqual...); failures are "
        "RequestedAssertionFailed and AssertionError",
        unittest.TestCase,
    ),
    "log": _value(
        lambda d, r: r.script_log,
        "the run log: log(msg) or log.info/warning/error(msg), with log.nested(msg):",
        ScriptLog,
    ),
    "os": _value(
        lambda d, r: r.os_module,
        "Python's os module (as NixOS puts it in the namespace), but os._exit(N) ends the "
        "script as sys.exit(N) does: the driver cleans up, then exits N",
    ),
    "Machine": _value(lambda d, r: Machine, "the node class, for type annotations"),
    "BaseMachine": _value(lambda d, r: Machine, "the same class (the NixOS driver's name)"),
    "run_tests": ScriptGlobal(lambda d, r: r.run_tests, reference=lambda: ScriptFace.run_tests),
    "test_script": ScriptGlobal(lambda d, r: r.run_tests, reference=lambda: ScriptFace.run_tests),
    "create_machine": ScriptGlobal(lambda d, r: CREATE_MACHINE, reference=lambda: CREATE_MACHINE),
    "debug": _value(
        lambda d, r: r.debug,
        "debug.breakpoint(): does nothing unless the run has --debug-hook; with it, stops "
        "the script there for pdb (photon-driver debug-attach)",
        DebugHook,
    ),
    "skip": ScriptGlobal(lambda d, r: helpers.skip, reference=lambda: helpers.skip),
    "allow_problem": _driver_method("allow_problem"),
    "results": _value(lambda d, r: r.results, "the subtest results so far"),
    "topology": _value(
        lambda d, r: d.context.topology, "the cluster topology (the --topology file)", Topology
    ),
    "profile": _value(
        lambda d, r: d.context.profile, "the run's profile: services, endpoints, CLIs", Profile
    ),
    "partition": _fault("partition"),
    "heal": _fault("heal"),
    "delay": _fault("delay"),
    "loss": _fault("loss"),
    "pause": _fault("pause"),
    "resume": _fault("resume"),
    "disk_full": _fault("disk_full"),
    "clock_skew": _fault("clock_skew"),
    "converges": ScriptGlobal(
        lambda d, r: convergence.converges, reference=lambda: convergence.converges
    ),
    "snapshot": _driver_method("snapshot"),
    "restore": _driver_method("restore"),
}
NODE_TYPE = Machine


def pythonise(name: str) -> str:
    """A node name as a Python identifier, as NixOS's ``pythonize_name`` makes it
    (``node-1`` -> ``node_1``, ``1st`` -> ``_st``)."""
    return re.sub(r"^[^A-Za-z_]|[^A-Za-z0-9_]", "_", name)


def node_symbols(names: list[str]) -> list[str]:
    """The variables a run binds for its nodes: one per node, plus ``machine`` when there
    is exactly one (as NixOS does)."""
    symbols = [pythonise(n) for n in names]
    return [*symbols, "machine"] if len(names) == 1 else symbols


def vlan_symbol(number: int) -> str:
    """The variable of VLAN ``number`` (``vlan1``), as in NixOS."""
    return f"vlan{number}"


def check_node_names(topology: Topology) -> None:
    """Raise a UsageError (one line naming the topology file and ``nodes.NAME``) when a node
    of ``topology`` cannot be its own script variable: its Python name is a keyword, is
    taken by another node (``1st`` and ``2st`` are both ``_st``), or would hide a script
    global (``start-all`` is ``start_all``), a VLAN's variable or a Python builtin."""
    vlans = {vlan_symbol(number) for number in topology.vlans.values()}
    taken: dict[str, str] = {}
    for name in topology.nodes:
        symbol = pythonise(name)
        if keyword.iskeyword(symbol):
            why = f"'{symbol}' is a Python keyword; a test script cannot name this node"
        elif symbol in taken:
            why = f"is '{symbol}' in a test script, as nodes.{taken[symbol]} is"
        elif symbol in GLOBALS:
            why = f"is '{symbol}' in a test script, which would hide the script global"
        elif symbol in vlans:
            why = f"is '{symbol}' in a test script, which would hide that VLAN's variable"
        elif hasattr(builtins, symbol):
            why = f"is '{symbol}' in a test script, which would hide Python's builtin"
        else:
            taken[symbol] = name
            continue
        raise UsageError(f"{topology.path}: nodes.{name}: {why}; rename the node")


def build(driver: Driver, run: ScriptFace) -> dict[str, Any]:
    """The globals of a script run: every entry of GLOBALS, one variable per node (and
    ``machine`` for a single node), one per VLAN."""
    env: dict[str, Any] = {name: entry.value(driver, run) for name, entry in GLOBALS.items()}
    env.update({pythonise(m.name): m for m in driver.machines})
    if len(driver.machines) == 1:
        env.setdefault("machine", driver.machines[0])
    env.update({vlan_symbol(v.number): v for v in driver.vlans})
    return env
