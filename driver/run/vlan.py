"""VLan: one vde_switch per VLAN, its control socket in the run's private directory."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from driver.errors import InfraError
from driver.hosttools import own_group_dying_with_parent, require
from driver.machine import process
from driver.wait import wait_until


class VLan:
    """A virtual Ethernet segment. ``socket`` is what QEMU's ``-netdev vde`` connects to."""

    def __init__(self, number: int, socket_dir: Path) -> None:
        self.number = number
        self.socket = socket_dir / f"vlan{number}.ctl"
        self.pid_file = socket_dir / f"vlan{number}.pid"
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    def __repr__(self) -> str:
        return f"<VLan {self.number}>"

    def start(self, detached: bool = False, timeout: float = 10.0) -> None:
        """Start the switch. A fresh run's switch dies with the driver (parent-death signal
        and a stdin pipe the driver holds); a detached one runs as a daemon."""
        binary = require("vde_switch")
        argv = [binary, "--sock", str(self.socket), "--dirmode", "0700", "--mode", "0600"]
        if detached:
            argv += ["--daemon", "--pidfile", str(self.pid_file)]
            subprocess.run(argv, check=True, capture_output=True, timeout=timeout)
            try:
                text = wait_until(
                    lambda: self.pid_file.exists() and self.pid_file.read_text().strip(),
                    timeout,
                    0.01,
                )
            except TimeoutError:
                raise InfraError(f"vde_switch for VLAN {self.number} wrote no pid file") from None
            self.pid = int(text)
        else:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=own_group_dying_with_parent(signal.SIGKILL),
            )
            self.pid = self.process.pid

        def switch_alive() -> None:
            if self.pid is None or not process.pid_alive(self.pid):
                raise InfraError(f"vde_switch for VLAN {self.number} exited at start")

        try:
            wait_until((self.socket / "ctl").exists, timeout, 0.01, switch_alive)
        except TimeoutError:
            raise InfraError(
                f"vde_switch for VLAN {self.number} did not create its socket"
            ) from None

    def attach(self, pid: int) -> None:
        """Adopt a running detached switch."""
        self.pid = pid

    def stop(self) -> None:
        """Terminate the switch."""
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()
        if self.pid is not None:
            process.kill_pid(self.pid)
        if self.process is not None:
            self.process.wait()
