"""Real NixOS tests from nixpkgs' nixos/tests/, run as written: each directory of
tests/nixpkgs/ holds one upstream testScript (Nix interpolations replaced by their values,
nothing else changed), a topology standing for the test's `nodes`, and UPSTREAM.md (the
upstream path and commit, what replaced what). Each runs through
``photon-driver run --topology`` from outside the checkout, as a user would. The layout
checks that boot nothing are in test_nixpkgs_ports_layout.py."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import leftovers, photon_env

pytestmark = pytest.mark.vm

PORTS_DIR = Path(__file__).resolve().parent.parent / "nixpkgs"
PORTS = sorted(p for p in PORTS_DIR.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.mark.parametrize("port", PORTS, ids=[p.name for p in PORTS])
def test_nixpkgs_port(port: Path, tmp_path: Path, xdg_cache: Path) -> None:
    """The upstream script passes on its topology, writes a JUnit report and leaves
    nothing running."""
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driver",
            "run",
            "--topology",
            str(port / "topology.toml"),
            str(port / "test_script.py"),
            "--junit-xml",
            str(junit),
        ],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    state = vm_dir / "runs" / str(proc.pid)  # the topology's default profile: $PHOTON_VM_DIR
    assert leftovers(state) == [], "the run left processes behind"
    assert proc.returncode == 0, err[-4000:]
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert cases, "the JUnit report has no testcase"
