"""MAC addresses of the nodes' NICs: one scheme, used by the Debian specs, QEMU's argv and
(mirrored in nodes/node-spec.nix) the Nix specs."""

from __future__ import annotations


def vlan_mac(node_index: int, vlan: int) -> str:
    """The MAC of the ``node_index``-th node (1-based, nodes sorted by name) on ``vlan``."""
    return f"52:54:00:64:{vlan:02x}:{node_index:02x}"


def user_mac(name: str) -> str:
    """A stable MAC for the node's SLiRP (user network) NIC."""
    digest = sum(name.encode()) % 256
    return f"52:54:00:ff:{digest:02x}:{len(name) % 256:02x}"
