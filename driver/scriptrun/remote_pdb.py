"""A pdb served on a UNIX socket, and the client that attaches a terminal (or a pipe) to it.

The socket lives in the run's private directory (0700), so only its user can attach. The
debugger reads one line at a time from the attached client; when the client goes without
``continue`` or ``quit`` (its end of the pipe closed, the connection dropped), the debugger
waits for the next attach instead of taking that for a quit. Standard library only: a
``pdb.Pdb`` whose stdin and stdout are the connection."""

from __future__ import annotations

import contextlib
import os
import pdb
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, BinaryIO, cast

SOCKET_NAME = "debug.sock"
PROMPT = "(Pdb) "
# What a socket path may be (sun_path is 108 bytes with its NUL); longer ones are reached
# through the directory's /proc/self/fd entry.
MAX_SOCKET_PATH = 100


@contextlib.contextmanager
def reachable(path: Path) -> Iterator[str]:
    """A name of ``path`` that ``bind`` and ``connect`` accept: the path itself, or, when
    it is longer than the kernel allows a socket path, the same file through an open
    descriptor of its directory (``/proc/self/fd/N/NAME``)."""
    if len(os.fsencode(str(path))) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class Session:
    """The debugger's console: a listening UNIX socket at ``path`` and the connection of
    the client attached to it, as a text file for pdb (``readline``, ``write``,
    ``flush``). ``say`` reports attaches and departures (the run log)."""

    def __init__(self, path: Path, say: Callable[[str], None] = lambda _: None) -> None:
        path.unlink(missing_ok=True)  # left by an earlier stop of this run (a private dir)
        self.path = path
        self.say = say
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            with reachable(path) as name:
                self._server.bind(name)
            os.chmod(path, 0o600)
            self._server.listen(1)
        except BaseException:
            self.close()
            raise
        self._conn: socket.socket | None = None
        self._buffer = b""

    def wait_for_client(self) -> None:
        """Block until a client attaches (a signal's exception ends the wait)."""
        conn, _ = self._server.accept()
        conn.set_inheritable(False)
        self._conn, self._buffer = conn, b""
        self.say(f"debugger: a client attached to {self.path}")

    def readline(self) -> str:
        """The next line the client sends; when it has gone, wait for the next client
        (shown the prompt again) and read from it."""
        while True:
            if self._conn is None:
                self.wait_for_client()
                self.write(f"attached again: the script is still stopped\n{PROMPT}")
            end = self._buffer.find(b"\n")
            if end >= 0:
                line, self._buffer = self._buffer[: end + 1], self._buffer[end + 1 :]
                return line.decode("utf-8", errors="replace")
            chunk = self._receive()
            if chunk:
                self._buffer += chunk
                continue
            self._drop()
            self.say(
                "debugger: the client left without continue or quit; waiting for the next "
                f"attach on {self.path}"
            )

    def _receive(self) -> bytes:
        assert self._conn is not None
        try:
            return self._conn.recv(4096)
        except OSError:  # reset by the client
            return b""

    def write(self, text: str) -> int:
        """Send ``text`` to the client (dropped when none is attached)."""
        if self._conn is not None:
            try:
                self._conn.sendall(text.encode("utf-8", errors="replace"))
            except OSError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        """Nothing to flush: every write is sent at once."""

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn, self._buffer = None, b""

    def close(self) -> None:
        """Say goodbye to the client, stop listening, remove the socket file."""
        self._drop()
        with contextlib.suppress(OSError):
            self._server.close()
        self.path.unlink(missing_ok=True)


class SocketPdb(pdb.Pdb):
    """pdb on a Session. It starts at ``script``'s innermost frame (the failing line of
    the test script, not the driver's code below it), and its stack begins at the
    script's outermost frame. The script is stopped, not traced:
    ``c`` goes on, ``q`` quits (``quitting`` is then True); stepping commands say so
    instead of running the script on untraced."""

    def __init__(self, session: Session, script: str = "") -> None:
        console = cast("IO[str]", session)  # what pdb uses of a file: readline, write, flush
        super().__init__(stdin=console, stdout=console, nosigint=True, readrc=False)
        self.prompt = PROMPT
        self.script = script
        self.interruption: BaseException | None = None  # see _error_exc

    def setup(self, f: FrameType | None, tb: TracebackType | None) -> None:
        """pdb's setup, then the script's innermost frame selected."""
        super().setup(f, tb)
        mine = [i for i, (fr, _) in enumerate(self.stack) if fr.f_code.co_filename == self.script]
        if mine:  # the driver's frames around the script's are not the user's concern
            self.stack = self.stack[mine[0] :]
            self.curindex = mine[-1] - mine[0]
            self.curframe = self.stack[self.curindex][0]
            self.curframe_locals = self.curframe.f_locals

    def _error_exc(self) -> None:
        """pdb's report of an error in a command (``p``, a statement), which it then
        swallows: a signal's or the global timeout's exception (not an ``Exception``) is
        kept, and ``onecmd`` raises it after the command."""
        caught = sys.exc_info()[1]
        if caught is None:
            return
        if not isinstance(caught, Exception):
            self.interruption = caught
        self.error(traceback.format_exception_only(caught)[-1].strip())

    def onecmd(self, line: str) -> bool:
        """Run one command; an interruption pdb swallowed during it ends the stop."""
        self.interruption = None
        stop = super().onecmd(line)
        if self.interruption is not None:
            raise self.interruption
        return stop

    def _not_here(self, arg: str) -> None:
        self.message("not offered here (the script is stopped, not traced): c goes on, q quits")

    do_step = do_s = do_next = do_n = do_until = do_unt = do_return = do_r = _not_here
    do_jump = do_j = _not_here


def stop_here(
    session: Session, frame: FrameType | None, tb: TracebackType | None, script: str = ""
) -> bool:
    """Serve pdb on ``session`` at ``frame`` (a breakpoint) or at ``tb`` (a failure, post
    mortem) until the client continues (False) or quits (True)."""
    debugger = SocketPdb(session, script)
    debugger.reset()
    debugger.interaction(frame, tb)
    return bool(debugger.quitting)


def attach(path: Path, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Connect ``stdin`` and ``stdout`` to the debugger listening at ``path`` until it
    closes the connection (the script went on or quit). ``stdin`` reaching its end (a
    pipe) only closes the sending half: the debugger's answers still arrive.
    FileNotFoundError / ConnectionRefusedError when nothing listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with sock:
        with reachable(path) as name:
            sock.connect(name)
        sender = threading.Thread(target=_send, args=(sock, stdin), daemon=True)
        sender.start()
        while chunk := sock.recv(4096):
            stdout.write(chunk)
            stdout.flush()


def _send(sock: socket.socket, stdin: BinaryIO) -> None:
    """Copy ``stdin`` to ``sock`` until its end, then close the sending half."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    with contextlib.suppress(OSError):
        while chunk := (os.read(fd, 4096) if fd >= 0 else stdin.read(4096)):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
