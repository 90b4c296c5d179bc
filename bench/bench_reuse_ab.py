"""``run --reuse`` of a no-op script, REF and the working tree alternately on ONE started
six-node minimal cluster (compare.py's ``reuse`` starts a fresh cluster per tree, and a
cluster's first minutes after boot vary by more than the code does). Each pair's ratio
(working tree / REF) and the series go to the output JSON.

    python3 bench/bench_reuse_ab.py [REF] [--pairs 8] [--out bench/results/reuse-ab-REF.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import summary, write
from trees import Tree

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ref", nargs="?", default="ef39d66")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds after the start")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or ROOT / "bench" / "results" / f"reuse-ab-{args.ref}.json"
    work = Path(tempfile.mkdtemp(prefix="bench-reuse-ab-"))
    ref = work / "ref-tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(ref), args.ref],
        check=True,
        capture_output=True,
    )
    state, noop = work / "vm", work / "noop.py"
    noop.write_text("pass\n")
    trees = {"ref": Tree("ref", ref, work, state), "work": Tree("work", ROOT, work, state)}
    series: dict[str, list[float]] = {"ref": [], "work": []}
    try:
        trees["work"].cli("--profile", "minimal", "cluster", "start")
        time.sleep(args.settle)  # past the boot's own activity
        for turn in range(args.pairs):
            order = ["ref", "work"] if turn % 2 == 0 else ["work", "ref"]
            for name in order:
                series[name].append(
                    trees[name].timed("--profile", "minimal", "run", "--reuse", str(noop))
                )
                print(f"{name}: {series[name][-1]:.3f}", flush=True)
    finally:
        subprocess.run(
            [sys.executable, "-m", "driver", "--profile", "minimal", "cluster", "stop"],
            env=dict(os.environ, PYTHONPATH=str(ROOT), PHOTON_VM_DIR=str(state)),
            capture_output=True,
        )
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref)],
            capture_output=True,
        )
        shutil.rmtree(work, ignore_errors=True)
    ratios = [w / r for w, r in zip(series["work"], series["ref"], strict=True)]
    write(
        out,
        {
            "ref": args.ref,
            "what": "run --reuse of a no-op script, one six-node minimal cluster, alternating",
            "ref_s": summary(series["ref"]),
            "work_s": summary(series["work"]),
            "ratio": {
                "median": statistics.median(ratios),
                "max": max(ratios),
                "of_medians": statistics.median(series["work"]) / statistics.median(series["ref"]),
                "runs": ratios,
            },
        },
    )


if __name__ == "__main__":
    main()
