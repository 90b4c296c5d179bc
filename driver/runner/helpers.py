"""Script helpers that need no machine: retry, polling_condition, skip."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from driver.errors import TestFailure


class SkipSubtest(Exception):
    """Raised by ``skip(reason)``; the subtest is reported as skipped."""


def skip(reason: str) -> None:
    """Skip the current subtest with ``reason`` (JUnit ``skipped``)."""
    raise SkipSubtest(reason)


def retry(fn: Callable[[bool], bool], timeout_seconds: float = 900.0) -> None:
    """Call ``fn(last_try)`` once a second until it returns True; ``last_try`` is True on the
    final attempt so ``fn`` can print diagnostics only then. Fails after ``timeout_seconds``
    (as in the NixOS driver)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        last = time.monotonic() + 1.0 >= deadline
        if fn(last):
            return
        if last:
            raise TestFailure(f"retry: condition not met within {timeout_seconds}s")
        time.sleep(1.0)


@contextlib.contextmanager
def polling_condition(
    condition: Callable[[], bool], seconds_interval: float = 2.0, description: str = ""
) -> Iterator[None]:
    """While the block runs, check ``condition`` every ``seconds_interval`` s in the
    background; if it ever returns False (or raises), the block fails afterwards."""
    failures: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(seconds_interval):
            try:
                ok, detail = condition(), ""
            except Exception as exc:
                ok, detail = False, str(exc)
            if not ok:
                failures.append(detail or "returned False")
                return

    thread = threading.Thread(target=poll, name="polling-condition", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if failures:
        label = description or getattr(condition, "__name__", "condition")
        raise TestFailure(f"polling condition '{label}' failed: {failures[0]}")
