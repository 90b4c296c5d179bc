"""The node start spec: the one contract between image builders and the driver.

A JSON document per node (written by the Debian image builder, or by the flake with
``builtins.toJSON``) that says everything needed to start the node's QEMU. ``Machine``
consumes only this.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from driver.atomic import write_atomic
from driver.config import fields as typed
from driver.errors import UsageError

SPEC_VERSION = 1


class NodeKind(StrEnum):
    """What runs a node: a QEMU VM (the default) or a systemd-nspawn container."""

    VM = "vm"
    CONTAINER = "container"


@dataclass(frozen=True)
class Disk:
    """A virtio-blk disk; with ``overlay`` the base stays read-only under a qcow2 overlay.

    An empty ``base`` with ``size_mib`` is a blank per-node qcow2 of that size (the guest
    formats it)."""

    base: str
    format: str = "raw"
    overlay: bool = True
    serial: str = ""
    size_mib: int = 0


@dataclass(frozen=True)
class Share:
    """A 9p host directory exported to the guest under ``tag``."""

    tag: str
    path: str
    readonly: bool = False


@dataclass(frozen=True)
class Nic:
    """A NIC on a VDE VLAN. As on NixOS test nodes, eth0 is the user-mode NIC and the
    VLAN NICs follow in order: the first is eth1."""

    vlan: int
    mac: str
    address: str = ""


@dataclass(frozen=True)
class Forward:
    """A SLiRP host forward bound to 127.0.0.1; ``host_port`` 0 means choose a free one."""

    guest_port: int
    protocol: str = "tcp"
    host_port: int = 0
    name: str = ""


@dataclass(frozen=True)
class NodeSpec:
    """Everything needed to start one node's QEMU."""

    name: str
    kernel: str
    initrd: str
    cmdline: str
    qemu: str = "qemu-system-x86_64"
    machine: str = "pc"
    accel: str = "auto"
    cpu_tcg: str = "qemu64"
    cpu_kvm: str = "host"
    vcpus: int = 1
    memory_mib: int = 512
    disks: tuple[Disk, ...] = ()
    shares: tuple[Share, ...] = ()
    nics: tuple[Nic, ...] = ()
    forwards: tuple[Forward, ...] = ()
    extra_args: tuple[str, ...] = ()
    kind: str = NodeKind.VM.value  # a NodeKind value
    version: int = SPEC_VERSION
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise to the JSON document format."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def write(self, path: Path) -> None:
        """Write atomically to ``path``."""
        write_atomic(path, self.to_json() + "\n")


def _items(doc: dict[str, Any], key: str, cls: type, where: str) -> tuple[Any, ...]:
    raw = doc.get(key, [])
    if not isinstance(raw, list):
        raise UsageError(f"{where}: field '{key}' must be a list")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise UsageError(f"{where}: {key}[{i}] must be an object")
        try:
            out.append(cls(**item))
        except TypeError as exc:
            raise UsageError(f"{where}: {key}[{i}]: {exc}") from None
    return tuple(out)


def spec_from_dict(doc: Any, where: str) -> NodeSpec:
    """Validate a decoded JSON document; errors name ``where`` and the field."""
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: a node spec must be a JSON object")
    name = typed.field(doc, "name", str, where)
    where = f"{where} (node {name})"
    for key in ("kernel", "initrd", "cmdline"):
        typed.field(doc, key, str, where)
    for key in ("vcpus", "memory_mib"):
        if key in doc and (typed.field(doc, key, int, where) < 1):
            raise UsageError(f"{where}: field '{key}' must be positive")
    if doc.get("accel", "auto") not in ("auto", "kvm", "tcg"):
        raise UsageError(f"{where}: field 'accel' must be auto, kvm or tcg")
    if doc.get("kind", NodeKind.VM.value) not in tuple(NodeKind):
        raise UsageError(f"{where}: field 'kind' must be one of: {', '.join(NodeKind)}")
    known = set(NodeSpec.__dataclass_fields__)
    unknown = sorted(set(doc) - known)
    if unknown:
        raise UsageError(f"{where}: unknown field '{unknown[0]}'")
    forwards = _items(doc, "forwards", Forward, where)
    for fwd in forwards:
        if fwd.protocol not in ("tcp", "udp"):
            raise UsageError(f"{where}: forward protocol must be tcp or udp, got {fwd.protocol!r}")
        typed.port(fwd.guest_port, f"{where}: forward guest_port")
        typed.port(fwd.host_port, f"{where}: forward host_port", allow_zero=True)
    disks = _items(doc, "disks", Disk, where)
    for i, disk in enumerate(disks):
        if not disk.base and (disk.size_mib <= 0 or not disk.overlay):
            raise UsageError(f"{where}: disks[{i}]: a disk without 'base' needs 'size_mib' > 0")
    fields = dict(doc)
    fields.update(
        disks=disks,
        shares=_items(doc, "shares", Share, where),
        nics=_items(doc, "nics", Nic, where),
        forwards=forwards,
        extra_args=tuple(doc.get("extra_args", [])),
    )
    return NodeSpec(**fields)


def load_spec(path: Path) -> NodeSpec:
    """Read and validate a node spec file."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path}: node spec not found") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    return spec_from_dict(doc, str(path))
