"""The one atomic file writer: readers see the old file or the whole new one, never a part."""

from __future__ import annotations

import os
from pathlib import Path

from driver.safe_files import UnsafePath, create_new


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to a temporary sibling of ``path`` and rename it into place; the
    temporary file is removed if writing fails."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # O_EXCL|O_NOFOLLOW: a file or link planted at the temporary name is refused, and
        # the rename replaces a link at ``path`` instead of writing through it.
        with create_new(tmp) as handle:
            handle.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        tmp.replace(path)
    except UnsafePath:
        raise
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a failed write() names no file: name the target
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
