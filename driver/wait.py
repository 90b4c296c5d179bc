"""The one host-side wait: poll a condition until it holds or a deadline passes."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float | None,
    interval: float = 0.05,
    on_poll: Callable[[], None] | None = None,
) -> T:
    """Call ``condition`` every ``interval`` s until it returns something truthy, and return
    that. ``on_poll`` runs before each try (e.g. to raise when a guest died). Raises
    TimeoutError after ``timeout`` s (None: no limit)."""
    deadline = time.monotonic() + (math.inf if timeout is None else timeout)
    while True:
        if on_poll is not None:
            on_poll()
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"not within {timeout}s")
        time.sleep(min(interval, remaining))


def give_exit_time(check_alive: Callable[[], None], grace: float = 2.0) -> None:
    """A channel to QEMU closed or refused: QEMU is usually on its way out, so call
    ``check_alive`` (which raises once it has exited) for up to ``grace`` s; returns if it
    is still running then."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: False, grace, 0.05, check_alive)
