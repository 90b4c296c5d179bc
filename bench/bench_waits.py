"""In-guest waits against the NixOS driver's polling pattern, and the wait stress of issue 35.

1. ``wait_for_open_port`` from a service's start, side by side in one run: a server that
   opens its port after a delay is started, then waited for with ours, then (alternating)
   with the NixOS driver's pattern (``execute("nc -z localhost PORT")`` once a second, as
   its ``wait_for_open_port`` does through ``retry``). Both get the same delay in a round;
   the delays step from 0.3 s to 2.1 s over the rounds (a fixed 1 s delay would line up
   with the once-a-second poll and measure only that coincidence). Target: ours <= 1.0x
   NixOS's (the median of the per-round ratios).
2. The sequence that hung once in six runs: a server, a port wait, a request, a background
   job with redirected output, and ``wait_until_succeeds`` on its effect, ``--iterations``
   times on one node, then ``--parallel-iterations`` times on each of two nodes at once
   (each wait bounded: a lost answer fails the iteration at its deadline, never the run).

    python3 bench/bench_waits.py [--rounds 10] [--iterations 500] [--parallel-iterations 200]
        [--out bench/results/waits.json]
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
from driver.images.builder import build_image, default_cache_root
from driver.images.profile_specs import debian_specs, image_recipe
from driver.log import Logger
from driver.machine.machine import Machine
from driver.run.driver import Driver, RunContext

PORT = 7411


def server(delay: float) -> str:
    """A command that starts a server opening PORT after ``delay`` seconds."""
    return f"(sleep {delay:.2f}; exec nc -lk {PORT} >/dev/null 2>&1) >/dev/null 2>&1 &"


STOP = f"pkill -f 'nc -lk {PORT}' || :; while nc -z 127.0.0.1 {PORT}; do sleep 0.05; done"


def ours(node: Machine, delay: float) -> float:
    """Seconds from the server's start to our wait_for_open_port returning."""
    started = time.monotonic()
    node.succeed(server(delay))
    node.wait_for_open_port(PORT, timeout=30)
    return time.monotonic() - started


def nixos_pattern(node: Machine, delay: float) -> float:
    """The same with the NixOS driver's pattern: one ``nc -z`` a second."""
    started = time.monotonic()
    node.succeed(server(delay))
    while node.execute(f"nc -z localhost {PORT}")[0] != 0:
        time.sleep(1)
        if time.monotonic() - started > 30:
            raise TimeoutError("the port never opened")
    return time.monotonic() - started


def stress_iteration(node: Machine, i: int) -> float:
    """One round of the sequence that hung; returns its seconds."""
    started = time.monotonic()
    node.succeed(f"(exec nc -lk {PORT + 1} >/dev/null 2>&1) >/dev/null 2>&1 &")
    node.wait_for_open_port(PORT + 1, timeout=30)
    node.succeed(f"echo hi | nc -N 127.0.0.1 {PORT + 1}")
    node.succeed(f"(sleep 0.2; touch /tmp/appeared-{i}) >/dev/null 2>&1 &")
    node.wait_until_succeeds(f"test -e /tmp/appeared-{i}", timeout=30)
    node.succeed(f"pkill -f 'nc -lk {PORT + 1}' || :; rm -f /tmp/appeared-{i}")
    return time.monotonic() - started


def stress(node: Machine, iterations: int) -> dict[str, object]:
    """``iterations`` rounds of the sequence on ``node``: passes, failures, seconds."""
    durations: list[float] = []
    failures: list[str] = []
    for i in range(iterations):
        try:
            durations.append(stress_iteration(node, i))
        except Exception as exc:  # every failure is counted and shown
            failures.append(f"iteration {i}: {str(exc).splitlines()[0]}")
    return {
        "iterations": iterations,
        "passed": len(durations),
        "failures": failures,
        "iteration_s": summary(durations) if durations else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/waits.json"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--parallel-iterations", type=int, default=200)
    args = parser.parse_args()
    topology = load_topology()
    logger = Logger(open(os.devnull, "w"))
    cache = default_cache_root(os.environ)
    build_image(image_recipe(topology, "minimal"), cache, logger)
    state = Path(tempfile.mkdtemp(prefix="photon-bench-"))
    specs = debian_specs(
        topology, topology.profile("minimal"), state, cache, logger, ["node01", "node02"]
    )
    context = RunContext(state, logger, os.environ, state / "out", cache)
    result: dict[str, object] = {}
    with Driver(specs, context) as driver:
        node = driver.machine("node01")
        driver.start_all()
        node.wait_for_unit("multi-user.target")
        mine: list[float] = []
        theirs: list[float] = []
        for round_ in range(args.rounds):
            delay = 0.3 + 1.8 * round_ / max(args.rounds - 1, 1)
            for measure, into in [(ours, mine), (nixos_pattern, theirs)][:: 1 - 2 * (round_ % 2)]:
                into.append(measure(node, delay))
                node.succeed(STOP)
        ratios = [a / b for a, b in zip(mine, theirs, strict=True)]
        ratio = statistics.median(ratios)
        result["wait_for_open_port_ours_s"] = summary(mine)
        result["wait_for_open_port_nixos_pattern_s"] = summary(theirs)
        result["wait_for_open_port_ratio"] = {
            "median": ratio,
            "max": max(ratios),
            "runs": ratios,
            "target": 1.0,
            "met": ratio <= 1.0,
        }
        result["stress"] = stress(node, args.iterations)
        both: dict[str, object] = {}
        driver.parallel(
            driver.machines,
            lambda m: both.__setitem__(m.name, stress(m, args.parallel_iterations)),
        )
        result["stress_two_nodes_at_once"] = both
    write(args.out, result)


if __name__ == "__main__":
    main()
