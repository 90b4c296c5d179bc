"""Host side of the backdoor shell protocol (see images/guest/backdoor.sh).

One round trip per command: send ``"<nonce> <len>\\n<source>"``, read back
``"<nonce> <status> <outlen> <errlen>\\n<stdout><stderr>"``. Data before a header with the
expected nonce is discarded, which resynchronises a client that reconnected or gave up
waiting on an earlier command.
"""

from __future__ import annotations

import os
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from driver.errors import InfraError

READY_MARKER = b"PHOTON-BACKDOOR-READY\n"
POLL_SECONDS = 0.25


@dataclass(frozen=True)
class CommandResult:
    """What a guest command produced."""

    status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.status == 0


class BackdoorClient:
    """A connection to one guest's backdoor socket (QEMU is the server)."""

    def __init__(self, path: str, alive: Callable[[], None]) -> None:
        """``alive`` raises when the guest is gone; it is called between reads."""
        self.path = path
        self._alive = alive
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._counter = 0

    def connect(self, timeout: float = 30.0) -> None:
        """Connect to the socket, waiting for QEMU to create it."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                self._alive()
                if time.monotonic() > deadline:
                    raise InfraError(f"backdoor socket {self.path} did not appear") from None
                time.sleep(0.02)
                continue
            self._sock = sock
            self._buffer = b""
            return

    def close(self) -> None:
        """Drop the connection (the guest side keeps running)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def connected(self) -> bool:
        """Whether a connection is open."""
        return self._sock is not None

    def _fill(self, deadline: float) -> None:
        if self._sock is None:
            raise InfraError(f"backdoor {self.path} is not connected")
        while True:
            self._alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("backdoor read timed out")
            ready, _, _ = select.select([self._sock], [], [], min(POLL_SECONDS, remaining))
            if ready:
                chunk = self._sock.recv(1 << 16)
                if not chunk:
                    # QEMU closes the socket as it dies; give the exit a moment to show.
                    gone = time.monotonic() + 2.0
                    while time.monotonic() < gone:
                        self._alive()
                        time.sleep(0.05)
                    raise InfraError(f"backdoor {self.path} closed by QEMU")
                self._buffer += chunk
                return

    def wait_ready(self, timeout: float) -> None:
        """Wait for the guest's readiness marker."""
        deadline = time.monotonic() + timeout
        while READY_MARKER not in self._buffer:
            self._fill(deadline)
        self._buffer = self._buffer.split(READY_MARKER, 1)[1]

    def run(self, command: str, timeout: float = 900.0) -> CommandResult:
        """Run ``command`` with bash in the guest; raises TimeoutError after ``timeout`` s."""
        if self._sock is None:
            raise InfraError(f"backdoor {self.path} is not connected")
        self._counter += 1
        nonce = f"ph{os.getpid():x}x{self._counter:x}x{os.urandom(4).hex()}".encode()
        body = command.encode()
        started = time.monotonic()
        self._sock.sendall(nonce + b" %d\n" % len(body) + body)
        deadline = started + timeout
        marker = nonce + b" "
        while True:
            at = self._buffer.find(marker)
            if at != -1 and (at == 0 or self._buffer[at - 1 : at] == b"\n"):
                newline = self._buffer.find(b"\n", at)
                if newline != -1:
                    fields = self._buffer[at + len(marker) : newline].split()
                    status, out_len, err_len = (int(f) for f in fields)
                    end = newline + 1 + out_len + err_len
                    if len(self._buffer) >= end:
                        out = self._buffer[newline + 1 : newline + 1 + out_len]
                        err = self._buffer[newline + 1 + out_len : end]
                        self._buffer = self._buffer[end:]
                        return CommandResult(
                            status,
                            out.decode(errors="replace"),
                            err.decode(errors="replace"),
                            time.monotonic() - started,
                        )
            self._fill(deadline)
