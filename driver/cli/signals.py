"""Signals and the global timeout as exceptions in the main thread, so every command's
normal cleanup path runs."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from driver.errors import GlobalTimeout, Terminated


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
def global_timeout(seconds: float) -> Iterator[None]:
    """After ``seconds``, GlobalTimeout is raised in the main thread (exit 124)."""

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise GlobalTimeout(f"global timeout of {seconds:g}s reached")

    old = signal.getsignal(signal.SIGALRM)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
