"""``run`` and the seed's script verbs (``smoke``, ``fresh-smoke``, ...): the command line's
side (which scripts, ``--list``); the run itself is session/run.py."""

from __future__ import annotations

import argparse
from pathlib import Path

from driver.bundled import testscripts_dir
from driver.errors import UsageError
from driver.session.invocation import Invocation
from driver.session.options import FRESH_PREFIX
from driver.session.run import list_subtests, run

# The seed harness's script verbs -> script file (testscripts/ or testscripts/reference/).
SEED_SCRIPTS = {
    "smoke": "smoke.py",
    "matrix": "matrix.py",
    "validate": "validate.py",
    "bench-storage": "bench_storage.py",
    "bench-coronafs-local-matrix": "bench_coronafs_local_matrix.py",
    "faults": "faults.py",
}
# Other spellings the seed's users type.
SEED_ALIASES = {"storage-bench": "bench-storage"}


def seed_script(profile: str, verb: str) -> Path:
    """The test script a seed verb runs for ``profile``."""
    folder = testscripts_dir() / ("reference" if profile == "reference" else "")
    return folder / SEED_SCRIPTS[SEED_ALIASES.get(verb, verb)]


def cmd_run(inv: Invocation, args: argparse.Namespace) -> int:
    """``run [SCRIPT...]``."""
    scripts = list(inv.options.scripts)
    if not scripts and not inv.options.interactive:
        raise UsageError("run: name a test script, or use -I for the REPL")
    inv.options.check()
    if args.list:
        if not scripts:
            raise UsageError("run: --list lists the subtests of scripts; name a test script")
        return list_subtests(inv, scripts)
    return run(inv, scripts)


def cmd_seed_script(inv: Invocation, args: argparse.Namespace) -> int:
    """``smoke``, ``fresh-smoke``, ``matrix``...: a bundled script on the running cluster,
    or with ``fresh-`` on fresh nodes (from the cached settled snapshot unless ``--cold``)."""
    script = seed_script(inv.profile, inv.options.command.removeprefix(FRESH_PREFIX))
    if args.list:
        return list_subtests(inv, [script])
    inv.options.check()
    return run(inv, [script])
