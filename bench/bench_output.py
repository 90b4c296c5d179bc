"""A command's output of any size (issue 36): one minimal node, a script whose command
prints ``--megabytes`` MiB on stdout (and a sixteenth of that on stderr: a minimal node's
``/run`` holds both while the backdoor sends them), against the same run with a
command printing nothing. Each run is a ``photon-driver run`` of its own; the driver's
peak resident memory (its ``VmHWM``, read every 20 ms until it exits; QEMU not counted) and
the sizes of its ``events.jsonl`` and ``report.html`` are written as JSON, ``--runs`` times
each, the two kinds alternating.

    python3 bench/bench_output.py [--megabytes 50] [--runs 3] [--out bench/results/output.json]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_io import summary, write

TOPOLOGY = "[nodes.machine]\nvlans = [1]\n"
SCRIPT = """
start_all()
out = machine.succeed("{command}")
assert len(out) == {expected}, len(out)
"""


def driver_peak_kib(pid: int) -> int:
    """The driver process's own peak resident memory so far (``VmHWM``; its QEMU is a
    process of its own and not counted), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def one_run(work: Path, megabytes: int, timeout: float = 900.0) -> dict[str, float]:
    """One run printing ``megabytes`` MiB on stdout and a sixteenth of that on stderr (0:
    nothing): peak RSS in MiB and the record's sizes in KiB; SystemExit after ``timeout``
    s."""
    size = megabytes * 1024 * 1024
    stdout = f"head -c {size} /dev/zero | tr '\\\\0' a"
    stderr = f"head -c {size // 16} /dev/zero | tr '\\\\0' b >&2"
    (work / "t.toml").write_text(TOPOLOGY)
    (work / "t.py").write_text(SCRIPT.format(command=f"{stdout}; {stderr}", expected=size))
    out = work / "out"
    env = dict(os.environ, PHOTON_VM_DIR=str(work / "vm"), NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "driver", "run", "--topology", "t.toml", "t.py", "-o", str(out)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    peak_kib = 0
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"run with {megabytes} MiB did not end in {timeout} s ({work})")
        peak_kib = max(peak_kib, driver_peak_kib(proc.pid))
        time.sleep(0.02)
    if proc.returncode != 0:
        raise SystemExit(f"run with {megabytes} MiB failed: exit {proc.returncode} ({work})")
    return {
        "peak_rss_mib": peak_kib / 1024,
        "events_kib": (out / "events.jsonl").stat().st_size / 1024,
        "report_kib": (out / "report.html").stat().st_size / 1024,
    }


def main() -> None:
    """Alternate the runs, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/output.json"))
    args = parser.parse_args()
    samples: dict[str, list[dict[str, float]]] = {"quiet": [], "loud": []}
    with tempfile.TemporaryDirectory(prefix="bench-output-") as tmp:
        for index in range(args.runs):
            for kind, megabytes in (("quiet", 0), ("loud", args.megabytes)):
                work = Path(tmp) / f"{kind}{index}"
                work.mkdir()
                samples[kind].append(one_run(work, megabytes))
    result: dict[str, Any] = {"megabytes_per_stream": args.megabytes, "runs": args.runs}
    for kind, runs in samples.items():
        result[kind] = {key: summary(r[key] for r in runs) for key in runs[0]}
    growth = [
        loud["peak_rss_mib"] - quiet["peak_rss_mib"]
        for loud, quiet in zip(samples["loud"], samples["quiet"], strict=True)
    ]
    # Per MiB printed on stdout.
    result["rss_growth_per_output_mib"] = summary(g / args.megabytes for g in growth)
    write(args.out, result)


if __name__ == "__main__":
    main()
