"""``from test_driver.machine import retry`` in a script: the NixOS driver's module paths,
served to test scripts only. Nothing is put in ``sys.modules`` and no package called
``test_driver`` is installed, so a real NixOS driver in the same environment is untouched;
the script's own ``__import__`` answers for ``test_driver.*`` (and for ``os``, with the
script's ``os``: script_os.py) and passes every other import on."""

from __future__ import annotations

import builtins
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from driver import duration, errors
from driver.machine.machine import Machine
from driver.run import helpers
from driver.scriptrun.script_os import is_os

# module -> names it offers (what the pre-check accepts in ``from test_driver.X import Y``)
OFFERED: dict[str, tuple[str, ...]] = {
    "test_driver": ("machine", "errors", "logger", "polling_condition", "duration", "driver"),
    "test_driver.machine": ("retry", "Machine", "BaseMachine", "QemuMachine"),
    "test_driver.errors": ("TestScriptError", "RequestedAssertionFailed", "MachineError"),
    "test_driver.logger": ("rootlog", "AbstractLogger"),
    "test_driver.polling_condition": ("PollingCondition", "PollingConditionError"),
    "test_driver.duration": ("Duration", "as_timedelta", "as_seconds"),
    "test_driver.driver": ("Driver",),
}


def _module(name: str, values: Mapping[str, Any]) -> types.ModuleType:
    module = types.ModuleType(name, f"photon-driver's stand-in for the NixOS driver's {name}")
    for key, value in values.items():
        setattr(module, key, value)
    return module


def nixos_modules(rootlog: object, driver_class: type) -> dict[str, types.ModuleType]:
    """The ``test_driver`` modules of one run (``rootlog`` is the run's ScriptLog)."""
    modules = {
        "test_driver.machine": _module(
            "test_driver.machine",
            {
                "retry": helpers.retry,
                "Machine": Machine,
                "BaseMachine": Machine,
                "QemuMachine": Machine,
            },
        ),
        "test_driver.errors": _module(
            "test_driver.errors",
            {
                "TestScriptError": errors.TestScriptError,
                "RequestedAssertionFailed": errors.RequestedAssertionFailed,
                "MachineError": errors.MachineError,
            },
        ),
        "test_driver.logger": _module(
            "test_driver.logger", {"rootlog": rootlog, "AbstractLogger": type(rootlog)}
        ),
        "test_driver.polling_condition": _module(
            "test_driver.polling_condition",
            {
                "PollingCondition": helpers.PollingCondition,
                "PollingConditionError": helpers.PollingConditionError,
            },
        ),
        "test_driver.duration": _module(
            "test_driver.duration",
            {
                "Duration": duration.Duration,
                "as_timedelta": duration.as_timedelta,
                "as_seconds": duration.seconds,
            },
        ),
        "test_driver.driver": _module("test_driver.driver", {"Driver": driver_class}),
    }
    top = _module("test_driver", {k.split(".")[1]: v for k, v in modules.items()})
    return {"test_driver": top, **modules}


def script_importer(
    modules: Mapping[str, types.ModuleType], os_module: types.ModuleType
) -> Callable[..., Any]:
    """An ``__import__`` for script namespaces that answers ``test_driver[.X]`` from
    ``modules``, ``import os`` with ``os_module`` (script_os.py), and hands every other
    import to Python's own."""

    def script_import(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> Any:
        if level == 0 and (name == "test_driver" or name.startswith("test_driver.")):
            if name not in modules:
                offered = ", ".join(sorted(modules))
                raise ImportError(
                    f"{name}: not offered by photon-driver (offered: {offered}); "
                    "the names are script globals too"
                )
            return modules[name] if fromlist else modules["test_driver"]
        imported = builtins.__import__(name, globals, locals, fromlist or (), level)
        return os_module if is_os(name, fromlist, level) else imported

    return script_import


def script_builtins(
    modules: Mapping[str, types.ModuleType], os_module: types.ModuleType
) -> dict[str, Any]:
    """Python's builtins with the script ``__import__``."""
    return {**vars(builtins), "__import__": script_importer(modules, os_module)}
