"""Durations as the DSL takes them: a ``datetime.timedelta`` or a number of seconds, as in
the NixOS test driver (``Duration = timedelta | int | float``). Bare numbers are not
deprecated here: seconds stay a first-class way to write a timeout."""

from __future__ import annotations

import datetime as dt

Duration = dt.timedelta | int | float


def seconds(duration: Duration) -> float:
    """``duration`` in seconds (a float); TypeError for anything that is not a duration
    (a bool included, as NixOS's ``as_timedelta`` refuses it)."""
    if isinstance(duration, dt.timedelta):
        return duration.total_seconds()
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise TypeError(
            f"expected a duration (datetime.timedelta or seconds), got {type(duration).__name__}"
        )
    return float(duration)


def optional_seconds(duration: Duration | None) -> float | None:
    """Like ``seconds``, with None (no limit) passed through."""
    return None if duration is None else seconds(duration)


def as_timedelta(duration: Duration) -> dt.timedelta:
    """``duration`` as a ``datetime.timedelta`` (NixOS's ``as_timedelta``)."""
    return dt.timedelta(seconds=seconds(duration))
