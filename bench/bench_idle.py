"""Where the idle CPU of the started reference cluster goes: after the cluster settles, a
quiet window with every service running, then the services stopped one group at a time,
each followed by another window (each QEMU's own CPU time, user + system, over the window);
a group's cost is the drop it caused. Also the guest CPU one scrape of etcd's ``/metrics``
costs the etcd process. The cluster is stopped afterwards (its services were stopped).

    python3 bench/bench_idle.py [--window 60] [--out bench/results/idle.json]

On a PhotonCloud host, ``--profile photoncloud --specs DIR`` (the Nix-built node specs)
measures the same quiet window with every service running, for PhotonCloud's own services,
into ``bench/results/idle-photoncloud.json``; the per-group steps and the etcd scrape are the
reference profile's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

from results_io import summary, write

from driver.log import Logger
from driver.machine import Machine
from driver.machine.process import cpu_seconds
from driver.run.driver import RunContext
from driver.state import cluster

EVERY_NODE = [f"node0{i}" for i in range(1, 7)]
# In order: each group is stopped on the nodes that run it, then a window is measured.
GROUPS: list[tuple[str, list[str], list[str]]] = [
    ("etcd", ["node01", "node02", "node03"], ["etcd"]),
    ("prometheus (and so every scrape)", ["node06"], ["prometheus"]),
    ("node exporters", EVERY_NODE, ["prometheus-node-exporter"]),
    ("postgresql", ["node01", "node02", "node03"], ["photon-postgresql"]),
    (
        "haproxy, nginx, dnsmasq, nbd export",
        EVERY_NODE,
        ["haproxy", "nginx", "dnsmasq", "photon-nbd-export"],
    ),
]
ETCD_TICKS = "awk '{print $14 + $15}' /proc/$(pgrep -x etcd)/stat"


def window(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """Each QEMU's CPU use over ``seconds``, in percent of one host core."""
    before = {n: cpu_seconds(p) or 0.0 for n, p in pids.items()}
    started = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - started
    return {n: 100 * ((cpu_seconds(p) or 0.0) - before[n]) / took for n, p in pids.items()}


def scrape_cost(node: Machine, runs: int = 5) -> list[float]:
    """Guest CPU seconds the etcd process spends on one ``/metrics`` scrape."""
    costs = []
    for _ in range(runs):
        before = int(node.succeed(ETCD_TICKS))
        node.succeed("curl -fsS http://127.0.0.1:2379/metrics >/dev/null")
        costs.append((int(node.succeed(ETCD_TICKS)) - before) / 100)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--profile", default="reference")
    parser.add_argument("--specs", help="prebuilt node specs (`nix build .#nodeSpecs`)")
    args = parser.parse_args()
    reference = args.profile == "reference"
    out = args.out or Path("bench/results") / (
        "idle.json" if reference else f"idle-{args.profile}.json"
    )
    state = cluster.state_dir(os.environ, args.profile)
    driver_cli = [sys.executable, "-m", "driver", "--profile", args.profile]
    if args.specs:
        driver_cli += ["--specs", args.specs]
    started = subprocess.run([*driver_cli, "cluster", "start"], capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"bench_idle: cluster start failed: {started.stderr.strip()}")
    logger = Logger(open(os.devnull, "w"))
    steps: list[dict[str, object]] = []
    try:
        context = RunContext(state, logger, os.environ, state / "out", state)
        with cluster.attach(state, context) as driver:
            nodes = {m.name: m for m in driver.machines}
            for machine in driver.machines:
                machine.wait_until_succeeds('[ -z "$(systemctl list-jobs --no-legend)" ]', 600)
            record = cluster.read_record(state)
            assert record is not None
            pids = {n: node.pid for n, node in record.nodes.items()}
            scrape = scrape_cost(nodes["node01"]) if reference else []
            used = window(pids, args.window)
            steps.append({"running": "every service", "total": sum(used.values()), "nodes": used})
            for group, where, units in GROUPS if reference else []:
                for name in where:
                    nodes[name].succeed(f"systemctl stop {' '.join(units)} || true")
                time.sleep(5)
                used = window(pids, args.window)
                steps.append({"stopped": group, "total": sum(used.values()), "nodes": used})
    finally:
        subprocess.run([*driver_cli, "cluster", "stop"], check=True, capture_output=True)
    costs = {
        str(step["stopped"]): float(prev["total"]) - float(step["total"])  # type: ignore[arg-type]
        for prev, step in itertools.pairwise(steps)
    }
    result = {
        "profile": args.profile,
        "window_s": args.window,
        "steps": steps,
        "cost_percent_of_one_core": costs,
        "etcd_metrics_scrape_guest_cpu_s": summary(scrape) if scrape else None,
    }
    write(out, result, indent=1)


if __name__ == "__main__":
    main()
