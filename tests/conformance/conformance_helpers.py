"""Running a NixOS-style test script through ``photon-driver run --topology`` as a user
would, and reading what it reported. The scripts of this suite are ours; each module checks
the behaviours that one file of the NixOS test driver's own suite
(nixos/tests/nixos-test-driver/ in nixpkgs) checks, on a topology with the node names used
there (``machine``; ``client`` + ``server``; none)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from conftest import leftovers, photon_env

TOPOLOGIES = Path(__file__).resolve().parent / "topologies"

# What every script of the suite starts with (the role of NixOS's common.py; ours).
PRELUDE = """
import contextlib
import subprocess
import time
from pathlib import Path

example_dir = Path(__file__).parent / "example-dir"
example_dir.mkdir(exist_ok=True)
example_file = example_dir / "example-file"
example_file.write_bytes(bytes(range(256)))


def same_on_host(a, b):
    subprocess.run(["cmp", str(a), str(b)], check=True)


@contextlib.contextmanager
def sleep_patched_out():
    real = time.sleep
    time.sleep = lambda seconds: None
    try:
        yield
    finally:
        time.sleep = real


start_all()
"""


@dataclass
class Outcome:
    """What a run left: exit code, stderr, JUnit testcases by name, the run's state."""

    code: int
    stderr: str
    cases: dict[str, ET.Element]
    state: Path

    def failed(self) -> list[str]:
        """Names of testcases with a failure or error."""
        return [
            name
            for name, case in self.cases.items()
            if case.find("failure") is not None or case.find("error") is not None
        ]


def run_script(
    tmp_path: Path,
    xdg_cache: Path,
    topology: str,
    body: str,
    timeout: float = 900.0,
    prelude: bool = True,
    kind: str = "vm",
) -> Outcome:
    """Write ``body`` (after the prelude) to a script in ``tmp_path`` and run it with
    ``photon-driver run --topology TOPOLOGY`` from ``tmp_path`` (not the checkout); with
    ``kind="container"`` every node of the topology is a container node."""
    topology_path = TOPOLOGIES / topology
    if kind == "container":
        topology_path = as_containers(topology_path, tmp_path)
    script = tmp_path / "test_script.py"
    script.write_text((PRELUDE if prelude else "") + textwrap.dedent(body))
    junit = tmp_path / "junit.xml"
    vm_dir = tmp_path / "vm"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driver",
            "run",
            "--topology",
            str(topology_path),
            str(script),
            "--junit-xml",
            str(junit),
        ],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cases = (
        {c.get("name", ""): c for c in ET.parse(junit).getroot().iter("testcase")}
        if junit.exists()
        else {}
    )
    state = vm_dir / "runs" / str(proc.pid)  # the topology's default profile: $PHOTON_VM_DIR
    assert leftovers(state) == [], "the run left processes behind"
    return Outcome(proc.returncode, err, cases, state)


def as_containers(topology: Path, tmp_path: Path) -> Path:
    """A copy of ``topology`` (and the files beside it) in ``tmp_path`` with every node a
    container node, its host forwards dropped (a container has none)."""
    folder = tmp_path / "topologies"
    shutil.copytree(TOPOLOGIES, folder, dirs_exist_ok=True)
    lines: list[str] = []
    for line in topology.read_text().splitlines():
        if line.startswith("forwards"):
            continue
        lines.append(line)
        if line.startswith("[nodes."):
            lines.append('kind = "container"')
    (folder / topology.name).write_text("\n".join(lines) + "\n")
    return folder / topology.name


def check_passed(outcome: Outcome, kind: str, vm_only: str = "", node: str = "machine") -> None:
    """Every subtest passed; on container nodes, the script ends at the subtest ``vm_only``
    (one that needs QEMU), which fails with the one line saying so."""
    if kind == "vm" or not vm_only:
        assert outcome.code == 0, outcome.stderr[-4000:]
        assert not outcome.failed()
        return
    assert outcome.code == 1, outcome.stderr[-4000:]
    assert outcome.failed() == [vm_only], outcome.failed()
    reason = (
        f"{node}: QMP command 'human-monitor-command' needs a VM node; {node} is a container node"
    )
    assert reason in outcome.stderr, outcome.stderr[-3000:]
