"""Where a run writes, nobody else can have planted anything: state directories are the
user's own, private and real (no symbolic link), output directories are the user's or
at least not open to everyone, and files are opened without following a link. A planted
link or a foreign directory is refused with one line naming the path (exit 3), before
anything is written through it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

from driver.errors import InfraError

# Flags of a file the run writes itself: never through a link, never inherited.
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(InfraError):
    """A path a run would write through is a link, someone else's, or open to others."""


def _checked(path: Path, private: bool) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise UnsafePath(f"{path}: vanished while the run was making it") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path}: is a symbolic link; refusing to write through it")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafePath(f"{path}: is not a directory")
    # Root's directories are trusted for outputs (a CI workspace); state is always ours.
    if info.st_uid != os.geteuid() and (private or info.st_uid != 0):
        raise UnsafePath(f"{path}: belongs to uid {info.st_uid}, not to this user ({os.geteuid()})")
    if private and info.st_mode & 0o022:
        raise UnsafePath(
            f"{path}: is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o});"
            f" another user could have planted files there: chmod go-w {path}"
        )


def private_dir(path: Path) -> Path:
    """Make ``path`` (and its missing parents) a directory only this user can write: it
    must be a real directory (not a link), owned by this user, not writable by group or
    others. Returns ``path``; raises UnsafePath naming it otherwise."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _checked(path, private=True)
    return path


def output_dir(path: Path) -> Path:
    """Make ``path`` a directory for a run's reports: a real directory (not a link) owned
    by this user or root (its mode is the user's choice; files in it are opened without
    following links, reports are renamed into place). Returns ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    _checked(path, private=False)
    return path


def open_for_writing(path: Path, mode: str = "w", truncate: bool = True) -> IO[str]:
    """Open ``path`` for writing (text, UTF-8) without following a symbolic link there:
    a planted link is UnsafePath naming it. ``truncate`` False appends."""
    flags = WRITE_FLAGS | (os.O_TRUNC if truncate else os.O_APPEND)
    return os.fdopen(_open(path, flags), mode, encoding="utf-8")


def open_binary_for_writing(path: Path, truncate: bool = True) -> IO[bytes]:
    """As open_for_writing, for bytes."""
    flags = WRITE_FLAGS | (os.O_TRUNC if truncate else os.O_APPEND)
    return os.fdopen(_open(path, flags), "wb" if truncate else "ab")


def create_new(path: Path) -> IO[bytes]:
    """Create ``path``, which must not exist (nor be a link), for writing bytes."""
    return os.fdopen(_open(path, WRITE_FLAGS | os.O_EXCL), "wb")


def _open(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags, 0o666)
    except OSError as exc:
        if path.is_symlink():
            raise UnsafePath(f"{path}: is a symbolic link; refusing to write through it") from None
        if isinstance(exc, FileExistsError):
            raise UnsafePath(f"{path}: already exists (a planted file?); refusing") from None
        raise
