"""Signals and the global timeout as exceptions in the main thread, so every command's
normal cleanup path runs; live progress (``watching``: SIGUSR1 and the progress lines)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from driver.errors import GlobalTimeout, Terminated
from driver.log import Logger
from driver.scriptrun.progress import DEFAULT_THRESHOLD, InFlightView, ProgressMonitor


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """SIGINT/SIGTERM become Terminated (then exit 130 / 143)."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"interrupted by {signal.Signals(signum).name}", signum)

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def global_timeout(seconds: float, in_flight: Callable[[], str] = lambda: "") -> Iterator[None]:
    """After ``seconds``, GlobalTimeout is raised in the main thread (exit 124); its
    message ends with ``in_flight()`` (what was running then), when that says anything."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        message = f"global timeout of {seconds:g}s reached"
        with contextlib.suppress(Exception):  # the timeout is raised whatever happens
            if details := in_flight():
                message += f"; {details}"
        raise GlobalTimeout(message)

    old = signal.getsignal(signal.SIGALRM)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def on_signal(signum: signal.Signals, action: Callable[[], None]) -> Iterator[None]:
    """While the block runs, ``signum`` calls ``action`` (which must only set flags: it
    runs in the main thread between two bytecodes). Installed only when the block runs in
    the main thread (where Python delivers signals); the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.getsignal(signum)
    signal.signal(signum, lambda number, frame: action())
    try:
        yield
    finally:
        signal.signal(signum, old)


@contextlib.contextmanager
def watching(
    logger: Logger, scripts: list[Path], threshold: float = DEFAULT_THRESHOLD
) -> Iterator[InFlightView]:
    """Live progress while the block runs (the scripts run in this thread): a line for
    each step on a node every ``threshold`` seconds it runs, every step in flight on
    SIGUSR1 (the run goes on). Yields the view the global timeout's message reads."""
    view = InFlightView(logger, scripts)
    monitor = ProgressMonitor(view, threshold)
    monitor.start()
    try:
        with on_signal(signal.SIGUSR1, monitor.request_dump):
            yield view
    finally:
        monitor.stop()
