"""Who uses a profile's settled snapshots: every run started from one (or saving one) holds
a shared lock on the profile's snapshot directory for its whole life (its nodes' overlays
are backed by the snapshot's disks); removing snapshots (``clean``, a save replacing older
ones) needs the lock alone, so a live run's snapshot is never pulled from under it."""

from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from driver.errors import InfraError
from driver.safe_files import open_for_writing, private_dir

LOCK = ".in-use"


def use_snapshots(root: Path, timeout: float = 30.0) -> IO[str]:
    """A shared lock on ``root`` (made if missing), waited for up to ``timeout`` s while a
    ``clean`` holds it alone; the open file is the lock (close it to release)."""
    private_dir(root)
    lock = open_for_writing(root / LOCK, truncate=False)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return lock
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock.close()
                raise InfraError(
                    f"{root}: the settled snapshots are being removed for {timeout:g}s"
                ) from None
            time.sleep(0.1)


def alone(lock: IO[str]) -> bool:
    """Whether the holder of the shared ``lock`` is the only user now; if so it holds the
    lock alone until it calls ``shared`` (or closes it)."""
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def shared(lock: IO[str]) -> None:
    """Back to sharing ``lock`` after ``alone``."""
    fcntl.flock(lock, fcntl.LOCK_SH)


@contextlib.contextmanager
def removing_snapshots(root: Path) -> Iterator[bool]:
    """For the ``with`` block: True, holding ``root``'s lock alone, when no run uses its
    snapshots (or there are none); False when one does (remove nothing then)."""
    if not root.is_dir():
        yield True
        return
    lock = open_for_writing(root / LOCK, truncate=False)
    try:
        yield alone(lock)
    finally:
        lock.close()
