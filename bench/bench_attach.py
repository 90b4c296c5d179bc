"""Cluster start to ready, attach time to the running detached cluster (in-process and via
the CLI), one command on every node, one health-gate scan, written as JSON; the cluster is
stopped afterwards (a cluster already running is reused and its start not timed).

    python3 bench/bench_attach.py --profile reference [--out bench/results/attach.json]
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

from bench_idle import window
from results_io import summary, write

from driver.log import Logger
from driver.run.driver import RunContext
from driver.run.health import HealthGate
from driver.state import cluster


def idle_windows(
    pids: dict[str, int], since: float, agree: float = 0.1, most: int = 6
) -> list[dict[str, object]]:
    """60 s windows until two in a row differ by at most ``agree`` (relative) or ``most``
    were taken; each with its start in seconds after ``since`` (the cluster start)."""
    windows: list[dict[str, object]] = []
    totals: list[float] = []
    while len(windows) < most:
        began = time.monotonic() - since
        used = window(pids, 60.0)
        totals.append(sum(used.values()))
        windows.append({"from_start_s": began, "total": totals[-1], "nodes": used})
        if len(totals) >= 2 and abs(totals[-1] - totals[-2]) <= agree * totals[-2]:
            break
    return windows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="reference")
    parser.add_argument("--out", type=Path, default=Path("bench/results/attach.json"))
    args = parser.parse_args()
    state = cluster.state_dir(os.environ, args.profile)
    logger = Logger(open(os.devnull, "w"))
    driver_cli = [sys.executable, "-m", "driver", "--profile", args.profile]
    cluster_started = time.monotonic()
    subprocess.run([*driver_cli, "cluster", "start"], check=True, capture_output=True)
    start_s = time.monotonic() - cluster_started
    # Measure a settled cluster: no pending systemd jobs anywhere, then a quiet minute.
    context = RunContext(state, logger, os.environ, state / "out", state)
    with cluster.attach(state, context) as driver:
        for machine in driver.machines:
            machine.wait_until_succeeds('[ -z "$(systemctl list-jobs --no-legend)" ]', 600)
    # Idle: each QEMU's own CPU time over 60 s windows, one after the other from the moment
    # no job is pending, until two windows agree (the last is the settled figure).
    record = cluster.read_record(state)
    assert record is not None
    pids = {n: node.pid for n, node in record.nodes.items()}
    windows = idle_windows(pids, since=cluster_started)
    idle = windows[-1]["nodes"]
    attach, first_command, health = [], [], []
    for _ in range(5):
        started = time.monotonic()
        context = RunContext(state, logger, os.environ, state / "out", state)
        with cluster.attach(state, context) as driver:
            attach.append(time.monotonic() - started)
            started = time.monotonic()
            for machine in driver.machines:
                machine.succeed("true")
            first_command.append(time.monotonic() - started)
            started = time.monotonic()
            HealthGate().scan(list(driver.nodes.values()))
            health.append(time.monotonic() - started)
    script = Path(tempfile.mkdtemp()) / "noop.py"
    script.write_text("pass\n")
    cli = []
    for _ in range(5):
        started = time.monotonic()
        argv = [sys.executable, "-m", "driver", "--profile", args.profile, "run", "--reuse"]
        subprocess.run(
            [*argv, str(script)],
            check=True,
            capture_output=True,
        )
        cli.append(time.monotonic() - started)

    # Whole-cluster snapshot of the running nodes, then restores (CLI, as a user types it).
    started = time.monotonic()
    subprocess.run([*driver_cli, "cluster", "snapshot", "bench"], check=True, capture_output=True)
    snapshot_s = time.monotonic() - started
    restore = []
    for _ in range(5):
        started = time.monotonic()
        subprocess.run(
            [*driver_cli, "cluster", "restore", "bench"], check=True, capture_output=True
        )
        restore.append(time.monotonic() - started)

    # --rerun-failed on the running cluster: five empty subtests with and without the
    # snapshot before each; one subtest failing once (restored, run again) or passing.
    work = script.parent
    five = work / "five.py"
    five.write_text("for i in range(5):\n    with subtest(f's{i}'):\n        pass\n")
    counter = work / "counter"
    once = work / "once.py"
    once.write_text(
        f"from pathlib import Path\nc = Path({str(counter)!r})\n"
        "with subtest('once'):\n"
        "    n = int(c.read_text()) + 1\n    c.write_text(str(n))\n"
        "    assert n > 1 or c.with_suffix('.pass').exists()\n"
    )

    def timed_run(*extra: str) -> float:
        started = time.monotonic()
        argv = [*driver_cli, "run", "--reuse", *extra]
        subprocess.run(argv, check=True, capture_output=True)
        return time.monotonic() - started

    plain = [timed_run(str(five)) for _ in range(3)]
    saved = [timed_run("--rerun-failed", "1", str(five)) for _ in range(3)]
    per_subtest = [(s - p) / 5 for s, p in zip(saved, plain, strict=True)]
    rerun_overhead = []
    for _ in range(3):
        counter.write_text("0")
        counter.with_suffix(".pass").touch()
        passing = timed_run("--rerun-failed", "1", str(once))
        counter.write_text("0")
        counter.with_suffix(".pass").unlink()
        failing_once = timed_run("--rerun-failed", "1", str(once))
        rerun_overhead.append(failing_once - passing)

    nodes = len(json.loads((state / "cluster.json").read_text())["nodes"])
    subprocess.run([*driver_cli, "cluster", "stop"], check=True, capture_output=True)
    result = {
        "nodes": nodes,
        "cluster_start_to_ready_s": start_s,
        "idle_cpu_percent_of_one_core": {"total": sum(idle.values()), "nodes": idle},
        "idle_windows": windows,
        "attach_s": summary(attach),
        "one_command_on_every_node_s": summary(first_command),
        "health_scan_six_s": summary(health),
        "cli_run_reuse_noop_script_s": summary(cli),
        "cluster_snapshot_s": snapshot_s,
        "cluster_restore_s": summary(restore),
        "snapshot_before_subtest_s": summary(per_subtest),
        "rerun_overhead_s": summary(rerun_overhead),
    }
    write(args.out, result)


if __name__ == "__main__":
    main()
