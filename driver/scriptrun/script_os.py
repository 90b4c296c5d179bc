"""The ``os`` a test script sees: Python's own ``os`` module, except that ``os._exit(N)``
ends the script the way ``sys.exit(N)`` does. A script runs inside the driver's process,
so the real ``os._exit`` would end the driver with it: no cleanup (QEMU, the VDE switches
and the socket directory left behind), no JUnit report. Here it raises ``ScriptOsExit``
(a SystemExit), and the run exits N after cleaning up, with a JUnit ``main`` case saying
so, as for ``sys.exit(N)``.

The script's ``os`` global and its ``import os`` / ``from os import _exit`` /
``__import__("os")`` get this module; ``sys.modules`` is untouched, so other code in the
process (the driver's, a real NixOS driver's, other threads') keeps the real ``os``.

Not covered (the process still ends at once): ``posix._exit``, ``os`` reached another way
(``importlib.import_module``, ``sys.modules["os"]``, a helper module the script imports),
``os.abort()`` and signals the script sends to its own process. Unlike the real call, the
exception unwinds the script: its ``finally`` blocks run, and an ``except SystemExit`` or
``except BaseException`` of its own can catch it (``must_raise`` never does). Called from a
thread the script started, it ends that thread only."""

from __future__ import annotations

import os
import types
from typing import Any, NoReturn

from driver.errors import ScriptOsExit


class ScriptOs(types.ModuleType):
    """A stand-in for the ``os`` module: every attribute is the real module's but
    ``_exit``. One per script run (an attribute a script sets stays on its own copy)."""

    def __init__(self) -> None:
        super().__init__("os", os.__doc__)

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(os)) | set(vars(self)))

    @staticmethod
    def _exit(status: int) -> NoReturn:
        """End the script with exit status ``status``, as ``sys.exit(status)`` does (the
        driver cleans up, then exits ``status``)."""
        if not isinstance(status, int):
            raise TypeError(f"os._exit: status must be an integer, not {type(status).__name__}")
        raise ScriptOsExit(status)


def is_os(name: str, fromlist: object, level: int) -> bool:
    """Whether ``__import__(name, fromlist=fromlist, level=level)`` returns the ``os``
    module itself: ``import os``, ``from os import X``, ``import os.path`` (which binds
    ``os``), but not ``from os.path import X``."""
    return level == 0 and (name == "os" or (name.startswith("os.") and not fromlist))
