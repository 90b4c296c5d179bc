"""The host side of the backdoor protocol (machine/shell.py) against a scripted guest on a
unix socket: replies in many records and big ones come back byte-exact, garbage before the
reply's header is skipped. Pure logic: no QEMU."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from driver.machine.shell import READY_MARKER, GuestShell


def serve(path: Path, reply: bytes, seen: list[bytes]) -> threading.Thread:
    """A one-command guest: the readiness marker, then ``reply`` once the command (its
    header and body) has come; ``{nonce}`` in the reply is the command's nonce."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def guest() -> None:
        conn, _ = server.accept()
        conn.sendall(READY_MARKER)
        data = b""
        while b"\n" not in data:
            data += conn.recv(4096)
        header, _, body = data.partition(b"\n")
        nonce, length, _ = header.split()
        while len(body) < int(length):
            body += conn.recv(4096)
        seen.append(body)
        conn.sendall(reply.replace(b"{nonce}", nonce))
        conn.recv(1)  # until the host closes
        conn.close()
        server.close()

    thread = threading.Thread(target=guest, daemon=True)
    thread.start()
    return thread


def record(tag: bytes, data: bytes) -> bytes:
    return tag + str(len(data)).encode() + b"\n" + data


def test_a_reply_in_pieces_and_a_big_record_come_back_exact(tmp_path: Path) -> None:
    big = bytes(range(256)) * (40 * 1024)  # 10 MiB, every byte value
    reply = (
        b"stale output\n{nonce}x 0 0\n"  # not a header: the nonce must start a line
        + b"{nonce} 3 0\n"
        + record(b"o", b"first")
        + record(b"O", big)
        + record(b"e", b"warn\xff")
        + record(b"E", b"")
    )
    seen: list[bytes] = []
    guest = serve(tmp_path / "sock", reply, seen)
    shell = GuestShell(str(tmp_path / "sock"), lambda: None)
    shell.connect(timeout=5.0)
    shell.wait_ready(timeout=5.0)
    result = shell.run("printf hello", timeout=30.0)
    shell.close()
    guest.join(5.0)
    assert seen == [b"printf hello"]
    assert result.status == 3 and not result.timed_out
    assert result.stdout_bytes == b"first\0" + big
    assert result.stderr_bytes == b"warn\xff\0"
    assert result.stderr == "warn\ufffd\0"
    assert result.stdout is result.stdout  # decoded once
