"""Script helpers that need no machine, with the NixOS test driver's meanings: ``retry``,
``polling_condition`` (``PollingCondition``), the matching rule of ``must_raise``, and
``skip``."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from driver.duration import Duration, optional_seconds
from driver.errors import TestFailure


class SkipSubtest(Exception):
    """Raised by ``skip(reason)``; the subtest is reported as skipped."""


def skip(reason: str) -> None:
    """Skip the current subtest with ``reason`` (JUnit ``skipped``)."""
    raise SkipSubtest(reason)


def retry(
    fn: Callable[[float | None], object],
    timeout: Duration | None = 900.0,
    *,
    timeout_seconds: Duration | None = None,
) -> None:
    """Call ``fn(remaining)`` until it returns something true, with a one-second pause
    between attempts (``time.sleep``, looked up at each call). ``remaining`` is the time
    left in seconds, or None when ``timeout`` is None (no limit). At most one attempt per
    second of ``timeout`` and none once the time is up, so a zero timeout makes no attempt
    and a patched-out sleep still ends; then RequestedAssertionFailed "action timed out".
    ``timeout_seconds`` is the older NixOS spelling of ``timeout``."""
    limit = optional_seconds(timeout_seconds if timeout_seconds is not None else timeout)
    started = time.monotonic()
    if limit is None:
        while not fn(None):
            time.sleep(1.0)
        return
    deadline = started + limit
    tries = 0
    while tries < math.ceil(limit) and (remaining := deadline - time.monotonic()) > 0:
        tries += 1
        if fn(remaining):
            return
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    elapsed = time.monotonic() - started
    raise TestFailure(
        f"action timed out after {elapsed:.2f} seconds ({tries} tries, timeout={limit:g}s)"
    )


def exception_matches(pattern: str, exc: BaseException) -> bool:
    """``must_raise``'s rule: the error's text contains ``pattern`` as a regular
    expression (``re.search``) or, when it is no valid regex, as plain text."""
    text = str(exc)
    if pattern in text:
        return True
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


class PollingConditionError(TestFailure):
    """A polling condition was false (or raised) while its block ran."""


class PollingCondition:
    """A condition that must hold while a block runs (the NixOS driver's class): it is
    checked before each machine command in the block, at most every
    ``seconds_interval`` s. ``description`` defaults to the function's docstring, then its
    name."""

    def __init__(
        self,
        condition: Callable[[], bool | None],
        seconds_interval: float = 2.0,
        description: str | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.condition = condition
        self.seconds_interval = seconds_interval
        name = str(getattr(condition, "__name__", "condition"))
        self.description: str = str(description) if description is not None else ""
        if description is None:
            self.description = condition.__doc__ or name
        self.last_called = float("-inf")
        self.entry_count = 0
        self._log = log

    @property
    def entered(self) -> bool:
        """Whether the condition is being checked right now (its own commands skip it)."""
        return self.entry_count > 0

    @property
    def overdue(self) -> bool:
        """Whether ``seconds_interval`` has passed since the last check."""
        return self.last_called + self.seconds_interval < time.monotonic()

    def status_message(self, status: bool) -> str:
        """``Polling condition succeeded|failed: DESCRIPTION``."""
        return f"Polling condition {'succeeded' if status else 'failed'}: {self.description}"

    def check(self, force: bool = False) -> bool:
        """Evaluate the condition when it is due (always with ``force``); an exception
        counts as False and None as True."""
        if (self.entered or not self.overdue) and not force:
            return True
        self.entry_count += 1
        try:
            try:
                result = self.condition()
            except Exception:
                result = False
            ok = result is None or bool(result)
            self._log(self.status_message(ok))
            return ok
        finally:
            self.entry_count -= 1
            self.last_called = time.monotonic()

    def maybe_raise(self) -> None:
        """Raise PollingConditionError if the condition is due and false."""
        if not self.check():
            raise PollingConditionError(self.status_message(False))


class Poll:
    """What ``polling_condition`` gives a script: a context manager that keeps its
    ``condition`` (a PollingCondition) active in the block, and ``wait``."""

    def __init__(self, condition: PollingCondition, active: list[PollingCondition]) -> None:
        self.condition = condition
        self._active = active

    def __enter__(self) -> None:
        self._active.append(self.condition)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.condition in self._active:
            self._active.remove(self.condition)

    def wait(self, timeout: Duration = 900.0) -> None:
        """Wait until the condition holds; RequestedAssertionFailed after ``timeout``."""
        retry(lambda _remaining: self.condition.check(force=True), timeout)


class PollingConditions:
    """The active polling conditions of one run and the ``polling_condition`` global."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.active: list[PollingCondition] = []
        self._log = log

    def check(self) -> None:
        """Check every active condition that is due (before a machine command)."""
        for condition in list(self.active):
            condition.maybe_raise()

    def polling_condition(
        self,
        fun: Callable[[], Any] | None = None,
        *,
        seconds_interval: float = 2.0,
        description: str | None = None,
    ) -> Any:
        """Decorate a function as a condition that must hold in ``with`` blocks:
        ``@polling_condition`` or ``@polling_condition(seconds_interval=5,
        description="...")``. The block fails with "Polling condition failed: ..." at the
        first machine command after the condition turned false."""

        def make(function: Callable[[], Any]) -> Poll:
            condition = PollingCondition(function, seconds_interval, description, self._log)
            return Poll(condition, self.active)

        return make if fun is None else make(fun)
