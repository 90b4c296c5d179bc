"""A script that ends itself (``sys.exit``, ``os._exit``) or raises KeyboardInterrupt: the
exit code and the JUnit ``main`` case agree, no traceback, nothing left (issue 36). The
parametrised scripts touch no node, so nothing boots; one ``os._exit`` runs with a booted
guest."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import leftovers, photon_cli, photon_env
from driver.images.builder import Image
from driver.run.driver import socket_parent, socket_prefix
from junit_schema import junit_cases

CASES = {
    "exit-0": ('print("before")\nimport sys\nsys.exit(0)\nraise RuntimeError("not reached")\n', 0),
    "exit-none": ("import sys\nsys.exit()\n", 0),
    "exit-5": ("import sys\nsys.exit(5)\n", 5),
    "exit-text": ('import sys\nsys.exit("giving up")\n', 1),
    "keyboard-interrupt": ("raise KeyboardInterrupt\n", 1),
    # os._exit would end the driver's own process: no cleanup, no JUnit (issue 36).
    "os-exit-5": ('import os\nos._exit(5)\nraise RuntimeError("not reached")\n', 5),
    "os-exit-global": ("os._exit(6)\n", 6),
    "os-exit-0": ('from os import _exit\n_exit(0)\nraise RuntimeError("not reached")\n', 0),
    "os-exit-uncaught": (
        'import os.path\ntry:\n    with must_raise("", SystemExit):\n        os._exit(4)\n'
        "except Exception:\n    pass\nraise RuntimeError('not reached')\n",
        4,
    ),
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
        if case.startswith("os-exit"):
            assert f"the script called os._exit({expected})" in errors[0], errors
    for state in (vm_dir / "runs").iterdir() if (vm_dir / "runs").exists() else []:
        assert leftovers(state) == []
        assert list(Path(socket_parent()).glob(f"{socket_prefix(state)}*")) == []


@pytest.mark.vm
def test_os_exit_with_a_booted_guest_cleans_up(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    """``os._exit(7)`` after the guest booted: exit 7, the JUnit ``main`` case says so, the
    subtest before it kept, and the run's QEMU, switch and socket directory are gone."""
    script = tmp_path / "t.py"
    script.write_text(
        'start_all()\nwith subtest("booted"):\n    node01.succeed("echo UP")\n'
        'import os\nos._exit(7)\nnode01.succeed("echo NOT-REACHED")\n'
    )
    junit = tmp_path / "junit.xml"
    proc = photon_cli(
        photon_env(xdg_cache, tmp_path / "vm"),
        "run",
        "--nodes",
        "node01",
        "--junit-xml",
        str(junit),
        str(script),
        profile="minimal",
        timeout=900,
    )
    assert proc.returncode == 7, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr and "NOT-REACHED" not in proc.stderr
    cases = junit_cases(junit)
    assert cases["booted"].find("failure") is None and cases["booted"].find("error") is None
    main = cases["main"].find("error")
    assert main is not None and "os._exit(7)" in (main.get("message") or ""), main
    runs = Path(f"{tmp_path / 'vm'}-minimal") / "runs"
    states = list(runs.iterdir())
    assert states
    for state in states:
        assert leftovers(state) == []
        assert list(Path(socket_parent()).glob(f"{socket_prefix(state)}*")) == []
