"""``run --repeat N`` on a real guest: three whole runs (from the settled snapshot after the
first), the second failing on purpose; each subtest's pass rate printed and written to
repeat.json / repeat.html, one JUnit file with every repetition's suite, a report each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import photon_cli, photon_env
from driver.images.builder import Image
from junit_schema import validate_junit

pytestmark = pytest.mark.vm


def test_repeat_reports_pass_rates(
    tmp_path: Path, xdg_cache: Path, minimal_image: tuple[Image, float]
) -> None:
    counter = tmp_path / "counter"
    counter.write_text("0")
    script = tmp_path / "racy.py"
    script.write_text(
        "start_all()\n"
        "from pathlib import Path\n"
        f"counter = Path({str(counter)!r})\n"
        "n = int(counter.read_text()) + 1\n"
        "counter.write_text(str(n))\n"
        "with subtest('steady'):\n"
        "    node01.succeed('true')\n"
        "with subtest('racy'):\n"
        "    node01.succeed('true' if n != 2 else 'false')\n"
    )
    out, junit = tmp_path / "out", tmp_path / "junit.xml"
    proc = photon_cli(
        photon_env(xdg_cache, tmp_path / "vm"),
        "run",
        "--nodes",
        "node01",
        "--settled",
        "--repeat",
        "3",
        "-o",
        str(out),
        "--junit-xml",
        str(junit),
        str(script),
        profile="minimal",
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert counter.read_text() == "3"
    assert "3/3 100.0%  steady" in proc.stderr and "2/3  66.7%  racy" in proc.stderr
    doc = json.loads((out / "repeat.json").read_text())
    assert doc["exit_codes"] == [0, 1, 0]
    assert doc["subtests"]["racy"] == ["passed", "failed", "passed"]
    assert 'id="pass-rates"' in (out / "repeat.html").read_text()
    assert all((out / f"run-{n}" / "report.html").is_file() for n in (1, 2, 3))
    suites = list(validate_junit(junit).iter("testsuite"))
    assert [s.get("name", "").rsplit(" ", 2)[-2:] for s in suites] == [
        ["run", "1"],
        ["run", "2"],
        ["run", "3"],
    ]
