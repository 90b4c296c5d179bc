"""Driver benchmark: backdoor round trip (ours vs the NixOS-style two-round-trip protocol),
wait_for_unit notice latency, boot to backdoor, and driver CPU while waiting.

    python3 bench/bench_driver.py [--out bench/results/driver.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from driver.driver import Driver
from driver.images.builder import build_image, default_cache_root
from driver.log import Logger
from driver.realise import debian_specs, image_recipe
from driver.topology import load_topology


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/driver.json"))
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    topology = load_topology()
    logger = Logger(open(os.devnull, "w"))
    cache = default_cache_root(os.environ)
    build_image(image_recipe(topology, "minimal"), cache, logger)
    state = Path(tempfile.mkdtemp(prefix="photon-bench-"))
    specs = debian_specs(topology, topology.profile("minimal"), state, cache, logger, ["node01"])
    driver = Driver(specs, state, logger, os.environ, cache_dir=cache)
    result: dict[str, object] = {}
    try:
        node = driver.machine("node01")
        started = time.monotonic()
        driver.start_all()
        result["boot_to_backdoor_s"] = time.monotonic() - started
        node.wait_for_unit("multi-user.target")
        ours = []
        for _ in range(args.calls):
            t0 = time.monotonic()
            node.run("true")
            ours.append(time.monotonic() - t0)
        nixos = []
        for _ in range(args.calls):
            t0 = time.monotonic()
            node.run("(true) | (base64 -w 0; echo)")
            node.run("echo ${PIPESTATUS[0]}")
            nixos.append(time.monotonic() - t0)
        result["roundtrip_ours_ms"] = {"median": statistics.median(ours) * 1e3,
                                       "p95": pct(ours, 0.95) * 1e3}  # fmt: skip
        result["roundtrip_two_trip_ms"] = {"median": statistics.median(nixos) * 1e3,
                                           "p95": pct(nixos, 0.95) * 1e3}  # fmt: skip
        node.succeed("systemd-run --unit=bench-late --no-block -p Type=oneshot "
                     "-p RemainAfterExit=yes sh -c 'sleep 3; date +%s.%N > /run/bench-active'")  # fmt: skip
        node.wait_for_unit("bench-late")
        noticed = time.time()
        active_at = float(node.succeed("cat /run/bench-active"))
        result["wait_for_unit_notice_s"] = noticed - active_at
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        try:
            node.wait_until_succeeds("test -e /run/never-created", timeout=30)
        except Exception:
            pass
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        result["driver_cpu_percent_while_waiting"] = 100 * cpu / (time.monotonic() - t0)
    finally:
        driver.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
