"""The cluster topology (``nodes/cluster.toml``): load and validate.

Errors are one line naming the file and the field, e.g.
``nodes/cluster.toml: nodes.node04.role: unknown role 'wrker'``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driver.config.node_addresses import load_vlans, node_addresses
from driver.config.node_config import CONFIG_FIELDS, NodeConfig, load_node_config, load_node_kind
from driver.config.spec import Forward, NodeKind
from driver.config.topology_reader import (
    TopologyReader,
    host_address,
    host_file,
    inside_folder,
    load_forwards,
    optional,
    positive,
    unknown_fields,
)
from driver.errors import UsageError

PROTOCOLS = ("tcp", "udp", "http", "metrics")
# What a node table may hold; anything else is a typo the loader names.
NODE_FIELDS = (
    "role",
    "vcpus",
    "memory_mib",
    "addresses",
    "vlans",
    "extra_addresses",
    "forwards",
    "nested_virtualisation",
    "kind",
    "container_ok",
    *CONFIG_FIELDS,
)
MAX_NODES = 254  # the MAC scheme (config/macs.py) holds a node's position in one byte
IMAGE_FIELDS = ("packages", "disable_units", "files")
DEFAULT_ROLE = "node"  # the role of a node that names none (boot group 0)
DEFAULT_PROFILE = "default"  # the profile of a topology with no [profiles]
DEFAULT_VCPUS = 1
DEFAULT_MEMORY_MIB = 512
# Below this the Debian kernel, initramfs and systemd do not come up.
MIN_MEMORY_MIB = 128
NODE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


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
    # Shell that succeeds on each of the service's nodes once the service has settled
    # (beyond its unit being active: e.g. Prometheus has scraped every target once); a
    # settled snapshot is saved only after it does. Empty: settled when active.
    settled: str = ""

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
    kind: NodeKind = NodeKind.VM
    container_ok: bool = False  # runs as a container under --containers
    # More addresses on a VLAN than the first (``addresses = { lan = [A, B] }``, the IPv6
    # address NixOS gives a ``vlans`` node, ``extra_addresses``): VLAN name -> CIDRs.
    extra_addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    config: NodeConfig = field(default_factory=NodeConfig)

    def address(self, vlan: str | None = None) -> str:
        """The node's IP on ``vlan`` (without prefix length); without ``vlan``, on its first
        VLAN. "" for a node on no VLAN (or not on ``vlan``)."""
        if vlan is None:
            vlan = next(iter(self.addresses), "")
        cidr = self.addresses.get(vlan, "")
        return cidr.split("/")[0]


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

    def settle_checks_on(self, node: str) -> list[str]:
        """The ``settled`` commands of the profile's services on ``node``."""
        return [s.settled for s in self.services_on(node) if s.settled]

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

    def default_profile(self) -> str:
        """The profile a run uses when none is named: ``reference`` if the topology has
        it, else its first profile."""
        return "reference" if "reference" in self.profiles else next(iter(self.profiles))

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


def _load_nodes(
    r: TopologyReader, raw: dict[str, Any], roles: dict[str, Any], vlans: dict[str, int]
) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    seen_addresses: dict[str, str] = {}
    seen_host_ports: dict[tuple[str, int], str] = {}
    tables = optional(r, raw, "nodes", dict, "", {})
    if len(tables) > MAX_NODES:
        raise r.fail("nodes", f"at most {MAX_NODES} nodes (the MAC scheme), got {len(tables)}")
    numbers = {name: i for i, name in enumerate(sorted(tables), start=1)}
    for name, table in tables.items():
        where = f"nodes.{name}"
        if not NODE_NAME.match(name):
            raise r.fail(where, "a node name must be a hostname (letters, digits, '-')")
        if not isinstance(table, dict):
            raise r.fail(where, f"must be a table, got {table!r}")
        unknown_fields(r, table, NODE_FIELDS, where)
        role = optional(r, table, "role", str, where, DEFAULT_ROLE)
        if role not in roles and role != DEFAULT_ROLE:
            raise r.fail(f"{where}.role", f"unknown role '{role}' (known: {', '.join(roles)})")
        all_addresses = node_addresses(r, table, where, vlans, numbers[name])
        for vlan, cidrs in all_addresses.items():
            for cidr in cidrs:
                ip = host_address(r, cidr, f"{where}.addresses.{vlan}")
                if ip in seen_addresses:
                    raise r.fail(
                        f"{where}.addresses.{vlan}",
                        f"duplicate address {ip} (also {seen_addresses[ip]})",
                    )
                seen_addresses[ip] = name
        addresses = {vlan: cidrs[0] for vlan, cidrs in all_addresses.items()}
        extra = {vlan: tuple(cidrs[1:]) for vlan, cidrs in all_addresses.items() if cidrs[1:]}
        forwards = load_forwards(r, table, where, seen_host_ports)
        kind = load_node_kind(r, table, where)
        config = load_node_config(
            r, table, where, [c for cidrs in all_addresses.values() for c in cidrs]
        )
        nodes[name] = Node(
            name=name,
            role=role,
            vcpus=positive(r, table, "vcpus", where, DEFAULT_VCPUS, 64),
            memory_mib=positive(
                r, table, "memory_mib", where, DEFAULT_MEMORY_MIB, 65536, MIN_MEMORY_MIB
            ),
            addresses=dict(addresses),
            forwards=tuple(forwards),
            boot_group=int(roles.get(role, {}).get("boot_group", 0)),
            nested_virtualisation=optional(r, table, "nested_virtualisation", bool, where, False),
            kind=kind,
            container_ok=optional(
                r,
                table,
                "container_ok",
                bool,
                where,
                roles.get(role, {}).get("container_ok", False),
            ),
            extra_addresses=extra,
            config=config,
        )
    return nodes


def _load_images(r: TopologyReader, raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    images: dict[str, dict[str, Any]] = {}
    for name, table in optional(r, raw, "images", dict, "", {}).items():
        where = f"images.{name}"
        if not isinstance(table, dict):
            raise r.fail(where, f"must be a table, got {table!r}")
        unknown_fields(r, table, IMAGE_FIELDS, where)
        for key in ("packages", "disable_units"):
            for i, item in enumerate(optional(r, table, key, list, where, [])):
                if not isinstance(item, str) or not re.match(
                    r"^[A-Za-z0-9][A-Za-z0-9+.@_:-]*$", item
                ):
                    raise r.fail(f"{where}.{key}[{i}]", f"not a package or unit name: {item!r}")
        for target, source in optional(r, table, "files", dict, where, {}).items():
            fwhere = f"{where}.files.{target}"
            if not target.startswith("/"):
                raise r.fail(fwhere, "the guest path must be absolute")
            if isinstance(source, dict):
                unknown_fields(r, source, ("content", "source", "mode", "outside"), fwhere)
                if ("content" in source) == ("source" in source):
                    raise r.fail(fwhere, "give one of content or source")
                if "content" in source:
                    r.get(source, "content", str, fwhere)
                else:
                    outside = optional(r, source, "outside", bool, fwhere, False)
                    host_file(r, source["source"], f"{fwhere}.source", outside)
                mode = optional(r, source, "mode", str, fwhere, "0644")
                if not re.match(r"^0?[0-7]{3,4}$", mode):
                    raise r.fail(f"{fwhere}.mode", f"not an octal mode: {mode!r}")
            elif isinstance(source, str):
                host_file(r, source, fwhere, False)
            else:
                raise r.fail(fwhere, "must be a path or a table with content or source (and mode)")
        images[name] = dict(table)
    return images


def _service_files(r: TopologyReader, table: dict[str, Any], where: str) -> dict[str, str]:
    """A service's ``files``: guest path -> a template in the topology's folder (never
    outside it). Read when a node's files are rendered: a topology copied alone (the
    flake's, whose nodes come as prebuilt specs) needs none of them."""
    files = optional(r, table, "files", dict, where, {})
    for target, source in files.items():
        fwhere = f"{where}.files.{target}"
        if not target.startswith("/"):
            raise r.fail(fwhere, "the guest path must be absolute")
        inside_folder(r, source, fwhere)
    return dict(files)


def _load_service(
    r: TopologyReader, table: dict[str, Any], where: str, nodes: dict[str, Node]
) -> Service:
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
        files=_service_files(r, table, where),
        cli=dict(table.get("cli", {})),
        settled=optional(r, table, "settled", str, where, ""),
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
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory, not a topology file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text (a TOML file is)") from None
    except PermissionError:
        raise UsageError(f"{path}: cannot read the topology file (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    r = TopologyReader(path)
    cluster = optional(r, raw, "cluster", dict, "", {})
    roles = optional(r, raw, "roles", dict, "", {})
    for role, table in roles.items():
        if not isinstance(table, dict):
            raise r.fail(f"roles.{role}", f"must be a table, got {table!r}")
        optional(r, table, "boot_group", int, f"roles.{role}", 0)
        optional(r, table, "container_ok", bool, f"roles.{role}", False)
    vlans = load_vlans(r, raw)
    nodes = _load_nodes(r, raw, roles, vlans)
    images = _load_images(r, raw)
    profiles: dict[str, Profile] = {}
    raw_profiles = optional(r, raw, "profiles", dict, "", {DEFAULT_PROFILE: {"image": "default"}})
    for pname, ptable in raw_profiles.items():
        where = f"profiles.{pname}"
        if not isinstance(ptable, dict):
            raise r.fail(where, f"must be a table, got {ptable!r}")
        services = tuple(
            _load_service(r, s, f"{where}.services[{i}]", nodes)
            for i, s in enumerate(optional(r, ptable, "services", list, where, []))
        )
        image = optional(r, ptable, "image", str, where, "default")
        if image not in images and image == "default":
            images["default"] = {}
        profiles[pname] = Profile(
            name=pname,
            image=optional(r, ptable, "image", str, where, "default"),
            description=ptable.get("description", ""),
            services=services,
            contract=dict(r.get(ptable, "contract", dict, where) if "contract" in ptable else {}),
        )
    return Topology(
        path=path,
        name=optional(r, cluster, "name", str, "cluster", path.stem),
        domain=optional(r, cluster, "domain", str, "cluster", ""),
        vlans=vlans,
        nodes=nodes,
        profiles=profiles,
        images=images,
    )
