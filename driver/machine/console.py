"""The serial console as QEMU logs it to ``vm.log``: tailing, streaming, text waits."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from driver.log import Logger
from driver.wait import wait_until

# Console and kernel-log lines that mean a node is unwell, one list for Node.check_alive
# (why QEMU died) and the health gate (run/health.py): ours, and the patterns
# Fedora CoreOS' kola checks on the console (emergency shell, CPU warnings, I/O to an
# offline device, Go panics, core dumps, unit ordering cycles, failed generators).
KERNEL_PROBLEMS = re.compile(
    r"Kernel panic|Oops:|BUG: |general protection fault|segfault at|"
    r"Out of memory: Killed|invoked oom-killer|core dumped|"
    r"You are in emergency mode|emergency shell|WARNING: CPU: |"
    r"rejecting I/O to offline device|I/O error, dev \S+, sector|"
    r"^panic: |goroutine \d+ \[running\]|dumped core|"
    r"Found ordering cycle|ordering cycle on |"
    r"generator \S+ failed|\S+-generator failed with exit status"
)

# The health gate's marker in the kernel log (run/health.py): not copied into the run log.
HEALTH_MARKER = "photon-driver: health scan "


class ConsoleLog:
    """Reads one node's console log from the offset where the current boot began."""

    def __init__(self, path: Path, node: str, logger: Logger) -> None:
        self.path = path
        self.node = node
        self.logger = logger
        self._shown = True
        self._start = 0
        self._cursor = 0
        self._streamed = 0
        self._pending = b""
        self._drain_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        """Mark the start of a new boot (QEMU appends to the log across boots)."""
        size = self.path.stat().st_size if self.path.exists() else 0
        self._start = self._cursor = self._streamed = size

    def read(self, since: int | None = None) -> str:
        """Console text since ``since`` (default: since this boot began)."""
        offset = self._start if since is None else since
        try:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def read_lines_from(self, offset: int) -> tuple[str, int]:
        """Complete lines of this boot from byte ``offset`` on (an offset before this boot
        means from its start), and the offset after the last of them."""
        offset = max(offset, self._start)
        try:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return "", offset
        end = data.rfind(b"\n") + 1
        return data[:end].decode(errors="replace"), offset + end

    def first_problem(self) -> str:
        """``": <line>"`` for the first kernel problem (a panic, an oops) on the console of
        this boot, else ""."""
        found = [ln.strip() for ln in self.read().splitlines() if KERNEL_PROBLEMS.search(ln)]
        return f": {found[0]}" if found else ""

    def tail(self, lines: int = 20) -> str:
        """The last ``lines`` console lines of this boot."""
        return "\n".join(self.read().replace("\r", "").splitlines()[-lines:])

    def wait_for_text(
        self, regex: str, timeout: float | None, alive: Callable[[], None], poll: float = 0.1
    ) -> str:
        """Wait until ``regex`` matches console text not yet consumed; returns the match.
        ``timeout`` None waits without limit."""
        pattern = re.compile(regex, re.MULTILINE)

        def found() -> str | None:
            text = self.read(self._cursor)
            match = pattern.search(text)
            if match is None:
                return None
            self._cursor += len(text[: match.end()].encode(errors="replace"))
            return match.group(0)

        try:
            return str(wait_until(found, timeout, poll, alive))
        except TimeoutError:
            raise TimeoutError(f"console text {regex!r} did not appear within {timeout}s") from None

    def start_streaming(self) -> None:
        """Copy new console lines into the run log (per-node prefix) from a thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._stream, name=f"console-{self.node}", daemon=True
        )
        self._thread.start()

    def stop_streaming(self) -> None:
        """Stop the streaming thread (flushes what is left)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def show_in_log(self, shown: bool) -> None:
        """Copy console lines into the run log (True) or only keep them in vm.log. What the
        console said before the switch is streamed first, as the switch found it: a line
        written while hidden is never shown after the switch back."""
        with self._drain_lock:
            self._drain()
            self._shown = shown

    def _stream(self) -> None:
        while True:
            stopping = self._stop.wait(0.2)
            with self._drain_lock:
                self._drain()
            if stopping:
                return

    def _drain(self) -> None:
        """Log every whole line the console log has past what was streamed."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._streamed)
                chunk = handle.read()
        except FileNotFoundError:
            chunk = b""
        self._streamed += len(chunk)
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            if line and HEALTH_MARKER not in line:
                self.logger.node_line(self.node, line, shown=self._shown)
