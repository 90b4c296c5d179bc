"""Storage benchmark parsing and report (pure: fio JSON in, Markdown + PNG + JSON out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driver.scripting.storagebench import (
    Measurement,
    fio_command,
    parse_fio,
    strongest,
    write_report,
)

FIO = json.dumps(
    {
        "fio version": "fio-3.33",
        "jobs": [
            {
                "jobname": "photon",
                "read": {"io_bytes": 0, "bw": 0, "iops": 0.0, "clat_ns": {"mean": 0.0}},
                "write": {
                    "io_bytes": 1 << 20,
                    "bw": 20480,
                    "iops": 5120.5,
                    "clat_ns": {"mean": 780000.0},
                },
            }
        ],
    }
)


def test_parse_fio_picks_the_active_side() -> None:
    m = parse_fio("local", "rand-write", "fio: noise before json\n" + FIO)
    assert (m.bandwidth_mib_s, m.iops, m.latency_ms) == (20.0, 5120.5, 0.78)
    assert "--direct=1" in fio_command("/dev/nbd0", "randread", "4k")


def test_report_has_table_units_chart_and_raw(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [
        Measurement("controller", "seq-read", 50.0, 50, 1.0),
        Measurement("local", "seq-read", 80.0, 80, 0.5),
    ]
    written = write_report(rows, {"attach (s)": 0.5}, "Bench", "tcg", tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert "| controller | seq-read | 50.0 |" in text and "bandwidth (MiB/s)" in text
    assert "accelerator: tcg" in text and "![chart](r.png)" in text
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG") and len(written) == 3
    assert json.loads((tmp_path / "r.json").read_text())["measurements"][1]["target"] == "local"


def test_strongest_sums_iops() -> None:
    rows = [
        Measurement("a", "r", 1, 100, 1),
        Measurement("a", "w", 1, 100, 1),
        Measurement("b", "r", 1, 150, 1),
        Measurement("b", "w", 1, 10, 1),
    ]
    assert strongest(rows) == "a"
