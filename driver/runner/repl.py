"""The interactive ptpython REPL with the script namespace bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driver.runner.script import ScriptRun


def run_repl(session: ScriptRun, scripts: list[Path]) -> None:
    """Open ptpython; ``test_script()`` runs the loaded script(s). Machines stay up until
    the REPL exits."""
    from ptpython.repl import embed

    session.interactive = True  # a failed subtest raises its error, not SystemExit
    session.scripts = [(script, script.read_text()) for script in scripts]
    env: dict[str, Any] = session.namespace()
    embed(globals=env, locals=env, title="photon-driver")
