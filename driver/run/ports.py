"""Host ports for forwards the topology leaves to the driver."""

from __future__ import annotations

import random
import socket
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from driver.config.spec import Forward
from driver.errors import InfraError

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
DEFAULT_EPHEMERAL_LOW = 32768
# Ports this far below the ephemeral range are drawn from.
SPAN = 16384


def ephemeral_low(source: Path = EPHEMERAL_RANGE) -> int:
    """The lowest port the kernel hands to outgoing connections (32768 when unknown)."""
    try:
        low = int(source.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW
    return low if 1024 < low <= 65535 else DEFAULT_EPHEMERAL_LOW


def is_free(port: int) -> bool:
    """Whether a TCP listener could bind 127.0.0.1:``port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(exclude: Collection[int] = (), attempts: int = 64) -> int:
    """A currently free TCP port on 127.0.0.1 below the kernel's ephemeral range, not one
    of ``exclude`` (the ports already given to the run's other forwards: none of them is
    bound before QEMU starts).

    QEMU binds a forward's port seconds after it is chosen (a later boot group even
    later), and every outgoing connection on the host takes its local port from the
    ephemeral range: a port chosen there (``bind(0)``) can be taken in between, and QEMU
    then fails with "Could not set up host forwarding rule". Below that range only another
    listener can take it. Falls back to ``bind(0)`` when no port there is free."""
    low = ephemeral_low()
    first = max(1024, low - SPAN)
    for _ in range(attempts):
        port = random.randint(first, low - 1)
        if port not in exclude and is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_fixed_ports(forwards: Mapping[str, Sequence[Forward]]) -> None:
    """InfraError naming the node, forward and port when a forward's fixed host port (TCP)
    is already taken on 127.0.0.1: QEMU would refuse to start on it."""
    for node, listed in forwards.items():
        for forward in listed:
            port = forward.host_port
            if port and forward.protocol == "tcp" and not is_free(port):
                label = f" ({forward.name})" if forward.name else ""
                raise InfraError(
                    f"{node}: host port {port} of the forward to guest port "
                    f"{forward.guest_port}{label} is already in use on 127.0.0.1"
                )


def assign_ports(forwards: Mapping[str, Sequence[Forward]]) -> dict[str, list[int]]:
    """Each node's forward host ports: the fixed ones as given, the others free ones, no
    two alike."""
    taken = {f.host_port for listed in forwards.values() for f in listed if f.host_port}
    assigned: dict[str, list[int]] = {}
    for node, listed in forwards.items():
        ports = []
        for forward in listed:
            port = forward.host_port or free_port(taken)
            taken.add(port)
            ports.append(port)
        assigned[node] = ports
    return assigned
