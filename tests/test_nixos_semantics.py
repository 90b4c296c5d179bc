"""A script written against the NixOS test driver's API runs here with the same meanings
(issue 9): tests/scripts/nixos_api.py, one minimal node, through the CLI."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, leftovers, photon_env
from driver.images.builder import Image
from test_cli import driver_cmd, run_state

pytestmark = pytest.mark.vm


def test_nixos_style_script_keeps_its_meaning(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        driver_cmd(
            "run",
            "--nodes",
            "node01",
            str(REPO / "tests/scripts/nixos_api.py"),
            "--junit-xml",
            str(junit),
        ),
        env=photon_env(xdg_cache, vm_dir),
        stderr=subprocess.PIPE,
        text=True,
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-4000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert len(cases) == 6 and "main" in cases  # five subtests and the whole run
    assert not [n for n, c in cases.items() if c.find("failure") is not None]
    assert leftovers(run_state(vm_dir, proc.pid)) == []
