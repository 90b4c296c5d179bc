"""Topology files a user writes (``--topology FILE``): every mistake is one line naming the
file and the field, exit 2, no traceback, nothing left behind; and the pre-check knows the
file's node names. The booting side is in tests/conformance/ (a `client`/`server` pair on a
VLAN called `lan`, one node called `machine`, no nodes at all)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import photon_env
from driver.config.topology import load_topology
from driver.errors import UsageError
from driver.scriptrun.script_check import check_script

GOOD = """
[[vlans]]
name = "lan"

[nodes.client]
addresses = { lan = "10.0.7.1/24" }

[nodes.server]
addresses = { lan = "10.0.7.2/24" }
"""

MALFORMED = {
    "invalid-toml": ("[nodes.client\n", r"invalid TOML"),
    "unknown-field": ("[nodes.a]\nmemroy_mib = 512\n", r"nodes\.a\.memroy_mib: unknown field"),
    "unknown-vlan": (
        '[nodes.a]\naddresses = { wan = "10.0.0.1/24" }\n',
        r"nodes\.a\.addresses\.wan: unknown VLAN 'wan'",
    ),
    "address-without-prefix": (
        '[[vlans]]\nname = "lan"\n[nodes.a]\naddresses = { lan = "10.0.0.1" }\n',
        r"nodes\.a\.addresses\.lan: bad address '10\.0\.0\.1' \(want ADDRESS/PREFIX\)",
    ),
    "duplicate-address": (
        '[[vlans]]\nname = "lan"\n[nodes.a]\naddresses = { lan = "10.0.0.1/24" }\n'
        '[nodes.b]\naddresses = { lan = "10.0.0.1/24" }\n',
        r"nodes\.b\.addresses\.lan: duplicate address 10\.0\.0\.1 \(also a\)",
    ),
    "zero-vcpus": ("[nodes.a]\nvcpus = 0\n", r"nodes\.a\.vcpus: must be 1-64, got 0"),
    "memory-as-text": ('[nodes.a]\nmemory_mib = "512"\n', r"nodes\.a\.memory_mib: must be int"),
    "duplicate-vlan": (
        '[[vlans]]\nname = "lan"\n[[vlans]]\nname = "lan"\n',
        r"vlans\[1\]\.name: duplicate VLAN name 'lan'",
    ),
    "image-file-outside": (
        '[images.default]\nfiles = { "/etc/x" = "../../../../../../etc/hostname" }\n',
        r"images\.default\.files\./etc/x: \.\./.*hostname is outside the topology's folder",
    ),
    "image-file-absolute": (
        '[images.default]\nfiles = { "/etc/x" = "/etc/passwd" }\n',
        r"images\.default\.files\./etc/x: /etc/passwd is outside the topology's folder",
    ),
    "node-file-outside": (
        '[nodes.a]\nfiles = { "/etc/x" = "/etc/passwd" }\n',
        r"nodes\.a\.files\./etc/x: /etc/passwd is outside the topology's folder",
    ),
    "service-file-outside": (
        '[nodes.a]\n[profiles.p]\nimage = "default"\n[[profiles.p.services]]\nname = "s"\n'
        'unit = "s.service"\nnodes = ["a"]\nfiles = { "/etc/x" = "/etc/passwd" }\n',
        r"profiles\.p\.services\[0\]\(s\)\.files\./etc/x: /etc/passwd is outside",
    ),
    "bad-package": (
        '[images.default]\npackages = ["python3; rm -rf /"]\n',
        r"images\.default\.packages\[0\]: not a package or unit name",
    ),
    "missing-file": (
        '[images.default]\nfiles = { "/etc/x.conf" = "nowhere.conf" }\n',
        r"images\.default\.files\./etc/x\.conf: file nowhere\.conf not found",
    ),
    "relative-guest-path": (
        '[images.default]\nfiles = { "etc/x.conf" = { content = "x" } }\n',
        r"images\.default\.files\.etc/x\.conf: the guest path must be absolute",
    ),
    "node-name": ("[nodes.bad_name]\n", r"nodes\.bad_name: a node name must be a hostname"),
    "forward-port": (
        '[nodes.a]\nforwards = [{ name = "x", guest_port = 70000 }]\n',
        r"nodes\.a\.forwards\[0\]\.guest_port: bad port 70000",
    ),
    "nodes-not-a-table": ('nodes = "client"\n', r"nodes: must be dict"),
    "unknown-role": ('[nodes.a]\nrole = "wrker"\n', r"nodes\.a\.role: unknown role 'wrker'"),
    "tiny-memory": (
        "[nodes.a]\nmemory_mib = 16\n",
        r"nodes\.a\.memory_mib: must be 128-65536, got 16",
    ),
    "network-address": (
        '[[vlans]]\nname = "lan"\n[nodes.a]\naddresses = { lan = "10.0.0.0/24" }\n',
        r"nodes\.a\.addresses\.lan: 10\.0\.0\.0/24 is the network's own or broadcast address",
    ),
    "broadcast-address": (
        '[[vlans]]\nname = "lan"\n[nodes.a]\naddresses = { lan = "10.0.0.255/24" }\n',
        r"nodes\.a\.addresses\.lan: 10\.0\.0\.255/24 is the network's own or broadcast",
    ),
    "duplicate-forward-name": (
        '[nodes.a]\nforwards = [{ name = "x", guest_port = 80 }, { name = "x", guest_port = 81 }]\n',
        r"nodes\.a\.forwards\[1\]\.name: duplicate forward name 'x' on this node",
    ),
    "unknown-kind": (
        '[nodes.a]\nkind = "docker"\n',
        r"nodes\.a\.kind: must be one of: vm, container \(got 'docker'\)",
    ),
    "kind-as-number": ("[nodes.a]\nkind = 1\n", r"nodes\.a\.kind: must be str"),
    "container-nesting-vms": (
        '[nodes.a]\nkind = "container"\nnested_virtualisation = true\n',
        r"nodes\.a\.kind: a container node has no kernel of its own to nest VMs in",
    ),
    "host-port-twice": (
        '[nodes.a]\nforwards = [{ name = "x", guest_port = 80, host_port = 18080 }]\n'
        '[nodes.b]\nforwards = [{ name = "x", guest_port = 80, host_port = 18080 }]\n',
        r"nodes\.b\.forwards\[0\]\.host_port: host tcp port 18080 is already forwarded by "
        r"nodes\.a\.forwards\[0\]",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_topology_is_one_line_exit_2(case: str, tmp_path: Path, xdg_cache: Path) -> None:
    text, message = MALFORMED[case]
    topology = tmp_path / "lab.toml"
    topology.write_text(text)
    script = tmp_path / "t.py"
    script.write_text("start_all()\n")
    vm_dir = tmp_path / "vm"
    proc = subprocess.run(
        [sys.executable, "-m", "driver", "run", "--topology", str(topology), str(script)],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {topology}: "), lines[0]
    assert __import__("re").search(message, lines[0]), lines[0]
    assert not list(tmp_path.glob("vm*")), "a rejected topology left state behind"


def test_not_utf8_and_directory(tmp_path: Path) -> None:
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[nodes]\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_topology(binary)
    with pytest.raises(UsageError, match="is a directory"):
        load_topology(tmp_path)


def test_defaults_of_a_short_topology(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(GOOD + '\n[nodes.lonely]\n[images.default]\npackages = ["python3"]\n')
    topology = load_topology(path)
    assert list(topology.profiles) == ["default"]
    assert topology.default_profile() == "default"
    assert topology.profile("default").image == "default"
    assert topology.images["default"]["packages"] == ["python3"]
    assert topology.vlans == {"lan": 1}
    client, lonely = topology.nodes["client"], topology.nodes["lonely"]
    assert (client.vcpus, client.memory_mib, client.role) == (1, 512, "node")
    assert client.address() == "10.0.7.1" and client.address("lan") == "10.0.7.1"
    assert lonely.address() == "" and lonely.addresses == {}
    assert topology.boot_groups() == [["client", "server", "lonely"]]


def test_several_vlans_and_inline_files(tmp_path: Path) -> None:
    from driver.images.profile_specs import image_files

    path = tmp_path / "lab.toml"
    path.write_text(
        '[[vlans]]\nname = "front"\n[[vlans]]\nname = "back"\nid = 7\n'
        '[nodes.router]\naddresses = { front = "10.1.0.1/24", back = "10.2.0.1/24" }\n'
        '[images.default]\nfiles = { "/usr/local/bin/hi" = { content = "#!/bin/sh\\necho hi\\n",'
        ' mode = "0755" }, "/etc/motd" = "motd" }\n'
    )
    (tmp_path / "motd").write_text("welcome\n")
    topology = load_topology(path)
    assert topology.vlans == {"front": 1, "back": 7}
    assert topology.nodes["router"].address("back") == "10.2.0.1"
    files = image_files(topology, "default")
    assert files["usr/local/bin/hi"] == (b"#!/bin/sh\necho hi\n", 0o755)
    assert files["etc/motd"] == (b"welcome\n", 0o644)


def test_precheck_knows_the_topology_nodes(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(GOOD)
    topology = load_topology(path)
    nodes = list(topology.nodes)
    script = Path("t.py")
    check_script(script, "client.succeed('true')\nserver.block()\nvlan1\n", nodes, topology)
    with pytest.raises(UsageError, match="undefined name 'machine'"):
        check_script(script, "machine.succeed('true')\n", nodes, topology)
    with pytest.raises(UsageError, match=r"t.py:1: unknown node 'node01'"):
        check_script(script, "node01.succeed('true')\n", nodes, topology)
