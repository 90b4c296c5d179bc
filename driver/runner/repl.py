"""The interactive ptpython REPL with the script namespace bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driver.runner import namespace
from driver.runner.script import ScriptRun


def run_repl(session: ScriptRun, scripts: list[Path]) -> None:
    """Open ptpython; ``test_script()`` runs the loaded script(s). Machines stay up until
    the REPL exits."""
    from ptpython.repl import embed

    env: dict[str, Any] = namespace.build(session.driver, session, session.logger)

    def test_script() -> None:
        """Run the script(s) given on the command line."""
        for script in scripts:
            session.run_script(script)

    env["test_script"] = test_script
    embed(globals=env, locals=env, title="photon-driver")
