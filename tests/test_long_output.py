"""A command's long output on a real guest (issue 36): the script gets all of it, the records
keep a bounded part, and the whole of a failed command's stdout and of a long stderr is in a
file under the output directory, named where the excerpt is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import leftovers, photon_env

pytestmark = pytest.mark.vm

SCRIPT = """
start_all()
ok = machine.succeed("head -c 300000 /dev/zero | tr '\\\\0' o")
assert ok == "o" * 300000, len(ok)
with subtest("long and failing"):
    machine.succeed("head -c 300000 /dev/zero | tr '\\\\0' x; head -c 100000 /dev/zero | tr '\\\\0' y >&2; exit 1")
"""


def test_long_output_is_whole_for_the_script_and_bounded_in_the_records(
    tmp_path: Path, xdg_cache: Path
) -> None:
    (tmp_path / "t.toml").write_text("[nodes.machine]\nvlans = [1]\n")
    (tmp_path / "t.py").write_text(SCRIPT)
    out, vm_dir = tmp_path / "out", tmp_path / "vm"
    proc = subprocess.run(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py", "-o", str(out)],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    kept = sorted(p.name for p in (out / "outputs").iterdir())
    # The passing command's stdout is not kept; the failing one's is, and its stderr.
    assert [k for k in kept if k.endswith(".stdout")] == ["machine-1.stdout"], kept
    assert (out / "outputs" / "machine-1.stdout").read_bytes() == b"x" * 300000
    stderr_files = [k for k in kept if k.endswith(".stderr")]
    assert len(stderr_files) == 1, kept
    assert (out / "outputs" / stderr_files[0]).read_bytes() == b"y" * 100000
    events = (out / "events.jsonl").read_text().splitlines()
    assert all(len(line) < 80_000 for line in events), max(len(line) for line in events)
    parsed = [json.loads(e) for e in events]
    failed = [e for e in parsed if e["kind"] == "command" and "exit 1" in e.get("command", "")]
    assert failed and "all of it in outputs/machine-1.stdout" in failed[-1]["stdout"]
    assert "outputs/machine-1.stdout" in (out / "report.html").read_text()
    for state in (vm_dir / "runs").iterdir() if (vm_dir / "runs").exists() else []:
        assert leftovers(state) == []
