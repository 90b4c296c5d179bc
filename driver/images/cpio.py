"""A writer for the newc cpio format the Linux kernel unpacks as an initramfs.

Written in Python so that building an initramfs needs neither root nor the cpio tool, and
so per-node identity archives (appended to the shared initramfs) are cheap to make.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory, a regular file or a symlink."""

    path: str
    mode: int
    data: bytes = b""

    @staticmethod
    def directory(path: str, perm: int = 0o755) -> Entry:
        """A directory entry."""
        return Entry(path, stat.S_IFDIR | perm)

    @staticmethod
    def file(path: str, data: bytes, perm: int = 0o644) -> Entry:
        """A regular file with ``data``."""
        return Entry(path, stat.S_IFREG | perm, data)

    @staticmethod
    def symlink(path: str, target: str) -> Entry:
        """A symbolic link pointing at ``target``."""
        return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def _pad(length: int) -> bytes:
    return b"\0" * ((4 - length % 4) % 4)


def _header(ino: int, mode: int, nlink: int, size: int, name_len: int) -> bytes:
    fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name_len, 0]
    return b"070701" + b"".join(f"{v:08x}".encode() for v in fields)


def archive(entries: list[Entry]) -> bytes:
    """Encode ``entries`` (parents before children) as one newc archive with trailer."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = entry.path.lstrip("/").encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        head = _header(ino, entry.mode, nlink, len(entry.data), len(name))
        out += head + name + _pad(len(head) + len(name))
        out += entry.data + _pad(len(entry.data))
    return bytes(out)


def parents(paths: list[str]) -> list[Entry]:
    """Directory entries for every parent folder of ``paths``, shallowest first."""
    seen: set[str] = set()
    result: list[Entry] = []
    for path in paths:
        parts = Path(path.lstrip("/")).parts[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in seen:
                seen.add(folder)
                result.append(Entry.directory(folder))
    return result
