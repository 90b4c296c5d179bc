"""Per-node identity delivered at boot: a small cpio appended to the shared initramfs.

The initramfs copies ``/photon/root`` over the root disk before ``switch_root``, so one base
image serves every node: hostname, /etc/hosts, networkd addresses, SSH host key and
authorised key, enabled units and service configuration files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from driver.atomic import write_atomic
from driver.images import cpio

PREFIX = "photon/root"
REMOVALS = "photon/remove"
PRIVATE_DIRS = {"root", "root/.ssh"}


@dataclass(frozen=True)
class NodeIdentity:
    """Everything that makes one node different from the others."""

    hostname: str
    addresses: dict[str, tuple[str, ...]] = field(default_factory=dict)  # MAC -> CIDRs
    user_mac: str = ""
    hosts: tuple[tuple[str, str], ...] = ()  # (IP, names) lines of /etc/hosts
    enable_units: tuple[str, ...] = ()
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # path -> (data, mode)
    ssh_host_key: tuple[bytes, bytes] | None = None  # (private, public)
    authorized_keys: str = ""
    routes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # MAC -> (to, via)
    symlinks: dict[str, str] = field(default_factory=dict)  # path -> target
    removals: tuple[str, ...] = ()  # glob patterns of image paths the initramfs removes


def network_files(identity: NodeIdentity) -> dict[str, tuple[bytes, int]]:
    """systemd-networkd units: static addresses on VLAN NICs, DHCP on the SLiRP NIC."""
    files: dict[str, tuple[bytes, int]] = {}
    for index, (mac, cidrs) in enumerate(sorted(identity.addresses.items())):
        text = (
            f"[Match]\nMACAddress={mac}\n\n[Network]\n"
            + "".join(f"Address={cidr}\n" for cidr in cidrs)
            # An IPv6 link-local address, as a NixOS test node's VLAN NICs have
            # (babeld, neighbour discovery and fe80:: pings need one).
            + "LinkLocalAddressing=ipv6\n"
            + "".join(
                f"\n[Route]\nGateway={via}\n" + (f"Destination={to}\n" if to else "")
                for to, via in identity.routes.get(mac, ())
            )
        )
        files[f"etc/systemd/network/10-photon-vlan{index}.network"] = (text.encode(), 0o644)
    if identity.user_mac:
        text = (
            f"[Match]\nMACAddress={identity.user_mac}\n\n[Network]\nDHCP=ipv4\n"
            "LinkLocalAddressing=no\nIPv6AcceptRA=no\n\n[DHCPv4]\nUseDNS=no\nUseRoutes=no\n"
        )
        files["etc/systemd/network/20-photon-user.network"] = (text.encode(), 0o644)
    return files


def identity_files(identity: NodeIdentity) -> dict[str, tuple[bytes, int]]:
    """Every file the node gets, by path relative to the root."""
    hosts = "127.0.0.1 localhost\n" + "".join(f"{ip} {names}\n" for ip, names in identity.hosts)
    files = {
        "etc/hostname": (f"{identity.hostname}\n".encode(), 0o644),
        "etc/hosts": (hosts.encode(), 0o644),
        **network_files(identity),
    }
    if identity.ssh_host_key is not None:
        private, public = identity.ssh_host_key
        files["etc/ssh/ssh_host_ed25519_key"] = (private, 0o600)
        files["etc/ssh/ssh_host_ed25519_key.pub"] = (public, 0o644)
    if identity.authorized_keys:
        files["root/.ssh/authorized_keys"] = (identity.authorized_keys.encode(), 0o600)
    files.update(identity.files)
    return files


def identity_links(identity: NodeIdentity, files: dict[str, tuple[bytes, int]]) -> dict[str, str]:
    """Every symlink the node gets (enabled units' wants links, the configuration's own),
    by path relative to the root -> target."""
    links = {
        f"etc/systemd/system/multi-user.target.wants/{unit}": (
            f"/etc/systemd/system/{unit}"
            if f"etc/systemd/system/{unit}" in files
            else f"/lib/systemd/system/{unit}"
        )
        for unit in identity.enable_units
    }
    links.update(identity.symlinks)
    return links


def identity_archive(identity: NodeIdentity) -> bytes:
    """The cpio that the initramfs lays over the root disk."""
    files = identity_files(identity)
    links = identity_links(identity, files)
    paths = [f"{PREFIX}/{p}" for p in [*files, *links]]
    entries = []
    for entry in cpio.parents(paths):
        rel = entry.path.removeprefix(PREFIX + "/")
        entries.append(cpio.Entry.directory(entry.path, 0o700 if rel in PRIVATE_DIRS else 0o755))
    entries += [cpio.Entry.file(f"{PREFIX}/{p}", d, m) for p, (d, m) in sorted(files.items())]
    entries += [cpio.Entry.symlink(f"{PREFIX}/{p}", t) for p, t in sorted(links.items())]
    if identity.removals:
        # The initramfs removes these (globs) from the image before laying the files over.
        text = "".join(f"{p}\n" for p in identity.removals).encode()
        entries.append(cpio.Entry.file(REMOVALS, text, 0o644))
    return cpio.archive(entries)


def write_node_initrd(base_initrd: Path, identity: NodeIdentity, dest: Path) -> None:
    """The shared initramfs with the node's identity archive appended (the kernel unpacks
    concatenated cpio archives in order)."""
    write_atomic(dest, base_initrd.read_bytes() + identity_archive(identity))
