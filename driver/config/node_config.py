"""Per-node configuration in the topology, the Debian path's answer to a NixOS test's
``nodes.<name>``: packages, files, users and groups, environment, routes, units, sysctl and
a setup hook. Every mistake is one line naming the file, the node and the field."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from driver.config.spec import NodeKind
from driver.config.topology_reader import TopologyReader, host_file, optional, unknown_fields

CONFIG_FIELDS = (
    "packages",
    "files",
    "users",
    "groups",
    "environment",
    "service_environment",
    "routes",
    "default_gateway",
    "enable_units",
    "disable_units",
    "mask_units",
    "unit_aliases",
    "sysctl",
    "setup",
)
FILE_FIELDS = ("content", "source", "symlink", "mode", "owner", "group", "template", "outside")
USER_FIELDS = ("uid", "groups", "home", "shell", "password", "system", "create_home")
PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.@\\-]*\.(service|socket|target|timer|path|mount)$")
ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SYSCTL = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_*-]+)+$")


@dataclass(frozen=True)
class NodeFile:
    """One file the node gets: bytes with a mode and owner, or a symlink. ``template``:
    ``content`` is a ``string.Template`` over the topology's variables."""

    content: bytes = b""
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    symlink: str = ""
    template: bool = False


@dataclass(frozen=True)
class User:
    """A user account (NixOS ``users.users.<name>``)."""

    name: str
    uid: int | None = None
    groups: tuple[str, ...] = ()
    home: str = ""
    shell: str = "/bin/bash"
    password: str | None = None
    system: bool = False
    create_home: bool = True


@dataclass(frozen=True)
class Group:
    """A group (NixOS ``users.groups.<name>``)."""

    name: str
    gid: int | None = None


@dataclass(frozen=True)
class Route:
    """A static route through a gateway on one of the node's VLANs."""

    to: str
    via: str


@dataclass(frozen=True)
class NodeConfig:
    """Everything a topology says about one node beyond its hardware and addresses."""

    packages: tuple[str, ...] = ()
    files: dict[str, NodeFile] = field(default_factory=dict)
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    service_environment: dict[str, str] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    default_gateway: str = ""
    enable_units: tuple[str, ...] = ()
    disable_units: tuple[str, ...] = ()
    mask_units: tuple[str, ...] = ()
    unit_aliases: dict[str, str] = field(default_factory=dict)
    sysctl: dict[str, str] = field(default_factory=dict)
    setup: str = ""

    def needs_setup_unit(self) -> bool:
        """Whether the node needs its first-boot setup unit (users, owners, /run, hook)."""
        return bool(
            self.users
            or self.groups
            or self.setup
            or any(f.owner != "root" or f.group != "root" for f in self.files.values())
            or any(p.startswith("/run/") for p in self.files)
        )


def _names(
    r: TopologyReader,
    table: dict[str, Any],
    key: str,
    where: str,
    pattern: re.Pattern[str],
    what: str,
) -> tuple[str, ...]:
    items = optional(r, table, key, list, where, [])
    for i, item in enumerate(items):
        if not isinstance(item, str) or not pattern.match(item):
            raise r.fail(f"{where}.{key}[{i}]", f"not a {what}: {item!r}")
    return tuple(items)


def _strings(
    r: TopologyReader,
    table: dict[str, Any],
    key: str,
    where: str,
    pattern: re.Pattern[str],
    what: str,
) -> dict[str, str]:
    values = optional(r, table, key, dict, where, {})
    for name, value in values.items():
        if not pattern.match(name):
            raise r.fail(f"{where}.{key}.{name}", f"not a {what}")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise r.fail(f"{where}.{key}.{name}", f"must be a string, got {value!r}")
    return {k: str(v) for k, v in values.items()}


def _mode(r: TopologyReader, table: dict[str, Any], where: str, default: int) -> int:
    mode = optional(r, table, "mode", str, where, "")
    if not mode:
        return default
    if not re.match(r"^0?[0-7]{3,4}$", mode):
        raise r.fail(f"{where}.mode", f"not an octal mode: {mode!r}")
    return int(mode, 8)


def _file(r: TopologyReader, target: str, value: Any, where: str) -> NodeFile:
    if not target.startswith("/") or "/../" in f"{target}/" or target.rstrip("/") == "":
        raise r.fail(where, "the guest path must be absolute (and not /)")
    if isinstance(value, str):
        content = host_file(r, value, where, False)
        return NodeFile(content, 0o755 if content.startswith(b"#!") else 0o644)
    if not isinstance(value, dict):
        raise r.fail(where, "must be a path or a table with content, source or symlink")
    unknown_fields(r, value, FILE_FIELDS, where)
    kinds = [k for k in ("content", "source", "symlink") if k in value]
    if len(kinds) != 1:
        raise r.fail(where, "needs exactly one of content, source, symlink")
    owner = optional(r, value, "owner", str, where, "root")
    group = optional(r, value, "group", str, where, "root")
    for key, name in (("owner", owner), ("group", group)):
        if not ACCOUNT.match(name):
            raise r.fail(f"{where}.{key}", f"not a user or group name: {name!r}")
    template = optional(r, value, "template", bool, where, False)
    if kinds == ["symlink"]:
        return NodeFile(symlink=r.get(value, "symlink", str, where))
    if kinds == ["content"]:
        content = r.get(value, "content", str, where).encode()
    else:
        content = host_file(
            r, value["source"], f"{where}.source", optional(r, value, "outside", bool, where, False)
        )
    default = 0o755 if content.startswith(b"#!") else 0o644
    return NodeFile(content, _mode(r, value, where, default), owner, group, template=template)


def _users(r: TopologyReader, table: dict[str, Any], where: str) -> tuple[User, ...]:
    users = []
    for name, spec in optional(r, table, "users", dict, where, {}).items():
        uwhere = f"{where}.users.{name}"
        if not ACCOUNT.match(name):
            raise r.fail(uwhere, "not a user name (lower case letters, digits, _ and -)")
        if not isinstance(spec, dict):
            raise r.fail(uwhere, f"must be a table, got {spec!r}")
        unknown_fields(r, spec, USER_FIELDS, uwhere)
        uid = optional(r, spec, "uid", int, uwhere, None)
        if uid is not None and not 0 < uid < 65534:
            raise r.fail(f"{uwhere}.uid", f"must be 1-65533, got {uid}")
        users.append(
            User(
                name=name,
                uid=uid,
                groups=_names(r, spec, "groups", uwhere, ACCOUNT, "group name"),
                home=optional(r, spec, "home", str, uwhere, f"/home/{name}"),
                shell=optional(r, spec, "shell", str, uwhere, "/bin/bash"),
                password=optional(r, spec, "password", str, uwhere, None),
                system=optional(r, spec, "system", bool, uwhere, False),
                create_home=optional(r, spec, "create_home", bool, uwhere, True),
            )
        )
    return tuple(users)


def _groups(r: TopologyReader, table: dict[str, Any], where: str) -> tuple[Group, ...]:
    groups = []
    for name, spec in optional(r, table, "groups", dict, where, {}).items():
        gwhere = f"{where}.groups.{name}"
        if not ACCOUNT.match(name):
            raise r.fail(gwhere, "not a group name")
        if not isinstance(spec, dict):
            raise r.fail(gwhere, f"must be a table, got {spec!r}")
        unknown_fields(r, spec, ("gid",), gwhere)
        gid = optional(r, spec, "gid", int, gwhere, None)
        if gid is not None and not 0 < gid < 65534:
            raise r.fail(f"{gwhere}.gid", f"must be 1-65533, got {gid}")
        groups.append(Group(name, gid))
    return tuple(groups)


def _gateway(
    r: TopologyReader,
    value: Any,
    where: str,
    subnets: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise r.fail(where, f"not an IP address: {value!r}") from None
    if not any(ip in net for net in subnets):
        raise r.fail(where, f"{ip} is on none of the node's VLANs")
    return str(ip)


def _routes(
    r: TopologyReader, table: dict[str, Any], where: str, subnets: list[Any]
) -> tuple[Route, ...]:
    routes = []
    for i, spec in enumerate(optional(r, table, "routes", list, where, [])):
        rwhere = f"{where}.routes[{i}]"
        if not isinstance(spec, dict):
            raise r.fail(rwhere, f"must be a table with to and via, got {spec!r}")
        unknown_fields(r, spec, ("to", "via"), rwhere)
        to = r.get(spec, "to", str, rwhere)
        try:
            ipaddress.ip_network(to, strict=False)
        except ValueError:
            raise r.fail(f"{rwhere}.to", f"not a network: {to!r}") from None
        routes.append(
            Route(to, _gateway(r, r.get(spec, "via", str, rwhere), f"{rwhere}.via", subnets))
        )
    return tuple(routes)


def load_node_config(
    r: TopologyReader, table: dict[str, Any], where: str, addresses: list[str]
) -> NodeConfig:
    """The per-node fields of ``[nodes.NAME]`` (``where``); ``addresses`` are the node's
    CIDRs on its VLANs (routes and gateways must be on one of them)."""
    subnets = [ipaddress.ip_interface(a).network for a in addresses]
    files = {
        target: _file(r, target, value, f"{where}.files.{target}")
        for target, value in optional(r, table, "files", dict, where, {}).items()
    }
    aliases = _strings(r, table, "unit_aliases", where, UNIT, "unit name")
    for alias, unit in aliases.items():
        if not UNIT.match(unit):
            raise r.fail(f"{where}.unit_aliases.{alias}", f"not a unit name: {unit!r}")
    setup = optional(r, table, "setup", str, where, "")
    gateway = table.get("default_gateway")
    return NodeConfig(
        packages=_names(r, table, "packages", where, PACKAGE, "Debian package name"),
        files=files,
        users=_users(r, table, where),
        groups=_groups(r, table, where),
        environment=_strings(r, table, "environment", where, VARIABLE, "variable name"),
        service_environment=_strings(
            r, table, "service_environment", where, VARIABLE, "variable name"
        ),
        routes=_routes(r, table, where, subnets),
        default_gateway=(
            _gateway(r, gateway, f"{where}.default_gateway", subnets) if gateway is not None else ""
        ),
        enable_units=_names(r, table, "enable_units", where, UNIT, "unit name"),
        disable_units=_names(r, table, "disable_units", where, UNIT, "unit name"),
        mask_units=_names(r, table, "mask_units", where, UNIT, "unit name"),
        unit_aliases=aliases,
        sysctl=_strings(r, table, "sysctl", where, SYSCTL, "sysctl key"),
        setup=setup,
    )


def load_node_kind(r: TopologyReader, table: dict[str, Any], where: str) -> NodeKind:
    """The node's ``kind`` (vm, container), checked against what a container cannot have."""
    name = optional(r, table, "kind", str, where, NodeKind.VM.value)
    if name not in tuple(NodeKind):
        raise r.fail(f"{where}.kind", f"must be one of: {', '.join(NodeKind)} (got {name!r})")
    kind = NodeKind(name)
    if kind is NodeKind.CONTAINER and optional(
        r, table, "nested_virtualisation", bool, where, False
    ):
        raise r.fail(f"{where}.kind", "a container node has no kernel of its own to nest VMs in")
    return kind
