"""Container nodes (issue 32) on real guests: a systemd-nspawn node beside a QEMU node on one
VLAN, from the same Debian image, under the same DSL, run through the command line as a
user runs it; then the driver SIGKILLed in a mixed run and the next run clearing what it
left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import leftovers, photon_cli, photon_env
from driver.machine.cgroup import groups_named
from driver.run.driver import socket_prefix

pytestmark = pytest.mark.vm

TOPOLOGY = """
[[vlans]]
name = "lan"

[nodes.box]
kind = "container"
addresses = { lan = "10.0.9.1/24" }
forwards = [{ name = "web", guest_port = 8000 }]

[nodes.vm]
addresses = { lan = "10.0.9.2/24" }
"""

SCRIPT = r"""
start_all()
assert [m.name for m in machines_nspawn] == ["box"], machines_nspawn
assert [m.name for m in machines_qemu] == ["vm"], machines_qemu

with subtest("a container and a VM on one VLAN ping each other by name"):
    box.wait_for_unit("multi-user.target")
    vm.wait_for_unit("multi-user.target")
    box.wait_for_unit("systemd-networkd.service")
    assert box.succeed("hostname").strip() == "box"
    assert "10.0.9.1/24" in box.succeed("ip -o -4 addr show dev eth1")
    box.wait_until_succeeds("ping -c1 -W2 vm", timeout=60)
    vm.wait_until_succeeds("ping -c1 -W2 box", timeout=60)

with subtest("the DSL on the container: byte-exact output, status, in-guest timeout"):
    assert box.execute("printf 'a\\0b'") == (0, "a\0b")
    assert box.execute("exit 7")[0] == 7
    status, _ = box.execute("sleep 30", timeout=1)
    assert status == 124, status
    box.wait_for_open_port(22)
    box.succeed("systemd-run --unit=listen -- busybox httpd -f -p 8000 -h /etc")
    box.wait_for_open_port(8000)
    vm.wait_until_succeeds("busybox wget -q -O- http://box:8000/hostname | grep -qx box", timeout=60)

with subtest("a host forward reaches the container"):
    import urllib.request
    url = f"http://127.0.0.1:{box.host_port(8000)}/hostname"
    assert urllib.request.urlopen(url, timeout=30).read() == b"box\n"

with subtest("block and unblock the container's VLAN link"):
    box.block()
    box.succeed("ip link show eth1 | grep -q NO-CARRIER")
    vm.fail("ping -c1 -W1 box")
    box.unblock()
    vm.wait_until_succeeds("ping -c1 -W2 box", timeout=60)

with subtest("partition and heal between a container and a VM"):
    partition([box], [vm])
    vm.fail("ping -c1 -W1 box")
    box.fail("ping -c1 -W1 vm")
    heal()
    vm.wait_until_succeeds("ping -c1 -W2 box", timeout=60)

with subtest("delay: applied where the host kernel has netem, else one line saying so"):
    probe = "tc qdisc add dev lo root netem delay 0ms && tc qdisc del dev lo root"
    if box.execute(probe)[0] == 0:
        with delay(box, vm, 300):
            rtt = float(vm.succeed("ping -c1 -W5 box | sed -n 's/.*time=\\([0-9.]*\\).*/\\1/p'"))
            assert rtt >= 300, rtt
    else:
        with must_raise("box: delay needs a VM node; box is a container node .the host's kernel has no netem"):
            delay(box, vm, 300)
    vm.succeed("ping -c1 -W2 box")

with subtest("pause freezes every process of the container"):
    pause(box)
    vm.fail("ping -c1 -W1 box")
    resume(box)
    box.succeed("true")

with subtest("crash and start: the container's writes survive its power loss"):
    box.succeed("echo kept > /var/lib/marker && sync")
    box.crash()
    assert not box.is_up()
    box.start()
    box.wait_for_unit("multi-user.target")
    assert box.succeed("cat /var/lib/marker") == "kept\n"
    vm.wait_until_succeeds("ping -c1 -W2 box", timeout=60)

with subtest("what needs QEMU fails with one line naming the node"):
    with must_raise("box: QMP command 'human-monitor-command' needs a VM node; box is a container node"):
        box.send_monitor_command("info status")
"""


def _taps_and_mounts(run: Path) -> list[str]:
    """Mounts of the run's container directories, on the host (there should be none)."""
    mounts = Path("/proc/self/mountinfo").read_text()
    return [line for line in mounts.splitlines() if str(run) in line]


def _run(tmp_path: Path, xdg_cache: Path, script: str) -> subprocess.Popen[str]:
    (tmp_path / "topology.toml").write_text(TOPOLOGY)
    path = tmp_path / "test.py"
    path.write_text(script)
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "driver", "run"),
            *("--topology", str(tmp_path / "topology.toml"), str(path)),
            *("-o", str(tmp_path / "out")),
        ],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _nothing_left(runs: Path) -> None:
    """No process (QEMU, vde_switch, nspawn and the VLAN plugs name the run's socket
    directory), no container cgroup (the container's own processes), no mount."""
    for run in runs.iterdir():
        assert leftovers(run) == []
        assert groups_named(socket_prefix(run)) == []
        assert _taps_and_mounts(run) == []


def test_a_container_node_beside_a_vm_node(tmp_path: Path, xdg_cache: Path) -> None:
    proc = _run(tmp_path, xdg_cache, SCRIPT)
    out, _ = proc.communicate(timeout=1500)
    assert proc.returncode == 0, out[-4000:]
    assert "9 passed" in out, out[-3000:]
    console = (tmp_path / "vm" / "runs").glob("*/box/vm.log")
    assert any("systemd" in p.read_text(errors="replace") for p in console)
    _nothing_left(tmp_path / "vm" / "runs")


def test_sigkill_of_the_driver_then_the_next_run_clears_the_container(
    tmp_path: Path, xdg_cache: Path
) -> None:
    marker = tmp_path / "up"
    hang = f"start_all()\nbox.succeed('true')\nopen({str(marker)!r}, 'w').close()\nimport time\ntime.sleep(600)\n"
    proc = _run(tmp_path, xdg_cache, hang)
    deadline = time.monotonic() + 900
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate(timeout=60)[0][-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    # The container outlives nspawn's death signal (its init is in a PID namespace of its
    # own): the next run finds its group without an nspawn and kills it.
    after = _run(tmp_path, xdg_cache, "box.succeed('true')\n")
    out, _ = after.communicate(timeout=900)
    assert after.returncode == 0, out[-3000:]
    assert "left by a killed run" in out, out[-3000:]
    _nothing_left(tmp_path / "vm" / "runs")


@pytest.mark.cluster
def test_the_reference_cluster_in_mixed_form(tmp_path: Path, xdg_cache: Path) -> None:
    """``cluster start --containers``: the control plane and the gateway as containers, the
    workers VMs; the whole reference smoke on it (attached, as ``smoke`` does), ssh into a
    container through its host forward, then ``cluster stop``: nothing left."""
    vm_dir = tmp_path / "vm"
    env = photon_env(xdg_cache, vm_dir)
    try:
        proc = photon_cli(env, "cluster", "start", "--containers")
        assert proc.returncode == 0, proc.stderr[-4000:]
        record = json.loads((vm_dir / "cluster.json").read_text())["nodes"]
        accels = {name: node["accel"] for name, node in record.items()}
        assert [n for n, a in accels.items() if a == "nspawn"] == [
            "node01",
            "node02",
            "node03",
            "node06",
        ], accels
        junit = tmp_path / "junit.xml"
        smoke = photon_cli(env, "smoke", "--junit-xml", str(junit))
        assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
        assert "subtests: 8 passed, 0 failed" in smoke.stderr, smoke.stderr[-3000:]
        cases = list(ET.parse(junit).getroot().iter("testcase"))
        bad = [c.get("name") for c in cases if c.find("failure") is not None]
        assert len(cases) >= 8 and not bad, bad
        ssh = photon_cli(env, "ssh", "node02", "--", "hostname", timeout=120)
        assert ssh.returncode == 0 and ssh.stdout.strip() == "node02", ssh.stderr
        stop = photon_cli(env, "cluster", "stop", timeout=300)
        assert stop.returncode == 0, stop.stderr
        assert groups_named(socket_prefix(vm_dir)) == []
        assert leftovers(vm_dir) == []
        assert _taps_and_mounts(vm_dir) == []
    finally:
        photon_cli(env, "cluster", "clean", timeout=300)
