"""SSH keys the driver and the nodes use (one leaf module: machine, run, state and images all
need them)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from driver.errors import InfraError
from driver.hosttools import require
from driver.safe_files import private_dir

# The driver's own SSH key (authorised for root on every node), under a state directory.
CLIENT_KEY = Path("ssh") / "id_ed25519"
CLIENT_KEY_COMMENT = "photon-driver"


def client_key(state: Path) -> Path:
    """Where the driver's SSH private key of the state directory ``state`` is."""
    return state / CLIENT_KEY


def ssh_keypair(path: Path, comment: str) -> tuple[bytes, bytes]:
    """An ed25519 keypair at ``path`` (created once); returns (private, public). It is
    made under a temporary name and renamed into place (the public half first), so a key
    cut short by a full disk or a signal is never found by a later run; ssh-keygen's own
    failure is an InfraError naming the path."""
    public = path.with_suffix(".pub")
    if not (path.exists() and public.exists()):
        private_dir(path.parent)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        for stale in (temporary, Path(f"{temporary}.pub")):
            stale.unlink(missing_ok=True)
        proc = subprocess.run(
            [
                require("ssh-keygen"),
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                comment,
                "-f",
                str(temporary),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            for partial in (temporary, Path(f"{temporary}.pub")):
                partial.unlink(missing_ok=True)
            reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
            raise InfraError(f"{path}: ssh-keygen could not write the key: {reason}")
        os.replace(f"{temporary}.pub", public)
        os.replace(temporary, path)
    return path.read_bytes(), public.read_bytes()


def authorize_client_key(state: Path) -> str:
    """The guest command that authorises the driver's SSH key of ``state`` for root
    (once: a key already listed is not added again)."""
    _, public = ssh_keypair(client_key(state), CLIENT_KEY_COMMENT)
    key = shlex.quote(public.decode().strip())
    return (
        "f=/root/.ssh/authorized_keys; install -d -m 700 /root/.ssh; "
        f"grep -qxF {key} $f 2>/dev/null || echo {key} >> $f; chmod 600 $f"
    )
