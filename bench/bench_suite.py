"""A suite's wall time (issue 34): the same scripts with ``-j 1`` and ``-j 2`` side by side,
then ``--shard 1/2`` and ``--shard 2/2`` one after the other (the longer of the two is what
two CI machines would take) against the whole, written as JSON. Each variant is its own
``photon-driver suite`` (its own output folder under a temporary directory); the exit code
of each is kept (1: a script failed, still timed).

    python3 bench/bench_suite.py [--out bench/results/suite.json] [-- SUITE ARGS] PATH...

e.g. ``python3 bench/bench_suite.py --profile reference testscripts/reference/{smoke,matrix,
validate,faults}.py`` for the four reference-profile scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_io import write

VARIANTS: dict[str, list[str]] = {
    "j1": ["-j", "1"],
    "j2": ["-j", "2"],
    "shard_1_of_2": ["--shard", "1/2"],
    "shard_2_of_2": ["--shard", "2/2"],
}


def timed_suite(options: list[str], paths: list[str], out: Path, timeout: float) -> dict[str, Any]:
    """One ``photon-driver suite`` run: its wall seconds and exit code."""
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "driver", "suite", *options, "-o", str(out), *paths],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    wall = time.monotonic() - started
    manifest = out / "suite.json"
    tests = json.loads(manifest.read_text())["tests"] if manifest.exists() else []
    return {
        "wall_s": wall,
        "exit": proc.returncode,
        # Each script's own run: id, status, seconds, exit code.
        "tests": [{k: t[k] for k in ("id", "status", "seconds", "exit_code")} for t in tests],
        "last_lines": proc.stderr.splitlines()[-3:],
    }


def main() -> None:
    """Time every variant, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench/results/suite.json"))
    parser.add_argument("--profile", help="passed to every suite run")
    parser.add_argument("--topology", help="passed to every suite run")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds per variant")
    parser.add_argument("paths", nargs="+", help="scripts, directories or suite files")
    args = parser.parse_args()
    common = [f"--{k}={v}" for k, v in (("profile", args.profile), ("topology", args.topology))]
    common = [c for c in common if not c.endswith("=None")]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        for name, options in VARIANTS.items():
            out = Path(tmp) / name
            results[name] = timed_suite([*common, *options], args.paths, out, args.timeout)
    shards = [results["shard_1_of_2"]["wall_s"], results["shard_2_of_2"]["wall_s"]]
    results["two_machines_s"] = max(shards)  # the shards side by side on two CI machines
    results["speedup_j2"] = results["j1"]["wall_s"] / max(results["j2"]["wall_s"], 1e-9)
    host = {
        "cpus": os.cpu_count(),
        "memory_gib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30,
    }
    write(args.out, {"scripts": args.paths, "host": host, "variants": results})


if __name__ == "__main__":
    main()
