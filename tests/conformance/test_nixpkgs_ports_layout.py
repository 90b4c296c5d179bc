"""The nixpkgs ports of tests/nixpkgs/ (run by test_nixpkgs_ports.py), checked without
booting anything: each is complete, names its upstream commit, and its topology loads;
together they stay within the image budget."""

from __future__ import annotations

import re
from pathlib import Path

from driver.config.topology import load_topology

PORTS_DIR = Path(__file__).resolve().parent.parent / "nixpkgs"
PORTS = sorted(p for p in PORTS_DIR.iterdir() if p.is_dir() and not p.name.startswith("."))
PORT_FILES = ("test_script.py", "topology.toml", "UPSTREAM.md")
COMMIT = re.compile(r"\b[0-9a-f]{40}\b")
# Each distinct package set is one image build (about a minute) in a cold CI.
MAX_PACKAGE_SETS = 5


def test_every_port_is_complete() -> None:
    """Script, topology and UPSTREAM.md in each port; UPSTREAM.md names the upstream
    path and the nixpkgs commit; the topology loads and has nodes."""
    assert len(PORTS) >= 8, [p.name for p in PORTS]
    assert (PORTS_DIR / "LICENSE").is_file()
    for port in PORTS:
        missing = [name for name in PORT_FILES if not (port / name).is_file()]
        assert not missing, f"{port.name}: missing {missing}"
        upstream = (port / "UPSTREAM.md").read_text()
        assert COMMIT.search(upstream), f"{port.name}/UPSTREAM.md names no 40-hex commit"
        assert "nixos/tests/" in upstream, f"{port.name}/UPSTREAM.md names no upstream path"
        topology = load_topology(port / "topology.toml")
        assert topology.nodes, f"{port.name}: the topology has no nodes"


def test_ports_share_few_package_sets() -> None:
    """All ports together use at most MAX_PACKAGE_SETS package sets (none counts as one)."""
    sets = {
        tuple(sorted(node.config.packages))
        for port in PORTS
        for node in load_topology(port / "topology.toml").nodes.values()
    }
    assert len(sets) <= MAX_PACKAGE_SETS, sorted(sets)
