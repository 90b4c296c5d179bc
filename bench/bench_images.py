"""Image benchmark: cold and cached build, boot to backdoor for one node and for six at once,
host PSS per node, disk used by the base image plus six overlays.

    python3 bench/bench_images.py [--out bench/results/images.json] [--cold]

``--cold`` builds into an empty cache (a true cold build); otherwise the user cache is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from results_io import write

from driver.config.topology import load_topology
from driver.images.builder import build_image, default_cache_root
from driver.images.profile_specs import debian_specs, image_recipe
from driver.log import Logger
from driver.run.driver import Driver, RunContext


def pss_mib(pid: int) -> float:
    """Proportional set size of ``pid`` in MiB (shared pages split between sharers)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def boot(names: list[str], cache: Path, logger: Logger) -> tuple[float, list[float], float]:
    """Boot ``names`` at once; returns (wall seconds, PSS MiB per node, disk MiB)."""
    topology = load_topology()
    state = Path(tempfile.mkdtemp(prefix="photon-bench-"))
    specs = debian_specs(topology, topology.profile("minimal"), state, cache, logger, names)
    # The targets are stated for 512 MiB nodes.
    specs = {n: dataclasses.replace(s, memory_mib=512) for n, s in specs.items()}
    context = RunContext(state, logger, os.environ, state / "out", cache)
    driver = Driver(specs, context, boot_groups=[names])
    try:
        started = time.monotonic()
        driver.start_all()
        wall = time.monotonic() - started
        for machine in driver.machines:
            machine.wait_for_unit("multi-user.target")
        pss = [pss_mib(m.pid or 0) for m in driver.machines]
        overlays = sum(
            p.stat().st_blocks * 512 for c in driver.nodes.values() for p in c.disks.overlays
        )
        return wall, pss, overlays / 2**20
    finally:
        driver.cleanup()
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/images.json"))
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logger = Logger(open(os.devnull, "w"))
    cache = (
        Path(tempfile.mkdtemp(prefix="photon-cache-"))
        if args.cold
        else default_cache_root(os.environ)
    )
    recipe = image_recipe(load_topology(), "minimal")
    started = time.monotonic()
    image = build_image(recipe, cache, logger)
    first = time.monotonic() - started
    started = time.monotonic()
    build_image(recipe, cache, logger)
    cached = time.monotonic() - started
    one = [boot(["node01"], cache, logger) for _ in range(args.repeat)]
    six_wall, six_pss, six_disk = boot([f"node0{i}" for i in range(1, 7)], cache, logger)
    result = {
        "cold_build_s" if not image.cached else "first_build_s_(was_cached)": first,
        "cached_build_s": cached,
        "one_node_boot_to_backdoor_s": {
            "median": statistics.median(o[0] for o in one),
            "max": max(o[0] for o in one),
            "runs": [o[0] for o in one],
        },
        "six_nodes_boot_to_backdoor_s": six_wall,
        "pss_mib_per_node_six": six_pss,
        "base_image_allocated_mib": image.base.stat().st_blocks * 512 / 2**20,
        "six_overlays_after_boot_mib": six_disk,
        "memory_mib_per_node": 512,
    }
    if args.cold:
        shutil.rmtree(cache, ignore_errors=True)
    write(args.out, result)


if __name__ == "__main__":
    main()
