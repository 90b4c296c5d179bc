"""From a signal to process exit with nothing left running (issue 17's budget: <= 3 s on six
nodes under TCG), measured at random points of a run, written as JSON.

    python3 bench/bench_interrupt.py [--runs 5] [--out bench/results/interrupt.json]

Each run boots six minimal nodes with ``photon-driver run`` and sends SIGTERM or SIGINT at
one of: the boot (a random moment in it), an in-guest wait (``wait_until_succeeds("false")``
guarded by ``except Exception``), a long ``succeed``, snapshots saved in a loop, restores
of a snapshot in a loop (a random moment 1-5 s into the loop). It records the seconds from the signal
to the process's exit, the exit code, and whether any QEMU or vde_switch of the run was
still alive when it exited."""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import summary, write

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import leftovers  # noqa: E402

NODES = "node01,node02,node03,node04,node05,node06"
SCRIPTS = {
    "boot": "start_all()\n",
    "wait": (
        "start_all()\nprint('READY', flush=True)\ntry:\n"
        "    node03.wait_until_succeeds('false', timeout=600)\nexcept Exception:\n    pass\n"
    ),
    "succeed": "start_all()\nprint('READY', flush=True)\nnode05.succeed('sleep 300')\n",
    "snapshot": "start_all()\nprint('READY', flush=True)\nwhile True:\n    snapshot('bench')\n",
    "restore": (
        "start_all()\nsnapshot('bench')\nprint('READY', flush=True)\n"
        "while True:\n    restore('bench')\n"
    ),
}


def one_run(phase: str, signum: int, work: Path, rng: random.Random) -> dict[str, object]:
    script = work / f"{phase}.py"
    script.write_text(SCRIPTS[phase])
    vm_dir = work / f"vm-{phase}-{signum}-{time.monotonic_ns()}"
    env = {**os.environ, "PHOTON_VM_DIR": str(vm_dir), "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "driver", "--profile", "minimal", "run", "--nodes", NODES]
    proc = subprocess.Popen(
        [*argv, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    if phase == "boot":
        time.sleep(rng.uniform(3.0, 20.0))
    else:
        for line in proc.stdout:
            if "READY" in line:
                break
        time.sleep(rng.uniform(1.0, 5.0))
    signalled = time.monotonic()
    proc.send_signal(signum)
    code = proc.wait(timeout=120)
    took = time.monotonic() - signalled
    state = Path(f"{vm_dir}-minimal") / "runs" / str(proc.pid)
    return {
        "phase": phase,
        "signal": signal.Signals(signum).name,
        "exit_code": code,
        "signal_to_exit_s": took,
        "left_running": len(leftovers(state)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/interrupt.json")
    args = parser.parse_args()
    rng = random.Random(17)
    work = Path(tempfile.mkdtemp(prefix="bench-interrupt-"))
    phases = list(SCRIPTS)
    signals = (signal.SIGTERM, signal.SIGINT)
    runs = [
        one_run(phases[i % len(phases)], signals[i // len(phases) % 2], work, rng)
        for i in range(args.runs)
    ]
    times = [float(str(r["signal_to_exit_s"])) for r in runs]
    result = {
        "nodes": 6,
        "signal_to_exit_s": summary(times),
        "left_running": sum(int(str(r["left_running"])) for r in runs),
        "runs": runs,
    }
    write(args.out, result)


if __name__ == "__main__":
    main()
