"""One node as a container and as a VM, side by side in one run (issue 32): spawn to the
backdoor answering, ``succeed("true")`` round trip, and the node's idle CPU once it has
booted (QEMU's CPU time for the VM; every process of the container's cgroup for the
container). The two kinds alternate, from the same Debian image, on this host.

    python3 bench/bench_container.py [--rounds 5] [--calls 200] [--window 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from results_io import summary, write

from driver.config.topology import load_topology
from driver.images.builder import default_cache_root
from driver.images.profile_specs import debian_specs
from driver.log import Logger
from driver.machine.cgroup import ContainerGroup
from driver.machine.process import cpu_seconds
from driver.run.driver import Driver, RunContext

TOPOLOGY = """
[nodes.box]
kind = "container"

[nodes.vm]
"""


def node_cpu(driver: Driver, name: str) -> float:
    """CPU seconds the node has used: its QEMU, or every process of its container."""
    node = driver.nodes[name]
    if node.spec.kind == "container":
        group = ContainerGroup(f"{driver.socket_dir.name}-{name}")
        return sum(cpu_seconds(pid) or 0.0 for pid in group.pids())
    return cpu_seconds(node.pid or 0) or 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/container.json"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="photon-bench-container-"))
    (work / "topology.toml").write_text(TOPOLOGY)
    topology = load_topology(work / "topology.toml")
    logger = Logger(open(os.devnull, "w"))
    cache = default_cache_root(os.environ)
    state = work / "state"
    specs = debian_specs(topology, topology.profile("default"), state, cache, logger)
    spawn: dict[str, list[float]] = {"box": [], "vm": []}
    roundtrip: dict[str, list[float]] = {"box": [], "vm": []}
    idle: dict[str, list[float]] = {"box": [], "vm": []}
    with Driver(specs, RunContext(state, logger, os.environ, state / "out", cache)) as driver:
        for _ in range(args.rounds):
            for name in ("box", "vm"):
                node = driver.nodes[name]
                started = time.monotonic()
                node.start()
                node.connect()
                spawn[name].append(time.monotonic() - started)
                machine = node.machine
                machine.wait_for_unit("multi-user.target")
                calls = []
                for _ in range(args.calls):
                    t0 = time.monotonic()
                    machine.succeed("true")
                    calls.append((time.monotonic() - t0) * 1e3)
                roundtrip[name].append(statistics.median(calls))
                before, t0 = node_cpu(driver, name), time.monotonic()
                time.sleep(args.window)
                idle[name].append(100 * (node_cpu(driver, name) - before) / (time.monotonic() - t0))
                node.kill()
    result = {
        "container_spawn_to_backdoor_s": summary(spawn["box"]),
        "vm_spawn_to_backdoor_s": summary(spawn["vm"]),
        "container_roundtrip_ms": summary(roundtrip["box"]),
        "vm_roundtrip_ms": summary(roundtrip["vm"]),
        "container_idle_cpu_pct": summary(idle["box"]),
        "vm_idle_cpu_pct": summary(idle["vm"]),
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "idle_window_s": args.window,
        "note": "one node alone, the default image, alternating container and VM; round trip "
        "is the median of each round's calls; idle CPU in percent of one host core",
    }
    write(args.out, result)


if __name__ == "__main__":
    main()
