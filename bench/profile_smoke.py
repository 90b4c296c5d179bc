"""Where the reference smoke's time goes, from its own event log: one cold run of README
command 1's script, then per node the boot (QEMU spawn to shell) and each unit wait, per
subtest its duration, the health scans, and each QEMU's CPU seconds, written as JSON.

    python3 bench/profile_smoke.py [--profile reference] [--out bench/results/smoke-profile.json]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from results_io import write

from driver.events import EventKind, read_events

ROOT = Path(__file__).resolve().parent.parent
WAIT = re.compile(r"waiting for unit (\S+)")


def profile(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The phases of a run, from its events."""
    start = min(float(e["t"]) for e in events)
    spawned: dict[str, float] = {}
    nodes: dict[str, dict[str, Any]] = defaultdict(lambda: {"units": {}})
    open_blocks: dict[tuple[str, int], str] = {}
    subtests: dict[str, float] = {}
    scans: list[float] = []
    for event in events:
        kind, node, at = event["kind"], event.get("node"), float(event["t"])
        if kind == EventKind.SPAWN and node:
            spawned[node] = at
            nodes[node]["spawned_at_s"] = round(at - start, 2)
        elif kind == EventKind.READY and node:
            nodes[node]["boot_s"] = round(at - spawned.get(node, start), 2)
            nodes[node]["ready_at_s"] = round(at - start, 2)
        elif kind == EventKind.BEGIN and node and (found := WAIT.search(event.get("text", ""))):
            open_blocks[(node, int(event.get("depth", 0)))] = found.group(1)
        elif kind == EventKind.END and node and (node, int(event.get("depth", 0))) in open_blocks:
            unit = open_blocks.pop((node, int(event.get("depth", 0))))
            nodes[node]["units"][unit] = event.get("duration")
        elif kind == EventKind.SUBTEST_END:
            subtests[event["subtest"]] = float(event.get("duration") or 0.0)
        elif kind == EventKind.HEALTH_SCAN:
            scans.append(float(event.get("duration", 0)))
        elif kind == EventKind.CPU and node:
            nodes[node]["qemu_cpu_s"] = event.get("seconds")
    end = max(float(e["t"]) for e in events)
    return {
        "wall_s": round(end - start, 2),
        "nodes": dict(nodes),
        "subtests_s": subtests,
        "health_scans": {
            "count": len(scans),
            "total_s": sum(scans),
            "max_s": max(scans, default=0),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="reference")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "smoke-profile.json"
    )
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="smoke-profile-"))
    script = ROOT / "testscripts" / args.profile / "smoke.py"
    if not script.exists():
        script = ROOT / "testscripts" / "smoke.py"
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "driver",
            "--profile",
            args.profile,
            "run",
            "-o",
            str(out),
            str(script),
        ],
        check=True,
    )
    doc = {"script": str(script.relative_to(ROOT)), "command_wall_s": time.monotonic() - started}
    doc.update(profile(read_events(out / "events.jsonl")))
    write(args.out, doc)


if __name__ == "__main__":
    main()
