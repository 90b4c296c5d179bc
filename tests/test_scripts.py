"""Every test script passes the pre-boot check against its profile, and its helper calls
resolve against the topology (ports, paths, CLIs declared in nodes/cluster.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO
from driver.config.topology import load_topology
from driver.errors import UsageError
from driver.scripting.photoncloud import cli
from driver.scriptrun.script_check import check_script

SCRIPTS = sorted((REPO / "testscripts").rglob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_script_passes_check(script: Path) -> None:
    topology = load_topology()
    profile = "reference" if "reference" in script.parts else "photoncloud"
    if script.name == "minimal.py":
        profile = "minimal"
    check_script(script, script.read_text(), list(topology.nodes), topology, profile)
    if "node01" in script.read_text():
        with pytest.raises(UsageError, match=r"unknown node 'node0[1-5]' \(not part of this run"):
            check_script(script, script.read_text(), ["node06"], topology, profile)


def test_photoncloud_helper_calls_resolve() -> None:
    profile = load_topology().profile("photoncloud")
    for service, action in [
        ("chainfire", "members"),
        ("chainfire", "put"),
        ("flaredb", "get"),
        ("iam", "members"),
        ("plasmavmc", "create_vm"),
        ("prismnet", "ports"),
        ("flashdns", "query"),
        ("creditservice", "iam_status"),
    ]:
        assert cli(profile, service, action, "k").endswith(" k")
    for service, endpoint in [
        ("apigateway", "http"),
        ("nightlight", "http"),
        ("coronafs", "export"),
        ("lightningstor", "s3"),
        ("k8shost", "api"),
        ("fiberlb", "api"),
    ]:
        assert profile.service(service).endpoint(endpoint).port > 0
