"""What a run is doing right now, as its Logger sees it: the timed blocks (``nested``) in
flight in each thread, innermost last, and each node's last console line. The live
progress lines, the SIGUSR1 dump and the global timeout's message read it
(scriptrun/progress.py).

Written only by the thread a block runs in (its own stack) and read from any thread, also
from a signal handler: no lock, only operations that are atomic under the GIL (a dict
copy, a list append or pop), so a reader never waits and never deadlocks."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(eq=False)
class Step:
    """One timed block in flight: what it says, about which node, since when (host
    monotonic seconds), in which thread, how deep."""

    message: str
    node: str | None
    thread: int
    depth: int
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        """Seconds since the block began."""
        return time.monotonic() - self.started


class Activity:
    """The blocks in flight per thread, and the last console line of each node."""

    def __init__(self) -> None:
        self._stacks: dict[int, list[Step]] = {}
        self.last_console: dict[str, str] = {}

    def begin(self, message: str, node: str | None, depth: int) -> Step:
        """Note a block that begins in this thread."""
        ident = threading.get_ident()
        step = Step(message, node, ident, depth)
        self._stacks.setdefault(ident, []).append(step)
        return step

    def end(self, step: Step) -> None:
        """Note that ``step`` (this thread's innermost block) ended."""
        stack = self._stacks.get(step.thread, [])
        if step in stack:
            stack.remove(step)
        if not stack:
            self._stacks.pop(step.thread, None)

    def note_console(self, node: str, line: str) -> None:
        """Note ``node``'s newest console line."""
        self.last_console[node] = line

    def stack(self, thread: int) -> list[Step]:
        """The blocks in flight in ``thread``, outermost first."""
        return list(self._stacks.get(thread, []))

    def innermost(self) -> list[Step]:
        """Each thread's innermost block in flight, oldest first."""
        stacks = [list(s) for s in dict(self._stacks).values()]
        return sorted((s[-1] for s in stacks if s), key=lambda step: step.started)

    def all_steps(self) -> list[Step]:
        """Every block in flight, oldest first."""
        stacks = [list(s) for s in dict(self._stacks).values()]
        return sorted((step for s in stacks for step in s), key=lambda step: step.started)
