"""The cached settled cluster (``run --settled``, ``fresh-*``): the first run boots cold and
saves it, the next starts from it (the same kernel boot, clocks stepped); a snapshot with a
stale key is refused, a truncated or corrupt one falls back to a cold boot; ``clean`` removes
them. Real QEMU, two minimal nodes, through the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.images.builder import Image

PROBE = """import json, os, time
start_all()
found = {}
for m in machines:
    m.wait_for_unit("multi-user.target")
    samples = []
    for _ in range(3):
        sent = time.time()
        guest = float(m.succeed("echo $EPOCHREALTIME"))
        received = time.time()
        samples.append((received - sent, guest - (sent + received) / 2))
    found[m.name] = {
        "boot_id": m.succeed("cat /proc/sys/kernel/random/boot_id").strip(),
        "skew": min(samples)[1],
        "journal": m.succeed("journalctl -b -t photon-driver --no-pager -o cat || true"),
        "marker": m.execute("cat /var/tmp/settled-marker")[1],
    }
    m.succeed("echo written-after-settling > /var/tmp/settled-marker && sync")
with open(os.environ["PROBE_OUT"], "w") as handle:
    json.dump(found, handle)
"""


def run_settled(tmp: Path, xdg_cache: Path, label: str) -> tuple[dict, dict, str]:
    """One ``run --settled`` of the probe on node01+node02; returns (probe, report, stderr)."""
    script = tmp / "probe.py"
    script.write_text(PROBE)
    out = tmp / f"out-{label}"
    env = photon_env(xdg_cache, tmp / "vm") | {"PROBE_OUT": str(tmp / f"probe-{label}.json")}
    argv = [sys.executable, "-m", "driver", "--profile", "minimal", "run", "--settled"]
    proc = subprocess.run(
        [*argv, "--nodes", "node01,node02", "-o", str(out), str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = Path(f"{tmp / 'vm'}-minimal") / "runs"
    for run in state.iterdir():
        assert leftovers(run) == []
    probe = json.loads((tmp / f"probe-{label}.json").read_text())
    return probe, json.loads((out / "settled.json").read_text()), proc.stderr


def only_snapshot(root: Path) -> Path:
    found = [p for p in root.iterdir() if p.is_dir() and p.name != "keys"]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.vm
def test_settled_snapshot_restore_refuse_and_fall_back(
    tmp_path: Path, xdg_cache: Path, cache_root: Path, minimal_image: tuple[Image, float]
) -> None:
    root = cache_root / "settled" / "minimal"
    shutil.rmtree(root, ignore_errors=True)

    cold, report, _ = run_settled(tmp_path, xdg_cache, "cold")
    assert report["mode"] == "cold"
    saved = only_snapshot(root)
    manifest = json.loads((saved / "manifest.json").read_text())
    assert set(manifest["nodes"]) == {"node01", "node02"}
    # When each node froze (host time): a restore steps its clock by that much at once.
    for node in manifest["nodes"].values():
        assert manifest["created"] - 60 < node["frozen_at"] <= manifest["created"], manifest
    assert all(b > 0 for b in report["bytes_per_node"].values())

    restored, report, _ = run_settled(tmp_path, xdg_cache, "restored")
    assert report["mode"] == "restored"
    for node in ("node01", "node02"):
        # The same kernel boot (a cold boot has a new boot id), without what the cold run
        # wrote after the snapshot was taken, clock stepped to the host's and journalled.
        assert restored[node]["boot_id"] == cold[node]["boot_id"]
        assert restored[node]["marker"] == ""
        assert abs(restored[node]["skew"]) < 2.0, restored[node]
        assert "clock stepped by" in restored[node]["journal"]

    # A snapshot whose manifest carries another key is refused.
    manifest["key"] = "0" * 32
    (saved / "manifest.json").write_text(json.dumps(manifest))
    stale, report, err = run_settled(tmp_path, xdg_cache, "stale")
    assert report["mode"] == "cold"
    assert "refused, booting cold" in err
    assert stale["node01"]["boot_id"] != cold["node01"]["boot_id"]

    # A truncated state file (the manifest says how long it must be): cold boot.
    saved = only_snapshot(root)
    state = saved / "node02.state"
    with state.open("r+b") as handle:
        handle.truncate(state.stat().st_size // 2)
    truncated, report, err = run_settled(tmp_path, xdg_cache, "truncated")
    assert report["mode"] == "cold"
    assert "is incomplete (node02.state has" in err
    assert truncated["node02"]["boot_id"] != stale["node02"]["boot_id"]

    # Same length, garbage header: QEMU rejects the stream; the run boots cold instead.
    saved = only_snapshot(root)
    with (saved / "node01.state").open("r+b") as handle:
        handle.write(b"\0" * 4096)
    corrupt, report, err = run_settled(tmp_path, xdg_cache, "corrupt")
    assert report["mode"] == "cold"
    assert "could not be restored" in err
    assert corrupt["node01"]["boot_id"] != truncated["node01"]["boot_id"]
    assert only_snapshot(root).exists()  # a good one saved again

    proc = subprocess.run(
        [sys.executable, "-m", "driver", "--profile", "minimal", "clean"],
        env=photon_env(xdg_cache, tmp_path / "vm"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert not root.exists()
