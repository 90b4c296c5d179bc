"""The cluster record (``cluster.json`` in a state directory): what a detached cluster's
later runs attach to. One typed record with a format number; ``load`` reads it (a record
without a number is format 1, the layout from before the number was written), ``save``
writes it atomically. A record that is not JSON, lacks a field, or has a newer format is
refused with one line naming the file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.atomic import write_atomic
from driver.errors import UsageError

RECORD = "cluster.json"
FORMAT = 1


class UnreadableRecord(UsageError):
    """cluster.json is there but holds no record this photon-driver can read."""


class NewerFormat(ValueError):
    """A record of a format this photon-driver does not know."""


@dataclass(frozen=True)
class ForwardRecord:
    """One host forward of a node: ``127.0.0.1:host_port`` to ``guest_port``."""

    name: str
    guest_port: int
    protocol: str
    host_port: int


@dataclass
class NodeRecord:
    """One node of the cluster: its QEMU and what ``cluster status`` shows."""

    pid: int
    forwards: list[ForwardRecord]
    boot_seconds: float | None
    started_wall: float | None
    ready_wall: float | None
    accel: str
    addresses: list[str]

    @property
    def host_ports(self) -> list[int]:
        """The host port of each forward, in the spec's order."""
        return [f.host_port for f in self.forwards]


@dataclass
class ClusterRecord:
    """A detached cluster: its profile, host boot, sockets, switches and nodes."""

    profile: str
    boot_id: str
    started_at: float
    socket_dir: Path
    boot_groups: list[list[str]]
    vlans: dict[int, int]  # VLAN number -> vde_switch pid
    nodes: dict[str, NodeRecord]
    format: int = FORMAT

    def document(self) -> dict[str, Any]:
        """The record as cluster.json holds it."""
        return {
            "format": self.format,
            "profile": self.profile,
            "boot_id": self.boot_id,
            "started_at": self.started_at,
            "socket_dir": str(self.socket_dir),
            "boot_groups": self.boot_groups,
            "vlans": {str(number): pid for number, pid in self.vlans.items()},
            "nodes": {
                name: {
                    "pid": node.pid,
                    "host_ports": node.host_ports,
                    "forwards": [vars(f) for f in node.forwards],
                    "boot_seconds": node.boot_seconds,
                    "started_wall": node.started_wall,
                    "ready_wall": node.ready_wall,
                    "accel": node.accel,
                    "addresses": node.addresses,
                }
                for name, node in self.nodes.items()
            },
        }

    def save(self, state: Path) -> None:
        """Write ``state/cluster.json`` atomically."""
        write_atomic(state / RECORD, json.dumps(self.document(), indent=2) + "\n")

    @classmethod
    def parse(cls, doc: Any) -> ClusterRecord:
        """The record a cluster.json document holds (KeyError, TypeError or ValueError when
        it does not hold one)."""
        version = int(doc.get("format", 1))
        if version > FORMAT:
            raise NewerFormat(f"format {version}; this photon-driver reads up to {FORMAT}")
        return cls(
            profile=str(doc["profile"]),
            boot_id=str(doc["boot_id"]),
            started_at=float(doc["started_at"]),
            socket_dir=Path(doc["socket_dir"]),
            boot_groups=[[str(n) for n in group] for group in doc["boot_groups"]],
            vlans={int(number): int(pid) for number, pid in doc["vlans"].items()},
            nodes={str(name): _node(node) for name, node in doc["nodes"].items()},
        )

    @classmethod
    def load(cls, state: Path) -> ClusterRecord | None:
        """The record in ``state`` (None when no cluster was started there);
        UnreadableRecord (a UsageError), one line naming the file, when it cannot be read
        as one."""
        path = state / RECORD
        try:
            return cls.parse(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except NewerFormat as exc:
            raise UnreadableRecord(
                f"{path}: written by a newer photon-driver ({exc}); `cluster stop` stops what "
                "it started"
            ) from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnreadableRecord(
                f"{path}: corrupt cluster record ({type(exc).__name__}: {exc}); `cluster "
                "stop` stops what it started"
            ) from None


def _node(doc: Any) -> NodeRecord:
    def number(key: str) -> float | None:
        value = doc.get(key)
        return None if value is None else float(value)

    return NodeRecord(
        pid=int(doc["pid"]),
        forwards=[
            ForwardRecord(
                str(f["name"]), int(f["guest_port"]), str(f["protocol"]), int(f["host_port"])
            )
            for f in doc["forwards"]
        ],
        boot_seconds=number("boot_seconds"),
        started_wall=number("started_wall"),
        ready_wall=number("ready_wall"),
        accel=str(doc.get("accel", "")),
        addresses=[str(a) for a in doc["addresses"]],
    )
