"""Real SSH to a node through its forwarded port (not the backdoor), and the driver's key."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from driver.duration import Duration, seconds
from driver.keys import client_key
from driver.machine.network import NetworkMixin


class SshMixin(NetworkMixin):
    """SSH-facing DSL methods (built on the network helpers: the forwarded port, the wait
    for sshd)."""

    def _ssh_key(self) -> Path:
        return client_key(self._port.state_dir.parent)

    def ssh_command(self, user: str = "root") -> list[str]:
        """The ssh command line that reaches this node through its forwarded SSH port."""
        port = self.host_port(22)
        key = self._ssh_key()
        options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]
        argv = ["ssh", "-p", str(port), "-i", str(key)]
        for option in options:
            argv += ["-o", option]
        return [*argv, f"{user}@127.0.0.1"]

    def wait_for_ssh(self, timeout: Duration = 120.0) -> None:
        """Wait until the node's sshd listens on port 22. The backdoor answers before
        multi-user.target, so a connection right after boot would otherwise meet QEMU's
        port forward with nothing behind it (``Connection reset by peer``)."""
        self.wait_for_open_port(22, timeout=timeout)

    def ssh(self, command: str = "", timeout: Duration = 60.0) -> str:
        """Run ``command`` on the node over real SSH (not the backdoor), once its sshd
        listens; returns stdout. ``timeout`` covers both."""
        deadline = time.monotonic() + seconds(timeout)
        self.wait_for_ssh(timeout)
        argv = self.ssh_command() + ([command] if command else [])
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=max(deadline - time.monotonic(), 1.0),
            check=False,
            env={**os.environ, "LC_ALL": "C"},
        )
        if proc.returncode != 0:
            raise self._failure(f"ssh `{command}` failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout
