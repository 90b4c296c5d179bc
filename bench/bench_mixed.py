"""The reference profile in mixed form (``--containers``: the control plane and the gateway
as containers, the workers VMs) against the all-VM form, alternating in one run (issue 32):
the whole ``fresh-smoke --cold`` command (every check run) and the idle CPU of the started
cluster (``cluster start``, every node's jobs done, then a quiet window: each QEMU's CPU
time, and every process of each container's cgroup).

    python3 bench/bench_mixed.py [--rounds 2] [--window 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from results_io import summary, write

from driver.log import Logger
from driver.machine.cgroup import groups_named
from driver.machine.process import cpu_seconds
from driver.run.driver import RunContext, socket_prefix
from driver.state import cluster

CLI = [sys.executable, "-m", "driver", "--profile", "reference"]
FORMS = {"all_vm": [], "mixed": ["--containers"]}


def smoke(form: list[str]) -> float:
    """Seconds of one ``fresh-smoke --cold`` (exit 0 required)."""
    started = time.monotonic()
    proc = subprocess.run([*CLI, "fresh-smoke", "--cold", *form], capture_output=True, text=True)
    took = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"bench_mixed: fresh-smoke {form} failed:\n{proc.stderr[-3000:]}")
    return took


def cluster_cpu(state: Path) -> float:
    """CPU seconds used so far by every QEMU and every container process of the cluster."""
    record = cluster.read_record(state)
    assert record is not None
    total = sum(cpu_seconds(node.pid) or 0.0 for node in record.nodes.values())
    for group in groups_named(socket_prefix(state)):
        total += sum(cpu_seconds(pid) or 0.0 for pid in group.pids())
    return total


def idle(form: list[str], window: float) -> float:
    """Idle CPU (percent of one core) of the started cluster over ``window`` seconds."""
    state = cluster.state_dir(os.environ, "reference")
    started = subprocess.run([*CLI, "cluster", "start", *form], capture_output=True, text=True)
    if started.returncode != 0:
        sys.exit(f"bench_mixed: cluster start {form} failed: {started.stderr[-2000:]}")
    try:
        logger = Logger(open(os.devnull, "w"))
        context = RunContext(state, logger, os.environ, state / "out", state)
        with cluster.attach(state, context) as driver:
            for machine in driver.machines:
                machine.wait_until_succeeds('[ -z "$(systemctl list-jobs --no-legend)" ]', 600)
        time.sleep(10)
        before, t0 = cluster_cpu(state), time.monotonic()
        time.sleep(window)
        return 100 * (cluster_cpu(state) - before) / (time.monotonic() - t0)
    finally:
        subprocess.run([*CLI, "cluster", "stop"], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/mixed.json"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--window", type=float, default=60.0)
    args = parser.parse_args()
    smokes: dict[str, list[float]] = {name: [] for name in FORMS}
    idles: dict[str, list[float]] = {name: [] for name in FORMS}
    for _ in range(args.rounds):
        for name, form in FORMS.items():
            smokes[name].append(smoke(form))
    for name, form in FORMS.items():
        idles[name].append(idle(form, args.window))
    ratios = [m / v for m, v in zip(smokes["mixed"], smokes["all_vm"], strict=True)]
    result = {
        "smoke_all_vm_s": summary(smokes["all_vm"]),
        "smoke_mixed_s": summary(smokes["mixed"]),
        "smoke_ratio_mixed_over_all_vm": summary(ratios),
        "idle_all_vm_pct": summary(idles["all_vm"]),
        "idle_mixed_pct": summary(idles["mixed"]),
        "idle_ratio_mixed_over_all_vm": idles["mixed"][0] / idles["all_vm"][0],
        "rounds": args.rounds,
        "window_s": args.window,
        "note": "fresh-smoke --cold, whole command, alternating all-VM and mixed; idle CPU in "
        "percent of one host core, every node's jobs done, then 10 s, then the window",
    }
    write(args.out, result)


if __name__ == "__main__":
    main()
