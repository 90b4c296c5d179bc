"""Kernel helpers: the uncompressed vmlinux from a bzImage, module dependency order."""

from __future__ import annotations

import lzma
from pathlib import Path

from driver.errors import InfraError

XZ_MAGIC = b"\xfd7zXZ\x00"

# What the initramfs loads to reach the root disk, the backdoor port and the VLANs.
INITRAMFS_MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_console",
    "virtio_net",
    "virtio-rng",
    "crc32c_generic",
    "ext4",
)


def extract_vmlinux(bzimage: Path, dest: Path) -> None:
    """Write the uncompressed ELF kernel inside ``bzimage`` (booted via its PVH entry)."""
    data = bzimage.read_bytes()
    start = data.find(XZ_MAGIC)
    while start != -1:
        try:
            elf = lzma.LZMADecompressor().decompress(data[start:])
        except lzma.LZMAError:
            start = data.find(XZ_MAGIC, start + 1)
            continue
        if elf.startswith(b"\x7fELF"):
            dest.write_bytes(elf)
            return
        start = data.find(XZ_MAGIC, start + 1)
    raise InfraError(f"{bzimage}: no xz-compressed ELF kernel found inside")


def _modinfo_depends(ko: Path) -> list[str]:
    data = ko.read_bytes()
    at = data.find(b"\0depends=")
    if at == -1:
        return []
    end = data.index(b"\0", at + 1)
    value = data[at + len(b"\0depends=") : end].decode()
    return [d for d in value.split(",") if d]


def module_index(modules_dir: Path) -> dict[str, Path]:
    """Map module names (with - and _ folded to _) to their .ko files."""
    return {ko.stem.replace("-", "_"): ko for ko in modules_dir.rglob("*.ko")}


def load_order(modules_dir: Path, wanted: tuple[str, ...] = INITRAMFS_MODULES) -> list[Path]:
    """The .ko files for ``wanted`` and their dependencies, dependencies first.

    Modules built into the kernel have no .ko and are skipped."""
    index = module_index(modules_dir)
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        key = name.replace("-", "_")
        if key in seen or key not in index:
            return
        seen.add(key)
        for dep in _modinfo_depends(index[key]):
            visit(dep)
        order.append(index[key])

    for name in wanted:
        visit(name)
    return order
