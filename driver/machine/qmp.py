"""The QEMU monitor over QMP (qemu.qmp's synchronous client), connected on first use.

Each client runs on an event loop of its own: qemu.qmp's synchronous shim takes the
constructing thread's loop, so clients made in one thread would share it, and two nodes'
monitors used from two threads at once (a parallel ``loadvm``) would collide."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from qemu.qmp import ExecuteError, QMPError
from qemu.qmp.legacy import QEMUMonitorProtocol

from driver.errors import InfraError
from driver.wait import give_exit_time, wait_until


def _client_on(loop: asyncio.AbstractEventLoop, path: Path) -> Any:
    """A synchronous client bound to ``loop`` (the shim binds the current thread's loop,
    so ``loop`` is made current for the construction and the previous one put back)."""
    policy = asyncio.get_event_loop_policy()
    previous: asyncio.AbstractEventLoop | None = None
    with contextlib.suppress(RuntimeError):  # a worker thread has no loop of its own
        previous = policy.get_event_loop()
    policy.set_event_loop(loop)
    try:
        return QEMUMonitorProtocol(str(path))
    finally:
        policy.set_event_loop(previous)


class QmpClient:
    """A connection to one QEMU's QMP socket (QEMU is the server)."""

    def __init__(self, path: Path, check_alive: Callable[[], None]) -> None:
        self.path = path
        self._check_alive = check_alive
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.RLock()

    def _connected(self) -> Any:
        if self._client is None:
            try:
                wait_until(self.path.exists, 10.0, 0.02, self._check_alive)
            except TimeoutError:
                raise InfraError(f"{self.path}: QMP socket did not appear") from None
            loop = asyncio.new_event_loop()
            client = _client_on(loop, self.path)
            try:
                client.connect()
            except (QMPError, OSError) as exc:
                loop.close()
                self._raise_dead_or(exc)
            except BaseException:
                loop.close()
                raise
            self._client, self._loop = client, loop
        return self._client

    def _raise_dead_or(self, exc: BaseException, grace: float = 2.0) -> NoReturn:
        """A refused or dropped connection: QEMU is usually on its way out (it rejected a
        saved state, or was told to quit), so give it ``grace`` s to exit and let
        ``check_alive`` raise MachineDied; else an InfraError naming the socket."""
        give_exit_time(self._check_alive, grace)
        raise InfraError(f"{self.path}: QMP connection failed: {exc}") from None

    def command(self, qmp_command: str, /, **arguments: object) -> object:
        """Run a QMP command; returns its ``return`` value (raises on a QMP error)."""
        with self._lock:
            client = self._connected()
            try:
                return client.cmd(qmp_command, **arguments)
            except ExecuteError:
                raise
            except (QMPError, OSError, EOFError) as exc:  # the connection itself broke
                self.close()
                self._raise_dead_or(exc)

    def next_event(self, wait: float) -> dict[str, Any] | None:
        """The next QMP event, waiting up to ``wait`` s; None if none came."""
        with self._lock:
            event = self._connected().pull_event(wait=wait)
        return None if event is None else dict(event)

    def close(self) -> None:
        """Drop the connection (QEMU keeps running)."""
        with self._lock:
            if self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.close()
                self._client = None
            if self._loop is not None:
                self._loop.close()
                self._loop = None
