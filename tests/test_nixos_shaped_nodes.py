"""Nodes shaped like NixOS test nodes (issue 30) and the DSL's results made NixOS's (issue
35), on real guests: one run of a two-node topology on two VLANs, written as a user writes
it, whose script begins with a command on a node (no start_all first) and checks NIC
numbering, block(), the login environment, stderr on the console, every per-node topology
field, and the calls whose results now match the NixOS driver's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import leftovers, photon_env

pytestmark = pytest.mark.vm

# The router's packages are the conformance topologies' image packages: one image for both.
TOPOLOGY = """
[[vlans]]
name = "lan"

[[vlans]]
name = "back"

[nodes.router]
addresses = { lan = ["10.0.7.1/24", "10.0.7.100/24"], back = "10.0.8.1/24" }
packages = ["python3", "python-is-python3", "iptables"]
sysctl = { "net.ipv4.ip_forward" = "1" }
environment = { GREETING = "hello from the topology" }
service_environment = { SVC_VAR = "for services" }
users.alice = { uid = 1500, groups = ["wheel", "web"], password = "secret" }
files."/etc/price.txt" = { content = "costs $5 and ${HOME}\\n" }
files."/etc/price-link" = { symlink = "/etc/price.txt" }
files."/etc/alice-only" = { content = "private\\n", mode = "0600", owner = "alice", group = "web" }
files."/run/runtime.txt" = { content = "at runtime\\n" }
files."/etc/templated" = { content = "I am $node at $address\\n", template = true }
files."/etc/profile.d/fromfile.sh" = { content = "export FROMFILE=yes\\n" }
files."/etc/systemd/system/hello.service" = { source = "hello.service" }
enable_units = ["hello.service"]
unit_aliases = { "greeter.service" = "hello.service" }
mask_units = ["cron.service"]
setup = "echo ran > /var/lib/setup-marker"

[nodes.client]
addresses = { back = "10.0.8.2/24" }
default_gateway = "10.0.8.1"
disable_units = ["ssh.service"]
"""

HELLO = """[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo $SVC_VAR > /run/hello.out'
[Install]
WantedBy=multi-user.target
"""

SCRIPT = r"""
import time

# The first statement is a command on a node with VLAN NICs: its switches exist already.
client.succeed("true")
router.start()
start_all()

with subtest("NICs numbered as on NixOS: eth0 user-mode, eth1/eth2 the VLANs in order"):
    links = router.succeed("ip -o link show | awk -F': ' '{print $2}'").split()
    assert links[:4] == ["lo", "eth0", "eth1", "eth2"], links
    assert "10.0.2.15/" in router.succeed("ip -o -4 addr show dev eth0")
    eth1 = router.succeed("ip -o -4 addr show dev eth1")
    assert "10.0.7.1/24" in eth1 and "10.0.7.100/24" in eth1, eth1
    assert "10.0.8.1/24" in router.succeed("ip -o -4 addr show dev eth2")

with subtest("block() cuts the first VLAN NIC only"):
    client.succeed("ping -c1 -W5 10.0.8.1")
    router.block()
    router.succeed("ip link show eth1 | grep -q NO-CARRIER")
    router.succeed("! ip link show eth2 | grep -q NO-CARRIER")
    router.succeed("! ip link show eth0 | grep -q NO-CARRIER")
    router.unblock()
    router.wait_until_succeeds("! ip link show eth1 | grep -q NO-CARRIER", timeout=30)

with subtest("login environment and stderr on the console"):
    assert router.succeed("echo $GREETING").strip() == "hello from the topology"
    assert router.succeed("echo $FROMFILE").strip() == "yes"
    assert router.succeed("pwd").strip() == "/tmp"
    router.succeed("echo X-STDERR-MARK-1 >&2")
    router.wait_for_console_text("X-STDERR-MARK-1", timeout=10)
    assert "X-STDERR-MARK-1" in router.get_console_log()
    try:
        router.succeed("echo quoted-in-failure >&2; false")
    except AssertionError as exc:
        assert "quoted-in-failure" in str(exc), exc
    else:
        raise RuntimeError("succeed('false') did not raise an AssertionError")

with subtest("per-node files, users, units, setup hook"):
    assert router.succeed("cat /etc/price.txt") == "costs $5 and ${HOME}\n"
    assert router.succeed("readlink /etc/price-link").strip() == "/etc/price.txt"
    assert router.succeed("stat -c '%a %U %G' /etc/alice-only").strip() == "600 alice web"
    assert router.succeed("cat /run/runtime.txt") == "at runtime\n"
    assert router.succeed("cat /etc/templated") == "I am router at 10.0.7.1\n"
    assert router.succeed("id -u alice").strip() == "1500"
    assert set(router.succeed("id -nG alice").split()) == {"alice", "wheel", "web"}
    assert router.succeed("cat /var/lib/setup-marker") == "ran\n"
    router.wait_for_unit("hello.service")
    assert router.succeed("cat /run/hello.out") == "for services\n"
    router.succeed("systemctl is-active greeter.service")
    assert router.succeed("systemctl is-enabled cron.service || true").strip() == "masked"
    assert client.succeed("systemctl is-active ssh.service || true").strip() == "inactive"
    client.succeed("systemctl start ssh.service")
    router.succeed("python3 -c 'print(1)'")
    client.fail("command -v python3")
    assert router.succeed("sysctl -n net.ipv4.ip_forward").strip() == "1"

with subtest("default gateway and routes"):
    assert "default via 10.0.8.1 dev eth1" in client.succeed("ip route")
    client.succeed("ping -c1 -W5 10.0.7.100")

with subtest("results as the NixOS driver gives them"):
    began = time.monotonic()
    status, out = router.execute("sleep 3; echo ok", timeout=2.5)
    assert status == 124 and out == "", (status, out)
    assert time.monotonic() - began < 2.8, time.monotonic() - began
    assert router.execute("sleep 1.2; echo done", timeout=0) == (0, "done\n")
    assert router.execute("if then")[0] == 2
    began = time.monotonic()
    assert router.execute("kill -TERM $$") == (143, "")
    assert time.monotonic() - began < 1.0, time.monotonic() - began
    assert router.succeed("echo next") == "next\n"
"""


def test_a_nixos_shaped_two_node_topology(tmp_path: Path, xdg_cache: Path) -> None:
    (tmp_path / "topology.toml").write_text(TOPOLOGY)
    (tmp_path / "hello.service").write_text(HELLO)
    script = tmp_path / "test.py"
    script.write_text(SCRIPT)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "driver", "run"),
            *("--topology", str(tmp_path / "topology.toml"), str(script)),
            *("--junit-xml", str(junit), "-o", str(tmp_path / "out")),
        ],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    state = tmp_path / "vm" / "runs"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "6 passed" in proc.stdout + proc.stderr or junit.read_text().count("<testcase") >= 6
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").open()]
    # stderr is in the event log (the console shows it); the run log does not print it twice
    assert any(e.get("text") == "X-STDERR-MARK-1" and e["kind"] == "stderr" for e in events)
    for run in state.iterdir():
        assert leftovers(run) == []
