"""NodeDisks: a node's disks and the states saved in them or beside them. Its Node holds it
as ``node.disks``: the qcow2 overlays over the base disks, and starting QEMU from a saved
state (a migration stream over saved disks, or an internal snapshot in the overlays)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from driver.machine.backend import NodeProcess

# Starts QEMU with extra arguments (``Node.spawn``), keeping or not the reboot setting.
Spawn = Callable[..., None]


class NodeDisks:
    """The disks of one node's QEMU, and starts from what was saved in or beside them."""

    def __init__(self, process: NodeProcess, spawn: Spawn, query: Callable[[str], object]) -> None:
        self._process = process
        self._spawn = spawn
        self._query = query

    @property
    def overlays(self) -> list[Path]:
        """The files QEMU opens for the spec's disks (qcow2 overlays or the disks)."""
        return self._process.overlays

    def create_overlays(self) -> None:
        """Fresh copy-on-write overlays over the base disks (blank disks where none)."""
        self._process.create_overlays()

    def overlays_over(self, saved: list[Path | None]) -> None:
        """Fresh overlays over saved qcow2 disk images (None: the spec's own disk)."""
        self._process.overlays_over(saved)

    def start_from_saved_state(self, state_file: Path, disks: list[Path | None]) -> None:
        """Start QEMU paused on fresh overlays over ``disks`` (None: the spec's own disk),
        loading RAM and device state from ``state_file`` (a QEMU migration stream); then
        wait for ``saved_state_loaded``, resume the node and ``mark_restored``."""
        self._process.overlays_over(disks)
        self._spawn(extra_args=("-S", "-incoming", "exec:cat " + shlex.quote(str(state_file))))

    def start_from_snapshot(self, name: str) -> None:
        """Start QEMU paused on this node's disks as they are, loading their internal
        snapshot ``name`` (``-loadvm``); then, as after ``start_from_saved_state``, wait
        for ``saved_state_loaded``, resume and ``mark_restored``. A fresh QEMU starts the
        guest's clocks where the snapshot froze them (a running QEMU's ``loadvm`` keeps the
        guest TSC where it was, and the restored guest sees time jump by all the time since
        the snapshot)."""
        self._spawn(allow_reboot=self._process.allow_reboot, extra_args=("-S", "-loadvm", name))

    def saved_state_loaded(self) -> bool:
        """Whether QEMU has loaded the saved state (it is then paused); MachineDied if QEMU
        rejected the state and exited."""
        reply = self._query("query-status")
        return isinstance(reply, dict) and reply.get("status") != "inmigrate"
