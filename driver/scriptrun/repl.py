"""The interactive ptpython REPL with the script namespace bound: guest console lines and
driver log lines print above the prompt (prompt_toolkit's patch_stdout), input history is
kept in the profile's state directory, and ``help()`` lists the globals."""

from __future__ import annotations

import builtins
import inspect
from pathlib import Path
from typing import Any

from driver.scriptrun.namespace import GLOBALS
from driver.scriptrun.script import ScriptRun
from driver.scriptrun.script_check import read_script

HISTORY = "repl-history"


def globals_help(env: dict[str, Any]) -> str:
    """One line per script global and node: what ``help()`` prints in the REPL."""
    lines = ["photon-driver REPL: the test script's globals (help(name) for one in full)."]
    for name, entry in GLOBALS.items():
        reference = entry.reference()
        text = reference if isinstance(reference, str) else inspect.getdoc(reference) or ""
        lines.append(f"  {name:22} {text.split(chr(10))[0][:90]}")
    nodes = [k for k, v in env.items() if type(v).__name__ == "Machine" and k != "machine"]
    lines.append(f"  nodes: {', '.join(nodes) or '(none)'}; test_script() runs the scripts")
    lines.append("  serial_stdout_off() / serial_stdout_on(): hide or show guest console lines")
    return "\n".join(lines)


def repl_help(env: dict[str, Any]) -> Any:
    """``help()``: the globals; ``help(x)``: Python's help on ``x``."""

    def help(*args: object, **kwargs: object) -> None:
        if not args and not kwargs:
            print(globals_help(env))
            return
        builtins.help(*args, **kwargs)

    return help


def run_repl(session: ScriptRun, scripts: list[Path], state: Path) -> None:
    """Open ptpython; ``test_script()`` runs the loaded script(s). Machines stay up until
    the REPL exits. Input history goes to ``state``/repl-history."""
    from ptpython.repl import embed

    session.interactive = True  # a failed subtest raises its error, not SystemExit
    session.scripts = [(script, read_script(script)) for script in scripts]
    env: dict[str, Any] = session.namespace()
    env["help"] = repl_help(env)
    state.mkdir(parents=True, exist_ok=True)
    embed(
        globals=env,
        locals=env,
        title="photon-driver",
        history_filename=str(state / HISTORY),
        patch_stdout=True,
    )
