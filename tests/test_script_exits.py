"""A script that ends itself (``sys.exit``) or raises KeyboardInterrupt: the exit code and
the JUnit ``main`` case agree, no traceback, nothing left (issue 36). The scripts touch no
node, so nothing boots."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import leftovers, photon_env

CASES = {
    "exit-0": ('print("before")\nimport sys\nsys.exit(0)\nraise RuntimeError("not reached")\n', 0),
    "exit-none": ("import sys\nsys.exit()\n", 0),
    "exit-5": ("import sys\nsys.exit(5)\n", 5),
    "exit-text": ('import sys\nsys.exit("giving up")\n', 1),
    "keyboard-interrupt": ("raise KeyboardInterrupt\n", 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_code_and_junit_agree(case: str, tmp_path: Path, xdg_cache: Path) -> None:
    source, expected = CASES[case]
    (tmp_path / "t.toml").write_text("[nodes.machine]\nvlans = [1]\n")
    (tmp_path / "t.py").write_text(source)
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "driver",
            "run",
            "--topology",
            "t.toml",
            "t.py",
            "--junit-xml",
            str(junit),
        ],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == expected, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    failing = [
        case
        for case in ET.parse(junit).getroot().iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    if expected == 0:
        assert failing == [], ET.tostring(ET.parse(junit).getroot()).decode()
        assert "not reached" not in proc.stderr
    else:
        assert [c.get("name") for c in failing] == ["main"]
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert errors, proc.stderr
    for state in (vm_dir / "runs").iterdir() if (vm_dir / "runs").exists() else []:
        assert leftovers(state) == []
