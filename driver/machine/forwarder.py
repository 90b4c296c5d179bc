"""Host forwards of a container node: 127.0.0.1:HOST on the host to 127.0.0.1:GUEST in the
container's network namespace (QEMU's user-mode ``hostfwd`` does this for a VM). It runs as
a process of its own in the container's cgroup (so it ends with the container and outlives
the driver of a detached cluster):

    python3 -m driver.machine.forwarder NETNS tcp:HOST:GUEST [udp:HOST:GUEST ...]

Listening sockets are made in the host's namespace by the main thread; sockets towards the
guest are made by one thread that has entered the container's namespace (``setns`` moves
only the calling thread), and a socket stays in the namespace it was made in."""

from __future__ import annotations

import ctypes
import os
import queue
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass

CLONE_NEWNET = 0x40000000
BUFFER = 1 << 16
UDP_IDLE_SECONDS = 120.0


@dataclass(frozen=True)
class Rule:
    """One forward: protocol, host port, guest port."""

    protocol: str
    host_port: int
    guest_port: int

    @classmethod
    def parse(cls, text: str) -> Rule:
        """``tcp:HOST:GUEST`` or ``udp:HOST:GUEST``."""
        protocol, host, guest = text.split(":")
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"bad protocol in {text!r}")
        return cls(protocol, int(host), int(guest))


class GuestSockets:
    """A thread inside the container's network namespace that makes sockets there."""

    def __init__(self, netns: str) -> None:
        self._requests: queue.Queue[tuple[int, queue.Queue[socket.socket | OSError]]] = (
            queue.Queue()
        )
        ready: queue.Queue[OSError | None] = queue.Queue()
        threading.Thread(target=self._serve, args=(netns, ready), daemon=True).start()
        failure = ready.get()
        if failure is not None:
            raise failure

    def _serve(self, netns: str, ready: queue.Queue[OSError | None]) -> None:
        try:
            with open(netns) as handle:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
        except OSError as exc:
            ready.put(exc)
            return
        ready.put(None)
        while True:
            kind, answer = self._requests.get()
            try:
                answer.put(socket.socket(socket.AF_INET, kind))
            except OSError as exc:
                answer.put(exc)

    def make(self, kind: int) -> socket.socket:
        """A new socket (``SOCK_STREAM``, ``SOCK_DGRAM``) in the container's namespace."""
        answer: queue.Queue[socket.socket | OSError] = queue.Queue()
        self._requests.put((kind, answer))
        made = answer.get()
        if isinstance(made, OSError):
            raise made
        return made


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways between ``a`` and ``b`` until either side closes."""
    with a, b:
        while True:
            readable, _, _ = select.select([a, b], [], [])
            for source in readable:
                data = source.recv(BUFFER)
                if not data:
                    return
                (b if source is a else a).sendall(data)


def _tcp(rule: Rule, guest: GuestSockets, listener: socket.socket) -> None:
    while True:
        client, _ = listener.accept()
        upstream = guest.make(socket.SOCK_STREAM)
        try:
            upstream.connect(("127.0.0.1", rule.guest_port))
        except OSError:
            client.close()
            upstream.close()
            continue
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()


def _udp(rule: Rule, guest: GuestSockets, listener: socket.socket) -> None:
    peers: dict[tuple[str, int], tuple[socket.socket, float]] = {}
    while True:
        sockets = [listener, *(s for s, _ in peers.values())]
        readable, _, _ = select.select(sockets, [], [], 5.0)
        now = time.monotonic()
        for source in readable:
            if source is listener:
                data, address = listener.recvfrom(BUFFER)
                if address not in peers:
                    upstream = guest.make(socket.SOCK_DGRAM)
                    upstream.connect(("127.0.0.1", rule.guest_port))
                    peers[address] = (upstream, now)
                upstream = peers[address][0]
                peers[address] = (upstream, now)
                upstream.send(data)
            else:
                for address, (upstream, _) in list(peers.items()):
                    if upstream is source:
                        listener.sendto(upstream.recv(BUFFER), address)
                        peers[address] = (upstream, now)
        for address, (upstream, seen) in list(peers.items()):
            if now - seen > UDP_IDLE_SECONDS:
                upstream.close()
                del peers[address]


def wait_for_own_namespace(netns: str, timeout: float = 30.0) -> None:
    """Wait until ``netns`` (``/proc/PID/ns/net`` of the container's nspawn) is no longer the
    host's: the start script unshares it right after it is spawned."""
    mine = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + timeout
    while os.readlink(netns) == mine:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{netns} did not get a namespace of its own")
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    """Forward each rule until killed."""
    netns, rules = argv[0], [Rule.parse(a) for a in argv[1:]]
    listeners = []
    for rule in rules:
        kind = socket.SOCK_STREAM if rule.protocol == "tcp" else socket.SOCK_DGRAM
        listener = socket.socket(socket.AF_INET, kind)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", rule.host_port))
        if rule.protocol == "tcp":
            listener.listen(64)
        listeners.append((rule, listener))
    wait_for_own_namespace(netns)
    guest = GuestSockets(netns)
    threads = [
        threading.Thread(target=_tcp if r.protocol == "tcp" else _udp, args=(r, guest, s))
        for r, s in listeners
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
