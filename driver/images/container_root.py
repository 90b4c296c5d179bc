"""A container node's identity as a directory tree: what the initramfs lays over a VM's root
disk (identity.py), written once per node for systemd-nspawn, where it is the upper lower
layer of the node's overlay over the read-only image (machine/container.py). A container
has no virtio port: its backdoor shell is socket-activated on the socket directory the host
binds in (photon-backdoor.socket), and the VM's port-waiting unit is masked."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from driver.images.identity import PRIVATE_DIRS, NodeIdentity, identity_files, identity_links

# Where the host's socket directory is bound in a container (photon-backdoor.socket).
HOST_SOCKET_DIR = "/run/photon-host"
CONTAINER_LINKS = {
    # The VM's backdoor waits for a virtio port a container never has.
    "etc/systemd/system/photon-backdoor.service": "/dev/null",
    "etc/systemd/system/sockets.target.wants/photon-backdoor.socket": (
        "/etc/systemd/system/photon-backdoor.socket"
    ),
}
REMOVALS_FILE = "removals"  # beside the tree: glob patterns the container start removes


def write_container_identity(identity: NodeIdentity, dest: Path) -> None:
    """Write the node's identity tree to ``dest/root`` (replacing an older one) and its
    removals to ``dest/removals``."""
    root = dest / "root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    root.chmod(0o755)
    files = identity_files(identity)
    links = {**identity_links(identity, files), **CONTAINER_LINKS}
    for rel, (data, mode) in files.items():
        _make_parents(root, rel)
        path = root / rel
        path.write_bytes(data)
        path.chmod(mode)
    for rel, target in links.items():
        _make_parents(root, rel)
        os.symlink(target, root / rel)
    (dest / REMOVALS_FILE).write_text("".join(f"{p}\n" for p in identity.removals))


def _make_parents(root: Path, rel: str) -> None:
    parts = Path(rel).parts[:-1]
    for depth in range(1, len(parts) + 1):
        sub = "/".join(parts[:depth])
        directory = root / sub
        if not directory.is_dir():
            directory.mkdir()
            directory.chmod(0o700 if sub in PRIVATE_DIRS else 0o755)
