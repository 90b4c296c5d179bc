"""Which processes a cluster's state directory owns, read from command lines (pure: a fake
``/proc``)."""

from __future__ import annotations

from pathlib import Path

from driver.run.driver import socket_prefix
from driver.state import owned


def test_owned_processes_and_a_nodes_qemus_are_found_by_command_line(tmp_path: Path) -> None:
    proc, state = tmp_path / "proc", tmp_path / "state"

    def process(pid: int, *argv: str) -> None:
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")

    process(10, "/usr/bin/qemu-system-x86_64", "-serial", f"file:{state}/n1/vm.log")
    process(11, "qemu-system-x86_64", "-serial", f"file:{state}/runs/5/n1/vm.log")
    process(12, "/usr/bin/vde_switch", "--sock", f"/tmp/{socket_prefix(state)}x/vlan1.ctl")
    process(13, "/bin/bash", f"{state}/n1/anything")
    process(14, "qemu-system-x86_64", "-serial", f"file:{state}/n2/vm.log")
    (proc / "self").mkdir()
    assert [(p.pid, p.program) for p in owned.owned_processes(state, proc)] == [
        (10, "qemu-system-x86_64"),
        (12, "vde_switch"),
        (14, "qemu-system-x86_64"),
    ]
    assert owned.node_qemus(state, "n1", proc) == [10]
    assert owned.node_qemus(state, "n2", proc) == [14]
    assert owned.node_qemus(state, "n3", proc) == []
