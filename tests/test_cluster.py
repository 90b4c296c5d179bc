"""The six-node reference cluster, booted once: detached start, the reference smoke on it
(the installed seed verb; JUnit: one testcase per layer; its report), faults, a benchmark
verb, status, ssh, stop, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, photon_cli, photon_env, qemu_pids
from driver.wait import wait_until

SMOKE = REPO / "testscripts" / "reference" / "smoke.py"


photon = photon_cli  # the reference profile


@pytest.mark.vm
@pytest.mark.cluster
def test_reference_cluster_lifecycle(
    tmp_path: Path, xdg_cache: Path, installed_driver: Path
) -> None:
    vm_dir = tmp_path / "vm"
    state = vm_dir  # the default profile's state is $PHOTON_VM_DIR itself
    env = photon_env(xdg_cache, vm_dir)
    timings: dict[str, float] = {}
    try:
        started = time.monotonic()
        proc = photon(env, "cluster", "start")
        timings["start_to_ready_s"] = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr[-4000:]
        record = json.loads((state / "cluster.json").read_text())["nodes"]
        control_ready = max(record[n]["ready_wall"] for n in ("node01", "node02", "node03"))
        workers_started = min(record[n]["started_wall"] for n in ("node04", "node05"))
        assert control_ready <= workers_started, "workers started before the control plane"
        # The gateway depends on the control plane only (nodes/cluster.toml): it starts once
        # the control plane's shells answer, together with the workers, not after them.
        gateway_started = record["node06"]["started_wall"]
        assert control_ready <= gateway_started, "the gateway started before the control plane"
        assert gateway_started < min(record[n]["ready_wall"] for n in ("node04", "node05"))
        for node in ("node01", "node04", "node06"):
            assert f"  {node}" in proc.stdout and " up " in proc.stdout
            assert (state / node / "vm.log").exists()

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        # The smoke once (it is the suite's longest step): the seed verb, from a
        # non-editable install, outside the checkout. `run --reuse SCRIPT` from the checkout
        # is the trivial script below.
        junit = tmp_path / "junit.xml"
        started = time.monotonic()
        argv = [str(installed_driver), "--profile", "reference", "smoke"]
        proc = subprocess.run(
            [*argv, "--junit-xml", str(junit)],
            capture_output=True,
            text=True,
            env=env,
            cwd=elsewhere,
            timeout=2400,
        )
        timings["smoke_reuse_s"] = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr[-6000:]
        cases = list(ET.parse(junit).getroot().iter("testcase"))
        assert len(cases) == 9  # eight layers and the whole-run "main" case
        assert not [c for c in cases if c.find("failure") is not None]
        assert all(float(c.get("time", "0")) > 0 for c in cases)
        # Its report: one timeline row per node, every layer's subtest, nothing failing.
        page = (state / "out" / "report.html").read_text()
        assert page.count('class="row node-row"') == 6 and 'id="failure"' not in page
        assert 'id="count-passed">8 passed' in page

        # One layer of the smoke again (--subtest): the others skipped with the reason.
        junit = tmp_path / "one-layer.xml"
        proc = photon(env, "smoke", "--subtest", "^replicated state", "--junit-xml", str(junit))
        assert proc.returncode == 0, proc.stderr[-6000:]
        assert "subtests: 1 passed, 0 failed, 7 skipped" in proc.stderr
        reasons = [
            skip.get("message")
            for case in ET.parse(junit).getroot().iter("testcase")
            if (skip := case.find("skipped")) is not None
        ]
        assert reasons == ["not selected by --subtest '^replicated state'"] * 7

        # Faults between named nodes on the running cluster (the `faults` seed verb).
        junit = tmp_path / "faults.xml"
        started = time.monotonic()
        proc = photon(env, "faults", "--junit-xml", str(junit))
        timings["faults_reuse_s"] = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr[-6000:]
        cases = list(ET.parse(junit).getroot().iter("testcase"))
        assert len(cases) == 6 and not [c for c in cases if c.find("failure") is not None]
        assert "fault: partition node01 | node02,node03" in proc.stderr
        assert "undo fault: partition node01 | node02,node03" in proc.stderr

        # A run killed in the middle of a command (SIGKILL: it sends no cancel). The guest
        # ends the command when its client goes away, so the next run is not queued behind
        # it and the command is gone.
        hung = tmp_path / "hung.py"
        hung.write_text(
            "node04.succeed('touch /tmp/hung-started; echo HUNG-STARTED >/dev/ttyS0; sleep 4441',"
            " timeout=3000)\n"
        )
        console = state / "node04" / "vm.log"
        console_before = console.stat().st_size
        hung_log = tmp_path / "hung.log"
        with hung_log.open("w") as log:
            killed = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "driver",
                    "--profile",
                    "reference",
                    "run",
                    "--reuse",
                    str(hung),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            # The guest runs the command: it said so on its console.
            wait_until(lambda: b"HUNG-STARTED" in console.read_bytes()[console_before:], 120, 0.2)
        finally:
            killed.kill()
            killed.wait()
        trivial = tmp_path / "trivial.py"
        trivial.write_text(
            "node04.succeed('test -e /tmp/hung-started')\n"
            "node04.fail(\"pgrep -f 'sleep 4441'\")\n"
            "for m in machines:\n    m.succeed('true')\n"
        )
        started = time.monotonic()
        proc = photon(env, "run", "--reuse", str(trivial))
        timings["attach_six_and_one_command_each_s"] = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr[-3000:]

        # A benchmark verb from the installed package, outside the checkout: its report goes
        # to -o and nowhere else (not next to the script, not into the checkout's docs/).
        package = installed_driver.parent.parent / "lib"
        before = {p for p in package.rglob("*") if p.is_file()}
        docs = {p: p.stat().st_mtime for p in (REPO / "docs").iterdir()}
        reports = tmp_path / "reports"
        started = time.monotonic()
        bench = subprocess.run(
            [str(installed_driver), "--profile", "reference", "bench-storage", "-o", str(reports)],
            capture_output=True,
            text=True,
            env=env,
            cwd=elsewhere,
            timeout=900,
        )
        timings["bench_storage_reuse_s"] = time.monotonic() - started
        assert bench.returncode == 0, bench.stderr[-4000:]
        assert {"storage-benchmarks.md", "storage-benchmarks.json"} <= {
            p.name for p in reports.iterdir()
        }
        assert {p for p in package.rglob("*") if p.is_file()} - before <= {
            p for p in package.rglob("*.pyc")
        }
        assert {p: p.stat().st_mtime for p in (REPO / "docs").iterdir()} == docs

        status = photon(env, "cluster", "status")
        assert status.returncode == 0
        lines = [ln for ln in status.stdout.splitlines() if ln.startswith("  node")]
        assert len(lines) == 6 and all(" up " in ln for ln in lines)
        assert "gateway-http=127.0.0.1:" in status.stdout

        ssh = photon(env, "ssh", "node04", "--", "hostname", timeout=120)
        assert ssh.returncode == 0, ssh.stderr
        assert ssh.stdout.strip() == "node04"

        proc = photon(env, "cluster", "stop", timeout=300)
        assert proc.returncode == 0, proc.stderr
        again = photon(env, "run", "--reuse", str(SMOKE), timeout=120)
        assert again.returncode == 2 and "no cluster is running" in again.stderr
    finally:
        photon(env, "cluster", "clean", timeout=300)
        assert qemu_pids(str(state)) == []
        # A benchmark run (PHOTON_BENCH_RESULTS=bench/results) keeps the timings; a plain
        # test run leaves the repository's files alone.
        results = os.environ.get("PHOTON_BENCH_RESULTS")
        if results:
            Path(results).mkdir(parents=True, exist_ok=True)
            timings_json = json.dumps(timings, indent=2) + "\n"
            (Path(results) / "reference-smoke-timings.json").write_text(timings_json)
