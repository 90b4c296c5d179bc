"""The one host-side wait: poll a condition until it holds or a deadline passes."""

from __future__ import annotations

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
