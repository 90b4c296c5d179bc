"""Settled snapshots, measured side by side on this machine, written as JSON.

1. The six-node reference ``fresh-smoke``: once with the settled snapshot cache emptied (a
   cold boot to unit readiness, then the snapshot is saved), then ``--restored-runs`` times
   from that snapshot, then ``--cold-runs`` times with ``--cold`` (no snapshot at all). Each
   run's wall time, and from its ``settled.json`` the time to "every node answers and every
   declared unit is active" and the snapshot's save time and size per node.
2. One minimal node: its saved state loaded by ``-loadvm`` from an internal qcow2 snapshot
   versus ``-incoming`` from a migration stream next to the overlay (what settled snapshots
   use), from QEMU's spawn until the state is loaded.

    python3 bench/bench_settled.py [--out bench/results/settled.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_io import write

from driver.config.topology import load_topology
from driver.images.builder import default_cache_root
from driver.images.profile_specs import debian_specs
from driver.log import Logger
from driver.machine.node import Node
from driver.run import snapshots
from driver.run.driver import Driver, RunContext
from driver.state import settled
from driver.wait import wait_until


def fresh_smoke(out: Path, cold: bool) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one ``fresh-smoke`` and its settled.json (empty with ``cold``)."""
    argv = [sys.executable, "-m", "driver", "--profile", "reference", "fresh-smoke"]
    argv += ["-o", str(out)] + (["--cold"] if cold else [])
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"fresh-smoke failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    report = out / settled.REPORT
    return wall, json.loads(report.read_text()) if report.exists() else {}


def cluster_runs(restored_runs: int, cold_runs: int) -> dict[str, Any]:
    cache = default_cache_root(os.environ)
    shutil.rmtree(settled.settled_root(cache, "reference"), ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="bench-settled-"))
    wall, first = fresh_smoke(work / "first", cold=False)
    assert first["mode"] == "cold", first
    doc: dict[str, Any] = {
        "first_run": {"wall_s": wall, **first},
        "restored": [],
        "cold_wall_s": [],
    }
    for index in range(restored_runs):
        wall, report = fresh_smoke(work / f"restored{index}", cold=False)
        assert report["mode"] == "restored", report
        doc["restored"].append({"wall_s": wall, **report})
    for index in range(cold_runs):
        wall, _ = fresh_smoke(work / f"cold{index}", cold=True)
        doc["cold_wall_s"].append(wall)
    shutil.rmtree(work, ignore_errors=True)
    return doc


def time_to_loaded(node: Node, extra_args: tuple[str, ...]) -> float:
    """Seconds from QEMU's spawn (with ``extra_args``) until it reports the state loaded."""
    node.kill()
    started = time.monotonic()
    node.spawn(extra_args=extra_args)
    wait_until(node.disks.saved_state_loaded, 120.0, 0.01)
    return time.monotonic() - started


def one_node_loadvm_vs_incoming(samples: int) -> dict[str, Any]:
    topology = load_topology()
    state = Path(tempfile.mkdtemp(prefix="bench-loadvm-"))
    logger = Logger(open(os.devnull, "w"))
    cache = default_cache_root(os.environ)
    specs = debian_specs(topology, topology.profile("minimal"), state, cache, logger, ["node01"])
    context = RunContext(state, logger, os.environ, state / "out", cache)
    result: dict[str, Any] = {"loadvm_s": [], "incoming_s": []}
    with Driver(specs, context) as driver:
        driver.start_all()
        node = driver.nodes["node01"]
        node.machine.wait_for_unit("multi-user.target", timeout=300)
        snapshots.snapshot([node], "bench", logger)
        node.pause()
        stream = state / "node01.state"
        node.qmp("migrate", uri="exec:cat > " + shlex.quote(str(stream)))
        wait_until(lambda: "completed" in str(node.qmp("query-migrate")), 120.0)
        disk = state / "saved.qcow2"
        shutil.copyfile(node.disks.overlays[0], disk)
        result["stream_bytes"] = stream.stat().st_size
        for _ in range(samples):
            # -loadvm reads the internal snapshot from the overlay that holds it.
            shutil.copyfile(disk, node.disks.overlays[0])
            result["loadvm_s"].append(time_to_loaded(node, ("-S", "-loadvm", "bench")))
            node.disks.overlays_over([disk])
            incoming = ("-S", "-incoming", "exec:cat " + shlex.quote(str(stream)))
            result["incoming_s"].append(time_to_loaded(node, incoming))
    shutil.rmtree(state, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/settled.json"))
    parser.add_argument("--restored-runs", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=1)
    parser.add_argument("--samples", type=int, default=5, help="loadvm/incoming samples")
    args = parser.parse_args()
    doc = {"one_node": one_node_loadvm_vs_incoming(args.samples)}
    doc.update(cluster_runs(args.restored_runs, args.cold_runs))
    write(args.out, doc, indent=1)


if __name__ == "__main__":
    main()
