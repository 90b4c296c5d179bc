"""The pre-boot check accepts every valid NixOS-style script (the conformance suite's, the
names NixOS puts in a namespace, names made in loops and by ``global``), still rejects typos,
and reports every problem of a script in one pass."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from driver.config.topology import load_topology
from driver.errors import UsageError
from driver.scriptrun.script_check import check_script

CONFORMANCE = Path(__file__).resolve().parent / "conformance"
sys.path.insert(0, str(CONFORMANCE))
from conformance_helpers import PRELUDE, TOPOLOGIES  # noqa: E402

MODULES = {
    "test_nixos_low_level": "machine.toml",
    "test_nixos_systemd": "machine.toml",
    "test_nixos_files": "machine.toml",
    "test_nixos_power": "machine.toml",
    "test_nixos_polling_condition": "machine.toml",
    "test_nixos_networking": "client-server.toml",
    "test_nixos_driver": "none.toml",
    "test_nixos_retry": "none.toml",
    "test_nixos_attempt_timeout": "machine.toml",
    "test_nixos_unit_active_state": "machine.toml",
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_conformance_scripts_pass_the_check(module: str) -> None:
    source = PRELUDE + importlib.import_module(module).SCRIPT
    topology = load_topology(TOPOLOGIES / MODULES[module])
    check_script(Path(f"{module}.py"), source, list(topology.nodes), topology, "default")


def test_every_conformance_file_has_a_module() -> None:
    assert {p.stem for p in CONFORMANCE.glob("test_nixos_*.py")} == set(MODULES)


NIXOS_NAMES = """
from test_driver.machine import retry as r2
from test_driver.errors import RequestedAssertionFailed
import test_driver.logger
for m in machines:
    m.succeed("true")
counter = 0
def bump():
    global made_here, counter
    made_here = 1
    counter += 1
bump()
print(made_here, counter, driver.out_dir, driver.machines, os.getcwd(), Machine, vlans)
machine.booted, machine.connected, machine.wait_for_unit_active_state
run_tests, test_script, create_machine, machines_qemu, debug.breakpoint(), log.info("x")
with must_raise("x", SystemExit):
    pass
@polling_condition(seconds_interval=1)
def cond():
    return True
cond.condition.description
"""


def test_nixos_namespace_names_are_known() -> None:
    check_script(Path("n.py"), NIXOS_NAMES, ["machine"])


def test_all_problems_in_one_pass_and_typos_still_caught() -> None:
    source = (
        "start_all()\n"
        "node01.wait_for_unitt('x')\n"  # line 2
        "t.assertEquall(1, 1)\n"  # line 3
        "undefined_thing()\n"  # line 4
        "from test_driver.machine import nope\n"  # line 5
        "import test_driver.frobnicate\n"  # line 6
        "node99.succeed('true')\n"  # line 7
        "driver.out_dirr\n"  # line 8
    )
    with pytest.raises(UsageError) as info:
        check_script(Path("s.py"), source, ["node01"])
    lines = str(info.value).splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["2", "3", "4", "5", "6", "7", "8"], lines
    assert "node01.wait_for_unitt: a node has no attribute" in lines[0]
    assert "t.assertEquall" in lines[1]
    assert "undefined name 'undefined_thing'" in lines[2]
    assert "test_driver.machine has no 'nope'" in lines[3]
    assert "test_driver.frobnicate: not offered" in lines[4]
    assert "unknown node 'node99'" in lines[5]
    assert "driver.out_dirr: Driver has no attribute" in lines[6]
