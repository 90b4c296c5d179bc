"""The cluster topology (``nodes/cluster.toml``): load and validate.

Errors are one line naming the file and the field, e.g.
``nodes/cluster.toml: nodes.node04.role: unknown role 'wrker'``.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driver.config import fields
from driver.config.spec import Forward
from driver.errors import UsageError

PROTOCOLS = ("tcp", "udp", "http", "metrics")


@dataclass(frozen=True)
class Endpoint:
    """One port a service answers on."""

    name: str
    port: int
    protocol: str
    path: str = ""


@dataclass(frozen=True)
class Service:
    """A service of a profile: where it runs, its unit, endpoints and config files."""

    name: str
    unit: str
    nodes: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    files: dict[str, str] = field(default_factory=dict)
    cli: dict[str, str] = field(default_factory=dict)

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint called ``name``."""
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(f"service {self.name} has no endpoint {name!r}")


@dataclass(frozen=True)
class Node:
    """One node of the cluster."""

    name: str
    role: str
    vcpus: int
    memory_mib: int
    addresses: dict[str, str]
    forwards: tuple[Forward, ...]
    boot_group: int
    nested_virtualisation: bool = False

    def address(self, vlan: str = "cluster") -> str:
        """The node's IP on ``vlan`` (without prefix length)."""
        return self.addresses[vlan].split("/")[0]


@dataclass(frozen=True)
class Profile:
    """A set of services on the nodes, built from one kind of image."""

    name: str
    image: str
    description: str
    services: tuple[Service, ...]
    contract: dict[str, Any] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        """The service called ``name``."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"profile {self.name} has no service {name!r}")

    def services_on(self, node: str) -> list[Service]:
        """Services that run on ``node``."""
        return [s for s in self.services if node in s.nodes]

    def units_on(self, node: str) -> list[str]:
        """The systemd units the profile's services run as on ``node`` (once each)."""
        return list(dict.fromkeys(s.unit for s in self.services_on(node)))


@dataclass(frozen=True)
class Topology:
    """The whole validated topology file."""

    path: Path
    name: str
    domain: str
    vlans: dict[str, int]
    nodes: dict[str, Node]
    profiles: dict[str, Profile]
    images: dict[str, dict[str, Any]]

    def profile(self, name: str) -> Profile:
        """The profile ``name`` or a UsageError listing the known ones."""
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise UsageError(f"{self.path}: unknown profile '{name}' (known: {known})")
        return self.profiles[name]

    def boot_groups(self, names: list[str] | None = None) -> list[list[str]]:
        """Node names grouped by boot order, control plane first."""
        chosen = [n for n in self.nodes.values() if names is None or n.name in names]
        groups = sorted({n.boot_group for n in chosen})
        return [[n.name for n in chosen if n.boot_group == g] for g in groups]


class _Reader:
    """Field access that prefixes every error with the topology file's path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> UsageError:
        return UsageError(f"{self.path}: {where}: {message}")

    def get(self, table: dict[str, Any], key: str, kind: type, where: str) -> Any:
        try:
            return fields.field(table, key, kind, where)
        except UsageError as exc:
            raise UsageError(f"{self.path}: {exc}") from None

    def port(self, value: Any, where: str) -> int:
        try:
            return fields.port(value, where)
        except UsageError as exc:
            raise UsageError(f"{self.path}: {exc}") from None


def _load_nodes(r: _Reader, raw: dict[str, Any], roles: dict[str, Any]) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    seen_addresses: dict[str, str] = {}
    for name, table in r.get(raw, "nodes", dict, "").items():
        where = f"nodes.{name}"
        role = r.get(table, "role", str, where)
        if role not in roles:
            raise r.fail(f"{where}.role", f"unknown role '{role}' (known: {', '.join(roles)})")
        addresses = r.get(table, "addresses", dict, where)
        for vlan, cidr in addresses.items():
            try:
                ip = str(ipaddress.ip_interface(cidr).ip)
            except ValueError:
                raise r.fail(f"{where}.addresses.{vlan}", f"bad address {cidr!r}") from None
            if ip in seen_addresses:
                raise r.fail(
                    f"{where}.addresses.{vlan}",
                    f"duplicate address {ip} (also {seen_addresses[ip]})",
                )
            seen_addresses[ip] = name
        forwards = []
        for i, fwd in enumerate(table.get("forwards", [])):
            fwhere = f"{where}.forwards[{i}]"
            protocol = fwd.get("protocol", "tcp")
            if protocol not in ("tcp", "udp"):
                raise r.fail(f"{fwhere}.protocol", f"must be tcp or udp, got {protocol!r}")
            forwards.append(
                Forward(
                    name=r.get(fwd, "name", str, fwhere),
                    guest_port=r.port(
                        r.get(fwd, "guest_port", int, fwhere), f"{fwhere}.guest_port"
                    ),
                    protocol=protocol,
                    host_port=r.port(fwd["host_port"], f"{fwhere}.host_port")
                    if "host_port" in fwd
                    else 0,
                )
            )
        nodes[name] = Node(
            name=name,
            role=role,
            vcpus=r.get(table, "vcpus", int, where),
            memory_mib=r.get(table, "memory_mib", int, where),
            addresses=dict(addresses),
            forwards=tuple(forwards),
            boot_group=int(roles[role].get("boot_group", 0)),
            nested_virtualisation=bool(table.get("nested_virtualisation", False)),
        )
    return nodes


def _load_service(r: _Reader, table: dict[str, Any], where: str, nodes: dict[str, Node]) -> Service:
    name = r.get(table, "name", str, where)
    where = f"{where}({name})"
    if "nodes" in table:
        placed = tuple(table["nodes"])
        for node in placed:
            if node not in nodes:
                raise r.fail(f"{where}.nodes", f"unknown node '{node}'")
    else:
        roles = r.get(table, "roles", list, where)
        known_roles = {n.role for n in nodes.values()}
        for role in roles:
            if role not in known_roles:
                raise r.fail(f"{where}.roles", f"unknown role '{role}'")
        placed = tuple(n.name for n in nodes.values() if n.role in roles)
    endpoints = []
    for i, ep in enumerate(table.get("endpoints", [])):
        ewhere = f"{where}.endpoints[{i}]"
        protocol = r.get(ep, "protocol", str, ewhere)
        if protocol not in PROTOCOLS:
            raise r.fail(f"{ewhere}.protocol", f"must be one of {', '.join(PROTOCOLS)}")
        endpoints.append(
            Endpoint(
                name=r.get(ep, "name", str, ewhere),
                port=r.port(r.get(ep, "port", int, ewhere), f"{ewhere}.port"),
                protocol=protocol,
                path=ep.get("path", ""),
            )
        )
    return Service(
        name=name,
        unit=r.get(table, "unit", str, where),
        nodes=placed,
        endpoints=tuple(endpoints),
        files=dict(table.get("files", {})),
        cli=dict(table.get("cli", {})),
    )


def load_topology(path: Path | None = None) -> Topology:
    """Read and validate the topology file (default: the one that ships with the driver)."""
    if path is None:
        from driver.bundled import default_topology

        path = default_topology()
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: topology file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    r = _Reader(path)
    cluster = r.get(raw, "cluster", dict, "")
    roles = r.get(raw, "roles", dict, "")
    vlans = {
        r.get(v, "name", str, f"vlans[{i}]"): r.get(v, "id", int, f"vlans[{i}]")
        for i, v in enumerate(r.get(raw, "vlans", list, ""))
    }
    nodes = _load_nodes(r, raw, roles)
    for node in nodes.values():
        for vlan in node.addresses:
            if vlan not in vlans:
                raise r.fail(f"nodes.{node.name}.addresses.{vlan}", f"unknown VLAN '{vlan}'")
    profiles: dict[str, Profile] = {}
    for pname, ptable in r.get(raw, "profiles", dict, "").items():
        where = f"profiles.{pname}"
        services = tuple(
            _load_service(r, s, f"{where}.services[{i}]", nodes)
            for i, s in enumerate(ptable.get("services", []))
        )
        profiles[pname] = Profile(
            name=pname,
            image=r.get(ptable, "image", str, where),
            description=ptable.get("description", ""),
            services=services,
            contract=dict(r.get(ptable, "contract", dict, where) if "contract" in ptable else {}),
        )
    return Topology(
        path=path,
        name=r.get(cluster, "name", str, "cluster"),
        domain=cluster.get("domain", ""),
        vlans=vlans,
        nodes=nodes,
        profiles=profiles,
        images=dict(raw.get("images", {})),
    )
