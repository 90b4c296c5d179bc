"""The manifest of a settled snapshot (``manifest.json`` in its directory): its key, when
and how fast it was made, and each node's saved files. One typed record with a format
number; ``parse`` reads a document (KeyError, TypeError or ValueError when it is not one),
``document`` gives the JSON layout back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver.atomic import write_atomic

FORMAT = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SavedFile:
    """A file of the snapshot (relative to its directory) and its size when saved."""

    file: str
    bytes: int

    @classmethod
    def parse(cls, doc: Any) -> SavedFile:
        """The file a manifest entry names."""
        return cls(str(doc["file"]), int(doc["bytes"]))


@dataclass(frozen=True)
class SavedNode:
    """One node's saved state: its RAM and device state (a QEMU migration stream), its
    disks in spec order (None: a disk QEMU opens directly, not saved), and the host time
    it was paused at (None: not recorded)."""

    state: SavedFile
    disks: list[SavedFile | None]
    frozen_at: float | None

    @property
    def bytes(self) -> int:
        """Bytes of its files."""
        return self.state.bytes + sum(d.bytes for d in self.disks if d is not None)


@dataclass(frozen=True)
class SettledManifest:
    """What a settled snapshot holds."""

    key: str
    created: float  # host time.time() it was saved at
    cold_ready_seconds: float
    save_seconds: float
    nodes: dict[str, SavedNode]
    format: int = FORMAT

    def files(self) -> list[SavedFile]:
        """Every file the manifest lists."""
        return [
            f for node in self.nodes.values() for f in (node.state, *node.disks) if f is not None
        ]

    def document(self) -> dict[str, Any]:
        """The manifest as manifest.json holds it."""
        return {
            "format": self.format,
            "key": self.key,
            "created": self.created,
            "cold_ready_seconds": self.cold_ready_seconds,
            "save_seconds": self.save_seconds,
            "nodes": {
                name: {
                    "state": vars(node.state),
                    "disks": [None if d is None else vars(d) for d in node.disks],
                    "frozen_at": node.frozen_at,
                }
                for name, node in self.nodes.items()
            },
        }

    def save(self, directory: Path) -> None:
        """Write ``directory/manifest.json`` atomically."""
        write_atomic(directory / MANIFEST, json.dumps(self.document(), indent=2) + "\n")

    @classmethod
    def parse(cls, doc: Any) -> SettledManifest:
        """The manifest a document holds (its format is the caller's to judge)."""
        return cls(
            key=str(doc["key"]),
            created=float(doc["created"]),
            cold_ready_seconds=float(doc["cold_ready_seconds"]),
            save_seconds=float(doc["save_seconds"]),
            nodes={str(name): _node(node) for name, node in doc["nodes"].items()},
            format=int(doc.get("format", 0)),
        )

    @classmethod
    def load(cls, directory: Path) -> SettledManifest:
        """The manifest in ``directory`` (OSError, KeyError, TypeError or ValueError when
        there is none or it is not one)."""
        return cls.parse(json.loads((directory / MANIFEST).read_text()))


def _node(doc: Any) -> SavedNode:
    frozen = doc.get("frozen_at")
    return SavedNode(
        state=SavedFile.parse(doc["state"]),
        disks=[None if d is None else SavedFile.parse(d) for d in doc["disks"]],
        frozen_at=float(frozen) if isinstance(frozen, int | float) else None,
    )
