"""Terminal log with nested timed blocks and per-node colour prefixes.

One ``Logger`` per driver run (no global state). Output goes to a stream (stderr by default);
everything logged is also kept per subtest so JUnit reports can carry captured output: each
line goes to the capture of the thread (strictly, the context) that logged it, so subtests
run at once in threads each keep their own lines.
``NO_COLOR`` (any value) turns colours off, as does a stream that is not a terminal.
``level`` (``--log-level``) is the least a line needs to reach the terminal; the event log
and the captured output keep every line whatever it is.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

from colorama import Fore, Style

from driver.activity import Activity
from driver.errors import HOST_RESOURCE_ERRNOS, HostCallFailed
from driver.events import EventKind, EventLog

NODE_COLOURS = (Fore.CYAN, Fore.MAGENTA, Fore.YELLOW, Fore.BLUE, Fore.GREEN, Fore.LIGHTRED_EX)


class LogLevel(enum.IntEnum):
    """How much of the log the terminal shows (``--log-level``); files keep everything."""

    DEBUG = 10  # also the lines a script hid (serial_stdout_off) and commands' stderr
    INFO = 20
    WARNING = 30
    ERROR = 40


def use_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colours only on a terminal and only without NO_COLOR."""
    if "NO_COLOR" in environ:
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Logger:
    """Thread-safe run log; ``nested`` opens a timed block."""

    def __init__(self, stream: TextIO | None = None, colour: bool | None = None) -> None:
        self._stream = stream  # None: whatever sys.stderr is when a line is written (the
        # REPL's patched stderr prints console lines above its prompt)
        self.colour = use_colour(self.stream, os.environ) if colour is None else colour
        self._lock = threading.Lock()
        self._local = threading.local()  # per-thread nesting: parallel boots stay readable
        # The innermost capture of each context (a thread, or a driver worker thread
        # running in a copy of its caller's context: parallel.on_each); a thread with none
        # (a console streamer, a thread the script started) adds to the main thread's.
        self._capture: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
            f"photon-capture-{id(self)}", default=None
        )
        self._main_capture: list[str] | None = None
        self._node_colour: dict[str, str] = {}
        # Where structured events go as well (events.recording adds the run's file).
        self.event_logs: list[EventLog] = []
        # The least a line needs to reach the terminal (captures and events keep all).
        self.level = LogLevel.INFO
        self.activity = Activity()  # the blocks in flight, each node's last console line

    @property
    def stream(self) -> TextIO:
        """Where log lines go."""
        return self._stream if self._stream is not None else sys.stderr

    @stream.setter
    def stream(self, stream: TextIO | None) -> None:
        self._stream = stream

    @property
    def _depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    @_depth.setter
    def _depth(self, value: int) -> None:
        self._local.depth = value

    def _paint(self, text: str, colour: str) -> str:
        return f"{colour}{text}{Style.RESET_ALL}" if self.colour else text

    def _emit(
        self, line: str, plain: str, level: LogLevel = LogLevel.INFO, captured: bool = True
    ) -> None:
        with self._lock:
            # A log line that cannot be written (a closed or broken stream) is dropped:
            # logging never takes its caller (a console streamer thread, say) down.
            if level >= self.level:
                with contextlib.suppress(OSError, ValueError):
                    self.stream.write(line + "\n")
                    self.stream.flush()
            lines = self._capture.get()
            lines = self._main_capture if lines is None else lines
            if captured and lines is not None:
                lines.append(plain)

    def event(self, kind: EventKind, **fields: Any) -> None:
        """Record a structured event (events.py) in the run's event log, if one is open."""
        for log in self.event_logs:
            log.write(kind, **fields)

    @staticmethod
    def _about(message: str, node: str | None) -> str:
        return f"{node}: {message}" if node else message

    def debug(self, message: str, node: str | None = None) -> None:
        """Log a line shown on the terminal only at ``--log-level debug``."""
        text = "  " * self._depth + self._about(message, node)
        self.event(EventKind.DEBUG, node=node, text=message, depth=self._depth)
        self._emit(self._paint(text, Style.DIM), text, LogLevel.DEBUG)

    def log(self, message: str, node: str | None = None, level: LogLevel = LogLevel.INFO) -> None:
        """Log a line at this thread's nesting depth, about ``node`` when given; shown on
        the terminal when ``level`` is at least the logger's."""
        text = "  " * self._depth + self._about(message, node)
        self.event(EventKind.LOG, node=node, text=message, depth=self._depth)
        self._emit(text, text, level)

    def warning(self, message: str, node: str | None = None) -> None:
        """Log a warning in yellow."""
        text = "  " * self._depth + "warning: " + self._about(message, node)
        self.event(EventKind.WARNING, node=node, text=message, depth=self._depth)
        self._emit(self._paint(text, Fore.YELLOW), text, LogLevel.WARNING)

    def error(self, message: str) -> None:
        """Log an error in red. Never exits the process."""
        text = "  " * self._depth + "error: " + message
        self.event(EventKind.ERROR, text=message, depth=self._depth)
        self._emit(self._paint(text, Fore.RED + Style.BRIGHT), text, LogLevel.ERROR)

    def node_line(self, node: str, line: str, source: str = "console", shown: bool = True) -> None:
        """Log one line of ``node`` (its ``console``, or a command's ``stderr``) with its
        colour prefix; with ``shown`` False it goes only to the event log (and to the
        terminal at ``--log-level debug``)."""
        self.event(EventKind(source), node=node, text=line)
        if source == "console":
            self.activity.note_console(node, line)
        if not shown and self.level > LogLevel.DEBUG:
            return
        colour = self._node_colour.setdefault(
            node, NODE_COLOURS[len(self._node_colour) % len(NODE_COLOURS)]
        )
        plain = f"{node} # {line}"
        level = LogLevel.INFO if shown else LogLevel.DEBUG
        self._emit(self._paint(f"{node} #", colour) + f" {line}", plain, level, captured=shown)

    @contextlib.contextmanager
    def nested(self, message: str, node: str | None = None) -> Iterator[None]:
        """A timed block: logs ``message`` (about ``node`` when given), indents what this
        thread logs inside, then the duration (also in the ``end`` event). Each thread
        nests on its own; ``activity`` knows the block while it runs (live progress)."""
        self.event(EventKind.BEGIN, node=node, text=message, depth=self._depth)
        step = self.activity.begin(message, node, self._depth)
        what, message = message, self._about(message, node)
        self._emit(
            self._paint("  " * self._depth + message, Style.BRIGHT), "  " * self._depth + message
        )
        start = time.monotonic()
        self._depth += 1
        try:
            yield
        except OSError as exc:
            # The innermost block names what was being done when a host resource failed.
            if isinstance(exc, HostCallFailed) or exc.errno not in HOST_RESOURCE_ERRNOS:
                raise
            raise HostCallFailed(message, exc) from exc
        finally:
            self._depth -= 1
            self.activity.end(step)
            took = time.monotonic() - start
            self.event(
                EventKind.END, node=node, text=what, depth=self._depth, duration=round(took, 4)
            )
            text = "  " * self._depth + f"({took:.2f} seconds)"
            self._emit(self._paint(text, Style.DIM), text)

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect every line this thread logs inside the block (for JUnit system-out),
        with the lines of driver worker threads it starts (``parallel.on_each``); on the
        main thread, also the lines of threads that capture nothing themselves (console
        streamers, threads a script started). At the end the lines are added to the
        enclosing capture of this thread too."""
        previous = self._capture.get()
        lines: list[str] = []
        token = self._capture.set(lines)
        main = threading.current_thread() is threading.main_thread()
        if main:
            with self._lock:
                self._main_capture = lines
        try:
            yield lines
        finally:
            self._capture.reset(token)
            with self._lock:
                if main:
                    self._main_capture = previous
                if previous is not None:
                    previous.extend(lines)
