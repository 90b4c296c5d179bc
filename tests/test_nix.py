"""Nix files: every .nix parses, and the topology evaluates under Nix to what Python reads."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib

import pytest

from conftest import REPO

pytestmark = pytest.mark.skipif(
    shutil.which("nix-instantiate") is None, reason="nix-instantiate missing (Debian nix-bin)"
)


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO) for p in REPO.rglob("*.nix")))
def test_nix_file_parses(path: str) -> None:
    proc = subprocess.run(["nix-instantiate", "--parse", str(REPO / path)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_topology_evaluates_to_the_python_data() -> None:
    proc = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", str(REPO / "nodes" / "topology.nix")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from_nix = json.loads(proc.stdout)
    from_python = tomllib.loads((REPO / "nodes" / "cluster.toml").read_text())
    assert from_nix == from_python
