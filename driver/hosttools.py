"""Locating host tools, with the Debian package that provides each one."""

from __future__ import annotations

import shutil

from driver.errors import ToolMissing

PACKAGES: dict[str, str] = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "vde_switch": "vde2",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "dpkg-deb": "dpkg",
    "fakeroot": "fakeroot",
    "tar": "tar",
}


def require(tool: str) -> str:
    """Return the absolute path of ``tool`` or raise ToolMissing naming its package."""
    found = shutil.which(tool)
    if found is None:
        raise ToolMissing(tool, PACKAGES.get(tool, tool))
    return found
