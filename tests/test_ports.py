"""Host ports of forwards: the driver picks free ones outside the kernel's ephemeral range
(where an outgoing connection could take them before QEMU binds), and a fixed port that is
already taken is refused in one line before anything starts."""

from __future__ import annotations

import itertools
import socket
from pathlib import Path

import pytest

from driver.config.spec import Forward
from driver.errors import InfraError
from driver.run import ports
from driver.run.ports import (
    assign_ports,
    check_fixed_ports,
    ephemeral_low,
    free_port,
    is_free,
)


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    low = ephemeral_low()
    for _ in range(20):
        port = free_port()
        assert 1024 <= port < low
        assert is_free(port)


def test_ephemeral_low_reads_the_kernel_range(tmp_path: Path) -> None:
    source = tmp_path / "ip_local_port_range"
    source.write_text("40000\t60999\n")
    assert ephemeral_low(source) == 40000
    source.write_text("garbage\n")
    assert ephemeral_low(source) == 32768
    assert ephemeral_low(tmp_path / "missing") == 32768


def test_a_taken_fixed_port_is_refused_naming_node_forward_and_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        forwards = {"web": [Forward(guest_port=80, host_port=port, name="http")]}
        expected = (
            rf"^web: host port {port} of the forward to guest port 80 \(http\) "
            r"is already in use on 127\.0\.0\.1$"
        )
        with pytest.raises(InfraError, match=expected):
            check_fixed_ports(forwards)
    check_fixed_ports(forwards)  # free again: accepted
    check_fixed_ports({"web": [Forward(guest_port=80)]})  # chosen by the driver: not checked


def test_assigned_ports_keep_fixed_ones_and_never_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The draw offers the same port again and again: each forward must still get its own.
    offered = itertools.chain([20000, 20000, 20001, 20000, 20001], itertools.count(20002))
    monkeypatch.setattr(ports.random, "randint", lambda low, high: next(offered))
    forwards = {f"n{i}": [Forward(guest_port=22)] for i in range(3)}
    forwards["fixed"] = [Forward(guest_port=80, host_port=18081)]
    assigned = assign_ports(forwards)
    found = [port for listed in assigned.values() for port in listed]
    assert assigned["fixed"] == [18081]
    assert len(found) == len(set(found)) == 4, assigned
