"""Files between host and guest, through the backdoor (tar + base64; modes preserved)."""

from __future__ import annotations

import base64
import io
import shlex
import tarfile
from pathlib import Path, PurePosixPath

from driver.duration import Duration, seconds
from driver.machine.base import DEFAULT_TIMEOUT, ShellBase


class FilesMixin(ShellBase):
    """File-transfer DSL methods."""

    def copy_from_host(self, source: str | Path, target: str) -> None:
        """Copy a host file or directory to ``target`` in the guest (mode kept, owner root)."""
        source = Path(source)
        if not source.exists():
            raise self._failure(f"copy_from_host: {source} does not exist on the host")
        dest = PurePosixPath(target)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(source, arcname=dest.name)
        payload = base64.b64encode(buffer.getvalue()).decode()
        parent = shlex.quote(str(dest.parent))
        result = self.run(
            f"mkdir -p {parent} && base64 -d <<'PHOTON_EOF' | tar -x --no-same-owner -C {parent}\n"
            f"{payload}\nPHOTON_EOF"
        )
        if result.status != 0:
            raise self._failure(f"copy_from_host to {target} failed: {result.stderr.strip()}")

    def copy_from_vm(self, source: str, target_dir: str | Path = "") -> Path:
        """Copy a guest file or directory into ``target_dir`` (relative to the output
        directory, ``driver.out_dir``; an absolute path is used as it is), as the NixOS
        driver does; returns the host path."""
        return self.copy_from_machine(source, target_dir)

    def copy_from_machine(self, source: str, target_dir: str | Path = "") -> Path:
        """Copy a guest file or directory into the output directory (``-o``), below
        ``target_dir`` (an absolute ``target_dir`` is used as it is); returns the host
        path."""
        src = PurePosixPath(source)
        result = self.run(
            f"tar -C {shlex.quote(str(src.parent))} -cf - {shlex.quote(src.name)} | base64 -w0"
        )
        if result.status != 0 or not result.stdout:
            raise self._failure(f"copy_from_vm: cannot read {source}: {result.stderr.strip()}")
        dest_dir = self.out_dir / target_dir
        dest_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(result.stdout))) as archive:
            archive.extractall(dest_dir, filter="tar")
        return dest_dir / src.name

    def wait_for_file(self, path: str, timeout: Duration = DEFAULT_TIMEOUT) -> None:
        """Wait until ``path`` exists in the guest; fails ("action timed out") after
        ``timeout``."""
        limit = seconds(timeout)
        with self.nested(f"waiting for file {path}"):
            polled = self._guest_loop(f"test -e {shlex.quote(path)}", limit, attempt_timeout=None)
            if not polled.reached:
                raise self._timed_out(limit, f"file {path} did not appear")
