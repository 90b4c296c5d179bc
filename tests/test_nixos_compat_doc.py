"""docs/nixos-compat.md covers every public name of the NixOS driver, and every name it
says we offer ("same" or "ours differs") exists where a script finds it."""

from __future__ import annotations

import re
from pathlib import Path

from driver.machine.machine import Machine
from driver.scriptrun.namespace import GLOBALS
from driver.scriptrun.nixos_imports import OFFERED
from driver.scriptrun.script_check import _attributes

DOC = Path(__file__).resolve().parent.parent / "docs" / "nixos-compat.md"

# The NixOS driver's public names (its current source), which the table must list.
NIXOS_GLOBALS = {
    "start_all",
    "test_script",
    "machines_qemu",
    "machines_nspawn",
    "vlans",
    "driver",
    "log",
    "os",
    "create_machine",
    "subtest",
    "run_tests",
    "join_all",
    "retry",
    "serial_stdout_off",
    "serial_stdout_on",
    "polling_condition",
    "BaseMachine",
    "t",
    "debug",
    "machines",
    "Machine",
    "must_raise",
}
NIXOS_MACHINE = {
    "name",
    "out_dir",
    "booted",
    "connected",
    "pid",
    "callbacks",
    "is_up",
    "log",
    "log_serial",
    "nested",
    "systemctl",
    "wait_for_unit",
    "get_unit_info",
    "get_unit_property",
    "require_unit_state",
    "wait_for_unit_active_state",
    "succeed",
    "fail",
    "wait_until_succeeds",
    "wait_until_fails",
    "sleep",
    "wait_for_file",
    "wait_for_open_port",
    "wait_for_open_unix_socket",
    "wait_for_closed_port",
    "start_job",
    "stop_job",
    "execute",
    "run_callbacks",
    "cleanup_statedir",
    "copy_from_machine",
    "copy_from_vm",
    "copy_from_host_via_shell",
    "copy_from_host",
    "ssh_backdoor_command",
    "wait_for_monitor_prompt",
    "send_monitor_command",
    "get_tty_text",
    "wait_until_tty_matches",
    "dump_tty_contents",
    "shell_interact",
    "console_interact",
    "wait_for_shutdown",
    "wait_for_qmp_event",
    "send_chars",
    "connect",
    "screenshot",
    "get_screen_text_variants",
    "get_screen_text",
    "wait_for_text",
    "wait_for_console_text",
    "get_console_log",
    "send_key",
    "send_console",
    "start",
    "shutdown",
    "crash",
    "reboot",
    "wait_for_x",
    "get_window_names",
    "wait_for_window",
    "forward_port",
    "block",
    "unblock",
    "release",
    "switch_root",
}


def _rows(section: str) -> list[tuple[list[str], str]]:
    text = DOC.read_text().split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            names = re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)", cells[0])
            rows.append((names, cells[1]))
    return rows


def test_every_nixos_global_is_listed_and_offered_ones_exist() -> None:
    rows = _rows("Script globals")
    listed = {n for names, _ in rows for n in names}
    assert NIXOS_GLOBALS <= listed, NIXOS_GLOBALS - listed
    for names, status in rows:
        assert status in ("same", "ours differs", "not offered"), status
        for name in names:
            if name != "machine" and not name.startswith("vlan"):
                assert name in GLOBALS, name


def test_every_nixos_machine_name_is_listed_and_offered_ones_exist() -> None:
    rows = _rows("Node methods and attributes")
    listed = {n for names, _ in rows for n in names}
    assert NIXOS_MACHINE <= listed, NIXOS_MACHINE - listed
    attributes = _attributes(Machine)
    for names, status in rows:
        for name in names:
            if status == "not offered":
                continue
            if name in ("ssh_backdoor_command", "shell_interact", "console_interact"):
                continue  # "ours differs" rows naming what we offer instead
            assert name in attributes, name


def test_offered_modules_match_the_importer() -> None:
    rows = _rows("Modules a script may import")
    for names, _ in rows:
        module, _, first = names[0].rpartition(".")
        assert module in OFFERED and first in OFFERED[module], names[0]
        for other in names[1:]:
            assert other.lstrip(".") in OFFERED[module], other
