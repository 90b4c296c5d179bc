"""Host side of the backdoor shell protocol (see images/guest/backdoor.sh).

One round trip per command: send ``"<nonce> <len> <timeout-centiseconds>\\n<source>"``, read back
``"<nonce> <status> <timed-out>\\n"`` and then stdout and stderr as records
``"<tag><n>\\n<n bytes>"`` (tag ``o``/``e``: a piece followed by a NUL byte; ``O``/``E``: the
stream's last piece). Data before a header with the expected nonce is discarded, which
resynchronises a client that reconnected or gave up waiting on an earlier command.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from driver.errors import InfraError
from driver.wait import give_exit_time, wait_until

READY_MARKER = b"PHOTON-BACKDOOR-READY\n"
POLL_SECONDS = 0.25
# How long past a command's own deadline the host waits for the guest's answer.
REPLY_GRACE_SECONDS = 15.0
# How long an interrupted run waits for the guest to confirm a cancelled command.
CANCEL_WAIT_SECONDS = 1.0
RECORD = re.compile(rb"([oOeE])(\d+)\n")


@dataclass(frozen=True)
class CommandResult:
    """What a guest command produced: exit status and byte-exact output."""

    status: int
    stdout_bytes: bytes
    stderr_bytes: bytes
    duration: float
    timed_out: bool = False

    @functools.cached_property
    def stdout(self) -> str:
        """stdout as text (undecodable bytes become U+FFFD; ``stdout_bytes`` is exact),
        decoded once."""
        return self.stdout_bytes.decode(errors="replace")

    @functools.cached_property
    def stderr(self) -> str:
        """stderr as text (undecodable bytes become U+FFFD; ``stderr_bytes`` is exact),
        decoded once."""
        return self.stderr_bytes.decode(errors="replace")

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.status == 0


class GuestShell:
    """A connection to one guest's backdoor socket (QEMU is the server)."""

    def __init__(self, path: str, alive: Callable[[], None]) -> None:
        """``alive`` raises when the guest is gone; it is called between reads."""
        self.path = path
        self._alive = alive
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._counter = 0

    def connect(self, timeout: float = 30.0) -> None:
        """Connect to the socket, waiting up to ``timeout`` s for QEMU to create it."""

        def attempt() -> socket.socket | None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                return None
            return sock

        try:
            self._sock = wait_until(attempt, timeout, 0.02, self._alive)
        except TimeoutError:
            raise InfraError(f"backdoor socket {self.path} did not appear") from None
        self._buffer = bytearray()

    def close(self) -> None:
        """Drop the connection (the guest side keeps running)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _fill(self, deadline: float) -> None:
        """Append what the socket has next to the buffer."""
        chunk = bytearray(1 << 16)
        with memoryview(chunk) as view:
            got = self._receive(view, deadline)
        self._buffer += memoryview(chunk)[:got]

    def _receive(self, into: memoryview, deadline: float) -> int:
        """Read what the socket has next (at least one byte) into ``into``; how many."""
        if self._sock is None:
            raise InfraError(f"backdoor {self.path} is not connected")
        while True:
            self._alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("backdoor read timed out")
            ready, _, _ = select.select([self._sock], [], [], min(POLL_SECONDS, remaining))
            if ready:
                try:
                    got = self._sock.recv_into(into)
                except ConnectionResetError:  # QEMU died with our data unread
                    got = 0
                if not got:
                    # QEMU closes the socket as it dies; give the exit a moment to show.
                    give_exit_time(self._alive)
                    raise InfraError(f"backdoor {self.path} closed by QEMU")
                return got

    def _take(self, size: int, deadline: float) -> bytes:
        """The stream's next ``size`` bytes: what the buffer holds, the rest read from the
        socket straight into place (a big record is copied once, never regrown)."""
        have = min(size, len(self._buffer))
        if have == size:
            piece = bytes(self._buffer[:size])
            del self._buffer[:size]
            return piece
        payload = bytearray(size)
        payload[:have] = self._buffer
        self._buffer.clear()
        with memoryview(payload) as view:
            while have < size:
                have += self._receive(view[have:], deadline)
        return bytes(payload)

    def wait_ready(self, timeout: float) -> None:
        """Wait for the guest's readiness marker."""
        deadline = time.monotonic() + timeout
        while READY_MARKER not in self._buffer:
            self._fill(deadline)
        del self._buffer[: self._buffer.find(READY_MARKER) + len(READY_MARKER)]

    def run(self, command: str, timeout: float | None = 900.0) -> CommandResult:
        """Run ``command`` with bash in the guest. The guest kills the command's process
        group after ``timeout`` s (the result says ``timed_out``; None: no limit); raises
        TimeoutError when no answer comes ``REPLY_GRACE_SECONDS`` after that."""
        if self._sock is None:
            raise InfraError(f"backdoor {self.path} is not connected")
        self._counter += 1
        nonce = f"ph{os.getpid():x}x{self._counter:x}x{os.urandom(4).hex()}".encode()
        body = command.encode()
        # Centiseconds on the wire; None or 0 is no limit (as `timeout 0` on NixOS).
        limit = 0 if not timeout else max(1, math.ceil(timeout * 100))
        started = time.monotonic()
        try:
            self._sock.sendall(nonce + b" %d %d\n" % (len(body), limit) + body)
        except (BrokenPipeError, ConnectionResetError):
            give_exit_time(self._alive)
            raise InfraError(f"backdoor {self.path} closed by QEMU") from None
        deadline = started + (limit / 100 + REPLY_GRACE_SECONDS if limit else math.inf)
        try:
            return self._reply(nonce, started, deadline)
        except BaseException as exc:
            # Interrupted (a signal, the global timeout) or given up: the guest would go on
            # running the command, and the next one would wait behind it.
            if isinstance(exc, TimeoutError) or not isinstance(exc, Exception):
                self.cancel(nonce)
            raise

    def cancel(self, nonce: bytes, wait: float = CANCEL_WAIT_SECONDS) -> None:
        """Ask the guest to kill the command ``nonce`` (its whole process group) and read
        its answer, for at most ``wait`` s; best effort (the next command resynchronises
        on its own nonce anyway)."""
        if self._sock is None:
            return
        with contextlib.suppress(OSError, InfraError, TimeoutError, ValueError):
            self._sock.sendall(nonce + b" CANCEL\n")
            self._reply(nonce, time.monotonic(), time.monotonic() + wait)

    def _reply(self, nonce: bytes, started: float, deadline: float) -> CommandResult:
        marker = nonce + b" "
        while True:
            at = self._buffer.find(marker)
            if at != -1 and (at == 0 or self._buffer[at - 1 : at] == b"\n"):
                newline = self._buffer.find(b"\n", at)
                if newline != -1:
                    status, timed_out = (
                        int(f) for f in self._buffer[at + len(marker) : newline].split()
                    )
                    del self._buffer[: newline + 1]
                    out = self._read_stream(b"O", deadline)
                    err = self._read_stream(b"E", deadline)
                    return CommandResult(
                        status, out, err, time.monotonic() - started, bool(timed_out)
                    )
            self._fill(deadline)

    def _read_stream(self, last_tag: bytes, deadline: float) -> bytes:
        """Records up to and including the one tagged ``last_tag``, joined by NUL bytes."""
        pieces: list[bytes] = []
        while True:
            match = RECORD.match(self._buffer)
            if match is None:
                if len(self._buffer) > 32 or b"\n" in self._buffer:
                    shown = bytes(self._buffer[:40])
                    raise InfraError(f"backdoor {self.path}: bad record {shown!r}")
                self._fill(deadline)
                continue
            # The match reads its groups from the buffer, which changes below.
            tag, size = bytes(match[1]), int(match[2])
            del self._buffer[: match.end()]
            pieces.append(self._take(size, deadline))
            if tag == last_tag:
                return pieces[0] if len(pieces) == 1 else b"\0".join(pieces)
