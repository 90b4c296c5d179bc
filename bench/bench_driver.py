"""Driver benchmark: backdoor round trip (ours vs the NixOS driver's protocol, run as the
NixOS driver runs it on a plain shell port), wait_for_unit notice latency, boot to backdoor
with and without the driver, and driver CPU while waiting.

    python3 bench/bench_driver.py [--out bench/results/driver.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from results_io import summary, write

from driver.config.topology import load_topology
from driver.images.builder import build_image, default_cache_root
from driver.images.profile_specs import debian_specs, image_recipe
from driver.log import Logger
from driver.machine.process import create_overlay
from driver.run.driver import Driver, RunContext


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


PLAIN_PORT = "photon.plain"


def plain_shell_args(sockets: Path) -> list[str]:
    """QEMU args for a second virtio serial port that will carry a plain bash (no framing)."""
    path = sockets / "plain.sock"
    return [
        "-chardev",
        f"socket,id=plain,path={path},server=on,wait=off",
        "-device",
        f"virtserialport,chardev=plain,name={PLAIN_PORT}",
    ]


def nixos_roundtrips(sock: socket.socket, calls: int) -> list[float]:
    """The NixOS driver's protocol on a plain shell: ``timeout 900 bash -c 'set -euo pipefail;
    CMD' | (base64 -w 0; echo)`` and a line back, then ``echo ${PIPESTATUS[0]}`` and a line
    back: two round trips per command."""
    buffer = b""

    def line() -> bytes:
        nonlocal buffer
        while b"\n" not in buffer:
            buffer += sock.recv(4096)
        first, _, buffer = buffer.partition(b"\n")
        return first

    command = "timeout 900 bash -c 'set -euo pipefail; true' | (base64 -w 0; echo)\n"
    times = []
    for _ in range(calls):
        t0 = time.monotonic()
        sock.sendall(command.encode())
        line()
        sock.sendall(b"echo ${PIPESTATUS[0]}\n")
        assert line() == b"0"
        times.append(time.monotonic() - t0)
    sock.close()
    return times


def bare_boot(node_dir: Path) -> float:
    """Boot the same QEMU argv the driver used, without the driver; seconds to the marker."""
    argv = (node_dir / "argv").read_text().split("\0")
    backdoor = next(
        a.split("path=")[1].split(",")[0] for a in argv if a.startswith("socket,id=backdoor")
    )
    disk = argv[argv.index("-drive") + 1].split("file=")[1].split(",")[0]
    base = json.loads((node_dir / "spec.json").read_text())["disks"][0]["base"]
    create_overlay(Path(base), Path(disk))
    Path(backdoor).parent.mkdir(parents=True, exist_ok=True)
    Path(backdoor).unlink(missing_ok=True)
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not Path(backdoor).exists():
            time.sleep(0.005)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(backdoor)
        data = b""
        while b"PHOTON-BACKDOOR-READY" not in data:
            data += sock.recv(4096)
        return time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results/driver.json"))
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--boots", type=int, default=4)
    parser.add_argument("--notices", type=int, default=10)
    args = parser.parse_args()
    topology = load_topology()
    logger = Logger(open(os.devnull, "w"))
    cache = default_cache_root(os.environ)
    build_image(image_recipe(topology, "minimal"), cache, logger)
    state = Path(tempfile.mkdtemp(prefix="photon-bench-"))
    specs = debian_specs(topology, topology.profile("minimal"), state, cache, logger, ["node01"])
    sockets = Path(tempfile.mkdtemp(prefix="photon-bench-sock-"))
    spec = specs["node01"]
    specs["node01"] = dataclasses.replace(
        spec, extra_args=(*spec.extra_args, *plain_shell_args(sockets))
    )
    driver = Driver(specs, RunContext(state, logger, os.environ, state / "out", cache))
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
            node.succeed("true")
            ours.append(time.monotonic() - t0)
        # The host end first: a plain bash on a port nobody holds reads EOF and exits.
        plain = socket.socket(socket.AF_UNIX)
        plain.connect(str(sockets / "plain.sock"))
        node.succeed(
            f"for d in /sys/class/virtio-ports/*; do [ $(cat $d/name) = {PLAIN_PORT} ] && "
            "p=/dev/${d##*/}; done; setsid bash <>$p >&0 2>&1 &"
        )
        nixos = nixos_roundtrips(plain, args.calls)
        result["roundtrip_ours_ms"] = {
            "median": statistics.median(ours) * 1e3,
            "p95": pct(ours, 0.95) * 1e3,
            "max": max(ours) * 1e3,
            "command": 'succeed("true")',
        }
        result["roundtrip_nixos_protocol_ms"] = {
            "median": statistics.median(nixos) * 1e3,
            "p95": pct(nixos, 0.95) * 1e3,
            "max": max(nixos) * 1e3,
            "command": "NixOS driver protocol on a plain bash: base64 pipe + PIPESTATUS trip",
        }
        latencies = []
        for attempt in range(args.notices):
            unit = f"bench-late-{attempt}"
            node.succeed(
                f"systemd-run --unit={unit} --no-block -p Type=oneshot -p RemainAfterExit=yes "
                "sleep 2"
            )
            node.wait_for_unit(unit)
            # Guest clocks only: CLOCK_MONOTONIC of activation vs uptime right after the wait.
            now, active = node.succeed(
                "read up _ < /proc/uptime; echo $up; "
                f"systemctl show -p ActiveEnterTimestampMonotonic --value {unit}"
            ).split()
            latencies.append(float(now) - int(active) / 1e6)
        result["wait_for_unit_notice_s"] = {
            "median": statistics.median(latencies),
            "max": max(latencies),
            "samples": len(latencies),
            "note": "guest monotonic clock; includes one extra round trip (~5 ms)",
        }
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        try:
            node.wait_until_succeeds("test -e /run/never-created", timeout=30)
        except Exception:
            pass
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
        result["driver_cpu_percent_while_waiting"] = 100 * cpu / (time.monotonic() - t0)
        # Same argv, same VLAN switch, with and without the driver, alternating; the cold
        # first boot above is left out of both sides, so both have args.boots samples.
        driver_boots: list[float] = []
        bare_boots: list[float] = []
        for _ in range(args.boots):
            node.shutdown()
            bare_boots.append(bare_boot(state / "node01"))
            t0 = time.monotonic()
            node.start(fresh_disks=True)
            node.connect()
            driver_boots.append(time.monotonic() - t0)
        node.shutdown()
        result["driver_boot_to_backdoor_s"] = summary(driver_boots)
        result["bare_qemu_boot_to_backdoor_s"] = summary(bare_boots)
    finally:
        driver.cleanup()
    result["driver_boot_overhead_percent"] = 100 * (
        statistics.median(driver_boots) / statistics.median(bare_boots) - 1
    )
    write(args.out, result)


if __name__ == "__main__":
    main()
