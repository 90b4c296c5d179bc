"""QmpClient against sockets that refuse: a QEMU that exits while the driver connects
(it rejected a saved state) is MachineDied, a socket nobody serves is one InfraError."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from driver.errors import InfraError, MachineDied
from driver.machine.qmp import QmpClient


def refusing_socket(path: Path) -> socket.socket:
    """A bound Unix socket that does not listen: connect() gets ECONNREFUSED."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    return sock


def test_refused_connection_of_an_exiting_qemu_is_machine_died(tmp_path: Path) -> None:
    sock = refusing_socket(tmp_path / "qmp")
    calls = []

    def check_alive() -> None:
        # Alive when first asked (the socket is there), gone right after: the race CI met.
        calls.append(1)
        if len(calls) > 1:
            raise MachineDied("node01: QEMU exited (status 1)", node="node01")

    try:
        with pytest.raises(MachineDied, match="QEMU exited"):
            QmpClient(tmp_path / "qmp", check_alive).command("query-status")
    finally:
        sock.close()


def test_refused_connection_of_a_live_qemu_is_one_infra_error(tmp_path: Path) -> None:
    sock = refusing_socket(tmp_path / "qmp")
    started = time.monotonic()
    try:
        with pytest.raises(InfraError, match=r"qmp: QMP connection failed"):
            QmpClient(tmp_path / "qmp", lambda: None).command("query-status")
    finally:
        sock.close()
    assert time.monotonic() - started < 5
