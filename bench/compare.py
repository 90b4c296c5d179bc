"""Side by side: the same benchmarks on REF and on the working tree, alternately in one run,
so that the machine's drift (about ±30 % between runs here) falls on both alike. Writes the
ratios (working tree / REF, median and worst over the alternations) to compare.json.

    python3 bench/compare.py [REF] [--alternations 3] [--smoke-alternations 1]
                             [--only roundtrip,reuse,boot1,boot6,smoke_cold,smoke_settled]

REF (default 8cda1b9, main before issues 8-11) is checked out in a temporary git worktree;
each tree runs with its own code first on PYTHONPATH (no install: the libraries come from
this machine's site-packages) and its own state directory, sharing the image cache. Every
benchmark goes through the command line both trees have, with scripts in the DSL both have:

- roundtrip: one minimal node once multi-user.target is active and 15 s later, 200 x
  ``succeed("true")`` timed inside the script (median);
- reuse: ``run --reuse`` of a no-op script on a started six-node minimal cluster (5 runs);
- boot1 / boot6: ``run`` of ``start_all()`` on one / six fresh minimal nodes (wall);
- smoke_cold: the reference smoke on six fresh nodes (README command 1's run, wall);
- smoke_settled: ``fresh-smoke`` from the settled snapshot (a first, untimed run saves it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from results_io import summary, write
from trees import Tree

ROOT = Path(__file__).resolve().parent.parent
ROUNDTRIP = """start_all()
import time
node01.wait_for_unit("multi-user.target")
time.sleep(15)  # timed on a settled guest, not one still finishing its boot
node01.succeed("true")
samples = []
for _ in range(200):
    started = time.perf_counter()
    node01.succeed("true")
    samples.append(time.perf_counter() - started)
samples.sort()
print(f"ROUNDTRIP_MS={1000 * samples[len(samples) // 2]:.3f}", flush=True)
"""


def roundtrip(tree: Tree) -> float:
    out = tree.cli(
        "--profile", "minimal", "run", "--nodes", "node01", tree.script("roundtrip.py", ROUNDTRIP)
    )
    found = re.search(r"ROUNDTRIP_MS=([0-9.]+)", out.stdout + out.stderr)
    assert found, "no ROUNDTRIP_MS line"
    return float(found.group(1)) / 1000


def reuse(tree: Tree) -> float:
    noop = tree.script("noop.py", "pass\n")
    tree.cli("--profile", "minimal", "cluster", "start")
    try:
        return statistics.median(
            tree.timed("--profile", "minimal", "run", "--reuse", noop) for _ in range(5)
        )
    finally:
        tree.cli("--profile", "minimal", "cluster", "stop")


def boot(nodes: str) -> Callable[[Tree], float]:
    def measure(tree: Tree) -> float:
        script = tree.script("boot.py", "start_all()\n")
        return tree.timed("--profile", "minimal", "run", "--nodes", nodes, script)

    return measure


def smoke_cold(tree: Tree) -> float:
    tree.cli("--profile", "reference", "build")  # the image build is not the smoke's time
    return tree.timed(
        "--profile", "reference", "run", str(tree.path / "testscripts" / "reference" / "smoke.py")
    )


def smoke_settled(tree: Tree) -> float:
    if not (tree.path / "driver").exists():
        raise RuntimeError("no driver package")
    if not tree.settled_saved:
        tree.cli("--profile", "reference", "fresh-smoke")  # saves the settled snapshot
        tree.settled_saved = True
    return tree.timed("--profile", "reference", "fresh-smoke")


BENCHES: dict[str, Callable[[Tree], float]] = {
    "roundtrip": roundtrip,
    "reuse": reuse,
    "boot1": boot("node01"),
    "boot6": boot("node01,node02,node03,node04,node05,node06"),
    "smoke_cold": smoke_cold,
    "smoke_settled": smoke_settled,
}
EXPENSIVE = {"smoke_cold", "smoke_settled"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ref", nargs="?", default="8cda1b9")
    parser.add_argument("--alternations", type=int, default=3)
    parser.add_argument("--smoke-alternations", type=int, default=1)
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compare.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    ref_path = work / "ref-tree"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(ref_path), args.ref],
        check=True,
        capture_output=True,
    )
    trees = [Tree("ref", ref_path, work), Tree("work", ROOT, work)]
    results: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, str] = {}
    try:
        for name in args.only.split(","):
            rounds = args.smoke_alternations if name in EXPENSIVE else args.alternations
            samples: dict[str, list[float]] = {"ref": [], "work": []}
            try:
                for turn in range(rounds):
                    # ABBA: which tree goes first alternates, so an order effect cancels.
                    for tree in trees if turn % 2 == 0 else trees[::-1]:
                        samples[tree.name].append(BENCHES[name](tree))
                        print(f"{name} {tree.name}: {samples[tree.name][-1]:.4f}", flush=True)
            except (RuntimeError, AssertionError, subprocess.TimeoutExpired) as exc:
                errors[name] = str(exc).splitlines()[0]
                print(f"{name}: {errors[name]}", flush=True)
            results[name] = samples
    finally:
        for tree in trees:
            for profile in ("minimal", "reference"):
                subprocess.run(
                    [sys.executable, "-m", "driver", "--profile", profile, "cluster", "clean"],
                    env=tree.env(),
                    capture_output=True,
                    cwd=tree.path,
                )
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(ref_path)],
            capture_output=True,
        )
        shutil.rmtree(work, ignore_errors=True)
    earlier: dict[str, dict[str, object]] = {"benches": {}, "errors": {}}
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(args.out.read_text())
        if found.get("ref") == args.ref:  # keep what this run did not measure again
            earlier = {k: {n: v for n, v in found[k].items() if n not in results} for k in earlier}
    doc: dict[str, object] = {
        "ref": args.ref,
        "benches": earlier["benches"],
        "errors": {**earlier["errors"], **errors},
    }
    for name, samples in results.items():
        pairs = list(zip(samples["work"], samples["ref"], strict=False))
        ratios = [w / r for w, r in pairs if r > 0]
        doc["benches"][name] = {  # type: ignore[index]
            **samples,
            "ratio": summary(ratios) if ratios else None,
        }
    write(args.out, doc)


if __name__ == "__main__":
    main()
