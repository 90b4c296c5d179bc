"""A non-editable install works from any directory (issue 8): the topology, node files and
test scripts ship with the package. Node specs prebuilt elsewhere (as the flake builds them)
give a cluster that can be attached to and reached over SSH (the key is provisioned)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.config.topology import load_topology
from driver.images.builder import Image
from driver.images.profile_specs import debian_specs
from driver.log import Logger

SCRIPT = """start_all()
with subtest("identity"):
    t.assertEqual(node01.succeed("hostname").strip(), "node01")
"""


@pytest.mark.vm
def test_installed_package_and_prebuilt_specs(
    tmp_path: Path,
    xdg_cache: Path,
    cache_root: Path,
    installed_driver: Path,
    minimal_image: tuple[Image, float],
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = elsewhere / "one.py"
    script.write_text(SCRIPT)
    env = photon_env(xdg_cache, tmp_path / "vm")
    state = Path(f"{tmp_path / 'vm'}-minimal")

    def photon(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = [str(installed_driver), "--profile", "minimal", *args]
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=elsewhere, timeout=timeout
        )

    fresh = photon("run", "--nodes", "node01", str(script))
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "1 passed, 0 failed" in fresh.stdout + fresh.stderr

    # Specs built elsewhere, whose image does not carry this state dir's SSH key.
    topology = load_topology()
    built = debian_specs(
        topology, topology.profile("minimal"), tmp_path / "b", cache_root, Logger(), ["node01"]
    )
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    doc = json.loads(built["node01"].to_json())
    doc["meta"]["provision_ssh_key"] = True
    (spec_dir / "node01.json").write_text(json.dumps(doc))
    try:
        start = photon("--specs", str(spec_dir), "cluster", "start")
        assert start.returncode == 0, start.stderr[-3000:]
        assert json.loads((state / "node01" / "spec.json").read_text())["name"] == "node01"
        reuse = photon("run", "--reuse", str(script))
        assert reuse.returncode == 0, reuse.stderr[-3000:]
        ssh = photon("ssh", "node01", "--", "hostname", timeout=120)
        assert (ssh.returncode, ssh.stdout.strip()) == (0, "node01"), ssh.stderr
        assert photon("cluster", "stop").returncode == 0
    finally:
        photon("cluster", "clean")
        assert leftovers(state) == []
