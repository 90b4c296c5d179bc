"""The ``log`` and ``debug`` globals: the run log as NixOS scripts use it (``log.info``,
``log.nested``, ``rootlog.sanitise``) and as ours do (``log("...")``)."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Iterator

from driver.log import Logger


class ScriptLog:
    """The run log for test scripts. ``log(msg)`` and ``log.info(msg)`` write a line,
    ``log.warning``/``log.error`` a coloured one, ``with log.nested(msg):`` a timed block."""

    def __init__(self, logger: Logger, serial: Callable[[bool], None] = lambda _: None) -> None:
        self._logger = logger
        self._serial = serial

    def __call__(self, message: str) -> None:
        """Write ``message`` to the run log."""
        self._logger.log(message)

    def log(self, message: str, attributes: dict[str, str] | None = None) -> None:
        """Write ``message`` (about ``attributes["machine"]`` when given)."""
        self._logger.log(message, node=(attributes or {}).get("machine"))

    def debug(self, message: str) -> None:
        """Write ``message`` to the run log, shown on the terminal only at
        ``--log-level debug`` (the files keep it)."""
        self._logger.debug(message)

    def info(self, message: str) -> None:
        """Write ``message`` to the run log."""
        self._logger.log(message)

    def warning(self, message: str) -> None:
        """Write ``message`` as a warning."""
        self._logger.warning(message)

    def error(self, message: str) -> None:
        """Write ``message`` as an error (the run goes on: it does not exit)."""
        self._logger.error(message)

    def log_test_error(self, message: str) -> None:
        """Write a test error line (the NixOS logger's name for ``error``)."""
        self._logger.error(message)

    @contextlib.contextmanager
    def nested(self, message: str, attributes: dict[str, str] | None = None) -> Iterator[None]:
        """A timed, indented block in the run log."""
        with self._logger.nested(message, node=(attributes or {}).get("machine")):
            yield

    def print_serial_logs(self, enable: bool) -> None:
        """Stream the nodes' consoles into the log (True) or stop (False)."""
        self._serial(enable)

    @staticmethod
    def sanitise(message: str) -> str:
        """``message`` without control characters (Unicode category C), as NixOS's
        logger sanitises console lines."""
        return "".join(ch for ch in message if unicodedata.category(ch)[0] != "C")


class DebugHook:
    """The ``debug`` global of a run without ``--debug-hook``: ``breakpoint()`` does
    nothing (the NixOS driver's ``DebugNop``). With ``--debug-hook`` it is a Debugger
    (driver/scriptrun/debugger.py), which stops the script there for pdb."""

    def breakpoint(self, host: str = "127.0.0.1", port: int = 4444) -> None:
        """Do nothing unless the run has ``--debug-hook``; with it, stop the script here
        and wait for ``photon-driver debug-attach`` (pdb; ``c`` goes on, ``q`` ends the
        run). ``host`` and ``port`` (NixOS's remote pdb address) are accepted and unused."""
