"""The cluster record and the settled manifest are typed, versioned records (issue 31):
what is saved loads back equal, a record from before the format number loads as format 1,
a newer or corrupt one is refused in one line naming the file. Pure logic: no guest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driver.errors import UsageError
from driver.state.record import RECORD, ClusterRecord, ForwardRecord, NodeRecord
from driver.state.settled_manifest import SavedFile, SavedNode, SettledManifest


def cluster_record(tmp_path: Path) -> ClusterRecord:
    node = NodeRecord(
        pid=4242,
        forwards=[ForwardRecord("ssh", 22, "tcp", 2222), ForwardRecord("dns", 53, "udp", 5353)],
        boot_seconds=6.5,
        started_wall=1.0,
        ready_wall=7.5,
        accel="tcg",
        addresses=["10.0.0.11/24"],
    )
    return ClusterRecord(
        profile="reference",
        boot_id="b00t",
        started_at=1.0,
        socket_dir=tmp_path / "sockets",
        boot_groups=[["node01"]],
        vlans={1: 99},
        nodes={"node01": node},
    )


def test_a_saved_cluster_record_loads_back_equal(tmp_path: Path) -> None:
    record = cluster_record(tmp_path)
    record.save(tmp_path)
    assert ClusterRecord.load(tmp_path) == record
    doc = json.loads((tmp_path / RECORD).read_text())
    assert doc["format"] == 1 and doc["nodes"]["node01"]["host_ports"] == [2222, 5353]
    assert doc["vlans"] == {"1": 99}


def test_a_record_from_before_the_format_number_loads(tmp_path: Path) -> None:
    doc = cluster_record(tmp_path).document()
    del doc["format"]
    (tmp_path / RECORD).write_text(json.dumps(doc))
    loaded = ClusterRecord.load(tmp_path)
    assert loaded is not None and loaded.format == 1 and loaded.nodes["node01"].pid == 4242


@pytest.mark.parametrize(
    "change", [{"format": 2}, {"nodes": {"node01": {"pid": "x"}}}, "not json", {"profile": None}]
)
def test_a_newer_or_corrupt_record_is_one_line(tmp_path: Path, change: object) -> None:
    if isinstance(change, dict):
        doc = {**cluster_record(tmp_path).document(), **change}
        if change.get("profile", "") is None:
            del doc["profile"]
        text = json.dumps(doc)
    else:
        text = str(change)
    (tmp_path / RECORD).write_text(text)
    with pytest.raises(UsageError) as raised:
        ClusterRecord.load(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / RECORD}: ") and "\n" not in message
    newer = change == {"format": 2}
    assert ("newer photon-driver (format 2" in message) == newer
    assert ("corrupt cluster record" in message) != newer


def test_no_record_is_none(tmp_path: Path) -> None:
    assert ClusterRecord.load(tmp_path) is None


def test_a_settled_manifest_loads_back_equal(tmp_path: Path) -> None:
    node = SavedNode(SavedFile("node01.state", 10), [SavedFile("node01.disk0.qcow2", 5), None], 3.0)
    manifest = SettledManifest("k" * 32, 1.0, 60.0, 4.0, {"node01": node})
    manifest.save(tmp_path)
    assert SettledManifest.load(tmp_path) == manifest
    assert [f.file for f in manifest.files()] == ["node01.state", "node01.disk0.qcow2"]
    assert node.bytes == 15
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["nodes"]["node01"]["disks"][1] is None and doc["format"] == 1


@pytest.mark.parametrize("text", ["garbage", '{"format": 9}'])
def test_stop_and_clean_get_past_an_unreadable_record(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record's own error says `cluster stop` stops what it started: it does (and
    `cluster clean`), killing what the state directory owns instead of refusing."""
    from driver.cli import main

    state = tmp_path / "vm"
    state.mkdir()
    (state / RECORD).write_text(text)
    environ = {"PHOTON_VM_DIR": str(state), "HOME": str(tmp_path)}
    assert main(["cluster", "status"], environ) == 2
    said = capsys.readouterr().err.strip()
    assert "`cluster stop` stops what it started" in said and "\n" not in said
    assert main(["cluster", "stop"], environ) == 0
    assert not (state / RECORD).exists()
    (state / RECORD).write_text(text)
    assert main(["cluster", "clean"], environ) == 0 and not state.exists()
