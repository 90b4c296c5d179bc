"""Per-node artifacts (issue 33): each node's journal and core dumps kept in the output
directory, a core dump a health finding naming the program. Pure parts on built data; the
whole on a real guest where a service is killed by SIGSEGV."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import leftovers, photon_env
from driver.run.health import CORE_SEPARATOR, SEPARATOR, scan_command
from driver.triage import coredumps
from driver.triage.journal_export import JournalExport, journal_remote, write_journal_file


def export_entry(message: bytes, stamp: int, binary: bool = False) -> bytes:
    """One export-format entry (the message as a binary field when asked)."""
    head = (
        f"__CURSOR=s=1;i={stamp}\n__REALTIME_TIMESTAMP={stamp}\n"
        f"__MONOTONIC_TIMESTAMP={stamp}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"
        "_HOSTNAME=node1\nSYSLOG_IDENTIFIER=photon\n_PID=42\nPRIORITY=6\n"
    ).encode()
    if binary:
        field = b"MESSAGE\n" + struct.pack("<Q", len(message)) + message + b"\n"
    else:
        field = b"MESSAGE=" + message + b"\n"
    return head + field + b"\n"


def test_export_is_parsed_and_rendered_with_binary_fields() -> None:
    data = export_entry(b"hello", 1_700_000_000_000_000)
    data += export_entry(b"two\nlines \xff\x00", 1_700_000_001_000_000, binary=True)
    export = JournalExport.from_tail(data)
    assert export.cut_bytes == 0
    messages = [e["MESSAGE"] for e in export.entries()]
    assert messages == [b"hello", b"two\nlines \xff\x00"]
    text = export.as_text()
    assert "node1 photon[42]: hello" in text
    assert text.startswith("Nov 14 22:13:20.000000 ")


def test_a_cut_export_keeps_the_newest_whole_entries() -> None:
    entries = [export_entry(f"message {i}".encode(), 10**15 + i) for i in range(50)]
    data = b"".join(entries)
    cap = len(entries[-1]) * 10 + 5
    export = JournalExport.from_tail(data[-(cap + 1) :], cap)
    kept = [e["MESSAGE"] for e in export.entries()]
    assert kept == [f"message {i}".encode() for i in range(40, 50)]
    assert export.cut_bytes > 0
    assert len(export.data) <= cap


@pytest.mark.skipif(journal_remote() is None, reason="systemd-journal-remote not installed")
def test_the_export_becomes_a_journal_file(tmp_path: Path) -> None:
    export = tmp_path / "n.export"
    export.write_bytes(export_entry(b"kept for journalctl", 1_700_000_000_000_000))
    target = tmp_path / "n.journal"
    assert write_journal_file(export, target) is None
    shown = subprocess.run(
        ["journalctl", "--file", str(target), "--no-pager", "-o", "cat"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "kept for journalctl" in shown


def test_coredump_listing_is_parsed_from_the_run_window() -> None:
    listed = (
        '[{"time":1700000000000000,"pid":7,"uid":0,"gid":0,"sig":11,"corefile":"present",'
        '"exe":"/usr/local/bin/photon-crasher","size":1000},'
        '{"time":1600000000000000,"pid":8,"uid":0,"gid":0,"sig":6,"corefile":"present",'
        '"exe":"/usr/bin/old","size":1000}]'
    )
    dumps = coredumps.parse_list(listed, since_epoch=1_650_000_000)
    assert [d.evidence for d in dumps] == [
        "core dump: /usr/local/bin/photon-crasher (pid 7) killed by signal 11 (SIGSEGV)"
    ]
    assert len(coredumps.parse_list(listed)) == 2
    assert coredumps.parse_list("No coredumps found.\n") == []


def test_the_scan_lists_cores_only_where_a_core_file_exists() -> None:
    command = scan_command("m", since_epoch=1_700_000_000.5)
    before, _, after = command.partition(f"echo {SEPARATOR}")
    assert f"echo {CORE_SEPARATOR}" in before
    assert "compgen -G '/var/lib/systemd/coredump/core.*'" in before
    assert "--since=@1700000000" in before and "coredumpctl" in before
    assert "coredumpctl" not in after


CRASHING_SCRIPT = """
start_all()
machine.wait_for_unit("multi-user.target")
machine.succeed("cp /bin/sleep /usr/local/bin/photon-crasher")
machine.succeed("systemd-run --unit=crasher /usr/local/bin/photon-crasher 1000")
with subtest("a service segfaults"):
    machine.wait_until_succeeds("systemctl is-active crasher")
    machine.succeed("systemctl kill -s SEGV crasher")
    machine.wait_until_succeeds("systemctl is-failed crasher", timeout=60)
"""


def test_a_segfaulting_service_fails_the_run_with_its_core_dump_and_journal_kept(
    tmp_path: Path, xdg_cache: Path
) -> None:
    (tmp_path / "t.toml").write_text("[nodes.machine]\nvlans = [1]\n")
    (tmp_path / "t.py").write_text(CRASHING_SCRIPT)
    out, junit, vm_dir = tmp_path / "out", tmp_path / "junit.xml", tmp_path / "vm"
    command = [
        sys.executable,
        "-m",
        "driver",
        "run",
        "--topology",
        "t.toml",
        "t.py",
        "-o",
        str(out),
    ]
    proc = subprocess.run(
        [*command, "--junit-xml", str(junit)],
        env=photon_env(xdg_cache, vm_dir),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    finding = "core dump: /usr/local/bin/photon-crasher"
    assert finding in proc.stderr, proc.stderr[-3000:]
    kept = out / "nodes" / "machine"
    described = sorted(kept.glob("*-coredumps.txt"))
    assert described, sorted(p.name for p in kept.iterdir())
    info = described[-1].read_text()
    assert "photon-crasher" in info and "Signal: 11 (SEGV)" in info, info
    assert sorted((kept / "cores").glob("core.photon-crasher.*")), list(kept.rglob("*"))
    texts = sorted(kept.glob("*.txt"))
    assert any("photon-crasher" in t.read_text(errors="replace") for t in texts)
    journals = sorted(kept.glob("*.journal"))
    if journal_remote() is not None and shutil.which("journalctl"):
        assert journals, sorted(p.name for p in kept.iterdir())
        shown = subprocess.run(
            ["journalctl", "--file", str(journals[-1]), "--no-pager", "-o", "cat"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "dumped core" in shown, shown[-2000:]
    report = (out / "report.html").read_text()
    assert described[-1].name in report
    failing = [
        c.find("failure")
        for c in ET.parse(junit).getroot().iter("testcase")
        if c.find("failure") is not None
    ]
    assert failing and any(
        "kept: nodes/machine/" in (f.text or "") for f in failing if f is not None
    )
    for state in (vm_dir / "runs").iterdir() if (vm_dir / "runs").exists() else []:
        assert leftovers(state) == []
