"""The interactive ptpython REPL with the script globals bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from driver.driver import Driver


def run_repl(driver: Driver, scripts: list[Path]) -> None:
    """Open ptpython; ``test_script()`` runs the loaded script(s). Machines stay up until
    the REPL exits."""
    from ptpython.repl import embed

    env: dict[str, Any] = driver.script_globals()

    def test_script() -> None:
        """Run the script(s) given on the command line."""
        for script in scripts:
            driver.run_script(script)

    env["test_script"] = test_script
    embed(globals=env, locals=env, title="photon-driver")
