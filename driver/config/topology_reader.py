"""Reading the topology's tables: field access whose errors name the file and the field,
and the checks of a node's addresses and forwards."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from driver.config import fields
from driver.config.spec import Forward
from driver.errors import UsageError


class TopologyReader:
    """Field access that prefixes every error with the topology file's path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> UsageError:
        """The error for field ``where`` (to raise)."""
        return UsageError(f"{self.path}: {where}: {message}")

    def get(self, table: dict[str, Any], key: str, kind: type, where: str) -> Any:
        """``table[key]``, which must be a ``kind``."""
        try:
            return fields.field(table, key, kind, where)
        except UsageError as exc:
            raise UsageError(f"{self.path}: {exc}") from None

    def port(self, value: Any, where: str) -> int:
        """``value`` as a port number (1-65535)."""
        try:
            return fields.port(value, where)
        except UsageError as exc:
            raise UsageError(f"{self.path}: {exc}") from None


def optional(
    r: TopologyReader, table: dict[str, Any], key: str, kind: type, where: str, default: Any
) -> Any:
    """``table[key]`` (a ``kind``) when present, else ``default``."""
    return r.get(table, key, kind, where) if key in table else default


def unknown_fields(
    r: TopologyReader, table: dict[str, Any], known: tuple[str, ...], where: str
) -> None:
    """Refuse a key of ``table`` that is not in ``known``."""
    for key in table:
        if key not in known:
            raise r.fail(f"{where}.{key}", f"unknown field (known: {', '.join(known)})")


def host_address(r: TopologyReader, cidr: Any, where: str) -> str:
    """A node's ``ADDRESS/PREFIX`` on a VLAN: its address, which must be a host's."""
    try:
        if not isinstance(cidr, str) or "/" not in cidr:
            raise ValueError(cidr)
        interface = ipaddress.ip_interface(cidr)
    except ValueError:
        raise r.fail(where, f"bad address {cidr!r} (want ADDRESS/PREFIX)") from None
    network = interface.network
    if network.num_addresses > 2 and interface.ip in (
        network.network_address,
        network.broadcast_address,
    ):
        raise r.fail(where, f"{cidr} is the network's own or broadcast address, not a host's")
    return str(interface.ip)


def load_forwards(
    r: TopologyReader,
    table: dict[str, Any],
    where: str,
    seen_host_ports: dict[tuple[str, int], str],
) -> list[Forward]:
    """A node's ``forwards``: names unique on the node, fixed host ports unique on the host
    (``seen_host_ports``: (protocol, port) -> the field that took it)."""
    forwards: list[Forward] = []
    for i, fwd in enumerate(optional(r, table, "forwards", list, where, [])):
        fwhere = f"{where}.forwards[{i}]"
        if not isinstance(fwd, dict):
            raise r.fail(fwhere, f"must be a table, got {fwd!r}")
        protocol = fwd.get("protocol", "tcp")
        if protocol not in ("tcp", "udp"):
            raise r.fail(f"{fwhere}.protocol", f"must be tcp or udp, got {protocol!r}")
        name = r.get(fwd, "name", str, fwhere)
        if name in {f.name for f in forwards}:
            raise r.fail(f"{fwhere}.name", f"duplicate forward name '{name}' on this node")
        host_port = r.port(fwd["host_port"], f"{fwhere}.host_port") if "host_port" in fwd else 0
        if host_port:
            if (protocol, host_port) in seen_host_ports:
                raise r.fail(
                    f"{fwhere}.host_port",
                    f"host {protocol} port {host_port} is already forwarded by "
                    f"{seen_host_ports[protocol, host_port]}",
                )
            seen_host_ports[protocol, host_port] = fwhere
        guest_port = r.port(r.get(fwd, "guest_port", int, fwhere), f"{fwhere}.guest_port")
        forwards.append(
            Forward(guest_port=guest_port, protocol=protocol, host_port=host_port, name=name)
        )
    return forwards


def positive(
    r: TopologyReader,
    table: dict[str, Any],
    key: str,
    where: str,
    default: int,
    most: int,
    least: int = 1,
) -> int:
    """``table[key]`` (default ``default``), a whole number from ``least`` to ``most``."""
    value = int(optional(r, table, key, int, where, default))
    if not least <= value <= most:
        raise r.fail(f"{where}.{key}", f"must be {least}-{most}, got {value}")
    return value


def inside_folder(r: TopologyReader, value: Any, where: str, outside: bool = False) -> Path:
    """The host path ``value`` names, relative to the topology's folder; a path that leaves
    the folder (``..``, absolute, a symlink out) is refused unless ``outside``."""
    if not isinstance(value, str) or not value:
        raise r.fail(where, f"must be a path next to the topology, got {value!r}")
    folder = r.path.parent.resolve()
    path = (folder / value).resolve()
    if not outside and not path.is_relative_to(folder):
        raise r.fail(where, f"{value} is outside the topology's folder (say outside = true)")
    return path


def host_file(r: TopologyReader, value: Any, where: str, outside: bool) -> bytes:
    """The bytes of a host file named relative to the topology's folder (see
    inside_folder)."""
    path = inside_folder(r, value, where, outside)
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise r.fail(where, f"file {value} not found next to the topology") from None
    except PermissionError:
        raise r.fail(where, f"cannot read {value} (permission denied)") from None
