"""The modes of files the driver makes. A run's own files (state, keys, logs, reports) are
the owner's only whatever the caller's umask (a shared CI runner, ``umask 000``); image
builds lay out a root filesystem, whose modes must be the usual ones (``umask 022``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# Group and others get nothing on what a run creates.
PRIVATE_UMASK = 0o077
# A root filesystem's usual modes: 0755 directories, 0644 files.
IMAGE_UMASK = 0o022


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """While the block runs, new files and directories are the owner's only (no group or
    other bits, whatever the umask was); the old umask comes back after."""
    current = os.umask(PRIVATE_UMASK)
    os.umask(current)
    with _umask(current | PRIVATE_UMASK):
        yield


@contextlib.contextmanager
def image_files() -> Iterator[None]:
    """While the block runs (an image build and its tools), new files get a root
    filesystem's usual modes (umask 022); the old umask comes back after."""
    with _umask(IMAGE_UMASK):
        yield
